"""Snapshot files: round trips, and damaged or foreign files refused with a clear error."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from vigil.index import ExactIndex, PDQIndex, SnapshotError, VPDQIndex
from vigil.index._snapshot import read_snapshot, write_snapshot
from vigil.index.synthetic import clustered_pdq, flip_exactly, random_pdq


def _busy_index() -> tuple[PDQIndex, np.ndarray]:
    """An index with a big segment, a small one, a delta, removals and disabled entries."""
    rng = np.random.default_rng(42)
    hashes, _ = clustered_pdq(rng, 12_000)
    index = PDQIndex.build(np.arange(10_000), hashes[:10_000], delta_capacity=1_000)
    index.add(np.arange(10_000, 11_500), hashes[10_000:11_500])
    index.add(np.arange(11_500, 12_000), hashes[11_500:])
    index.remove(np.arange(0, 12_000, 7))
    index.set_enabled(np.arange(0, 12_000, 5), False)
    assert index._delta.live and index._segments
    return index, hashes


def test_pdq_round_trip_answers_identically(tmp_path: Path) -> None:
    index, hashes = _busy_index()
    rng = np.random.default_rng(1)
    queries = np.concatenate([flip_exactly(rng, hashes[::97], 6), random_pdq(rng, 20)])
    path = tmp_path / "pdq.vidx"
    index.save(path)
    loaded = PDQIndex.load(path)
    assert len(loaded) == len(index)
    assert loaded.ids().tolist() == index.ids().tolist()
    for threshold in (0, 31, 64):
        assert loaded.search(queries, threshold) == index.search(queries, threshold)
    assert [len(s) for s in loaded._segments] == [len(s) for s in index._segments]
    # Still updatable after loading (the flags are writable, the delta works).
    loaded.set_enabled([5], True)
    loaded.remove([1])
    loaded.add([99_999], hashes[:1])
    assert loaded.is_enabled(5) and 1 not in loaded and 99_999 in loaded


def _damage(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_corrupted_array_is_refused(tmp_path: Path) -> None:
    index, _ = _busy_index()
    path = tmp_path / "pdq.vidx"
    index.save(path)
    _damage(path, path.stat().st_size // 2)
    with pytest.raises(SnapshotError, match="checksum mismatch in array"):
        PDQIndex.load(path)


def test_corrupted_header_truncation_and_foreign_files_are_refused(tmp_path: Path) -> None:
    index, _ = _busy_index()
    path = tmp_path / "pdq.vidx"
    index.save(path)
    good = path.read_bytes()

    _damage(path, 60)
    with pytest.raises(SnapshotError, match="header checksum mismatch"):
        PDQIndex.load(path)

    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(SnapshotError, match=r"truncated|outside the file"):
        PDQIndex.load(path)

    path.write_bytes(b"PK\x03\x04" + good[4:])
    with pytest.raises(SnapshotError, match="not a Vigil index snapshot"):
        PDQIndex.load(path)

    path.write_bytes(good[:8] + struct.pack("<I", 99) + good[12:])
    with pytest.raises(SnapshotError, match="format version 99"):
        PDQIndex.load(path)

    path.write_bytes(good)
    with pytest.raises(SnapshotError, match=r"expected 'vigil\.exact-index'"):
        ExactIndex.load(path)

    with pytest.raises(SnapshotError, match="cannot read snapshot"):
        PDQIndex.load(tmp_path / "missing.vidx")

    (tmp_path / "empty.vidx").write_bytes(b"")
    with pytest.raises(SnapshotError, match="too short"):
        PDQIndex.load(tmp_path / "empty.vidx")


def test_well_formed_but_inconsistent_snapshots_are_refused(tmp_path: Path) -> None:
    """Checksums pass, but the arrays do not describe a valid index (a crafted file)."""
    index, _ = _busy_index()
    meta, arrays = index.snapshot_arrays()
    path = tmp_path / "pdq.vidx"
    bad_rows = dict(arrays, **{"segment0.rows": arrays["segment0.rows"] + 10**6})
    write_snapshot(path, "vigil.pdq-index", meta, bad_rows)
    with pytest.raises(SnapshotError, match="inconsistent"):
        PDQIndex.load(path)
    short = dict(arrays, **{"segment0.flags": arrays["segment0.flags"][:-1]})
    write_snapshot(path, "vigil.pdq-index", meta, short)
    with pytest.raises(SnapshotError, match="inconsistent shapes"):
        PDQIndex.load(path)
    missing = {k: v for k, v in arrays.items() if k != "segment0.offsets"}
    write_snapshot(path, "vigil.pdq-index", meta, missing)
    with pytest.raises(SnapshotError, match="inconsistent PDQ index snapshot"):
        PDQIndex.load(path)


def test_forbidden_dtypes_never_load(tmp_path: Path) -> None:
    path = tmp_path / "x.vidx"
    with pytest.raises(TypeError, match="cannot go in a snapshot"):
        write_snapshot(path, "k", {}, {"a": np.array(["text"], dtype=object)})
    write_snapshot(path, "k", {"n": 1}, {"a": np.arange(3, dtype=np.int64)})
    meta, arrays = read_snapshot(path, "k")
    assert meta == {"n": 1} and arrays["a"].tolist() == [0, 1, 2]
    # Rewrite the header to claim an object dtype (with a valid header checksum).
    raw = path.read_bytes()
    size = struct.unpack("<I", raw[12:16])[0]
    header = json.loads(raw[48 : 48 + size])
    header["arrays"][0]["dtype"] = "|O"
    forged = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    forged = forged.ljust(size)
    import hashlib

    path.write_bytes(raw[:16] + hashlib.sha256(forged).digest() + forged + raw[48 + size :])
    with pytest.raises(SnapshotError, match="forbidden dtype"):
        read_snapshot(path, "k")


def test_save_replaces_atomically(tmp_path: Path) -> None:
    index, _ = _busy_index()
    path = tmp_path / "pdq.vidx"
    index.save(path)
    PDQIndex().save(path)
    assert len(PDQIndex.load(path)) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["pdq.vidx"]


def test_exact_and_vpdq_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    exact = ExactIndex(16, delta_capacity=10)
    values = rng.integers(0, 256, (40, 16), dtype=np.uint8)
    exact.add(np.arange(30), values[:30])
    exact.add(np.arange(30, 40), values[30:])  # stays in the delta
    exact.set_enabled([3, 35], False)
    exact.remove([4, 36])
    exact.save(tmp_path / "md5.vidx")
    loaded = ExactIndex.load(tmp_path / "md5.vidx")
    assert loaded.lookup(values) == exact.lookup(values)
    assert len(loaded) == len(exact) == 38

    videos = VPDQIndex()
    frames = [(random_pdq(rng, 6), rng.integers(0, 101, 6)) for _ in range(5)]
    videos.add_many(np.arange(5), frames)
    videos.set_enabled([2], False)
    videos.save(tmp_path / "vpdq.vidx")
    again = VPDQIndex.load(tmp_path / "vpdq.vidx")
    for query in frames:
        assert again.search(query, 31, 0.1) == videos.search(query, 31, 0.1)
    assert again.is_enabled(2) is False and len(again) == 5
    stored = again.frames(3)
    assert stored is not None and np.array_equal(stored[0], frames[3][0])
