"""The server's vault duties, in a background thread: take submitted reports' preservation
requests into the vault as they come (every `poll_seconds`), and sweep (destroy what no
clock keeps) every `sweep_interval`."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from vigil.config import Settings
from vigil.store import Database, utcnow
from vigil.vault.accounts import connectors_from_settings
from vigil.vault.items import open_vault
from vigil.vault.media import media_store
from vigil.vault.retention import sweep
from vigil.vault.service import honour_preservation_requests

logger = logging.getLogger(__name__)


class VaultWorker:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        poll_seconds: float = 30.0,
    ) -> None:
        self.database = database
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.sweep_interval = timedelta(hours=settings.vault_sweep_hours)
        self._last_sweep: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: datetime | None = None) -> None:
        """Honour pending preservation requests; sweep when one is due."""
        now = now or utcnow()
        vault = open_vault(self.settings)
        with self.database.sessionmaker() as session:
            honoured = honour_preservation_requests(
                session,
                vault,
                media_store(self.settings),
                connectors_from_settings(self.settings),
                now,
            )
            for result in honoured:
                logger.info("vault: preservation request taken in (%d items)", len(result.item_ids))
            if self._last_sweep is None or now - self._last_sweep >= self.sweep_interval:
                swept = sweep(session, vault, now=now, actor="system")
                self._last_sweep = now
                logger.info("vault: swept, %d item(s) destroyed", len(swept.shredded))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="vigil-vault", daemon=True)
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
                logger.exception("vault: a round failed; trying again later")
