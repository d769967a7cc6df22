"""`vigil hash` end to end: record shape, values, errors, exit codes, formats, workers."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pdqhash
import pillow_heif
import pytest
from PIL import Image
from typer.testing import CliRunner

from vigil.cli import app
from vigil.cli.output import RECORD_KEYS
from vigil.config import get_settings
from vigil.demo import synthetic_frames, synthetic_image, write_video
from vigil.media import ErrorCode
from vigil.pipeline import hashing
from vigil.pipeline.hashing import HashOptions, hash_files
from vigil.signals.pdq import bits_to_hex

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VIGIL_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


@pytest.fixture
def media(tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    (folder / "nested").mkdir(parents=True)
    image = synthetic_image(300, 200, seed=7)
    image.save(folder / "a.jpg", quality=90)
    image.save(folder / "b.png")
    image.save(folder / "nested" / "c.bmp")
    image.save(folder / "nested" / "d.tiff")
    image.save(folder / "nested" / "e.webp", lossless=True)
    image.convert("P").save(folder / "nested" / "f.gif")
    pillow_heif.from_pillow(image).save(folder / "nested" / "g.heic", quality=90)
    write_video(folder / "v.mp4", synthetic_frames(320, 240, 25), fps=10)
    return folder


def run(*args: str, stdin: str | None = None) -> tuple[int, list[dict[str, object]], str]:
    result = runner.invoke(app, ["hash", *args], input=stdin)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


def test_records_have_exactly_the_documented_keys_and_true_values(home: Path, media: Path) -> None:
    code, records, stderr = run(str(media), "--exact-decode", "--workers", "1")
    assert code == 0, stderr
    by_name = {Path(str(r["path"])).name: r for r in records}
    assert sorted(by_name) == [
        "a.jpg",
        "b.png",
        "c.bmp",
        "d.tiff",
        "e.webp",
        "f.gif",
        "g.heic",
        "v.mp4",
    ]
    for record in records:
        assert tuple(record) == RECORD_KEYS
        data = Path(str(record["path"])).read_bytes()
        assert record["bytes"] == len(data)
        assert record["md5"] == hashlib.md5(data).hexdigest()
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert record["error"] is None
    for name in ("a.jpg", "b.png", "c.bmp", "d.tiff", "e.webp", "f.gif", "g.heic"):
        record = by_name[name]
        pixels = np.asarray(Image.open(media.rglob(name).__next__()).convert("RGB"))
        bits, quality = pdqhash.compute(pixels)
        assert (record["media_type"], record["pdq"], record["pdq_quality"]) == (
            "image",
            bits_to_hex(bits),
            quality,
        )
        assert record["vpdq"] is None
    video = by_name["v.mp4"]
    assert video["media_type"] == "video" and video["pdq"] is None
    frames = video["vpdq"]
    assert isinstance(frames, list)
    assert [f["frame"] for f in frames] == [0, 10, 20]  # 25 frames at 10 fps, 1 hash a second
    assert all(len(f["pdq"]) == 64 and f["quality"] >= 50 for f in frames)
    assert "files=8 ok=8 failed=0" in stderr


def test_bad_files_become_error_records_and_exit_1(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not media")
    good = io.BytesIO()
    synthetic_image(400, 300, seed=1).save(good, "JPEG")
    (folder / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 3])
    (folder / "ok.jpg").write_bytes(good.getvalue())
    code, records, stderr = run(str(folder), str(tmp_path / "missing.png"))
    assert code == 1
    errors = {Path(str(r["path"])).name: (r["error"] or {}).get("code") for r in records}  # type: ignore[union-attr]
    assert errors == {
        "empty.jpg": "empty",
        "notes.txt": "unsupported_format",
        "ok.jpg": None,
        "truncated.jpg": "truncated",
        "missing.png": "not_found",
    }
    text = next(r for r in records if str(r["path"]).endswith("notes.txt"))
    assert text["md5"] == hashlib.md5(b"not media").hexdigest()  # exact hashes still recorded
    assert "failed=4" in stderr and "truncated=1" in stderr and "not_found=1" in stderr


def test_usage_errors_exit_2(home: Path, media: Path) -> None:
    assert runner.invoke(app, ["hash", str(media), "--signals", "md5,nope"]).exit_code == 2
    assert runner.invoke(app, ["hash", str(media), "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["hash"]).exit_code == 2


def test_stdin_list_signals_choice_and_output_file(home: Path, media: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    listing = f"{media / 'a.jpg'}\n{media / 'v.mp4'}\n"
    code, _, _ = run("-", "--signals", "sha256,pdq", "--output", str(out), stdin=listing)
    assert code == 0
    assert not out.with_name("out.jsonl.partial").exists()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [Path(r["path"]).name for r in records] == ["a.jpg", "v.mp4"]
    assert records[0]["md5"] is None and records[0]["pdq"] and records[0]["sha256"]
    assert records[1]["pdq"] is None and records[1]["vpdq"] is None and records[1]["sha256"]


def test_csv_and_table_formats(home: Path, media: Path) -> None:
    result = runner.invoke(app, ["hash", str(media / "a.jpg"), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.exit_code == 0 and len(rows) == 1
    assert tuple(rows[0]) == RECORD_KEYS and len(rows[0]["pdq"]) == 64
    table = runner.invoke(app, ["hash", str(media / "a.jpg"), "--format", "table"])
    assert "a.jpg" in table.stdout and rows[0]["md5"][:16] in table.stdout.replace("\n", "")


def test_parallel_workers_give_the_same_records_in_order(media: Path) -> None:
    limits = get_settings().media_limits
    paths = sorted(p for p in media.rglob("*") if p.is_file())
    options = HashOptions(fast_decode=True)
    serial = [r.as_json() for r in hash_files(paths, limits, options, workers=1)]
    parallel = [r.as_json() for r in hash_files(paths, limits, options, workers=2)]
    assert parallel == serial


_hash_file = hashing.hash_file


def _crash_on_named_file(path: Path, limits: object, options: HashOptions) -> hashing.HashRecord:
    if path.name == "crash.jpg":
        os._exit(70)  # what a segfaulting decoder looks like to the pool
    return _hash_file(path, limits, options)  # type: ignore[arg-type]


def test_a_crashing_worker_costs_only_its_file(
    media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (media / "crash.jpg").write_bytes((media / "a.jpg").read_bytes())
    paths = [media / "a.jpg", media / "crash.jpg", media / "b.png", media / "v.mp4"]
    monkeypatch.setattr(hashing, "hash_file", _crash_on_named_file)
    records = list(hash_files(paths, get_settings().media_limits, HashOptions(), workers=2))
    assert [Path(r.path).name for r in records] == ["a.jpg", "crash.jpg", "b.png", "v.mp4"]
    assert [r.error.code if r.error else None for r in records] == [
        None,
        ErrorCode.INTERNAL,
        None,
        None,
    ]
