"""A running API for tests: the app over the test database, and a token per scope."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from vigil.api.app import create_app
from vigil.auth import create_token
from vigil.config import Settings
from vigil.store import Database

SCOPES = ("hash", "match", "curate", "admin")


@dataclass
class Api:
    """A TestClient over the app, with a bearer token for each scope."""

    client: TestClient
    database: Database
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    @property
    def state(self):  # type: ignore[no-untyped-def]
        return self.client.app.state.vigil  # type: ignore[attr-defined]


def make_api(db: Database, home: Path, **settings: object) -> Iterator[Api]:
    config = Settings(home=home, database_url=db.engine.url.render_as_string(False), **settings)
    with db.session() as session:
        tokens = {
            scope: create_token(session, f"{home.name}-{scope}", [scope], created_by="tests")[1]
            for scope in SCOPES
        }
    app = create_app(config, database=db, background=False)
    with TestClient(app) as client:
        yield Api(client, db, config, tokens)
