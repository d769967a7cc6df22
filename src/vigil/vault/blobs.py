"""Where sealed blobs are kept: a tiny key -> bytes interface, and a local-disk backend.

The vault only ever stores ciphertext here, so a backend needs no crypto and no trust:
object storage or a database can implement `BlobStore` later without touching the rest.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

_KEY = re.compile(r"[0-9a-f]{8,128}")


class BlobStore(Protocol):
    """Bytes by key. Keys are lower-case hex digests (8 to 128 digits)."""

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there; all or nothing."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes under `key`; `KeyError` when there are none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> bool:
        """Remove `key`; False when it was not there."""
        ...


@runtime_checkable
class ListableBlobStore(BlobStore, Protocol):
    """A `BlobStore` that can also list what it holds (the vault's sweep uses it to remove
    bytes no item needs any more)."""

    def list_keys(self) -> Iterator[tuple[str, datetime]]:
        """Every stored key with the time it was last written (aware, UTC)."""
        ...


class FileBlobStore:
    """Blobs as files `root/ab/cd/<key>` (two fan-out levels keep directories small).

    Directories are created 0o700 and files 0o600. `put` writes a temporary file
    (`.<key>.*.tmp`, in the blob's own directory) and renames it into place, so a reader or
    a crash never sees a partial blob; something listing the store must skip dot files.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file of `key` (which need not exist); `ValueError` for a malformed key."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"blob keys are 8 to 128 lower-case hex digits, not {key!r:.80}")
        return self.root / key[:2] / key[2:4] / key

    def put(self, key: str, data: bytes) -> None:
        """Atomic and durable: temp file, flush, fsync, rename, fsync of the directory."""
        final = self.path(key)
        make_private_dir(final.parent)
        fd, temp_name = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=final.parent)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(final.parent)

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> bool:
        target = self.path(key)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        fsync_dir(target.parent)
        return True

    def list_keys(self) -> Iterator[tuple[str, datetime]]:
        """Every blob (`root/ab/cd/<key>`) with its modification time; temporary files and
        anything else that is not a blob are skipped."""
        for path, name in self._walk():
            if _KEY.fullmatch(name) and (path.parent.parent.name, path.parent.name) == (
                name[:2],
                name[2:4],
            ):
                try:
                    modified = path.stat().st_mtime
                except FileNotFoundError:  # deleted meanwhile
                    continue
                yield name, datetime.fromtimestamp(modified, UTC)

    def remove_stale_temporaries(self, before: datetime) -> int:
        """Remove the temporary files (`.<key>.*.tmp`) of writes interrupted before
        `before`: a crash inside `put` leaves one behind. Returns how many went."""
        removed = 0
        for path, name in self._walk():
            if not (name.startswith(".") and name.endswith(".tmp")):
                continue
            try:
                if datetime.fromtimestamp(path.stat().st_mtime, UTC) < before:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def _walk(self) -> Iterator[tuple[Path, str]]:
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if not (first.is_dir() and re.fullmatch(r"[0-9a-f]{2}", first.name)):
                continue
            for second in sorted(first.iterdir()):
                if not (second.is_dir() and re.fullmatch(r"[0-9a-f]{2}", second.name)):
                    continue
                for entry in sorted(second.iterdir()):
                    if entry.is_file():
                        yield entry, entry.name


def make_private_dir(path: Path) -> None:
    """Create `path` and its missing parents with mode 0o700; existing ones are left as is."""
    missing = []
    for directory in (path, *path.parents):
        if directory.is_dir():
            break
        missing.append(directory)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:  # another process made it meanwhile
            if not directory.is_dir():
                raise
        else:
            os.chmod(directory, 0o700)  # whatever the umask


def fsync_dir(path: Path) -> None:
    """Make a created, renamed or removed entry of the directory `path` survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
