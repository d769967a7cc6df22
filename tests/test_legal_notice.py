"""The legal desk's notice guard (`vigil.legal.notice`): its truth table and properties, the
webhooks' `may_notify_user` decided at each send whatever path queued them (and whenever),
and `GET /v1/accounts/{id}/notice`. On SQLite and PostgreSQL. Every account is made up."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

import vigil.legal.notice as notice_module
from api_helpers import Api, make_api
from test_actions import SECRET, Received, Receiver
from test_actions import receiver as receiver  # the fixture, reused
from test_api import hashed, make_bank, png_bytes, upload
from vigil import actions
from vigil.config import MediaLimits
from vigil.legal.notice import (
    NoticeDecision,
    may_notify_user,
    may_notify_users,
)
from vigil.pipeline.matching import BankMatcher
from vigil.pipeline.recording import HashRecorder
from vigil.pipeline.scan import scan_files, scan_options
from vigil.store import ActionDelivery, Database, LegalRequest, LegalTarget, Report, utcnow
from vigil.store.legal_models import REQUEST_STATUSES
from vigil.store.report_models import REPORT_STATUSES

pytestmark = pytest.mark.usefixtures("cheap_passwords")

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


# --- helpers ------------------------------------------------------------------------------


def add_order(
    session: Session,
    accounts: list[str],
    *,
    status: str = "received",
    until: datetime | None = None,
    lifted_at: datetime | None = None,
    kind: str = "nondisclosure",
    parent_id: int | None = None,
) -> LegalRequest:
    """A legal request (by default a non-disclosure order, just received) naming `accounts`."""
    request = LegalRequest(
        kind=kind,
        channel="manual",
        status=status,
        requester_name="Det. Example",
        agency="Example Police Department",
        due_at=NOW + timedelta(hours=4),
        created_by="tests",
        parent_id=parent_id,
        nondisclosure_until=until if kind == "nondisclosure" else None,
        nondisclosure_lifted_at=lifted_at,
    )
    request.targets = [LegalTarget(kind="account", value=a, account_id=a) for a in accounts]
    session.add(request)
    session.flush()
    return request


def add_report(session: Session, account: str, status: str = "draft") -> Report:
    report = Report(account_key=account, status=status)
    session.add(report)
    session.flush()
    return report


def decide(session: Session, account: str | None, policy: bool = True) -> NoticeDecision:
    return may_notify_user(session, account, notice_policy=policy, now=NOW)


# --- the truth table ----------------------------------------------------------------------

Setup = Callable[[Session, str], object]


def _parent_names_it(session: Session, account: str) -> None:
    subpoena = add_order(session, [account], kind="subpoena", status="verified")
    add_order(session, [], parent_id=subpoena.id)  # the order that came with it


CASES: dict[str, tuple[Setup, bool]] = {
    # name: (set-up for the account, whether only the policy decides)
    "nothing": (lambda s, a: None, True),
    "active order": (lambda s, a: add_order(s, [a], until=NOW + timedelta(days=30)), False),
    "verified order": (lambda s, a: add_order(s, [a], status="verified"), False),
    "closed order": (lambda s, a: add_order(s, [a], status="closed"), False),
    "indefinite order": (lambda s, a: add_order(s, [a], until=None), False),
    "order naming several": (lambda s, a: add_order(s, ["someone-else", a]), False),
    "order through its request": (_parent_names_it, False),
    "lift stamped later": (lambda s, a: add_order(s, [a], lifted_at=NOW + timedelta(1)), False),
    "expired order": (lambda s, a: add_order(s, [a], until=NOW - timedelta(seconds=1)), True),
    "order ending now": (lambda s, a: add_order(s, [a], until=NOW), True),
    "lifted order": (lambda s, a: add_order(s, [a], lifted_at=NOW - timedelta(days=1)), True),
    "refused order": (lambda s, a: add_order(s, [a], status="refused"), True),
    "order naming another": (lambda s, a: add_order(s, [f"{a}-other"]), True),
    "not an order": (lambda s, a: add_order(s, [a], kind="subpoena"), True),
    "draft report": (lambda s, a: add_report(s, a, "draft"), False),
    "approved report": (lambda s, a: add_report(s, a, "approved"), False),
    "finished report": (lambda s, a: add_report(s, a, "finished"), False),
    "failed report": (lambda s, a: add_report(s, a, "failed"), False),
    "retracted report": (lambda s, a: add_report(s, a, "retracted"), True),
    "report on another": (lambda s, a: add_report(s, f"{a}-other"), True),
    "retracted report and order": (
        lambda s, a: (add_report(s, a, "retracted"), add_order(s, [a])),
        False,
    ),
}


def test_guard_truth_table(session: Session) -> None:
    accounts = {name: f"acct-{i}" for i, name in enumerate(CASES)}
    for name, (setup, _) in CASES.items():
        setup(session, accounts[name])
    for policy in (True, False):
        for name, (_, policy_decides) in CASES.items():
            decision = decide(session, accounts[name], policy)
            assert decision.allowed is (policy_decides and policy), (name, policy, decision)
            assert decision.reasons, name
            if policy_decides:
                expected = (
                    "platform policy allows notice" if policy else "platform policy: no notice"
                )
                assert decision.reasons == (expected,), name
    many = may_notify_users(session, list(accounts.values()), notice_policy=True, now=NOW)
    assert {a: d.allowed for a, d in many.items()} == {
        accounts[name]: allowed for name, (_, allowed) in CASES.items()
    }


def test_no_account_is_never_told(session: Session) -> None:
    for account in (None, ""):
        assert decide(session, account) == NoticeDecision(False, ("no account named",))
    assert may_notify_users(session, [None, "", "x"], notice_policy=True, now=NOW) == {
        None: NoticeDecision(False, ("no account named",)),
        "": NoticeDecision(False, ("no account named",)),
        "x": NoticeDecision(True, ("platform policy allows notice",)),
    }


def test_reasons_name_every_order_and_report_for_the_desk(session: Session) -> None:
    dated = add_order(session, ["u-1"], until=datetime(2027, 5, 1, tzinfo=UTC))
    open_ended = add_order(session, ["u-1"], until=None)
    report = add_report(session, "u-1", "finished")
    add_report(session, "u-1", "retracted")
    decision = decide(session, "u-1")
    assert decision == NoticeDecision(
        False,
        (
            f"non-disclosure order LR-{dated.id:06d} until 2027-05-01",
            f"non-disclosure order LR-{open_ended.id:06d} until lifted",
            f"CSAM report {report.id} about the account",
        ),
    )
    later = datetime(2027, 5, 2, tzinfo=UTC)
    assert (
        may_notify_user(session, "u-1", notice_policy=True, now=later)
        .reasons[0]
        .endswith("until lifted")
    )


def test_an_order_counts_from_receipt_and_until_it_ends(session: Session) -> None:
    order = add_order(session, ["u-9"], until=NOW + timedelta(days=1))
    assert not decide(session, "u-9").allowed  # received, not verified yet: already binding
    order.status = "verified"
    session.flush()
    assert not decide(session, "u-9").allowed
    ended = NOW + timedelta(days=1, seconds=1)
    assert may_notify_user(session, "u-9", notice_policy=True, now=ended).allowed
    order.nondisclosure_lifted_at = NOW - timedelta(minutes=1)
    session.flush()
    assert decide(session, "u-9").allowed


def test_many_accounts_in_one_call(session: Session) -> None:
    accounts = [f"bulk-{i}" for i in range(1200)]  # more than one IN (...) batch
    add_order(session, accounts[::300])
    add_report(session, accounts[-1])
    decisions = may_notify_users(session, accounts, notice_policy=True, now=NOW)
    refused = {a for a, d in decisions.items() if not d.allowed}
    assert refused == {*accounts[::300], accounts[-1]}


def test_fails_closed_and_keeps_the_callers_transaction(session: Session) -> None:
    add_report(session, "kept")
    session.execute(text("ALTER TABLE legal_target RENAME TO legal_target_elsewhere"))
    decision = decide(session, "anyone")
    assert not decision.allowed
    assert decision.reasons[0].startswith("notice guard could not decide: ")
    assert may_notify_users(session, ["a", None], notice_policy=True, now=NOW) == {
        "a": decision,
        None: NoticeDecision(False, ("no account named",)),
    }
    # Only the guard's savepoint was rolled back: the caller's work is still there.
    assert session.scalar(select(func.count(Report.id)).where(Report.account_key == "kept")) == 1
    session.rollback()


# --- the property -------------------------------------------------------------------------

ACCOUNTS = ("a", "b", "c")


@dataclass(frozen=True)
class OrderSpec:
    kind: str
    status: str
    targets: frozenset[str]
    until: int | None
    lifted: int | None
    through_parent: bool

    def forbids(self, now: datetime) -> bool:
        return (
            self.kind == "nondisclosure"
            and self.status != "refused"
            and (self.lifted is None or NOW + timedelta(hours=self.lifted) > now)
            and (self.until is None or NOW + timedelta(hours=self.until) > now)
        )


hours = st.none() | st.integers(-48, 48)
orders = st.builds(
    OrderSpec,
    kind=st.sampled_from(["nondisclosure", "nondisclosure", "subpoena"]),
    status=st.sampled_from(REQUEST_STATUSES),
    targets=st.frozensets(st.sampled_from(ACCOUNTS)),
    until=hours,
    lifted=hours,
    through_parent=st.booleans(),
)
reports = st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(REPORT_STATUSES))


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=st.lists(orders, max_size=4),
    made=st.lists(reports, max_size=3),
    now_hours=st.integers(-72, 72),
    policy=st.booleans(),
)
def test_allowed_iff_no_active_order_no_live_report_and_policy(
    db: Database,
    specs: list[OrderSpec],
    made: list[tuple[str, str]],
    now_hours: int,
    policy: bool,
) -> None:
    now = NOW + timedelta(hours=now_hours)
    with db.sessionmaker() as session:
        for spec in specs:
            until = None if spec.until is None else NOW + timedelta(hours=spec.until)
            lifted = None if spec.lifted is None else NOW + timedelta(hours=spec.lifted)
            if spec.through_parent:
                parent = add_order(session, sorted(spec.targets), kind="warrant")
                add_order(
                    session,
                    [],
                    kind=spec.kind,
                    status=spec.status,
                    until=until,
                    lifted_at=lifted,
                    parent_id=parent.id,
                )
            else:
                add_order(
                    session,
                    sorted(spec.targets),
                    kind=spec.kind,
                    status=spec.status,
                    until=until,
                    lifted_at=lifted,
                )
        for account, status in made:
            add_report(session, account, status)
        ordered = {a for spec in specs if spec.forbids(now) for a in spec.targets}
        reported = {a for a, status in made if status != "retracted"}
        batch = may_notify_users(session, ACCOUNTS, notice_policy=policy, now=now)
        for account in ACCOUNTS:
            expected = policy and account not in ordered and account not in reported
            one = may_notify_user(session, account, notice_policy=policy, now=now)
            assert one.allowed is expected
            assert batch[account] == one
        under_order = {
            a for a in ACCOUNTS if any(r.startswith("non-disclosure") for r in batch[a].reasons)
        }
        assert under_order == ordered
        session.rollback()


# --- webhooks: decided at each send, whatever path queued them ----------------------------


@pytest.fixture
def desk(db: Database, tmp_path: Path) -> Iterator[Api]:
    """The API with the platform's policy allowing notice once nothing forbids it."""
    yield from make_api(
        db,
        tmp_path / "api-home",
        legal_notice_after_order=True,
        webhook_secret=SecretStr(SECRET),
        webhook_timeout_seconds=2.0,
        webhook_backoff_seconds=1.0,
    )


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=2.0) as http:
        yield http


def account_of(request: Received) -> str | None:
    uploader = request.json["uploader"]
    return None if uploader is None else uploader["account_id"]


def signed(request: Received) -> bool:
    return actions.verify_signature(
        SECRET.encode(),
        request.headers["X-Vigil-Timestamp"],
        request.body,
        request.headers["X-Vigil-Signature"],
        now=int(request.headers["X-Vigil-Timestamp"]),
    )


def match_upload(api: Api, data: bytes, account: str, ref: str) -> None:
    uploader = json.dumps({"account_id": account, "screen_name": f"sn-{account}"})
    response = upload(api, "/v1/match", data, "match", content_ref=ref, uploader=uploader)
    assert response.status_code == 200, response.text
    assert response.json()["matches"], response.text


def deliver(api: Api, client: httpx.Client, now: datetime) -> actions.DeliveryRound:
    """One round, one call at a time (so scripted answers go to rows in order)."""
    return actions.deliver_due(api.database, api.settings, client=client, now=now, concurrency=1)


def delivery_of(db: Database, ref: str) -> ActionDelivery:
    with db.session() as session:
        rows = [
            row
            for row in session.scalars(select(ActionDelivery).order_by(ActionDelivery.id))
            if row.payload["content"]["content_ref"] == ref
        ]
    assert len(rows) == 1, ref
    return rows[0]


def test_no_notice_permitting_webhook_while_an_order_is_active(
    desk: Api, receiver: Receiver, client: httpx.Client, tmp_path: Path
) -> None:
    api, db = desk, desk.database
    data = png_bytes(21)
    make_bank(api, "known", [{"signal_type": "md5", "value": hashed(api, data)["md5"]}])
    with db.session() as session:
        actions.create_rule(
            session, name="takedown", bank="known", action="remove_content", url=receiver.url
        )

    # Before any order: queued and tried; the first two die, the third is to be retried.
    for ref in ("a-dead-1", "a-dead-2", "a-retrying"):
        match_upload(api, data, "A", ref)
    receiver.answer(400, 400, 503)
    first = deliver(api, client, utcnow() + timedelta(seconds=1))
    assert (first.dead, first.retrying) == (2, 1)
    assert [(account_of(r), r.json["may_notify_user"]) for r in receiver.requests] == [
        ("A", True)
    ] * 3  # nothing forbade it then
    before = {r.headers["Idempotency-Key"]: r.body for r in receiver.requests}
    match_upload(api, data, "A", "a-queued-before")  # queued, not yet sent

    # The order arrives (received: binding before it is verified); C is reported.
    until = utcnow() + timedelta(days=30)
    with db.session() as session:
        add_order(session, ["A"], until=until)
        add_report(session, "C", "draft")

    # Every path that can queue a delivery, after the order.
    match_upload(api, data, "A", "a-match-after")
    flagged = api.client.post(
        "/v1/flags",
        files={"file": ("photo.png", data, "image/png")},
        data={
            "content_ref": "a-flag-after",
            "uploader": json.dumps({"account_id": "A"}),
            "flag": json.dumps({"source": "user_report", "reporter": "someone"}),
        },
        headers=api.auth("match"),
    )
    assert flagged.status_code == 201, flagged.text
    match_upload(api, data, "B", "b-match")
    match_upload(api, data, "C", "c-match")
    image = tmp_path / "scanned.png"
    image.write_bytes(data)
    recorder = HashRecorder(db)
    options = scan_options(fast_decode=True, vpdq_seconds_per_hash=1.0)
    matcher = BankMatcher.from_database(db)
    [scanned] = scan_files([image], MediaLimits(), options, matcher, recorder)
    recorder.flush()
    assert scanned.outcome.matches
    with db.session() as session:
        queued = session.scalar(select(func.count(ActionDelivery.id)))
    hma = api.client.post(
        "/m/lookup", files={"photo": ("photo.png", data, "image/png")}, headers=api.auth("match")
    )
    assert hma.status_code == 200, hma.text
    with db.session() as session:  # the HMA routes record nothing, so queue nothing
        assert session.scalar(select(func.count(ActionDelivery.id))) == queued
        # Redelivery of payloads queued before the order existed.
        actions.retry_delivery(session, delivery_of(db, "a-dead-1").id)
        assert actions.retry_dead(session) == 1

    receiver.requests.clear()
    second = deliver(api, client, utcnow() + timedelta(minutes=5))
    assert (second.claimed, second.delivered) == (9, 9)
    sent = {r.json["content"]["content_ref"]: r for r in receiver.requests}
    assert len(sent) == len(receiver.requests) == 9
    for ref, request in sent.items():
        assert signed(request), ref  # signed over the body as sent, flag included
        expected = account_of(request) == "B"  # A: the order; C: the report; scan: no one
        assert request.json["may_notify_user"] is expected, ref
    assert {account_of(r) for r in receiver.requests} == {"A", "B", "C", None}
    assert {ref for ref, r in sent.items() if account_of(r) == "A"} == {
        "a-dead-1",
        "a-dead-2",
        "a-retrying",
        "a-queued-before",
        "a-match-after",
        "a-flag-after",
    }
    for ref in ("a-dead-1", "a-dead-2", "a-retrying"):
        again = sent[ref]
        key = again.headers["Idempotency-Key"]
        assert json.loads(before[key])["may_notify_user"] is True  # the same delivery...
        assert again.body != before[key]  # ...resent with the answer of its own time
    with db.session() as session:  # what is stored stays as queued: false
        stored = session.scalars(select(ActionDelivery)).all()
        assert {row.payload["may_notify_user"] for row in stored} == {False}

    # The order runs out: the next send for A may tell the user (B still may, C may not).
    for account in ("A", "B", "C"):
        match_upload(api, data, account, f"{account}-after-expiry")
    receiver.requests.clear()
    third = deliver(api, client, until + timedelta(seconds=1))
    assert third.delivered == 3
    assert {account_of(r): r.json["may_notify_user"] for r in receiver.requests} == {
        "A": True,
        "B": True,
        "C": False,
    }
    assert all(signed(r) for r in receiver.requests)


def test_an_order_between_claims_changes_the_next_attempt(
    db: Database, tmp_path: Path, receiver: Receiver, client: httpx.Client
) -> None:
    """Claim by claim: the flag is the guard's answer in the claiming transaction."""
    for api in make_api(db, tmp_path / "h", webhook_secret=SecretStr(SECRET)):
        data = png_bytes(22)
        make_bank(api, "known", [{"signal_type": "md5", "value": hashed(api, data)["md5"]}])
        with db.session() as session:
            actions.create_rule(
                session, name="takedown", bank="known", action="remove_content", url=receiver.url
            )
        match_upload(api, data, "D", "d-1")
        lease = actions.lease_for(api.settings)
        now = utcnow() + timedelta(seconds=1)
        [claim] = actions.claim_due(db, lease=lease, now=now, notice_policy=True)
        assert claim.payload["may_notify_user"] is True
        [default] = actions.claim_due(db, lease=lease, now=now + 2 * lease)
        assert default.payload["may_notify_user"] is False  # the policy defaults to no notice
        with db.session() as session:
            add_order(session, ["D"], until=None)
        [held] = actions.claim_due(db, lease=lease, now=now + 4 * lease, notice_policy=True)
        assert held.payload["may_notify_user"] is False
        assert held.idempotency_key == claim.idempotency_key


def test_a_guard_failure_sends_no_permission(
    db: Database, tmp_path: Path, receiver: Receiver, client: httpx.Client, monkeypatch: Any
) -> None:
    for api in make_api(
        db, tmp_path / "h", webhook_secret=SecretStr(SECRET), legal_notice_after_order=True
    ):
        data = png_bytes(23)
        make_bank(api, "known", [{"signal_type": "md5", "value": hashed(api, data)["md5"]}])
        with db.session() as session:
            actions.create_rule(
                session, name="takedown", bank="known", action="remove_content", url=receiver.url
            )
        match_upload(api, data, "E", "e-1")

        def broken(*args: object, **kwargs: object) -> dict[str, list[str]]:
            raise OperationalError("SELECT ...", {}, Exception("connection lost"))

        monkeypatch.setattr(notice_module, "_orders", broken)
        assert deliver(api, client, utcnow() + timedelta(seconds=1)).delivered == 1
        [request] = receiver.requests
        assert request.json["may_notify_user"] is False and signed(request)


def test_importing_actions_loads_nothing_of_the_legal_desk() -> None:
    code = (
        "import sys, vigil.actions, vigil.pipeline.recording\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('vigil.legal'))\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- GET /v1/accounts/{account_id}/notice -------------------------------------------------


def test_notice_endpoint_needs_a_match_token(desk: Api) -> None:
    path = "/v1/accounts/F/notice"
    missing = desk.client.get(path)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert (
        desk.client.get(path, headers={"Authorization": "Bearer vgl_nonsense"}).status_code == 401
    )
    assert desk.client.get(path, headers=desk.auth("hash")).status_code == 403
    assert desk.client.get(path, headers=desk.auth("curate")).status_code == 403
    assert desk.client.get(path, headers=desk.auth("match")).status_code == 200
    assert desk.client.get(path, headers=desk.auth("admin")).status_code == 200
    too_long = desk.client.get(f"/v1/accounts/{'x' * 257}/notice", headers=desk.auth("match"))
    assert too_long.status_code == 422
    longest = desk.client.get(f"/v1/accounts/{'x' * 256}/notice", headers=desk.auth("match"))
    assert longest.status_code == 200
    document = desk.client.get("/openapi.json").json()
    route = document["paths"]["/v1/accounts/{account_id}/notice"]["get"]
    assert route["security"] == [{"bearer": []}]


def test_notice_endpoint_follows_the_guard_and_reveals_no_reason(desk: Api) -> None:
    def ask(account: str) -> dict[str, Any]:
        response = desk.client.get(f"/v1/accounts/{account}/notice", headers=desk.auth("match"))
        assert response.status_code == 200, response.text
        assert "LR-" not in response.text and "report" not in response.text
        body: dict[str, Any] = response.json()
        assert set(body) == {"account_id", "may_notify_user"}
        return body

    assert ask("G") == {"account_id": "G", "may_notify_user": True}
    with desk.database.session() as session:
        order = add_order(session, ["G"], until=None)
        add_report(session, "H", "submitted")
        add_report(session, "I", "retracted")
    assert ask("G") == {"account_id": "G", "may_notify_user": False}
    assert ask("H")["may_notify_user"] is False
    assert ask("I")["may_notify_user"] is True
    with desk.database.session() as session:
        lifted = session.get(LegalRequest, order.id)
        assert lifted is not None
        lifted.nondisclosure_lifted_at = utcnow() - timedelta(seconds=1)
    assert ask("G")["may_notify_user"] is True


def test_notice_endpoint_with_the_default_policy_says_no(api: Api) -> None:
    response = api.client.get("/v1/accounts/J/notice", headers=api.auth("match"))
    assert response.json() == {"account_id": "J", "may_notify_user": False}
