"""MatchIndex: one index per signal type behind one interface (synthetic values only)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vigil.index import IndexMatch, MatchIndex, SnapshotError
from vigil.index.synthetic import flip_exactly, random_pdq
from vigil.signals.vpdq import VpdqFrame, format_vpdq


def _pdq(rng: np.random.Generator, count: int) -> list[str]:
    return [row.tobytes().hex() for row in random_pdq(rng, count)]


def _filled() -> tuple[MatchIndex, dict[str, list[str]]]:
    rng = np.random.default_rng(77)
    index = MatchIndex()
    values = {
        "md5": [hashlib.md5(bytes([i])).hexdigest() for i in range(5)],
        "sha1": [hashlib.sha1(bytes([i])).hexdigest() for i in range(5)],
        "sha256": [hashlib.sha256(bytes([i])).hexdigest() for i in range(5)],
        "pdq": _pdq(rng, 5),
    }
    for offset, (signal_type, hexes) in enumerate(values.items()):
        for i, value in enumerate(hexes):
            index.add(100 * offset + i, signal_type, value)
    frames = [VpdqFrame(i, float(i), 90, h) for i, h in enumerate(_pdq(rng, 4))]
    index.add(900, "vpdq", format_vpdq(frames))
    index.add(901, "vpdq", frames[:2])
    values["vpdq"] = [format_vpdq(frames)]
    return index, values


def test_lookup_every_signal_type() -> None:
    index, values = _filled()
    assert index.counts() == {"md5": 5, "sha1": 5, "sha256": 5, "pdq": 5, "vpdq": 2}
    assert index.lookup("md5", [values["md5"][2].upper(), "0" * 32]) == [[IndexMatch(2, 0)], []]
    assert index.lookup("sha1", values["sha1"][:1]) == [[IndexMatch(100, 0)]]
    assert index.lookup("sha256", values["sha256"][4:]) == [[IndexMatch(204, 0)]]
    rng = np.random.default_rng(1)
    near = flip_exactly(rng, np.frombuffer(bytes.fromhex(values["pdq"][1]), np.uint8)[None], 20)
    assert index.lookup("pdq", near) == [[IndexMatch(301, 20)]]
    assert index.lookup("pdq", near, threshold=19) == [[]]
    variants = np.stack([random_pdq(rng, 8)])
    variants[0, 3] = near[0]
    assert index.lookup_dihedral(variants) == [[IndexMatch(301, 20, variant=3)]]
    video = index.lookup("vpdq", values["vpdq"])[0]
    assert video == [
        IndexMatch(900, 0, None, 100.0, 100.0),
        IndexMatch(901, 0, None, 50.0, 100.0),
    ]
    assert index.lookup("vpdq", values["vpdq"], compared_share=100.0, query_share=60.0) == [
        [IndexMatch(900, 0, None, 100.0, 100.0)]
    ]
    with pytest.raises(KeyError, match="unknown signal type"):
        index.lookup("photodna", ["x"])


def test_remove_enable_and_moving_between_types() -> None:
    index, values = _filled()
    assert index.set_enabled(301, False) == 1
    assert index.lookup("pdq", values["pdq"][1:2]) == [[]]
    assert index.set_enabled([301], True) == 1
    assert index.lookup("pdq", values["pdq"][1:2]) == [[IndexMatch(301, 0)]]
    # An entry id re-added under another signal type leaves its old index.
    index.add(301, "md5", values["md5"][0])
    assert index.lookup("pdq", values["pdq"][1:2]) == [[]]
    assert index.lookup("md5", values["md5"][:1]) == [[IndexMatch(0, 0), IndexMatch(301, 0)]]
    assert index.remove([301, 900, 12345]) == 2
    assert index.lookup("md5", values["md5"][:1]) == [[IndexMatch(0, 0)]]
    assert [m.entry_id for m in index.lookup("vpdq", values["vpdq"])[0]] == [901]
    assert len(index) == 20


def test_save_and_load_directory(tmp_path: Path) -> None:
    index, values = _filled()
    index.set_enabled(2, False)
    index.save(tmp_path)
    first = json.loads((tmp_path / "manifest.json").read_text())
    index.save(tmp_path)  # a second generation replaces the first
    second = json.loads((tmp_path / "manifest.json").read_text())
    assert first["generation"] != second["generation"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json", *second["files"].values()]
    )
    loaded = MatchIndex.load(tmp_path)
    assert loaded.counts() == index.counts()
    for signal_type, hexes in values.items():
        assert loaded.lookup(signal_type, hexes) == index.lookup(signal_type, hexes)
    assert loaded.lookup("md5", values["md5"][2:3]) == [[]]

    pdq_file = tmp_path / second["files"]["pdq"]
    data = bytearray(pdq_file.read_bytes())
    data[len(data) // 2] ^= 1
    pdq_file.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match="checksum mismatch"):
        MatchIndex.load(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": 1, "files": {"md5": "../x"}}')
    with pytest.raises(SnapshotError, match="malformed manifest"):
        MatchIndex.load(tmp_path)
    with pytest.raises(SnapshotError, match="cannot read"):
        MatchIndex.load(tmp_path / "nowhere")
