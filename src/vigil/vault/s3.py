"""Vault blobs in S3 or an S3-compatible object store (MinIO, Ceph, R2, ...), with boto3.

Every blob is written with one `PutObject` of the whole body (with its `Content-MD5`): S3
makes an object visible only once all of it has arrived and checked out, so a reader never
sees half a blob and an interrupted upload leaves nothing behind. Blobs are ciphertext only
(`vigil.vault.crypto.encrypt_item`); the keys that open them stay in Vigil's database.

Credentials never go in Vigil's settings: boto3 reads them the standard way
(`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, `AWS_PROFILE`, an
instance or task role), and the region from `AWS_DEFAULT_REGION` / `AWS_REGION`.

A bucket with versioning keeps deleted blobs as non-current versions, and Object Lock can
forbid deleting them: they stay unreadable once their item is shredded (the key is gone), but
set a lifecycle rule that expires non-current versions if the bytes must go as well.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_KEY = re.compile(r"[0-9a-f]{8,128}")
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class S3BlobStore:
    """Blobs as objects `<prefix><key>` of one bucket.

    `client` is a boto3 S3 client (`s3_client(...)` makes one from the settings); tests pass
    one pointed at moto's server. Implements `vigil.vault.blobs.ListableBlobStore`.
    """

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        if not bucket:
            raise ValueError("an S3 blob store needs a bucket (VIGIL_VAULT_S3_BUCKET)")
        self.bucket = bucket
        self.prefix = prefix
        self.client = client

    def object_key(self, key: str) -> str:
        """The object key of blob `key`; `ValueError` for a malformed key."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"blob keys are 8 to 128 lower-case hex digits, not {key!r:.80}")
        return self.prefix + key

    def put(self, key: str, data: bytes) -> None:
        """One PutObject of the whole blob: atomic (all or nothing), checked by Content-MD5."""
        digest = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.object_key(key),
            Body=data,
            ContentMD5=digest,
            ContentType="application/octet-stream",
        )

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_missing(exc):
                raise KeyError(key) from None
            raise
        body = response["Body"]
        try:
            data: bytes = body.read()
        finally:
            body.close()
        return data

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> bool:
        """Remove the blob; False when it was not there (S3's DeleteObject does not say, so
        it is looked up first)."""
        if not self.exists(key):
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        return True

    def list_keys(self) -> Iterator[tuple[str, datetime]]:
        """Every blob under the prefix, with its last-modified time; other objects are
        skipped."""
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for entry in page.get("Contents", ()):
                key = str(entry["Key"])[len(self.prefix) :]
                if _KEY.fullmatch(key):
                    modified: datetime = entry["LastModified"]
                    if modified.tzinfo is None:
                        modified = modified.replace(tzinfo=UTC)
                    yield key, modified.astimezone(UTC)

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r})"


def s3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client: credentials and region from the standard AWS environment, the
    endpoint of an S3-compatible store when `endpoint_url` is given."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None)


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    error = response.get("Error", {})
    return isinstance(error, dict) and str(error.get("Code")) in _MISSING
