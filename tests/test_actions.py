"""The actioner: rules, the outbox written with the match, signed deliveries to a real local
HTTP receiver, retries and dead letters, a crash between commit and delivery, and the CLI.
On SQLite and PostgreSQL. Every hash is synthetic random hex."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from vigil import __version__, actions
from vigil.actions.delivery import NO_SECRET, backoff, due_rows, take_rows
from vigil.banks import NewEntry, add_entries, create_bank, find_entry
from vigil.banks.service import BankNotFound
from vigil.cli import app
from vigil.config import Settings, get_settings
from vigil.pipeline.matching import FoundMatch, MatchOutcome
from vigil.pipeline.recording import record_matches
from vigil.store import (
    ActionDelivery,
    Content,
    Database,
    Match,
    UploadEvent,
    open_database,
    record_hashes,
    utcnow,
)

RNG = random.Random(11)
SECRET = "test-signing-secret"
runner = CliRunner()


def rand_md5() -> str:
    return f"{RNG.getrandbits(128):032x}"


def rand_sha256() -> str:
    return f"{RNG.getrandbits(256):064x}"


# --- a real HTTP receiver -----------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST; answers from `script` in order (then 200). An item is a status,
    `(status, headers, body)`, or "hang" (no answer until the test ends)."""

    requests: list[Received] = field(default_factory=list)
    script: list[Any] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def answer(self, *items: Any) -> None:
        with self.lock:
            self.script.extend(items)

    def next_answer(self, request: Received) -> Any:
        with self.lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            item = state.next_answer(Received(self.path, dict(self.headers.items()), body))
            if item == "hang":
                state.release.wait(10)
                return
            status, headers, text = (item, {}, b"") if isinstance(item, int) else item
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        webhook_secret=SecretStr(SECRET),
        webhook_timeout_seconds=1.0,
        webhook_backoff_seconds=2.0,
        webhook_backoff_max_seconds=60.0,
    )


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=0.5) as http:
        yield http


# --- helpers ------------------------------------------------------------------------------


@dataclass
class World:
    """A match bank with one entry per Industry category, and a suppression bank."""

    bank_id: int
    entries: dict[str, int]  # classification -> entry id
    classifications: dict[str, str]


def make_world(db: Database) -> World:
    with db.session() as session:
        bank = create_bank(session, "known", trust="verified")
        create_bank(session, "false-positives", kind="suppress")
        values = {code: rand_md5() for code in ("A1", "A2", "B1", "B2")}
        add_entries(
            session,
            bank,
            [NewEntry("md5", v, classification=f"{c};uk:A") for c, v in values.items()],
        )
        entries = {}
        for code, value in values.items():
            entry = find_entry(session, bank, "md5", value)
            assert entry is not None
            entries[code] = entry.id
        return World(bank.id, entries, {c: f"{c};uk:A" for c in values})


def found(world: World, code: str = "A1", bank_kind: str = "match") -> FoundMatch:
    return FoundMatch(
        bank="known",
        bank_id=world.bank_id,
        bank_kind=bank_kind,
        entry_id=world.entries[code],
        signal_type="md5",
        distance=0,
        classification=world.classifications[code],
    )


def outcome(*matches: FoundMatch) -> MatchOutcome:
    return MatchOutcome(matches=list(matches), suppressed=[], suppressing=[])


def new_content(session: Session, sha256: str | None = None) -> Content:
    return record_hashes(
        session, sha256=sha256 or rand_sha256(), md5=rand_md5(), size=1234, media_type="image"
    )


def upload(session: Session, content: Content, n: int = 1) -> UploadEvent:
    event = UploadEvent(
        content_id=content.id,
        content_ref=f"post/{n}",
        account_id=f"acct-{n}",
        screen_name=f"user{n}",
        ip_address="192.0.2.10",
        event_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    session.add(event)
    session.flush()
    return event


def add_rule(db: Database, url: str, name: str = "takedown", **options: Any) -> int:
    with db.session() as session:
        rule = actions.create_rule(
            session, name=name, bank="known", action="remove_content", url=url, **options
        )
        return rule.id


def record(db: Database, result: MatchOutcome, *, sha256: str | None = None, event: int = 0) -> int:
    """Record a content and its matches (with an upload event `event` when non-zero), in one
    transaction, as the scan and the API do; the content id."""
    with db.session() as session:
        content = new_content(session, sha256)
        upload_event = upload(session, content, event) if event else None
        record_matches(session, content, result, upload_event)
        return content.id


def deliveries(db: Database) -> list[ActionDelivery]:
    with db.session() as session:
        return list(session.scalars(select(ActionDelivery).order_by(ActionDelivery.id)))


def later(seconds: float = 1.0) -> datetime:
    """A clock just past every row enqueued so far."""
    return utcnow() + timedelta(seconds=seconds)


# --- signatures (no database) -------------------------------------------------------------


def test_signature_and_verification() -> None:
    body = b'{"id":"x"}'
    digest = actions.signature(b"k", 1_700_000_000, body)
    import hmac

    assert digest == hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    header = f"v1={digest}"
    now = 1_700_000_100
    assert actions.verify_signature(b"k", "1700000000", body, header, now=now)
    assert actions.verify_signature(b"k", 1_700_000_000, body, f"v1=00, {header}", now=now)
    assert not actions.verify_signature(b"k", 1_700_000_000, body + b" ", header, now=now)
    assert not actions.verify_signature(b"other", 1_700_000_000, body, header, now=now)
    assert not actions.verify_signature(b"k", 1_700_000_001, body, header, now=now)
    assert not actions.verify_signature(b"k", 1_700_000_000, body, digest, now=now)
    assert not actions.verify_signature(b"k", "soon", body, header, now=now)
    assert not actions.verify_signature(b"k", 1_700_000_000, body, header, now=now + 301)
    assert actions.verify_signature(b"k", 1_700_000_000, body, header, now=now + 200)


def test_backoff_doubles_is_capped_and_honours_retry_after(settings: Settings) -> None:
    assert [backoff(settings, n).total_seconds() for n in (1, 2, 3, 4, 5, 6, 9)] == [
        2, 4, 8, 16, 32, 60, 60,
    ]  # fmt: skip
    assert backoff(settings, 1, retry_after=30).total_seconds() == 30
    assert backoff(settings, 3, retry_after=1).total_seconds() == 8
    assert backoff(settings, 1, retry_after=10_000).total_seconds() == 60


# --- rules --------------------------------------------------------------------------------


def test_rule_validation_and_lifecycle(db: Database) -> None:
    make_world(db)
    url = "https://platform.example/hooks/vigil"
    with db.session() as session:
        for bad in ("notify_user", "notify", "message_user_now", "email_user", "auto_notify"):
            with pytest.raises(ValueError, match="never notify the uploader"):
                actions.create_rule(session, name="r", bank="known", action=bad, url=url)
        bad_settings: list[dict[str, Any]] = [
            {"name": "Bad Name"},
            {"action": "Remove"},
            {"action": "1remove"},
            {"url": "ftp://platform.example/x"},
            {"url": "https:///nohost"},
            {"url": "platform.example/x"},
            {"url": "https://user:pw@platform.example/x"},
            {"classification": "A3"},
            {"classification": "uk:A"},
            {"secret_env": "1BAD"},
            {"secret_env": "HAS SPACE"},
            {"max_attempts": 0},
        ]
        for bad_setting in bad_settings:
            given: dict[str, Any] = {
                "name": "r", "bank": "known", "action": "remove_content", "url": url,
            } | bad_setting  # fmt: skip
            with pytest.raises(ValueError):
                actions.create_rule(session, **given)
        with pytest.raises(ValueError, match="suppression bank"):
            actions.create_rule(
                session, name="r", bank="false-positives", action="preserve", url=url
            )
        with pytest.raises(BankNotFound):
            actions.create_rule(session, name="r", bank="missing", action="preserve", url=url)

        rule = actions.create_rule(
            session,
            name="takedown-a1",
            bank="known",
            action="remove_content",
            url=url,
            classification="a1",
            secret_env="PLATFORM_HOOK_SECRET",
            max_attempts=3,
        )
        assert (rule.classification, rule.enabled, rule.max_attempts) == ("A1", True, 3)
        with pytest.raises(actions.RuleExists):
            actions.create_rule(session, name="takedown-a1", bank="known", action="x", url=url)
        actions.create_rule(session, name="preserve", bank="known", action="preserve", url=url)
        assert [r.name for r in actions.list_rules(session)] == ["preserve", "takedown-a1"]
        assert len(actions.list_rules(session, bank="known")) == 2
        assert actions.set_rule_enabled(session, "preserve", False).enabled is False
        assert actions.get_rule(session, rule.id).name == "takedown-a1"
        with pytest.raises(actions.RuleNotFound):
            actions.get_rule(session, "missing")
        actions.delete_rule(session, "preserve")
        assert [r.name for r in actions.list_rules(session)] == ["takedown-a1"]


def test_delete_rule_refused_while_deliveries_pending(
    db: Database, settings: Settings, receiver: Receiver, client: httpx.Client
) -> None:
    world = make_world(db)
    add_rule(db, receiver.url)
    record(db, outcome(found(world)))
    with db.session() as session, pytest.raises(ValueError, match="pending"):
        actions.delete_rule(session, "takedown")
    assert actions.deliver_due(db, settings, client=client, now=later()).delivered == 1
    with db.session() as session:
        actions.delete_rule(session, "takedown")
    assert deliveries(db) == []


# --- the outbox ---------------------------------------------------------------------------


def test_payload_headers_and_signature(
    db: Database, settings: Settings, receiver: Receiver, client: httpx.Client
) -> None:
    world = make_world(db)
    add_rule(db, receiver.url)
    sha256 = rand_sha256()
    content_id = record(db, outcome(found(world, "A1"), found(world, "B2")), sha256=sha256, event=7)
    [pending] = deliveries(db)
    assert (pending.status, pending.attempts) == ("pending", 0)
    assert pending.event_key.startswith("upload:")
    with db.session() as session:  # the match and its delivery were committed together
        assert len(session.scalars(select(Match)).all()) == 2

    now = later()
    done = actions.deliver_due(db, settings, client=client, now=now)
    assert (done.claimed, done.delivered, done.retrying, done.dead) == (1, 1, 0, 0)
    [request] = receiver.requests
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"vigil/{__version__}"
    assert headers["idempotency-key"] == pending.idempotency_key
    assert headers["x-vigil-delivery"] == str(pending.id)
    assert headers["x-vigil-timestamp"] == str(int(now.timestamp()))
    assert headers["x-vigil-signature"].startswith("v1=")
    assert actions.verify_signature(
        SECRET.encode(),
        headers["x-vigil-timestamp"],
        request.body,
        headers["x-vigil-signature"],
        now=now.timestamp(),
    )
    assert not actions.verify_signature(
        b"wrong", headers["x-vigil-timestamp"], request.body, headers["x-vigil-signature"],
        now=now.timestamp(),
    )  # fmt: skip

    payload = request.json
    assert set(payload) == {
        "id", "type", "action", "rule", "created", "content", "uploader", "matches",
        "may_notify_user",
    }  # fmt: skip
    assert payload["id"] == pending.idempotency_key
    assert (payload["type"], payload["action"], payload["rule"]) == (
        "vigil.match",
        "remove_content",
        "takedown",
    )
    assert datetime.fromisoformat(payload["created"]).utcoffset() == timedelta(0)
    assert payload["content"] == {
        "content_id": content_id,
        "sha256": sha256,
        "md5": payload["content"]["md5"],
        "media_type": "image",
        "size": 1234,
        "content_ref": "post/7",
    }
    assert payload["uploader"] == {
        "account_id": "acct-7",
        "screen_name": "user7",
        "ip_address": "192.0.2.10",
        "event_time": "2026-01-02T03:04:05+00:00",
    }
    assert payload["matches"] == [found(world, "A1").as_json(), found(world, "B2").as_json()]
    assert payload["may_notify_user"] is False

    [delivered] = deliveries(db)
    assert (delivered.status, delivered.attempts, delivered.last_status) == ("delivered", 1, 200)
    assert delivered.delivered == now
    assert actions.deliver_due(db, settings, client=client, now=later(10)).claimed == 0
    assert len(receiver.requests) == 1


def test_classification_filter_suppression_and_disabled_rules(
    db: Database, settings: Settings, receiver: Receiver, client: httpx.Client
) -> None:
    world = make_world(db)
    add_rule(db, receiver.url, "a1-only", classification="A1")
    add_rule(db, receiver.url, "b-any")
    add_rule(db, receiver.url, "off")
    with db.session() as session:
        actions.set_rule_enabled(session, "off", False)

    record(db, outcome(found(world, "B1")))  # b-any only
    record(db, outcome(found(world, "A1"), found(world, "B2")))  # both, a1-only with A1 only
    suppressed = MatchOutcome(matches=[], suppressed=[found(world, "A1")], suppressing=[])
    record(db, suppressed)
    record(db, MatchOutcome([], [found(world, "A1")], [found(world, "A2", "suppress")]))

    rows = deliveries(db)
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_rule.setdefault(row.payload["rule"], []).append(row.payload)
    assert sorted((rule, len(items)) for rule, items in by_rule.items()) == [
        ("a1-only", 1),
        ("b-any", 2),
    ]
    [a1] = by_rule["a1-only"]
    assert [m["classification"] for m in a1["matches"]] == ["A1;uk:A"]
    assert [len(p["matches"]) for p in by_rule["b-any"]] == [1, 2]
    assert all(r.payload["uploader"] is None for r in rows)  # no upload events here
    assert all(r.payload["content"]["content_ref"] is None for r in rows)

    done = actions.deliver_due(db, settings, client=client, now=later())
    assert done.delivered == 3 and len(receiver.requests) == 3
    assert {r.json["rule"] for r in receiver.requests} == {"a1-only", "b-any"}


def test_rescan_fires_once_and_each_upload_fires(db: Database) -> None:
    world = make_world(db)
    add_rule(db, "https://platform.example/hook")
    sha256 = rand_sha256()
    for _ in range(3):
        record(db, outcome(found(world)), sha256=sha256)  # the same bytes scanned again
    assert [d.event_key for d in deliveries(db)] == [deliveries(db)[0].event_key]
    assert deliveries(db)[0].event_key.startswith("content:")

    record(db, outcome(found(world)), sha256=sha256, event=1)
    record(db, outcome(found(world)), sha256=sha256, event=2)
    rows = deliveries(db)
    assert len(rows) == 3
    assert len({r.idempotency_key for r in rows}) == 3
    assert [r.payload["uploader"]["account_id"] for r in rows[1:]] == ["acct-1", "acct-2"]
    assert len({r.content_id for r in rows}) == 1

    with db.session() as session:  # enqueueing the same upload event again adds nothing
        content = session.get(Content, rows[1].content_id)
        event = session.get(UploadEvent, rows[1].upload_event_id)
        assert content is not None and event is not None
        again = actions.enqueue_actions(
            session, content=content, outcome=outcome(found(world)), upload_event=event
        )
        assert again == []
    assert len(deliveries(db)) == 3


def test_server_error_then_success_retries_with_backoff(
    db: Database, settings: Settings, receiver: Receiver, client: httpx.Client
) -> None:
    world = make_world(db)
    add_rule(db, receiver.url)
    record(db, outcome(found(world)))
    receiver.answer(500, (503, {"Retry-After": "30"}, b"busy"), "hang")

    t0 = later()
    assert actions.deliver_due(db, settings, client=client, now=t0).retrying == 1
    [row] = deliveries(db)
    assert (row.status, row.attempts, row.last_status) == ("pending", 1, 500)
    assert row.next_attempt == t0 + timedelta(seconds=2)
    assert row.last_error is not None and row.last_error.startswith("HTTP 500")

    assert actions.deliver_due(db, settings, client=client, now=t0 + timedelta(seconds=1)) == (
        actions.DeliveryRound()
    )
    t1 = t0 + timedelta(seconds=2)
    assert actions.deliver_due(db, settings, client=client, now=t1).retrying == 1
    [row] = deliveries(db)
    assert (row.attempts, row.last_status, row.last_error) == (2, 503, "HTTP 503: busy")
    assert row.next_attempt == t1 + timedelta(seconds=30)  # Retry-After beats 4 s

    t2 = t1 + timedelta(seconds=30)
    assert actions.deliver_due(db, settings, client=client, now=t2).retrying == 1  # timeout
    [row] = deliveries(db)
    assert (row.attempts, row.last_status) == (3, None)
    assert row.last_error is not None and row.last_error.startswith("timeout")
    assert row.next_attempt == t2 + timedelta(seconds=8)

    t3 = t2 + timedelta(seconds=8)
    assert actions.deliver_due(db, settings, client=client, now=t3).delivered == 1
    [row] = deliveries(db)
    assert (row.status, row.attempts, row.last_status, row.delivered) == ("delivered", 4, 200, t3)

    keys = {r.headers["Idempotency-Key"] for r in receiver.requests}
    assert keys == {row.idempotency_key} and len(receiver.requests) == 4
    assert len({r.body for r in receiver.requests}) == 1  # the same body every time
    assert len({r.headers["X-Vigil-Timestamp"] for r in receiver.requests}) == 4
    for request in receiver.requests:
        assert actions.verify_signature(
            SECRET.encode(),
            request.headers["X-Vigil-Timestamp"],
            request.body,
            request.headers["X-Vigil-Signature"],
            now=int(request.headers["X-Vigil-Timestamp"]),
        )
    assert actions.deliver_due(db, settings, client=client, now=t3 + timedelta(hours=1)) == (
        actions.DeliveryRound()
    )


def test_client_error_is_dead_at_once_and_retry_brings_it_back(
    db: Database, settings: Settings, receiver: Receiver, client: httpx.Client
) -> None:
    world = make_world(db)
    add_rule(db, receiver.url)
    record(db, outcome(found(world)))
    receiver.answer((400, {}, b"x" * 5000))

    t0 = later()
    assert actions.deliver_due(db, settings, client=client, now=t0).dead == 1
    [row] = deliveries(db)
    assert (row.status, row.attempts, row.last_status) == ("dead", 1, 400)
    assert row.last_error is not None and len(row.last_error) <= 500
    assert row.last_error.startswith("HTTP 400: xxx")
    assert actions.deliver_due(db, settings, client=client, now=t0 + timedelta(days=1)).claimed == 0

    with db.session() as session:
        assert actions.outbox_depth(session) == {"pending": 0, "delivered": 0, "dead": 1}
        [dead] = actions.list_deliveries(session, status="dead", rule="takedown")
        assert dead.id == row.id
        assert actions.list_deliveries(session, status="pending") == []
        with pytest.raises(ValueError):
            actions.list_deliveries(session, status="lost")
        revived = actions.retry_delivery(session, row.id, now=t0)
        assert (revived.status, revived.attempts, revived.next_attempt) == ("pending", 0, t0)
        with pytest.raises(actions.ActionError):
            actions.retry_delivery(session, row.id)  # pending: not dead
        with pytest.raises(actions.DeliveryNotFound):
            actions.retry_delivery(session, 10_000)

    assert actions.deliver_due(db, settings, client=client, now=t0).delivered == 1
    [row] = deliveries(db)
    assert (row.status, row.attempts) == ("delivered", 1)
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 1
    with db.session() as session, pytest.raises(actions.ActionError, match="delivered"):
        actions.retry_delivery(session, row.id)


def test_max_attempts_make_it_dead_and_retry_dead_revives(
    db: Database, settings: Settings, receiver: Receiver, client: httpx.Client
) -> None:
    world = make_world(db)
    add_rule(db, receiver.url, max_attempts=3)
    add_rule(db, "http://127.0.0.1:9/unreachable", "nowhere", max_attempts=1)
    record(db, outcome(found(world)))
    receiver.answer(502, 429, 500)

    now = later()
    first = actions.deliver_due(db, settings, client=client, now=now)
    assert (first.retrying, first.dead) == (1, 1)  # nowhere: connection refused, 1 try only
    nowhere = next(d for d in deliveries(db) if d.payload["rule"] == "nowhere")
    assert nowhere.status == "dead" and nowhere.last_status is None
    assert nowhere.last_error and "Connect" in nowhere.last_error
    for _ in range(2):
        now += timedelta(minutes=5)
        actions.deliver_due(db, settings, client=client, now=now)
    row = next(d for d in deliveries(db) if d.payload["rule"] == "takedown")
    assert (row.status, row.attempts, row.last_status) == ("dead", 3, 500)
    assert len(receiver.requests) == 3

    with db.session() as session:
        assert actions.retry_dead(session, "takedown", now=now) == 1
        assert actions.outbox_depth(session) == {"pending": 1, "delivered": 0, "dead": 1}
        assert actions.retry_dead(session, now=now) == 1
    assert actions.deliver_due(db, settings, client=client, now=now).delivered == 1


def test_no_secret_sends_nothing_and_stays_pending(
    db: Database,
    tmp_path: Path,
    receiver: Receiver,
    client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = make_world(db)
    add_rule(db, receiver.url, "server-key")
    add_rule(db, receiver.url, "own-key", secret_env="VIGIL_TEST_RULE_SECRET")
    record(db, outcome(found(world)))
    monkeypatch.delenv("VIGIL_TEST_RULE_SECRET", raising=False)
    unsigned = Settings(home=tmp_path / "home", webhook_secret=None)

    now = later()
    done = actions.deliver_due(db, unsigned, client=client, now=now)
    assert (done.unsigned, done.delivered) == (2, 0)
    assert receiver.requests == []
    for row in deliveries(db):
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.last_error is not None and row.last_error.startswith(NO_SECRET)

    # The server's key does not stand in for a rule's own missing key.
    signed = Settings(home=tmp_path / "home", webhook_secret=SecretStr(SECRET))
    now += timedelta(minutes=2)
    done = actions.deliver_due(db, signed, client=client, now=now)
    assert (done.delivered, done.unsigned) == (1, 1)
    assert [r.json["rule"] for r in receiver.requests] == ["server-key"]

    monkeypatch.setenv("VIGIL_TEST_RULE_SECRET", "rule-secret")
    now += timedelta(minutes=2)
    assert actions.deliver_due(db, unsigned, client=client, now=now).delivered == 1
    request = receiver.requests[-1]
    assert request.json["rule"] == "own-key"
    assert actions.verify_signature(
        b"rule-secret",
        request.headers["X-Vigil-Timestamp"],
        request.body,
        request.headers["X-Vigil-Signature"],
        now=now.timestamp(),
    )


# --- crash safety and concurrency ---------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from vigil.config import Settings
    from vigil.pipeline.matching import FoundMatch, MatchOutcome
    from vigil.pipeline.recording import record_matches
    from vigil.store import UploadEvent, open_database, record_hashes

    url, home, bank_id, entry_id, sha256 = sys.argv[1:6]
    database = open_database(Settings(home=home, database_url=url), migrate=False)
    match = FoundMatch("known", int(bank_id), "match", int(entry_id), "md5", 0, "A1;uk:A")
    with database.session() as session:
        content = record_hashes(session, sha256=sha256, md5=None, size=10, media_type="image")
        event = UploadEvent(content_id=content.id, content_ref="post/crash", account_id="acct")
        session.add(event)
        session.flush()
        record_matches(session, content, MatchOutcome([match], [], []), event)
    print("committed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # dies before any delivery is attempted
    print("still alive", flush=True)
    """
)


def test_crash_after_commit_delivers_exactly_once(
    db: Database,
    database_url: str,
    tmp_path: Path,
    settings: Settings,
    receiver: Receiver,
    client: httpx.Client,
) -> None:
    world = make_world(db)
    add_rule(db, receiver.url)
    sha256 = rand_sha256()
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            database_url,
            str(tmp_path / "child-home"),
            str(world.bank_id),
            str(world.entries["A1"]),
            sha256,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "VIGIL_DATABASE_URL": database_url},
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.split() == ["committed"]
    assert receiver.requests == []
    [row] = deliveries(db)
    assert (row.status, row.attempts) == ("pending", 0)

    now = later()
    assert actions.deliver_due(db, settings, client=client, now=now).delivered == 1
    [request] = receiver.requests
    assert request.json["content"]["sha256"] == sha256
    assert request.json["uploader"]["account_id"] == "acct"
    assert request.headers["Idempotency-Key"] == row.idempotency_key
    assert actions.verify_signature(
        SECRET.encode(),
        request.headers["X-Vigil-Timestamp"],
        request.body,
        request.headers["X-Vigil-Signature"],
        now=now.timestamp(),
    )
    assert actions.deliver_due(db, settings, client=client, now=later(60)).claimed == 0
    assert len(receiver.requests) == 1


def test_concurrent_claimers_never_share_a_row(db: Database, settings: Settings) -> None:
    world = make_world(db)
    add_rule(db, "https://platform.example/hook")
    for event in range(1, 7):
        record(db, outcome(found(world)), event=event)
    now = later()
    lease = actions.lease_for(settings)

    first = actions.claim_due(db, lease=lease, limit=4, now=now)
    second = actions.claim_due(db, lease=lease, limit=4, now=now)
    assert len(first) == 4 and len(second) == 2
    assert not {c.id for c in first} & {c.id for c in second}
    assert actions.claim_due(db, lease=lease, limit=4, now=now) == []
    assert all(c.lease_until == now + lease for c in first + second)

    # A worker that read the due rows before another claimed them loses every update.
    now += lease + timedelta(seconds=1)
    with db.session() as stale:
        seen = due_rows(stale, now=now, limit=10)
    assert len(seen) == 6
    winner = actions.claim_due(db, lease=lease, limit=10, now=now)
    assert len(winner) == 6
    with db.session() as late:
        assert take_rows(late, seen, now + lease) == []

    # Two threads claiming at the same moment split the rows between them.
    now += lease + timedelta(seconds=1)
    results: list[list[actions.Claim]] = [[], []]
    barrier = threading.Barrier(2)

    def claimer(slot: int) -> None:
        barrier.wait()
        results[slot] = actions.claim_due(db, lease=lease, limit=6, now=now)

    threads = [threading.Thread(target=claimer, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    ids = [c.id for claims in results for c in claims]
    assert len(ids) == len(set(ids)) == 6


def test_worker_thread_delivers(db: Database, settings: Settings, receiver: Receiver) -> None:
    world = make_world(db)
    add_rule(db, receiver.url)
    record(db, outcome(found(world)))
    worker = actions.ActionWorker(db, settings, poll_seconds=0.05)
    worker.start()
    try:
        with pytest.raises(RuntimeError):
            worker.start()
        pause = threading.Event()
        for _ in range(400):  # wait for the thread: up to 20 s
            if deliveries(db)[0].status == "delivered":
                break
            pause.wait(0.05)
    finally:
        worker.stop(5)
    assert not worker.running
    assert deliveries(db)[0].status == "delivered"
    assert len(receiver.requests) == 1


# --- CLI ----------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Path]:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", database_url)
    monkeypatch.setenv("VIGIL_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("VIGIL_WEBHOOK_TIMEOUT_SECONDS", "2")
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["actions", *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_rules_deliveries_retry_and_work(home: Path, receiver: Receiver) -> None:
    assert runner.invoke(app, ["bank", "create", "known"]).exit_code == 0
    md5 = rand_md5()
    added = runner.invoke(app, ["bank", "add", "known", "md5", md5, "--classification", "A1"])
    assert added.exit_code == 0
    code, _, err = cli("rules", "add", "takedown", "--bank", "known", "--action",
                       "remove_content", "--url", receiver.url, "--classification", "A1",
                       "--max-attempts", "2")  # fmt: skip
    assert code == 0, err
    for bad in (
        ["rules", "add", "x", "--bank", "known", "--action", "notify_user", "--url", receiver.url],
        ["rules", "add", "x", "--bank", "missing", "--action", "preserve", "--url", receiver.url],
        ["rules", "add", "x", "--bank", "known", "--action", "preserve", "--url", "ftp://h/"],
        ["rules", "add", "takedown", "--bank", "known", "--action", "p", "--url", receiver.url],
        ["rules", "enable", "missing"],
        ["retry"],
        ["retry", "1", "--all-dead"],
        ["retry", "999"],
        ["deliveries", "--rule", "missing"],
    ):
        code, _, err = cli(*bad)
        assert code == 2, (bad, err)
        assert "error:" in err
    code, _, err = cli("rules", "add", "x", "--bank", "known", "--action", "notify_user",
                       "--url", receiver.url)  # fmt: skip
    assert "never notify the uploader" in err

    code, out, _ = cli("rules", "list", "--json")
    [listed] = json.loads(out)
    assert (listed["name"], listed["bank"], listed["classification"], listed["max_attempts"]) == (
        "takedown", "known", "A1", 2,
    )  # fmt: skip
    code, out, _ = cli("rules", "list")
    assert code == 0 and "takedown" in out and "remove_content" in out

    database = open_database(get_settings())
    try:
        with database.session() as session:
            content = new_content(session)
            entry = find_entry(session, "known", "md5", md5)
            assert entry is not None
            match = FoundMatch("known", entry.bank_id, "match", entry.id, "md5", 0, "A1")
            record_matches(session, content, outcome(match))
    finally:
        database.dispose()

    receiver.answer((400, {}, b"unknown content"))
    code, out, _ = cli("work", "--once", "--json")
    assert code == 0 and json.loads(out)["dead"] == 1
    code, out, err = cli("deliveries", "--status", "dead")
    assert code == 0 and "takedown" in out and "HTTP 400: unknown content" in out
    assert "1 dead" in err
    code, out, _ = cli("deliveries", "--status", "dead", "--json")
    [dead] = json.loads(out)
    assert (dead["status"], dead["last_status"], dead["attempts"]) == ("dead", 400, 1)

    code, _, err = cli("retry", str(dead["id"]))
    assert code == 0, err
    code, out, _ = cli("work", "--once")
    assert code == 0 and "1 delivered" in out
    code, out, _ = cli("deliveries", "--json")
    assert [d["status"] for d in json.loads(out)] == ["delivered"]
    assert cli("retry", "--all-dead")[0] == 0
    assert cli("rules", "disable", "takedown")[0] == 0
    assert cli("rules", "enable", "takedown")[0] == 0
    assert cli("rules", "delete", "takedown")[0] == 0
    assert json.loads(cli("rules", "list", "--json")[1]) == []
