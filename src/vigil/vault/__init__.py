"""The evidence vault's foundation: sealed (encrypted, authenticated) blobs at rest.

Three small, replaceable parts: a `KeyProvider` holds the key-encryption key, `seal` and
`open_sealed` do the envelope encryption, and a `BlobStore` keeps the resulting ciphertext.
Retention and legal holds build on these without knowing how any of them is implemented.
"""

from vigil.vault.blobs import BlobStore, FileBlobStore
from vigil.vault.crypto import SealError, open_sealed, seal
from vigil.vault.keys import KeyFileError, KeyProvider, LocalKeyProvider, UnwrapError

__all__ = [
    "BlobStore",
    "FileBlobStore",
    "KeyFileError",
    "KeyProvider",
    "LocalKeyProvider",
    "SealError",
    "UnwrapError",
    "open_sealed",
    "seal",
]
