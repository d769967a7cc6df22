"""A running API for tests: the app over the test database, and a token per scope; and a
local HTTP server for the URL-fetching routes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from vigil.api.app import create_app
from vigil.auth import create_token
from vigil.config import Settings
from vigil.store import Database

SCOPES = ("hash", "match", "curate", "legal", "admin")


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


@contextmanager
def serve_bytes(routes: dict[str, tuple[bytes, str]]) -> Iterator[str]:
    """Serve each path's `(body, content type)` over HTTP on 127.0.0.1 (any other path: 404),
    yielding the base URL (`http://127.0.0.1:<port>`); the server is shut down afterwards."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            body, content_type = route
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
