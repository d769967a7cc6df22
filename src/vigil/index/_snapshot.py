"""Snapshot files: named numpy arrays plus a small JSON header, validated on load.

Layout (all integers little-endian)::

    8 bytes   magic b"VIGILIDX"
    4 bytes   format version (uint32)
    4 bytes   header length H (uint32)
    32 bytes  SHA-256 of the header bytes
    H bytes   header: UTF-8 JSON {"kind", "meta", "arrays": [{"name", "dtype", "shape",
              "offset", "nbytes", "sha256"}, ...]}
    ...       the arrays' raw bytes (C order), each starting at a multiple of 64 bytes

Nothing is unpickled and no code is evaluated: the header is JSON, dtypes are restricted to
plain little-endian numeric types, every shape, offset and length is checked against the
file, and every array's bytes against its SHA-256, before anything is used. A damaged,
truncated or foreign file raises `SnapshotError` naming what is wrong. Writes go to a
temporary file in the same directory, flushed and fsynced, then renamed over the target, so a
crash leaves the previous snapshot intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAGIC = b"VIGILIDX"
VERSION = 1
_PREFIX = struct.Struct("<8sII32s")
_ALIGN = 64
_MAX_HEADER = 16 << 20
_CHUNK = 16 << 20
_ALLOWED_DTYPES = frozenset({"|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f4", "<f8"})


class SnapshotError(ValueError):
    """A snapshot file that cannot be used: damaged, truncated, foreign or of another kind."""


def _bytes(array: NDArray[Any]) -> memoryview:
    """The bytes of a C-contiguous array, as a writable-if-the-array-is 1-d view."""
    return array.reshape(-1).view(np.uint8).data


def _pad(offset: int) -> int:
    return -offset % _ALIGN


def write_snapshot(
    path: str | os.PathLike[str],
    kind: str,
    meta: Mapping[str, Any],
    arrays: Mapping[str, NDArray[Any]],
) -> None:
    """Write `arrays` (numeric, any shape) and the JSON-serialisable `meta` to `path`."""
    target = Path(path)
    prepared: dict[str, NDArray[Any]] = {}
    entries: list[dict[str, Any]] = []
    for name, array in arrays.items():
        data = np.ascontiguousarray(array)
        data = data.astype(data.dtype.newbyteorder("<"), copy=False)
        if data.dtype.str not in _ALLOWED_DTYPES:
            raise TypeError(f"array {name!r}: dtype {data.dtype} cannot go in a snapshot")
        prepared[name] = data
        entries.append(
            {
                "name": name,
                "dtype": data.dtype.str,
                "shape": list(data.shape),
                "nbytes": int(data.nbytes),
                "sha256": hashlib.sha256(_bytes(data)).hexdigest(),
            }
        )
    # Offsets depend on the header's length, which depends on the offsets' digits: settle it
    # by reserving room (offsets are written as fixed-width numbers below).
    for entry in entries:
        entry["offset"] = 0
    header_size = len(_encode_header(kind, meta, entries, width=20))
    offset = _PREFIX.size + header_size
    for entry in entries:
        offset += _pad(offset)
        entry["offset"] = offset
        offset += entry["nbytes"]
    header = _encode_header(kind, meta, entries, width=20)
    if len(header) != header_size:  # pragma: no cover - fixed-width offsets guarantee it
        raise AssertionError("snapshot header size changed")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as out:
            out.write(_PREFIX.pack(MAGIC, VERSION, len(header), hashlib.sha256(header).digest()))
            out.write(header)
            position = _PREFIX.size + len(header)
            for entry in entries:
                gap = entry["offset"] - position
                out.write(b"\0" * gap)
                out.write(_bytes(prepared[entry["name"]]))
                position = entry["offset"] + entry["nbytes"]
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _encode_header(
    kind: str, meta: Mapping[str, Any], entries: list[dict[str, Any]], *, width: int
) -> bytes:
    arrays = [
        {**entry, "offset": f"{entry['offset']:0{width}d}", "nbytes": entry["nbytes"]}
        for entry in entries
    ]
    document = {"kind": kind, "meta": dict(meta), "arrays": arrays}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def read_snapshot(
    path: str | os.PathLike[str], kind: str
) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """Read and validate a snapshot of `kind`; returns (meta, arrays). Raises SnapshotError."""
    source = Path(path)
    try:
        size = source.stat().st_size
        with open(source, "rb") as handle:
            return _read(handle, source, size, kind)
    except OSError as error:
        raise SnapshotError(f"cannot read snapshot {source}: {error.strerror}") from error


def _read(
    handle: Any, source: Path, size: int, kind: str
) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    prefix = handle.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size:
        raise SnapshotError(f"{source}: too short to be a Vigil index snapshot")
    magic, version, header_size, header_digest = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise SnapshotError(f"{source}: not a Vigil index snapshot (bad magic number)")
    if version != VERSION:
        raise SnapshotError(
            f"{source}: snapshot format version {version}, this Vigil reads {VERSION}"
        )
    if header_size > _MAX_HEADER or _PREFIX.size + header_size > size:
        raise SnapshotError(f"{source}: truncated or damaged header")
    header = handle.read(header_size)
    if hashlib.sha256(header).digest() != header_digest:
        raise SnapshotError(f"{source}: header checksum mismatch (damaged file)")
    try:
        document = json.loads(header)
    except ValueError as error:  # pragma: no cover - the checksum guards it
        raise SnapshotError(f"{source}: unreadable header") from error
    if not isinstance(document, dict) or document.get("kind") != kind:
        found = document.get("kind") if isinstance(document, dict) else None
        raise SnapshotError(f"{source}: snapshot of kind {found!r}, expected {kind!r}")
    meta = document.get("meta")
    entries = document.get("arrays")
    if not isinstance(meta, dict) or not isinstance(entries, list):
        raise SnapshotError(f"{source}: malformed header")
    arrays: dict[str, NDArray[Any]] = {}
    for entry in entries:
        name, array = _read_array(handle, source, size, entry)
        arrays[name] = array
    return meta, arrays


def _read_array(handle: Any, source: Path, size: int, entry: Any) -> tuple[str, NDArray[Any]]:
    try:
        name = str(entry["name"])
        dtype_text = str(entry["dtype"])
        shape = tuple(int(n) for n in entry["shape"])
        offset = int(entry["offset"])
        nbytes = int(entry["nbytes"])
        digest = str(entry["sha256"])
    except (KeyError, TypeError, ValueError) as error:
        raise SnapshotError(f"{source}: malformed array entry in header") from error
    if dtype_text not in _ALLOWED_DTYPES:
        raise SnapshotError(f"{source}: array {name!r} has a forbidden dtype {dtype_text!r}")
    dtype = np.dtype(dtype_text)
    count = 1
    for dimension in shape:
        if dimension < 0:
            raise SnapshotError(f"{source}: array {name!r} has a negative dimension")
        count *= dimension
    if count * dtype.itemsize != nbytes or offset < _PREFIX.size or offset + nbytes > size:
        raise SnapshotError(f"{source}: array {name!r} lies outside the file (truncated?)")
    array = np.empty(shape, dtype=dtype)
    view = _bytes(array)
    handle.seek(offset)
    hasher = hashlib.sha256()
    done = 0
    while done < nbytes:
        read = handle.readinto(view[done : min(nbytes, done + _CHUNK)])
        if not read:
            raise SnapshotError(f"{source}: array {name!r} is truncated")
        hasher.update(view[done : done + read])
        done += read
    if hasher.hexdigest() != digest:
        raise SnapshotError(f"{source}: checksum mismatch in array {name!r} (damaged file)")
    return name, array.astype(dtype.newbyteorder("="), copy=False)
