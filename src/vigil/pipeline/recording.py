"""Record hash results in the database: one `content` row per distinct file, its signals."""

from __future__ import annotations

from vigil.config import Settings
from vigil.pipeline.hashing import HashRecord
from vigil.store import Database, open_database, record_hashes


class HashRecorder:
    """Buffers records and writes them in batches, one transaction a batch.

    Records without a SHA-256 (unreadable files) have nothing to key a content row on and are
    left to the output alone.
    """

    def __init__(self, database: Database, batch_size: int = 500) -> None:
        self.database = database
        self.batch_size = batch_size
        self._buffer: list[HashRecord] = []

    @classmethod
    def open(cls, settings: Settings) -> HashRecorder:
        return cls(open_database(settings))

    def add(self, record: HashRecord) -> None:
        if record.value("sha256") is None:
            return
        self._buffer.append(record)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        with self.database.session() as session:
            for record in self._buffer:
                sha256 = record.value("sha256")
                assert sha256 is not None
                record_hashes(
                    session,
                    sha256=sha256,
                    md5=record.value("md5"),
                    size=record.bytes or 0,
                    media_type=record.media_type.value if record.media_type else None,
                    signals=[s for name, s in record.signals.items() if name != "sha256"],
                )
        self._buffer.clear()

    def close(self) -> None:
        self.flush()
        self.database.dispose()
