"""vigil.vault: key files, envelope encryption and the atomic file blob store."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.vault import (
    FileBlobStore,
    KeyFileError,
    LocalKeyProvider,
    SealError,
    UnwrapError,
    open_sealed,
    seal,
)
from vigil.vault.crypto import MAGIC, NONCE_BYTES, TAG_BYTES

KEYS = LocalKeyProvider(bytes(range(32)))
OTHER_KEYS = LocalKeyProvider(bytes(range(1, 33)))
AAD = b"vigil-media:" + b"ab" * 32


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- Keys ---------------------------------------------------------------------------------


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "home" / "keys" / "vault.key"
    first = LocalKeyProvider.open(path)
    assert path.stat().st_size == 32
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert mode(path.parent.parent) == 0o700
    assert first.key_id == hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    second = LocalKeyProvider.open(path)
    assert second.key_id == first.key_id
    assert open_sealed(seal(b"evidence", aad=AAD, keys=first), aad=AAD, keys=second) == (
        b"evidence"
    )
    assert path.read_bytes().hex() not in repr(first)


def test_key_file_made_by_someone_else_first_is_read(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    theirs = os.urandom(32)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.write(fd, theirs)
    os.close(fd)
    assert LocalKeyProvider.open(path).key_id == LocalKeyProvider(theirs).key_id
    assert path.read_bytes() == theirs


def test_concurrent_first_opens_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "vault.key"
    barrier = threading.Barrier(8)
    ids: list[str] = []

    def open_key() -> None:
        barrier.wait()
        ids.append(LocalKeyProvider.open(path).key_id)

    threads = [threading.Thread(target=open_key) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8
    assert set(ids) == {LocalKeyProvider(path.read_bytes()).key_id}


@pytest.mark.parametrize("file_mode", [0o640, 0o604, 0o620, 0o644])
def test_key_file_open_to_group_or_others_is_refused(tmp_path: Path, file_mode: int) -> None:
    path = tmp_path / "vault.key"
    LocalKeyProvider.open(path)
    path.chmod(file_mode)
    with pytest.raises(KeyFileError, match="group or others"):
        LocalKeyProvider.open(path)


@pytest.mark.parametrize("size", [31, 33, 64])
def test_key_file_of_the_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "vault.key"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"k" * size)
    os.close(fd)
    with pytest.raises(KeyFileError, match="not 32"):
        LocalKeyProvider.open(path)


def test_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vault.key"
    path.mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        LocalKeyProvider.open(path)


def test_key_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LocalKeyProvider(b"short")


def test_unwrap_refuses_a_key_wrapped_under_another_kek() -> None:
    data_key = os.urandom(32)
    wrapped = KEYS.wrap(data_key)
    assert wrapped != data_key
    assert KEYS.unwrap(wrapped) == data_key
    with pytest.raises(UnwrapError):
        OTHER_KEYS.unwrap(wrapped)
    with pytest.raises(UnwrapError):
        KEYS.unwrap(wrapped[:-1])


# --- Sealing ------------------------------------------------------------------------------


def field_offsets(blob: bytes) -> dict[str, tuple[int, int]]:
    """[start, end) of each field of a sealed blob, read from the documented layout."""
    offsets: dict[str, tuple[int, int]] = {"magic": (0, len(MAGIC))}
    at = len(MAGIC)
    for name, fmt in (("key_id", ">B"), ("wrapped", ">H"), ("nonce", ">B")):
        (length,) = struct.unpack_from(fmt, blob, at)
        at += struct.calcsize(fmt)
        offsets[f"{name}_length"] = (at - struct.calcsize(fmt), at)
        offsets[name] = (at, at + length)
        at += length
    (length,) = struct.unpack_from(">Q", blob, at)
    offsets["ciphertext_length"] = (at, at + 8)
    offsets["ciphertext"] = (at + 8, at + 8 + length - TAG_BYTES)
    offsets["tag"] = (at + 8 + length - TAG_BYTES, at + 8 + length)
    assert at + 8 + length == len(blob)
    return offsets


def test_seal_round_trip_and_layout() -> None:
    plaintext = b"synthetic evidence " * 20
    blob = seal(plaintext, aad=AAD, keys=KEYS)
    assert open_sealed(blob, aad=AAD, keys=KEYS) == plaintext
    assert blob.startswith(MAGIC)
    offsets = field_offsets(blob)
    start, end = offsets["key_id"]
    assert blob[start:end] == KEYS.key_id.encode()
    assert offsets["nonce"][1] - offsets["nonce"][0] == NONCE_BYTES
    assert offsets["wrapped"][1] - offsets["wrapped"][0] == 40  # AES key wrap of 32 bytes
    assert offsets["ciphertext"][1] - offsets["ciphertext"][0] == len(plaintext)
    assert plaintext not in blob
    # A fresh data key and nonce each time.
    again = seal(plaintext, aad=AAD, keys=KEYS)
    assert again != blob
    for name in ("wrapped", "nonce", "ciphertext"):
        start, end = offsets[name]
        assert again[start:end] != blob[start:end]


def test_empty_plaintext_round_trips() -> None:
    assert open_sealed(seal(b"", aad=b"", keys=KEYS), aad=b"", keys=KEYS) == b""


def test_every_single_byte_flip_is_refused() -> None:
    plaintext = os.urandom(48)
    blob = seal(plaintext, aad=AAD, keys=KEYS)
    offsets = field_offsets(blob)
    assert set(offsets) >= {"magic", "key_id", "wrapped", "nonce", "ciphertext", "tag"}
    for position in range(len(blob)):  # every field, header to tag
        for flip in (0x01, 0x80, 0xFF):
            altered = bytearray(blob)
            altered[position] ^= flip
            with pytest.raises(SealError):
                open_sealed(bytes(altered), aad=AAD, keys=KEYS)
    assert open_sealed(blob, aad=AAD, keys=KEYS) == plaintext


def test_truncated_extended_and_garbage_blobs_are_refused() -> None:
    blob = seal(b"synthetic", aad=AAD, keys=KEYS)
    for length in range(len(blob)):
        with pytest.raises(SealError):
            open_sealed(blob[:length], aad=AAD, keys=KEYS)
    for bad in (blob + b"\0", b"", b"VGLSEAL2" + blob[8:], os.urandom(200)):
        with pytest.raises(SealError):
            open_sealed(bad, aad=AAD, keys=KEYS)


def test_a_huge_declared_length_is_refused_without_reading_past_the_end() -> None:
    blob = bytearray(seal(b"synthetic", aad=AAD, keys=KEYS))
    start, end = field_offsets(bytes(blob))["ciphertext_length"]
    blob[start:end] = struct.pack(">Q", 2**63)
    with pytest.raises(SealError, match="truncated"):
        open_sealed(bytes(blob), aad=AAD, keys=KEYS)


def test_wrong_aad_is_refused() -> None:
    blob = seal(b"synthetic", aad=AAD, keys=KEYS)
    for other in (b"", AAD[:-1], AAD + b"0", b"vigil-media:" + b"cd" * 32):
        with pytest.raises(SealError, match="aad"):
            open_sealed(blob, aad=other, keys=KEYS)


def test_another_kek_is_refused() -> None:
    blob = seal(b"synthetic", aad=AAD, keys=KEYS)
    with pytest.raises(SealError, match="key"):
        open_sealed(blob, aad=AAD, keys=OTHER_KEYS)


class ImpostorKeys:
    """Claims the key id of KEYS but unwraps with another KEK: the wrap check must catch it."""

    key_id = KEYS.key_id

    def wrap(self, data_key: bytes) -> bytes:
        return OTHER_KEYS.wrap(data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        return OTHER_KEYS.unwrap(wrapped)


def test_a_provider_with_the_same_key_id_but_another_kek_is_refused() -> None:
    blob = seal(b"synthetic", aad=AAD, keys=KEYS)
    with pytest.raises(SealError, match="does not unwrap"):
        open_sealed(blob, aad=AAD, keys=ImpostorKeys())
    # And the other way round: a Protocol implementation that is not LocalKeyProvider.
    theirs = seal(b"synthetic", aad=AAD, keys=ImpostorKeys())
    assert open_sealed(theirs, aad=AAD, keys=ImpostorKeys()) == b"synthetic"


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=2048), aad=st.binary(max_size=256))
def test_open_sealed_inverts_seal(plaintext: bytes, aad: bytes) -> None:
    assert open_sealed(seal(plaintext, aad=aad, keys=KEYS), aad=aad, keys=KEYS) == plaintext


# --- Blob store ---------------------------------------------------------------------------

KEY = hashlib.sha256(b"blob").hexdigest()


def test_blob_store_round_trip_layout_and_modes(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "media")
    assert not store.exists(KEY)
    with pytest.raises(KeyError):
        store.get(KEY)
    store.put(KEY, b"sealed bytes")
    path = tmp_path / "media" / KEY[:2] / KEY[2:4] / KEY
    assert path.read_bytes() == b"sealed bytes"
    assert store.get(KEY) == b"sealed bytes"
    assert store.exists(KEY)
    assert mode(path) == 0o600
    for directory in (path.parent, path.parent.parent, tmp_path / "media"):
        assert mode(directory) == 0o700
    store.put(KEY, b"replaced")
    assert store.get(KEY) == b"replaced"
    assert sorted(p.name for p in path.parent.iterdir()) == [KEY]  # no temp files left
    assert store.delete(KEY) is True
    assert not path.exists()
    assert store.delete(KEY) is False
    assert not store.exists(KEY)


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "../../etc/passwd",
        "ABCDEF0123",
        "abc",
        "abcdef1",
        "0123456789abcdeg",
        "a" * 129,
        "abcdef01\n",
        "abcdef01/../",
        "",
    ],
)
def test_blob_store_refuses_keys_that_are_not_hex_digests(tmp_path: Path, key: str) -> None:
    store = FileBlobStore(tmp_path / "media")
    for operation in (
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(ValueError, match="hex"):
            operation()
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*"))


def test_blob_store_accepts_short_and_long_hex_keys(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    for key in ("0123abcd", "f" * 128):
        store.put(key, key.encode())
        assert store.get(key) == key.encode()


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if not path.is_dir())


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_crash_during_put_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    store = FileBlobStore(tmp_path / "media")

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(os, failing, crash)
    with pytest.raises(OSError, match="simulated"):
        store.put(KEY, b"new bytes" * 100)
    monkeypatch.undo()
    assert files_under(tmp_path / "media") == []
    assert not store.exists(KEY)


def test_a_crash_while_replacing_keeps_the_old_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileBlobStore(tmp_path / "media")
    store.put(KEY, b"old bytes")

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.put(KEY, b"new bytes")
    monkeypatch.undo()
    assert store.get(KEY) == b"old bytes"
    assert files_under(tmp_path / "media") == [store.path(KEY)]
