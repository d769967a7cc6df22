"""The server's vault duties, in a background thread: take submitted reports' preservation
requests into the vault as they come (every `poll_seconds`), and sweep (destroy what no
clock keeps) every `sweep_interval`."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from vigil.background import PeriodicWorker
from vigil.config import Settings
from vigil.store import Database, utcnow
from vigil.vault.accounts import connectors_from_settings
from vigil.vault.items import open_vault
from vigil.vault.media import media_store
from vigil.vault.retention import sweep
from vigil.vault.service import honour_preservation_requests

logger = logging.getLogger(__name__)


class VaultWorker(PeriodicWorker):
    name = "vigil-vault"

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        poll_seconds: float = 30.0,
    ) -> None:
        super().__init__(poll_seconds)
        self.database = database
        self.settings = settings
        self.sweep_interval = timedelta(hours=settings.vault_sweep_hours)
        self._last_sweep: datetime | None = None
        self.vault = open_vault(settings)
        self.media = media_store(settings)
        self.connectors = connectors_from_settings(settings)

    def run_once(self, now: datetime | None = None) -> None:
        """Honour pending preservation requests; sweep when one is due."""
        now = now or utcnow()
        with self.database.sessionmaker() as session:
            honoured = honour_preservation_requests(
                session, self.vault, self.media, self.connectors, now
            )
            for result in honoured:
                logger.info("vault: preservation request taken in (%d items)", len(result.item_ids))
            if self._last_sweep is None or now - self._last_sweep >= self.sweep_interval:
                swept = sweep(session, self.vault, now=now, actor="system")
                self._last_sweep = now
                logger.info("vault: swept, %d item(s) destroyed", len(swept.shredded))
