"""Work in background threads: a round of work repeated until stopped (the shape the
server's workers share: report sending, the vault's duties), and an ASGI app served on a
free local port."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class PeriodicWorker(ABC):
    """Calls `run_once()` every `poll_seconds` in a daemon thread (`start`/`stop`); a round
    that fails is logged and the next one runs as planned."""

    name = "vigil-worker"

    def __init__(self, poll_seconds: float) -> None:
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def run_once(self) -> Any:
        """One round of work."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.run_once()
            except Exception:
                logging.getLogger(type(self).__module__).exception(
                    "%s: a round failed; trying again later", self.name
                )


@contextmanager
def serving(app: Any, *, host: str = "127.0.0.1", name: str = "vigil-server") -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free local port in a daemon thread for the block;
    yields its base URL (`http://host:port`). The demo's reporting stand-in and the tests'
    servers use it."""
    import socket
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind((host, 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
