"""The audit room: the hash chain, its tamper detection, signed checkpoints, concurrent
writers, the automatic events of every audited change (with who made them), and
`vigil audit ...`. Database tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import multiprocessing
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, delete, func, insert, select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api_helpers import Api
from vigil import audit
from vigil.audit.chain import _scrub
from vigil.auth import create_token
from vigil.auth.users import create_user, set_password
from vigil.banks import create_bank, delete_bank
from vigil.cli import app
from vigil.config import Settings, get_settings
from vigil.demo import synthetic_image
from vigil.reporting import service as reports
from vigil.review import Flag, Reviewer, claim, confirm, open_flag
from vigil.store import AuditEvent, AuditHead, Database, Report, WebSession, record_hashes
from vigil.web.sessions import sign_in, sign_out

EVENTS = AuditEvent.__table__
HEAD = AuditHead.__table__
PASSWORD = "a long enough passphrase, never logged"
runner = CliRunner()


# --- helpers ----------------------------------------------------------------------------------


def build_chain(db: Database, count: int = 10) -> None:
    """`count` events with details that must survive the JSON column exactly (unicode,
    floats, nesting, a datetime)."""
    with db.session() as session:
        for n in range(1, count + 1):
            audit.append(
                session,
                actor=f"user:tester-{n % 3}",
                action="test.event",
                object_type="test",
                object_id=n,
                details={
                    "n": n,
                    "ratio": n / 7,
                    "note": "caf\u00e9 \u6f22\u5b57 \u2713",
                    "nested": {"b": [1, 2.5, None, True], "a": "x"},
                    "when": datetime(2030, 1, n, 12, 30, 15, 123456, tzinfo=UTC),
                },
            )


def events(db: Database) -> list[AuditEvent]:
    with db.session() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def exported(db: Database) -> str:
    out = io.StringIO()
    with db.session() as session:
        audit.export(session, out)
    return out.getvalue()


def check(db: Database, **options: Any) -> audit.VerifyResult:
    with db.session() as session:
        return audit.verify(session, **options)


@contextmanager
def tampered(db: Database, tamper: Callable[[Connection], object]) -> Iterator[Session]:
    """A session seeing the database as `tamper` left it (rolled back afterwards)."""
    with db.engine.connect() as connection:
        transaction = connection.begin()
        try:
            tamper(connection)
            with Session(bind=connection) as session:
                yield session
        finally:
            transaction.rollback()


def set_details(seq: int, details: dict[str, Any]) -> Callable[[Connection], object]:
    return lambda c: c.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(details=details))


def rehash_from(connection: Connection, start: int) -> None:
    """What an attacker who knows the hash rule does: recompute every link from `start`
    on, and the head, so the chain is consistent again."""
    rows = connection.execute(select(EVENTS).order_by(EVENTS.c.seq)).all()
    prev = audit.GENESIS_HASH
    for row in rows:
        digest = row.hash
        if row.seq >= start:
            digest = audit.link_hash(
                row.seq,
                row.at,
                row.actor,
                row.action,
                row.object_type,
                row.object_id,
                row.details,
                prev,
            )
            connection.execute(
                update(EVENTS).where(EVENTS.c.seq == row.seq).values(prev_hash=prev, hash=digest)
            )
        prev = digest
    connection.execute(update(HEAD).where(HEAD.c.id == 1).values(hash=prev))


def forged_row(connection: Connection, seq: int) -> None:
    """A well-formed event appended behind the head's back (its hash computed correctly)."""
    last = connection.execute(select(EVENTS).order_by(EVENTS.c.seq.desc()).limit(1)).one()
    at = datetime.now(UTC)
    digest = audit.link_hash(seq, at, "user:mallory", "test.event", "test", "x", {}, last.hash)
    connection.execute(
        insert(EVENTS).values(
            seq=seq,
            at=at,
            actor="user:mallory",
            action="test.event",
            object_type="test",
            object_id="x",
            details={},
            prev_hash=last.hash,
            hash=digest,
        )
    )


def swap(a: int, b: int) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        connection.execute(text("UPDATE audit_event SET seq = -1 WHERE seq = :a"), {"a": a})
        connection.execute(text("UPDATE audit_event SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
        connection.execute(text("UPDATE audit_event SET seq = :b WHERE seq = -1"), {"b": b})

    return run


def delete_and_renumber(seq: int) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        connection.execute(delete(EVENTS).where(EVENTS.c.seq == seq))
        for later in range(seq + 1, 11):
            connection.execute(update(EVENTS).where(EVENTS.c.seq == later).values(seq=later - 1))
        connection.execute(update(HEAD).where(HEAD.c.id == 1).values(seq=HEAD.c.seq - 1))

    return run


def modify_and_rehash_one(connection: Connection) -> None:
    """Seq 4 rewritten with its own hash recomputed (but not the links after it)."""
    row = connection.execute(select(EVENTS).where(EVENTS.c.seq == 4)).one()
    details = {**row.details, "n": 40}
    digest = audit.link_hash(
        4, row.at, row.actor, row.action, row.object_type, row.object_id, details, row.prev_hash
    )
    connection.execute(update(EVENTS).where(EVENTS.c.seq == 4).values(details=details, hash=digest))


# --- details, encoding ------------------------------------------------------------------------


def test_scrub_drops_secrets_and_bytes_at_any_depth() -> None:
    cleaned = _scrub(
        {
            "username": "alice",
            "password": "hunter2",
            "password_hash": "$argon2id$...",
            "secret_hash": "ab" * 32,
            "client_secret": "s",
            "csrf_token": "c",
            "token": "vgl_x",
            "access_token": "y",
            "token_id": 7,
            "token_name": "platform",
            "wrapped_key": b"\x00\x01",
            "picture": b"\x89PNG...",
            "nested": {"api_key": "k", "ok": [b"raw", 1, {"passphrase": "p", "n": 2}]},
            "when": datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
            "ratio": float("nan"),
            "tags": ("a", "b"),
        }
    )
    assert cleaned == {
        "username": "alice",
        "token_id": 7,
        "token_name": "platform",
        "nested": {"ok": [1, {"n": 2}]},
        "when": "2030-01-02T03:04:05.000000+00:00",
        "ratio": "nan",
        "tags": ["a", "b"],
    }


def test_the_hash_is_the_documented_rule() -> None:
    at = datetime(2030, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    details = {"b": "\u00e9", "a": [1, 2.5]}
    encoded = (
        '{"action":"bank.created","actor":"cli:ops","at":"2030-05-06T07:08:09.000010+00:00",'
        '"details":{"a":[1,2.5],"b":"\\u00e9"},"object_id":"3","object_type":"bank",'
        '"seq":1}'
    )
    args = (1, at, "cli:ops", "bank.created", "bank", "3", details)
    assert audit.canonical(*args) == encoded.encode("ascii")
    expected = hashlib.sha256(encoded.encode("ascii") + b"0" * 64).hexdigest()
    assert audit.link_hash(*args, audit.GENESIS_HASH) == expected


# --- the chain and its tampering --------------------------------------------------------------


def test_an_empty_chain_verifies(db: Database) -> None:
    result = check(db)
    assert (result.ok, result.checked, result.head_seq) == (True, 0, 0)


def test_every_tampering_is_caught_at_its_first_broken_link(db: Database) -> None:
    build_chain(db)
    result = check(db)
    assert (result.ok, result.checked, result.first_broken_seq) == (True, 10, None)
    stored = events(db)
    assert [e.seq for e in stored] == list(range(1, 11))
    assert stored[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(stored))

    later = datetime(2031, 1, 1, tzinfo=UTC)
    cases: list[tuple[str, Callable[[Connection], object], int]] = [
        ("details changed", set_details(4, {"n": 4}), 4),
        ("actor changed", lambda c: c.execute(
            update(EVENTS).where(EVENTS.c.seq == 6).values(actor="user:someone-else")), 6),
        ("time changed", lambda c: c.execute(
            update(EVENTS).where(EVENTS.c.seq == 2).values(at=later)), 2),
        ("object changed", lambda c: c.execute(
            update(EVENTS).where(EVENTS.c.seq == 9).values(object_id="99")), 9),
        ("a row deleted", lambda c: c.execute(delete(EVENTS).where(EVENTS.c.seq == 5)), 5),
        ("the last row deleted", lambda c: c.execute(
            delete(EVENTS).where(EVENTS.c.seq == 10)), 10),
        ("two rows swapped", swap(3, 7), 3),
        ("deleted and renumbered", delete_and_renumber(5), 5),
        ("rewritten with its own hash", modify_and_rehash_one, 5),
        ("a forged row appended", lambda c: forged_row(c, 11), 11),
        ("a forged row before the start", lambda c: c.execute(
            insert(EVENTS).values(seq=0, at=later, actor="x", action="x", object_type="x",
                                  details={}, prev_hash="0" * 64, hash="e" * 64)), 0),
        ("the head's hash edited", lambda c: c.execute(
            update(HEAD).where(HEAD.c.id == 1).values(hash="a" * 64)), 10),
        ("the head moved back", lambda c: c.execute(
            update(HEAD).where(HEAD.c.id == 1).values(seq=9)), 10),
    ]  # fmt: skip
    for name, tamper, first_broken in cases:
        with tampered(db, tamper) as session:
            result = audit.verify(session)
        assert not result.ok, name
        assert result.first_broken_seq == first_broken, (name, result)
        assert result.problem, name
    assert check(db).ok  # every tampering was rolled back


def test_a_checkpoint_catches_a_consistently_rewritten_history(
    db: Database, tmp_path: Path
) -> None:
    build_chain(db)
    key = audit.load_or_create_key(tmp_path / "keys" / "audit.key")
    with db.session() as session:
        path = audit.checkpoint(session, key, tmp_path / "checkpoints")
    written = json.loads(path.read_text())
    assert (written["seq"], written["hash"]) == (10, events(db)[9].hash)
    assert base64.b64decode(written["public_key"]) == key.public_key().public_bytes_raw()
    assert events(db)[-1].action == "audit.checkpoint"  # the checkpoint is in the log too
    result = check(db, from_checkpoint=path, public_key=key.public_key())
    assert (result.ok, result.checked, result.checkpoint_seq) == (True, 11, 10)

    def rewrite(connection: Connection) -> None:
        set_details(2, {"n": 2, "note": "rewritten"})(connection)
        rehash_from(connection, 2)

    with tampered(db, rewrite) as session:
        assert audit.verify(session).ok  # without the checkpoint, nothing shows
        result = audit.verify(session, from_checkpoint=path, public_key=key.public_key())
    assert (result.ok, result.first_broken_seq) == (False, 10)
    assert "checkpoint" in (result.problem or "")

    def cut(connection: Connection) -> None:
        """The chain cut back to before the checkpoint, the head with it."""
        connection.execute(delete(EVENTS).where(EVENTS.c.seq >= 10))
        last = connection.execute(select(EVENTS.c.hash).where(EVENTS.c.seq == 9)).scalar_one()
        connection.execute(update(HEAD).where(HEAD.c.id == 1).values(seq=9, hash=last))

    with tampered(db, cut) as session:
        assert audit.verify(session).ok
        result = audit.verify(session, from_checkpoint=path)
    assert (result.ok, result.first_broken_seq) == (False, 10)


def test_a_tampered_checkpoint_is_refused(db: Database, tmp_path: Path) -> None:
    build_chain(db, 3)
    key = audit.load_or_create_key(tmp_path / "audit.key")
    assert oct((tmp_path / "audit.key").stat().st_mode & 0o777) == "0o600"
    assert audit.load_or_create_key(tmp_path / "audit.key").public_key().public_bytes_raw() == (
        key.public_key().public_bytes_raw()
    )  # created once, then read
    with db.session() as session:
        path = audit.checkpoint(session, key, tmp_path)
    original = json.loads(path.read_text())

    def altered(**changes: Any) -> Path:
        target = tmp_path / f"altered-{len(list(tmp_path.iterdir()))}.json"
        target.write_text(json.dumps({**original, **changes}))
        return target

    signature = bytearray(base64.b64decode(original["signature"]))
    signature[0] ^= 1
    mallory = Ed25519PrivateKey.generate()
    with db.session() as session:
        resigned = audit.checkpoint(session, mallory, tmp_path / "mallory")
    for path_, trusted in (
        (altered(signature=base64.b64encode(bytes(signature)).decode()), None),
        (altered(hash="0" * 64), None),
        (altered(seq=2), key.public_key()),
        (resigned, key.public_key()),  # a valid signature, but not by the trusted key
        (altered(version=7), None),
    ):
        result = check(db, from_checkpoint=path_, public_key=trusted)
        assert not result.ok and result.first_broken_seq is None, path_
        assert (result.problem or "").startswith("checkpoint refused"), result.problem
    assert check(db, from_checkpoint=path, public_key=key.public_key()).ok


def test_the_server_checkpoints_periodically(db: Database, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", audit_checkpoint_hours=1.0)
    worker = audit.CheckpointWorker(db, settings)
    build_chain(db, 2)
    first = worker.run_once()
    assert first is not None and first.parent == tmp_path / "home" / "audit" / "checkpoints"
    assert worker.run_once() is None  # the newest one is not an hour old
    assert (tmp_path / "home" / "keys" / "audit-ed25519.key").is_file()
    assert check(db, from_checkpoint=first).ok
    worker.start()  # the thread starts (its first check finds nothing due) and stops
    worker.stop()


# --- concurrent writers ------------------------------------------------------------------------


def _append_in_process(url: str, label: str, count: int) -> None:
    """A separate process's writer (module level, so `spawn` can import it)."""
    database = Database.from_url(url)
    try:
        for n in range(count):
            with database.session(immediate=True) as session:
                audit.append(
                    session,
                    actor=f"process:{label}",
                    action="test.appended",
                    object_type="test",
                    object_id=f"{label}-{n}",
                    details={"n": n},
                )
    finally:
        database.dispose()


def assert_contiguous(db: Database, count: int) -> None:
    seqs = [e.seq for e in events(db)]
    assert seqs == list(range(1, count + 1))
    with db.session() as session:
        assert session.execute(select(AuditHead.seq)).scalar_one() == count
    result = check(db)
    assert (result.ok, result.checked) == (True, count), result


def test_concurrent_threads_never_fork_the_chain(db: Database) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(label: int) -> None:
        try:
            start.wait()
            for n in range(25):
                with db.session(immediate=True) as session:
                    audit.append(
                        session,
                        actor=f"thread:{label}",
                        action="test.appended",
                        object_type="test",
                        object_id=f"{label}-{n}",
                        details={"n": n},
                    )
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(label,)) for label in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert_contiguous(db, 100)


def test_concurrent_processes_never_fork_the_chain(db: Database, database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_append_in_process, args=(database_url, str(label), 20))
        for label in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0]
    assert_contiguous(db, 40)


# --- automatic events --------------------------------------------------------------------------


def logged(db: Database, after: int = 0) -> list[tuple[str, str, str, str | None]]:
    return [(e.actor, e.action, e.object_type, e.object_id) for e in events(db) if e.seq > after]


def test_changes_to_audited_tables_are_logged_with_their_actor(db: Database) -> None:
    with audit.acting_as("cli:ops"), db.session() as session:
        bank = create_bank(session, "known-hashes", trust="verified")
        user = create_user(session, "rita", PASSWORD, ["reviewer", "legal"])
        token, _secret = create_token(session, "platform", ["match"], created_by="ops")
        ids = (str(bank.id), str(user.id), str(token.id))
    assert logged(db) == [
        ("cli:ops", "bank.created", "bank", ids[0]),
        ("cli:ops", "app_user.created", "app_user", ids[1]),
        ("cli:ops", "api_token.created", "api_token", ids[2]),
    ]
    created = events(db)[0].details
    assert (created["name"], created["trust"], created["id"]) == ("known-hashes", "verified", 1)

    # A review decision and the report it drafts, then the report's approval.
    with db.session() as session:
        content = record_hashes(session, sha256="ab" * 32, md5=None, size=10, media_type="image")
        task = open_flag(session, content, Flag("flag", reporter="classifier-x", score=0.9))
        task_id = task.id
    reviewer = Reviewer(user.id, frozenset(user.roles))
    mark = len(events(db))
    with audit.acting_as("user:rita"), db.session() as session:
        claim(session, task_id, reviewer, lease=timedelta(minutes=15))
        confirm(session, task_id, reviewer, industry="B1")
        report_id = session.scalars(select(Report.id)).one()
    actions = [(a, kind, oid) for a, kind, _, oid in logged(db, mark)]
    assert all(actor == "user:rita" for actor, _, _ in actions)
    kinds = [kind for _, kind, _ in actions]
    assert ("review_task.updated", str(task_id)) in [(k, o) for _, k, o in actions]
    assert "review_decision.created" in kinds
    assert ("report.created", str(report_id)) in [(k, o) for _, k, o in actions]
    decision = next(e for e in events(db) if e.action == "review_decision.created")
    assert (decision.details["kind"], decision.details["industry"]) == ("confirm", "B1")

    mark = len(events(db))
    with audit.acting_as("user:rita"), db.session() as session:
        reports.approve(
            session, report_id, reports.Approver(user.id, frozenset(user.roles)), environment="test"
        )
    [approval] = [e for e in events(db) if e.seq > mark]
    assert (approval.actor, approval.action, approval.object_id) == (
        "user:rita",
        "report.updated",
        str(report_id),
    )
    assert approval.details["status"] == "approved"
    assert approval.details["approved_by"] == user.id
    assert check(db).ok


def test_rolled_back_changes_leave_no_event(db: Database) -> None:
    with db.sessionmaker() as session:
        create_bank(session, "never")
        session.flush()
        session.rollback()
        with session.begin_nested():
            create_bank(session, "kept")
        savepoint = session.begin_nested()
        create_bank(session, "undone")
        session.flush()
        savepoint.rollback()
        session.commit()
    assert [(e.action, e.details.get("name")) for e in events(db)] == [("bank.created", "kept")]
    assert check(db).ok


def test_explicit_events_and_bulk_statements(db: Database) -> None:
    with audit.acting_as("user:lou"), db.session() as session:
        audit.record(
            session,
            "vault.read",
            "vault_item",
            7,
            {"reason": "subpoena 2030-1", "password": "never", "bytes": b"\x89PNG"},
        )
        assert events(db) == []  # appended when the transaction commits
    with db.session() as session:
        bank = create_bank(session, "to-delete")
    with audit.acting_as("cli:ops"), db.session() as session:
        delete_bank(session, bank.id)
    with Session(db.engine) as session:  # not a Vigil session: recorded at once
        audit.record(session, "audit.note", "test", None, {"n": 1})
        session.commit()
    read, created, deleted, note = events(db)
    assert (read.actor, read.action, read.object_type, read.object_id) == (
        "user:lou",
        "vault.read",
        "vault_item",
        "7",
    )
    assert read.details == {"reason": "subpoena 2030-1"}
    assert (created.actor, created.action) == ("system", "bank.created")
    assert (deleted.actor, deleted.action, deleted.object_id) == (
        "cli:ops",
        "bank.deleted",
        str(bank.id),
    )
    assert deleted.details["bulk"] is True and deleted.details["rows"] == 1
    assert (note.action, note.object_id) == ("audit.note", None)
    assert check(db).ok


def test_bookkeeping_alone_is_not_an_event(db: Database) -> None:
    with db.session() as session:
        create_user(session, "lou", PASSWORD, ["legal"])
        secret, row = sign_in(session, "lou", PASSWORD, lifetime=timedelta(hours=1))
    with db.session() as session:
        session.execute(update(WebSession).values(last_seen=row.last_seen + timedelta(minutes=1)))
        stored = session.get(WebSession, row.id)
        assert stored is not None
        stored.last_seen = row.last_seen + timedelta(minutes=5)
    actions = [e.action for e in events(db)]
    assert actions == ["app_user.created", "app_user.updated", "web_session.created"]
    with db.session() as session:
        assert sign_out(session, secret)
    assert events(db)[-1].action == "web_session.deleted"


def test_secrets_never_reach_the_log(db: Database) -> None:
    with db.session() as session:
        create_user(session, "alice", PASSWORD, ["admin"])
        _token, secret = create_token(session, "platform", ["admin"], created_by="ops")
        cookie, row = sign_in(session, "alice", PASSWORD, lifetime=timedelta(hours=1))
        session.flush()
        stored = [row.secret_hash, row.csrf_token]
    with db.session() as session:
        stored += [
            session.execute(text("SELECT password_hash FROM app_user")).scalar_one(),
            session.execute(text("SELECT secret_hash FROM api_token")).scalar_one(),
        ]
    assert len(events(db)) == 4
    assert "password" not in exported(db) and "csrf" not in exported(db)

    with db.session() as session:
        set_password(session, "alice", "another long passphrase, also secret")
    [changed] = events(db)[4:]
    assert (changed.action, changed.details) == (
        "app_user.updated",
        {"redacted": ["password_hash"]},  # that it changed, never to what
    )
    logged_text = exported(db)
    for value in (PASSWORD, "also secret", secret, cookie, *stored):
        assert value not in logged_text, value[:6]


# --- who acted, through the API and the console -------------------------------------------------


def png_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    synthetic_image(128, 128, seed).save(buffer, format="PNG")
    return buffer.getvalue()


def test_api_calls_are_logged_as_their_token(api: Api) -> None:
    created = api.client.post("/v1/banks", json={"name": "via-api"}, headers=api.auth("curate"))
    assert created.status_code == 201, created.text
    [bank_event] = [e for e in events(api.database) if e.action == "bank.created"]
    assert bank_event.actor == "token:api-home-curate"
    assert bank_event.details["name"] == "via-api"

    before = len(events(api.database))
    matched = api.client.post(
        "/v1/match",
        files={"file": ("photo.png", png_bytes(5), "image/png")},
        headers=api.auth("match"),
    )
    assert matched.status_code == 200, matched.text
    assert len(events(api.database)) == before  # an upload that matches nothing: no event
    assert audit.current_actor() == "system"  # nothing leaked out of the request


def test_console_actions_are_logged_as_their_user(api: Api) -> None:
    with api.database.session() as session:
        create_user(session, "alice", PASSWORD, ["reviewer"])
        content = record_hashes(session, sha256="cd" * 32, md5=None, size=10, media_type="image")
        task_id = open_flag(session, content, Flag("user_report", reporter="u-1")).id
    client = api.client
    page = client.get("/console/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    signed = client.post(
        "/console/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": match.group(1)},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    with api.database.session() as session:
        csrf = session.scalars(select(WebSession.csrf_token)).one()
    mark = len(events(api.database))
    claimed = client.post(
        f"/console/tasks/{task_id}/claim", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert claimed.status_code == 303, claimed.text
    [event] = [e for e in events(api.database) if e.seq > mark]
    assert (event.actor, event.action, event.object_type, event.object_id) == (
        "user:alice",
        "review_task.updated",
        "review_task",
        str(task_id),
    )
    assert event.details["bulk"] is True and "lease_expires" in event.details["values"]


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Path]:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def vigil(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_cli_verify_checkpoint_export_and_log(home: Path, tmp_path: Path) -> None:
    code, _, err = vigil("users", "create", "alice", "-r", "admin", "--password-stdin",
                         input=PASSWORD + "\n")  # fmt: skip
    assert code == 0, err
    code, out, _ = vigil("bank", "create", "cli-bank")
    assert code == 0, out
    code, out, _ = vigil("audit", "verify")
    assert (code, out) == (0, "ok: 2 events verified\n")
    assert audit.current_actor() == "system"  # the command's actor ended with it

    code, out, err = vigil("audit", "checkpoint")
    assert code == 0, err
    checkpoint = Path(out.strip())
    assert checkpoint.parent == home / "audit" / "checkpoints" and checkpoint.is_file()
    assert (home / "keys" / "audit-ed25519.key").stat().st_mode & 0o077 == 0

    code, out, _ = vigil("audit", "log", "--limit", "10")
    assert code == 0
    assert "audit.checkpoint" in out and "bank.created" in out and "app_user.created" in out
    assert re.search(r"cli:\S+", out)

    exported = tmp_path / "audit.jsonl"
    code, _, err = vigil("audit", "export", "--object-type", "bank", "--output", str(exported))
    assert code == 0, err
    [line] = exported.read_text().splitlines()
    record = json.loads(line)
    assert (record["action"], record["object_type"], record["seq"]) == ("bank.created", "bank", 2)
    assert record["actor"].startswith("cli:")
    code, out, _ = vigil("audit", "export", "--since", "2000-01-01", "--until", "2000-01-02")
    assert (code, out) == (0, "")
    code, out, _ = vigil("audit", "export", "--object-type", "app_user", "--object-id", "1")
    assert [json.loads(x)["action"] for x in out.splitlines()] == ["app_user.created"]

    code, out, _ = vigil("audit", "verify", "--from-checkpoint", str(checkpoint))
    assert code == 0 and "consistent with the checkpoint at seq 2" in out

    db = Database.from_url(get_settings().effective_database_url)
    try:
        with db.engine.begin() as connection:
            set_details(1, {"username": "mallory"})(connection)
            rehash_from(connection, 1)
    finally:
        db.dispose()
    code, out, _ = vigil("audit", "verify")
    assert (code, out) == (0, "ok: 3 events verified\n")  # consistent: only a checkpoint sees
    code, out, _ = vigil("audit", "verify", "--from-checkpoint", str(checkpoint))
    assert code == 1
    assert out.startswith("first broken link at seq 2: ")

    db = Database.from_url(get_settings().effective_database_url)
    try:
        with db.engine.begin() as connection:
            connection.execute(delete(EVENTS).where(EVENTS.c.seq == 1))
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(EVENTS)) == 2
    finally:
        db.dispose()
    code, out, _ = vigil("audit", "verify")
    assert code == 1 and out.startswith("first broken link at seq 1: seq 1 missing")
    code, out, _ = vigil("audit", "export", "--since", "yesterday")
    assert code == 2
