"""The legal desk's services: intake and linking, warning signs, checklists (the emergency's
second verifier), deadlines and reminders, scoped productions and their single-use download,
preservation, destruction, orders, and answer times. Both databases; the clock is passed in.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from legal_helpers import (
    ACCOUNT,
    AGENCY,
    AGENCY_DOMAIN,
    IDENTITY,
    NOW,
    PASSWORD,
    LegalWorld,
    confirm_secret,
    make_world,
)
from vigil.legal import (
    LegalError,
    NewTarget,
    NotVerified,
    OutOfScope,
    answer_times,
    build_production,
    carry_out_preservation,
    dashboard,
    get_request,
    remind_and_escalate,
    take_download,
    tick,
)
from vigil.legal.deadlines import add_working_days, due_at
from vigil.legal.desk import parse_reference
from vigil.legal.intake import lookalike_of, parse_targets
from vigil.legal.package import open_package
from vigil.legal.portal import PortalAuthError, confirm, decide_domain, register, sign_in
from vigil.legal.production import SUBSCRIBER_FIELDS, acknowledge_order, carry_out_destroy
from vigil.legal.verification import refuse
from vigil.store import (
    AuditEvent,
    Database,
    LegalRequest,
    MailMessage,
    PreservationRequest,
    Production,
    VaultClock,
    VaultItem,
)
from vigil.store.legal_models import TARGET_KINDS
from vigil.vault.accounts import connectors_from_settings

pytestmark = pytest.mark.usefixtures("cheap_passwords")


@pytest.fixture
def world(db: Database, tmp_path: Path) -> LegalWorld:
    return make_world(db, tmp_path)


def _codes(request: LegalRequest) -> set[str]:
    return {signal["code"] for signal in request.signals}


def test_a_portal_subpoena_is_linked_timed_and_its_document_sealed(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(
            session,
            targets=(NewTarget("screen_name", "suspect_screen"), NewTarget("hash", "0" * 64)),
        )
        request = get_request(session, request_id)
        assert request.requester_email == f"officer@{AGENCY_DOMAIN}"
        assert [(t.kind, t.account_id) for t in request.targets] == [
            ("screen_name", ACCOUNT),
            ("hash", None),
        ]
        assert request.targets[0].linked == {"uploads": 2, "reports": [], "vault_items": 2}
        assert request.due_at == add_working_days(NOW, 5) == NOW + timedelta(days=7)
        document = session.get(VaultItem, request.document_item_id)
        assert document is not None and document.kind == "document"
        assert _codes(request) == {"first_request", "unresolved"}


def test_due_times_follow_the_kind_and_the_process_date(world: LegalWorld) -> None:
    settings = world.settings
    assert due_at("emergency", NOW, None, settings) == NOW + timedelta(hours=1)
    assert due_at("preservation", NOW, None, settings) == NOW + timedelta(hours=24)
    soon = NOW + timedelta(days=2)
    assert due_at("subpoena", NOW, soon, settings) == soon
    assert due_at("warrant", NOW, NOW + timedelta(days=30), settings) == NOW + timedelta(days=7)
    friday = NOW + timedelta(days=4)
    assert add_working_days(friday, 1) == friday + timedelta(days=3)


@pytest.mark.parametrize(
    ("email", "code"),
    [
        ("cop@gmail.com", "free_mail"),
        ("cop@po1ice.example.gov", "lookalike_domain"),
        ("cop@police-example.gov.evil.test", "lookalike_domain"),
        ("cop@sheriff.example.org", "unlisted_domain"),
    ],
)
def test_manual_requests_from_odd_domains_are_flagged(
    world: LegalWorld, email: str, code: str
) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(
            session, channel="manual", requester_name="A Caller", requester_email=email
        )
        assert code in _codes(get_request(session, request_id))


def test_agency_mismatch_broad_scope_and_foreign_are_flagged(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        first = world.file(session)
        second = world.file(
            session,
            agency="Another Agency",
            targets=tuple(NewTarget("account", f"acct-{n}") for n in range(12)),
            records_from=NOW - timedelta(days=800),
        )
        foreign = world.file(session, "foreign", country="GB")
        assert "first_request" in _codes(get_request(session, first))
        codes = _codes(get_request(session, second))
        assert {"agency_mismatch", "broad_scope"} <= codes and "first_request" not in codes
        assert "foreign" in _codes(get_request(session, foreign))


def test_lookalike_detection() -> None:
    known = ["fbi.gov", "police.example.gov"]
    assert lookalike_of("fbi.gov", known) is None
    assert lookalike_of("field.fbi.gov", known) is None
    assert lookalike_of("fbi-gov.com", known) == "fbi.gov"
    assert lookalike_of("fbl.gov", known) == "fbi.gov"
    assert lookalike_of("xn--fbi-xyz.gov", known) == "fbi.gov"
    assert lookalike_of("unrelated.org", known) is None


def test_nothing_is_produced_before_the_checklist_is_complete(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(session)
        with pytest.raises(LegalError, match="number source is required"):
            tick(
                session,
                request_id,
                "identity",
                world.bob,
                {**IDENTITY, "number_source": ""},
                now=NOW,
            )
        tick(session, request_id, "identity", world.alice, IDENTITY, now=NOW)
        with pytest.raises(NotVerified, match="Document signed"):
            build_production(
                session,
                world.vault,
                request_id,
                ["subscriber"],
                user=world.alice,
                connectors=connectors_from_settings(world.settings),
                settings=world.settings,
                now=NOW,
            )


def _produce(world: LegalWorld, session, request_id: int, categories: list[str]):  # type: ignore[no-untyped-def]
    return build_production(
        session,
        world.vault,
        request_id,
        categories,
        user=world.alice,
        connectors=connectors_from_settings(world.settings),
        settings=world.settings,
        now=NOW + timedelta(hours=2),
    )


def test_a_subpoena_yields_basic_subscriber_information_only(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(session)
        world.verify(session, request_id)
        for category in ("records", "content"):
            with pytest.raises(OutOfScope, match="outside a subpoena's scope"):
                _produce(world, session, request_id, ["subscriber", category])
        built = _produce(world, session, request_id, ["subscriber"])
        session.commit()
        files = open_package(_download(world, session, built.download_secret), built.password)
        assert sorted(n for n in files if n.startswith("data/")) == [
            "data/subscriber.csv",
            "data/subscriber.json",
        ]
        header = files["data/subscriber.csv"].decode().splitlines()[0].split(",")
        assert tuple(header) == SUBSCRIBER_FIELDS
        assert b"demo-device" not in files["data/subscriber.json"]  # devices are not BSI
        assert b"Demo Subscriber" in files["data/subscriber.json"]
        request = get_request(session, request_id)
        assert request.status == "produced" and request.answered_at == NOW + timedelta(hours=2)


def _download(world: LegalWorld, session, secret: str) -> bytes:  # type: ignore[no-untyped-def]
    production, data = take_download(
        session,
        world.vault,
        secret,
        officer_id=world.officer.id,
        officer_email=world.officer.email,
        address="198.51.100.7",
        now=NOW + timedelta(hours=3),
    )
    session.commit()
    assert production.status == "downloaded"
    return data


def test_the_download_is_single_use_expiring_and_audited(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(session, "warrant")
        world.verify(session, request_id)
        built = _produce(world, session, request_id, ["subscriber", "records", "content"])
        session.commit()
        mailed = session.scalars(
            select(MailMessage.body).where(
                MailMessage.purpose == "production", MailMessage.to_address == world.officer.email
            )
        ).one()
        assert f"/portal/download/{built.download_secret}" in mailed
        assert built.password not in mailed  # the password goes by phone
        data = _download(world, session, built.download_secret)
        files = open_package(data, built.password)
        assert len([n for n in files if n.startswith("content/")]) == 2
        with pytest.raises(LegalError, match="already used"):
            _download(world, session, built.download_secret)
        events = session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "legal.download")
        ).all()
        assert events == ["legal.download"]
        reads = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "vault.read")
        )
        assert reads == 2  # each content file read for the production is audited


def test_an_expired_download_is_refused(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(session)
        world.verify(session, request_id)
        built = _produce(world, session, request_id, ["subscriber"])
        session.commit()
        later = NOW + timedelta(hours=2 + world.settings.legal_download_hours + 1)
        remind_and_escalate(session, world.settings, later)
        session.commit()
        with pytest.raises(LegalError):
            _download(world, session, built.download_secret)
        session.expire_all()
        assert session.get(Production, built.production.id).status == "expired"  # type: ignore[union-attr]


def test_an_emergency_needs_a_second_legal_user(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(session, "emergency")
        for item, details in (
            ("identity", IDENTITY),
            ("danger", {"basis": "threat"}),
            ("dates", {}),
        ):
            tick(session, request_id, item, world.alice, details, now=NOW)
        with pytest.raises(NotVerified):
            _produce(world, session, request_id, ["subscriber"])
        with pytest.raises(LegalError, match="another legal user"):
            tick(
                session,
                request_id,
                "second_verification",
                world.alice,
                {"categories": ["subscriber"]},
                now=NOW,
            )
        tick(
            session,
            request_id,
            "second_verification",
            world.bob,
            {"categories": ["subscriber"]},
            now=NOW,
        )
        with pytest.raises(OutOfScope, match="the verified emergency needs only subscriber"):
            _produce(world, session, request_id, ["records"])
        built = _produce(world, session, request_id, ["subscriber"])
        assert built.production.categories == ["subscriber"]


def test_preservation_keeps_what_is_held_and_asks_the_vault_for_the_rest(
    world: LegalWorld,
) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(session, "preservation")
        world.verify(session, request_id)
        created = carry_out_preservation(session, request_id, world.alice, now=NOW)
        session.commit()
        assert [(p.account_key, p.reference, len(p.upload_event_ids)) for p in created] == [
            (ACCOUNT, f"LR-{request_id:06d}", 2)
        ]
        clocks = session.scalars(
            select(VaultClock).where(
                VaultClock.reference == f"LR-{request_id:06d}",
                VaultClock.reason == "preservation_request",
            )
        ).all()
        assert {c.item_id for c in clocks} >= set(world.content_item_ids)
        assert all(c.expires_at == NOW + timedelta(days=90) for c in clocks)
        board = dashboard(session, world.settings, NOW + timedelta(days=80))
        assert len(board.expiring_preservations) == len(clocks)
        assert session.scalar(select(func.count()).select_from(PreservationRequest)) == 1


def test_destroy_shreds_the_accounts_items(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(session, "destroy")
        world.verify(session, request_id)
        shredded = carry_out_destroy(session, world.vault, request_id, world.alice, now=NOW)
        assert sorted(shredded) == sorted(world.content_item_ids)


def test_orders_are_recorded_and_refusals_close(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        parent = world.file(session)
        order = world.file(
            session,
            "nondisclosure",
            targets=(),
            parent_id=parent,
            nondisclosure_until=NOW + timedelta(days=180),
        )
        request = get_request(session, order)
        assert [t.account_id for t in request.targets] == [ACCOUNT]
        with pytest.raises(NotVerified):
            acknowledge_order(session, order, world.alice, now=NOW)
        world.verify(session, order)
        acknowledge_order(session, order, world.alice, now=NOW)
        refuse(session, parent, world.alice, "not genuine: the agency denied sending it", now=NOW)
        assert get_request(session, parent).status == "refused"


def test_reminders_go_to_the_assignee_and_overdue_requests_to_leads(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        request_id = world.file(session, "emergency")
        get_request(session, request_id).assignee_id = world.bob.user_id
        first = remind_and_escalate(session, world.settings, NOW + timedelta(minutes=50))
        again = remind_and_escalate(session, world.settings, NOW + timedelta(minutes=55))
        late = remind_and_escalate(session, world.settings, NOW + timedelta(minutes=61))
        session.commit()
        assert (first.reminded, again.reminded, late.escalated) == ([request_id], [], [request_id])
        mails = session.execute(
            select(MailMessage.purpose, MailMessage.to_address).order_by(MailMessage.id)
        ).all()
        assert ("reminder", "bob@platform.test") in mails
        assert ("escalation", "lena@platform.test") in mails
        assert ("escalation", "alice@platform.test") not in mails


def test_answer_times_per_kind(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        for hours in (1, 2, 3, 4, 200):
            request_id = world.file(session)
            get_request(session, request_id).answered_at = NOW + timedelta(hours=hours)
        session.commit()
        subpoenas = {t.kind: t for t in answer_times(session)}["subpoena"]
        assert subpoenas.answered == 5
        assert subpoenas.median == timedelta(hours=3)
        assert subpoenas.p90 == timedelta(hours=200)
        assert subpoenas.within_goal == 4


def test_officer_registration_confirmation_and_vetting(world: LegalWorld) -> None:
    with world.db.sessionmaker() as session:
        with pytest.raises(LegalError, match="free-mail"):
            register(
                session,
                email="cop@gmail.com",
                name="X",
                agency=AGENCY,
                password=PASSWORD,
                settings=world.settings,
                now=NOW,
            )
        officer = register(
            session,
            email="deputy@sheriff.example.org",
            name="Deputy Example",
            agency="Example Sheriff",
            password=PASSWORD,
            settings=world.settings,
            now=NOW,
        )
        secret = confirm_secret(session, officer.email)
        with pytest.raises(PortalAuthError):
            sign_in(session, officer.email, PASSWORD, lifetime=timedelta(hours=1), now=NOW)
        assert confirm(session, secret, now=NOW).status == "pending_vetting"
        with pytest.raises(LegalError, match="not valid"):
            confirm(session, secret, now=NOW)  # one-time
        decide_domain(session, "sheriff.example.org", allow=True, user=world.alice, now=NOW)
        assert officer.status == "active"
        assert sign_in(session, officer.email, PASSWORD, lifetime=timedelta(hours=1), now=NOW)


@given(st.integers(min_value=1, max_value=10**12))
def test_request_numbers_round_trip(number: int) -> None:
    assert parse_reference(f"LR-{number:06d}") == number
    assert parse_reference(f"lr-{number}") == number


@given(st.text(max_size=40))
def test_request_numbers_refuse_anything_else(text: str) -> None:
    try:
        parsed = parse_reference(text)
    except ValueError:
        return
    assert parsed >= 0 and text.strip().upper().removeprefix("LR-").isdigit()


@given(st.lists(st.text(max_size=60), max_size=8))
def test_target_lines_parse_or_are_refused_with_their_number(lines: list[str]) -> None:
    try:
        targets = parse_targets(lines)
    except LegalError as error:
        assert str(error).startswith("target ")
        return
    assert len(targets) == sum(1 for line in lines if line.strip())
    assert all(t.kind in TARGET_KINDS for t in targets)


def test_target_lines() -> None:
    assert parse_targets(["account:acct-1", "", " hash : ABC "]) == [
        NewTarget("account", "acct-1"),
        NewTarget("hash", "ABC"),
    ]
    with pytest.raises(LegalError, match="target 2"):
        parse_targets(["account:a", "phone:555"])
