"""Streaming a download that a service writes to a text stream, without holding it all.

The writer runs in its own thread and hands chunks through a small queue, so memory stays
bounded however large the bank; if the client goes away the writer is stopped at its next
write.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

_CHUNK_CHARS = 64 * 1024
_DONE = object()


class _Cancelled(Exception):
    pass


class _QueueWriter(io.TextIOBase):
    def __init__(self, chunks: queue.Queue[Any], cancelled: threading.Event) -> None:
        self._chunks = chunks
        self._cancelled = cancelled
        self._buffer: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= _CHUNK_CHARS:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self._put("".join(self._buffer).encode("utf-8"))
            self._buffer.clear()
            self._size = 0

    def _put(self, item: Any) -> None:
        while True:
            if self._cancelled.is_set():
                raise _Cancelled
            try:
                self._chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue


def stream_text(write: Callable[[TextIO], Any]) -> Iterator[bytes]:
    """UTF-8 chunks of what `write(stream)` writes; its exception, if any, ends the stream
    (the client sees a cut-off download, never a silently short file presented as whole:
    the error is raised into the server, which aborts the response)."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=8)
    cancelled = threading.Event()
    failure: list[BaseException] = []

    def produce() -> None:
        writer = _QueueWriter(chunks, cancelled)
        try:
            write(writer)  # type: ignore[arg-type]
            writer.flush()
        except _Cancelled:
            return
        except BaseException as error:
            failure.append(error)
        try:
            writer._put(_DONE)
        except _Cancelled:
            return

    thread = threading.Thread(target=produce, name="vigil-stream", daemon=True)
    thread.start()
    try:
        while (item := chunks.get()) is not _DONE:
            yield item
        if failure:
            raise failure[0]
    finally:
        cancelled.set()
