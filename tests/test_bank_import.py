"""Importing and exporting hash lists, on SQLite and PostgreSQL.

Idempotent imports for every format, deletions and updates, bad rows with line numbers,
malformed and hostile files changing nothing, a 200k-row file in bounded memory, failure
half-way and undo, and export -> import round trips. All values are synthetic random hex.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bank_helpers import (
    ncmec_deleted,
    ncmec_entry,
    ncmec_xml,
    rand_hex,
    rand_vpdq,
    vics_json,
)
from vigil import banks
from vigil.banks import Classification, Industry, NewEntry, UKCategory, importing
from vigil.banks.formats.delimited import COLUMNS
from vigil.store import Bank, BankEntry, BankImport, Database

RNG = random.Random(99)


def snapshot(session: Session, bank: Bank) -> list[tuple[Any, ...]]:
    """Everything about a bank's entries that an import may change."""
    session.expire_all()
    return [
        (
            e.id,
            e.signal_type,
            e.value,
            e.industry,
            e.uk_category,
            e.vics_category,
            e.vics_region,
            tuple(e.labels),
            e.list_name,
            e.external_id,
            e.member,
            e.note,
            e.disabled_until,
            e.false_positive_count,
        )
        for e in banks.iter_entries(session, bank)
    ]


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def entries(session: Session, bank: Bank) -> dict[tuple[str, str], BankEntry]:
    return {(e.signal_type, e.value): e for e in banks.iter_entries(session, bank)}


def assert_idempotent(session: Session, bank: Bank, path: Path, **options: Any) -> None:
    before = snapshot(session, bank)
    report = banks.import_file(session, bank, path, actor="test", **options)
    assert report.status == "finished"
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert snapshot(session, bank) == before


# --- Each format, imported twice -----------------------------------------------------------


def test_csv_import_records_everything_and_is_idempotent(session: Session, tmp_path: Path) -> None:
    bank = banks.create_bank(session, "csv-bank")
    md5, sha1, pdq = rand_hex(RNG, "md5"), rand_hex(RNG, "sha1"), rand_hex(RNG, "pdq")
    vpdq = rand_vpdq(RNG, 4)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["signal_type", "value", "classification", "external_id", "note"])
    writer.writerow(["md5", md5.upper(), "A1;uk:A;viral", "e-1", "first"])
    writer.writerow(["sha1", sha1, "", "", ""])
    writer.writerow(["md5", "not-a-hash", "", "", ""])
    writer.writerow(["vpdq", vpdq, "B2", "", "a video\nwith two lines"])
    writer.writerow(["pdq", pdq, "A9", "", ""])
    path = write(tmp_path / "list.csv", buffer.getvalue())

    report = banks.import_file(session, bank, path, actor="alice")
    assert report.status == "finished" and not report.ok
    assert (report.added, report.updated, report.unchanged, report.removed) == (3, 0, 0, 0)
    assert report.rejected == 2
    vpdq_lines = vpdq.count("\n") + 1
    assert [(r.position, r.reason) for r in report.rejected_sample] == [
        (4, "md5 must be 32 hexadecimal characters"),
        (6 + vpdq_lines, "unknown Industry classification 'A9' (A1/A2/B1/B2)"),
    ]
    assert report.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert report.file_bytes == path.stat().st_size

    record = session.get(BankImport, report.import_id)
    assert record is not None
    assert (record.status, record.actor, record.format, record.file_name) == (
        "finished",
        "alice",
        "csv",
        "list.csv",
    )
    assert (record.added, record.rejected) == (3, 2)
    assert record.rejected_sample[0] == {"position": 4, "reason": report.rejected_sample[0].reason}
    assert record.finished is not None and record.started <= record.finished

    found = entries(session, bank)
    first = found[("md5", md5)]
    assert banks.entry_classification(first) == Classification(
        industry=Industry.A1, uk=UKCategory.A, labels=("viral",)
    )
    assert (first.external_id, first.note, first.import_id) == ("e-1", "first", report.import_id)
    assert found[("vpdq", vpdq)].note == "a video\nwith two lines"

    assert_idempotent(session, bank, path)
    again = banks.list_imports(session, bank)[0]
    assert (again.unchanged, again.rejected) == (3, 2)


def test_plain_import_is_idempotent(session: Session, tmp_path: Path) -> None:
    bank = banks.create_bank(session, "plain")
    values = [rand_hex(RNG, "sha256") for _ in range(50)]
    path = write(tmp_path / "list.txt", "# synthetic\n" + "\n".join(values) + "\n\nbad\n")
    report = banks.import_file(session, bank, path, signal_type="sha256", actor="t")
    assert (report.added, report.rejected) == (50, 1)
    assert report.rejected_sample[0].position == 53
    assert_idempotent(session, bank, path, signal_type="sha256")
    with pytest.raises(ValueError, match="signal type"):
        banks.import_file(session, bank, path, actor="t")


def test_vics_import_updates_and_replaces_records(session: Session, tmp_path: Path) -> None:
    bank = banks.create_bank(session, "vics", source="imported", source_name="vics-us")
    md5_a, md5_b, sha1_b = rand_hex(RNG, "md5"), rand_hex(RNG, "md5"), rand_hex(RNG, "sha1")
    pdq_a = rand_hex(RNG, "pdq")
    first = [
        {
            "MediaID": 10,
            "Category": 1,
            "MD5": md5_a,
            "AlternativeHashes": [
                {"HashName": "PDQ", "HashValue": pdq_a},
                {"HashName": "PhotoDNA", "HashValue": "c3ludGhldGlj"},
            ],
        },
        {"MediaID": 11, "Category": 2, "MD5": md5_b, "SHA1": sha1_b},
    ]
    path = write(tmp_path / "set.json", vics_json(first, bom=True))
    report = banks.import_file(session, bank, path, actor="t")
    assert (report.added, report.skipped, report.rejected) == (4, 1, 0)
    assert report.skipped_reasons == {"alternative hash 'PhotoDNA' not supported": 1}
    assert entries(session, bank)[("md5", md5_a)].list_name == "vics-us"
    assert_idempotent(session, bank, path)

    # The next version of the set: record 10 re-categorised, record 11 lost its SHA1.
    second = [dict(first[0], Category=3), {"MediaID": 11, "Category": 2, "MD5": md5_b}]
    path2 = write(tmp_path / "set2.json", vics_json(second, case=True))
    report = banks.import_file(session, bank, path2, actor="t")
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 2, 1, 1)
    found = entries(session, bank)
    assert ("sha1", sha1_b) not in found
    assert found[("pdq", pdq_a)].vics_category == 3
    assert_idempotent(session, bank, path2)


def test_vics_category_filter_and_region(session: Session, tmp_path: Path) -> None:
    bank = banks.create_bank(session, "vics-ca")
    keep, drop = rand_hex(RNG, "md5"), rand_hex(RNG, "md5")
    records = [
        {"MediaID": 1, "Category": 1, "MD5": keep},
        {"MediaID": 2, "Category": 0, "MD5": drop},
    ]
    path = write(tmp_path / "ca.json", vics_json(records))
    report = banks.import_file(
        session, bank, path, actor="t", vics_region="ca", vics_categories=[1]
    )
    assert (report.added, report.skipped) == (1, 1)
    entry = entries(session, bank)[("md5", keep)]
    assert (entry.vics_category, entry.vics_region) == (1, "ca")


def test_ncmec_import_entries_updates_and_deletions(session: Session, tmp_path: Path) -> None:
    bank = banks.create_bank(session, "ncmec", source="exchange", source_name="ncmec-industry")
    md5_1, sha1_1, md5_2, md5_3 = (rand_hex(RNG, t) for t in ("md5", "sha1", "md5", "md5"))
    page1 = ncmec_xml(
        images=[
            ncmec_entry("willupdate", [("md5", md5_1), ("sha1", sha1_1), ("pdna", "c3ludA==")]),
            ncmec_entry("willdelete", [("md5", md5_2)]),
        ],
        videos=[ncmec_entry("video-1", [("md5", md5_3)], classification="B1", kind="video")],
    )
    path1 = write(tmp_path / "page1.xml", page1)
    report = banks.import_file(session, bank, path1, actor="t")
    assert (report.added, report.skipped, report.rejected) == (4, 1, 0)
    found = entries(session, bank)
    assert (found[("md5", md5_1)].external_id, found[("md5", md5_1)].member) == (
        "willupdate",
        "Synthetic Member",
    )
    assert found[("md5", md5_3)].industry == "B1"
    assert_idempotent(session, bank, path1)

    page2 = ncmec_xml(
        images=[
            ncmec_entry("willupdate", [("md5", md5_1)], classification="A2"),
            ncmec_deleted("willdelete"),
            ncmec_deleted("never-seen"),
        ]
    )
    path2 = write(tmp_path / "page2.xml", page2)
    report = banks.import_file(session, bank, path2, actor="t")
    assert (report.added, report.updated, report.removed) == (0, 1, 2)
    found = entries(session, bank)
    assert set(found) == {("md5", md5_1), ("md5", md5_3)}
    assert found[("md5", md5_1)].industry == "A2"
    assert_idempotent(session, bank, path2)


def test_order_of_entries_and_deletions_within_one_batch(session: Session, tmp_path: Path) -> None:
    bank = banks.create_bank(session, "ordered")
    gone, back, other = (rand_hex(RNG, "md5") for _ in range(3))
    page = ncmec_xml(
        images=[
            ncmec_entry("added-then-deleted", [("md5", gone)]),
            ncmec_entry("other", [("md5", other)]),
            ncmec_deleted("added-then-deleted"),
            ncmec_deleted("deleted-then-added"),
            ncmec_entry("deleted-then-added", [("md5", back)]),
        ]
    )
    report = banks.import_file(session, bank, write(tmp_path / "p.xml", page), actor="t")
    assert report.status == "finished"
    assert set(entries(session, bank)) == {("md5", back), ("md5", other)}


def test_deletions_only_reach_their_own_list(session: Session, tmp_path: Path) -> None:
    bank = banks.create_bank(session, "mixed")
    mine, theirs = rand_hex(RNG, "md5"), rand_hex(RNG, "md5")
    banks.add_entry(session, bank, "md5", mine, external_id="shared-id", list_name="own-list")
    session.commit()
    path = write(
        tmp_path / "x.xml", ncmec_xml(images=[ncmec_entry("shared-id", [("md5", theirs)])])
    )
    banks.import_file(session, bank, path, actor="t", list_name="ncmec")
    path = write(tmp_path / "y.xml", ncmec_xml(images=[ncmec_deleted("shared-id")]))
    report = banks.import_file(session, bank, path, actor="t", list_name="ncmec")
    assert report.removed == 1
    assert set(entries(session, bank)) == {("md5", mine)}


def test_rejected_sample_is_capped_and_counts_are_complete(
    session: Session, tmp_path: Path
) -> None:
    bank = banks.create_bank(session, "noisy")
    path = write(tmp_path / "bad.txt", "\n".join(f"bad-{i}" for i in range(250)) + "\n")
    report = banks.import_file(session, bank, path, signal_type="md5", actor="t")
    assert report.rejected == 250
    assert len(report.rejected_sample) == importing.REJECTED_SAMPLE
    assert report.rejected_sample[-1].position == importing.REJECTED_SAMPLE


# --- Malformed and hostile files change nothing ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "late-bad-utf8.csv",
            b"signal_type,value\n"
            + b"".join(f"md5,{rand_hex(RNG, 'md5')}\n".encode() for _ in range(3000))
            + b"md5,\xff\n",
            "line 3002: not UTF-8",
        ),
        (
            "doctype.xml",
            b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "b">]>'
            + ncmec_xml(images=[ncmec_entry("x", [("md5", rand_hex(RNG, "md5"))])]).split(b"?>", 1)[
                1
            ],
            "DTD",
        ),
        (
            "truncated.json",
            vics_json([{"MediaID": i, "MD5": rand_hex(RNG, "md5")} for i in range(2000)])[:-40],
            "malformed JSON|ends too early",
        ),
        ("header.csv", b"hash\n" + rand_hex(RNG, "md5").encode() + b"\n", "unknown column"),
    ],
)
def test_malformed_file_changes_nothing_and_says_failed(
    session: Session, tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    bank = banks.create_bank(session, "careful")
    keep, _ = banks.add_entry(session, bank, "md5", rand_hex(RNG, "md5"))
    session.commit()
    before = snapshot(session, bank)
    report = banks.import_file(
        session, bank, write(tmp_path / name, data), actor="t", batch_size=10
    )
    assert report.status == "failed"
    assert report.error is not None
    assert re.search(message, report.error)
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    assert snapshot(session, bank) == before
    record = session.get(BankImport, report.import_id)
    assert record is not None and record.status == "failed" and record.finished is not None
    assert keep.id in {e.id for e in banks.iter_entries(session, bank)}


def test_size_limit_applies_to_imports(session: Session, tmp_path: Path) -> None:
    bank = banks.create_bank(session, "small")
    path = write(tmp_path / "l.txt", "\n".join(rand_hex(RNG, "md5") for _ in range(100)))
    report = banks.import_file(
        session,
        bank,
        path,
        signal_type="md5",
        actor="t",
        limits=banks.ImportLimits(max_bytes=1000),
    )
    assert report.status == "failed" and "larger than 1000 bytes" in (report.error or "")
    assert banks.entry_counts(session, bank) == {}


def test_bad_options_are_refused_before_anything_is_recorded(
    session: Session, tmp_path: Path
) -> None:
    bank = banks.create_bank(session, "b")
    session.commit()
    path = write(tmp_path / "l.txt", rand_hex(RNG, "md5"))
    for options, message in (
        ({"signal_type": "vpdq"}, "CSV"),
        ({"signal_type": "crc32"}, "unknown signal type"),
        ({"fmt": "xlsx"}, "xlsx"),
        ({"signal_type": "md5", "vics_region": "not a region"}, "region"),
    ):
        with pytest.raises(ValueError, match=message):
            banks.import_file(session, bank, path, actor="t", **options)
    with pytest.raises(ValueError, match="not a file"):
        banks.import_file(session, bank, tmp_path / "missing.txt", signal_type="md5", actor="t")
    assert session.scalar(select(func.count()).select_from(BankImport)) == 0


# --- Failure half-way, undo, re-run --------------------------------------------------------


def test_failure_half_way_leaves_committed_batches_that_a_rerun_completes(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = banks.create_bank(session, "half")
    values = [rand_hex(RNG, "md5") for _ in range(50)]
    path = write(tmp_path / "l.txt", "\n".join(values))
    real = importing.apply_records
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> banks.ChangeCounts:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(importing, "apply_records", failing)
    with pytest.raises(RuntimeError, match="went away"):
        banks.import_file(session, bank, path, signal_type="md5", actor="t", batch_size=10)
    record = banks.list_imports(session, bank)[0]
    assert (record.status, record.added) == ("failed", 20)
    assert "database went away" in (record.error or "")
    assert banks.entry_counts(session, bank) == {"md5": 20}

    monkeypatch.setattr(importing, "apply_records", real)
    report = banks.import_file(session, bank, path, signal_type="md5", actor="t", batch_size=10)
    assert (report.status, report.added, report.unchanged) == ("finished", 30, 20)
    assert banks.entry_counts(session, bank) == {"md5": 50}

    assert banks.undo_import(session, report.import_id) == 30
    session.commit()
    assert banks.entry_counts(session, bank) == {"md5": 20}


def test_file_changed_between_the_passes_fails_the_import(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bank = banks.create_bank(session, "moving")
    path = write(tmp_path / "l.txt", "\n".join(rand_hex(RNG, "md5") for _ in range(5)) + "\n")
    real = importing.open_guarded
    opened = {"n": 0}

    def replaced_in_between(raw: Any, max_bytes: int) -> Any:
        opened["n"] += 1
        if opened["n"] == 2:
            raw = io.BytesIO(raw.read() + rand_hex(RNG, "md5").encode() + b"\n")
        return real(raw, max_bytes)

    monkeypatch.setattr(importing, "open_guarded", replaced_in_between)
    report = banks.import_file(session, bank, path, signal_type="md5", actor="t")
    assert report.status == "failed"
    assert "changed while it was being imported" in (report.error or "")
    assert banks.undo_import(session, report.import_id) == 6


# --- Scale -------------------------------------------------------------------------------


_MEASURED_IMPORT = """
import json, os, sys, threading
from pathlib import Path
from vigil import banks
from vigil.config import get_settings
from vigil.store import open_database

statm, page = Path("/proc/self/statm"), os.sysconf("SC_PAGE_SIZE")
def rss():
    return int(statm.read_text().split()[1]) * page

database = open_database(get_settings())
with database.sessionmaker() as session:
    bank = banks.create_bank(session, "big")
    session.commit()
    base, peak, stop = rss(), [0], threading.Event()
    def sample():
        while True:
            peak[0] = max(peak[0], rss() - base)
            if stop.wait(0.01):
                peak[0] = max(peak[0], rss() - base)
                return
    sampler = threading.Thread(target=sample)
    sampler.start()
    report = banks.import_file(session, bank, sys.argv[1], actor="t")
    stop.set()
    sampler.join()
print(json.dumps({"growth": peak[0], "report": report.as_json()}))
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_200k_row_csv_imports_in_bounded_memory(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    rows = 200_000
    path = tmp_path / "big.csv"
    rng = random.Random(5)
    with path.open("w", encoding="utf-8") as out:
        out.write("signal_type,value,classification,external_id\n")
        for i in range(rows):
            out.write(f"md5,{rand_hex(rng, 'md5')},A1,synthetic-{i}\n")
    # A fresh interpreter, so memory freed by earlier tests cannot hide growth; its
    # resident set is sampled every 10 ms while the import runs.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "VIGIL_HOME": str(tmp_path / "home"),
        "VIGIL_DATABASE_URL": database_url,
    }
    result = subprocess.run(
        [sys.executable, "-c", _MEASURED_IMPORT, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    report = measured["report"]
    assert (report["status"], report["added"], report["rejected"]) == ("finished", rows, 0)
    with db.session() as session:
        assert banks.entry_counts(session, "big") == {"md5": rows}
    # Merely holding the parsed rows of this file takes about 75 MB; the import holds one
    # batch at a time (it grows by about 12 MB, on both databases).
    growth = measured["growth"]
    assert growth < 40 * 1024 * 1024, f"grew by {growth / 1e6:.1f} MB"


# --- Export and round trips ------------------------------------------------------------------


def test_export_csv_and_plain(session: Session) -> None:
    bank = banks.create_bank(session, "out")
    md5, pdq, vpdq = rand_hex(RNG, "md5"), rand_hex(RNG, "pdq"), rand_vpdq(RNG, 3)
    banks.add_entries(
        session,
        bank,
        [
            NewEntry("md5", md5, "A1;uk:B;vics:us:1;viral", "e1", 'a, "quoted"\nnote', "l", "m"),
            NewEntry("pdq", pdq),
            NewEntry("vpdq", vpdq),
        ],
    )
    out = io.StringIO()
    assert banks.export_bank(session, bank, out) == 3
    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert lines[0] == list(COLUMNS)
    assert lines[1] == ["md5", md5, "A1;uk:B;vics:us:1;viral", "e1", 'a, "quoted"\nnote', "l", "m"]
    assert lines[3][:2] == ["vpdq", vpdq]
    plain = io.StringIO()
    assert banks.export_bank(session, bank, plain, fmt="plain", signal_type="pdq") == 1
    assert plain.getvalue() == pdq + "\n"
    for options, message in (
        ({"fmt": "plain"}, "one signal type"),
        ({"fmt": "plain", "signal_type": "vpdq"}, "CSV"),
        ({"fmt": "json"}, "csv, plain"),
    ):
        with pytest.raises(ValueError, match=message):
            banks.export_bank(session, bank, io.StringIO(), **options)


NOTE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00")
    | st.sampled_from(["\n", "\t", ",", '"']),
    max_size=30,
)
ID = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _.:-]{0,20}", fullmatch=True)


@st.composite
def new_entries(draw: st.DrawFn) -> NewEntry:
    signal_type = draw(st.sampled_from(["md5", "sha1", "sha256", "pdq", "vpdq"]))
    rng = random.Random(draw(st.integers(0, 2**32)))
    value = (
        rand_vpdq(rng, draw(st.integers(1, 3)))
        if signal_type == "vpdq"
        else rand_hex(rng, signal_type)
    )
    classification = Classification(
        industry=draw(st.none() | st.sampled_from(list(Industry))),
        uk=draw(st.none() | st.sampled_from(list(UKCategory))),
        labels=tuple(
            draw(st.lists(st.sampled_from(["viral", "generativeAi", "meme-1"]), max_size=2))
        ),
    )
    return NewEntry(
        signal_type,
        value,
        classification,
        external_id=draw(st.none() | ID),
        note=draw(st.none() | NOTE),
        list_name=draw(st.none() | ID),
        member=draw(st.none() | ID),
    )


_counter = iter(range(10**9))


@pytest.fixture
def fresh_bank(session: Session) -> Iterator[Any]:
    def make() -> Bank:
        bank = banks.create_bank(session, f"b{next(_counter)}")
        session.commit()
        return bank

    yield make


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(items=st.lists(new_entries(), max_size=8))
def test_property_export_then_import_gives_the_same_entries(
    session: Session, tmp_path: Path, fresh_bank: Any, items: list[NewEntry]
) -> None:
    source, target = fresh_bank(), fresh_bank()
    banks.add_entries(session, source, items)
    session.commit()
    path = tmp_path / f"{source.name}.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        banks.export_bank(session, source, out)
    report = banks.import_file(session, target, path, actor="t")
    assert report.ok, report.rejected_sample

    def fields(bank: Bank) -> list[tuple[Any, ...]]:
        return [row[1:12] for row in snapshot(session, bank)]

    assert fields(target) == fields(source)
