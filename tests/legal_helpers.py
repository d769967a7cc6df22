"""A small legal-desk world for the tests: two legal users and an admin, an allowlisted agency
domain with an active officer, and an account with two uploads whose (random) bytes are in
the vault. Nothing here is real media or a real person."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from vigil.auth.users import create_user
from vigil.config import Settings
from vigil.legal import DeskUser, NewRequest, NewTarget, file_request, tick
from vigil.legal.portal import confirm, decide_domain, register
from vigil.store import Database, MailMessage, Officer, UploadEvent, record_hashes
from vigil.vault import Clock, Vault, open_vault, preserve

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
PASSWORD = "correct horse battery staple"
ACCOUNT = "acct-1001"
OTHER_ACCOUNT = "acct-2002"
AGENCY_DOMAIN = "police.example.gov"
AGENCY = "Example County Police"
PDF = b"%PDF-1.4\n% a benign test document\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
IDENTITY = {
    "direction": "we_called",
    "number": "+1-555-0100",
    "number_source": "agency website, contact page",
    "spoke_with": "Sgt. Example",
    "when": "2026-11-23 09:30 UTC",
}


def settings_for(home: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "database_url": database_url,
        "account_data_synthetic": True,
        "legal_custodian_name": "Casey Custodian",
        "legal_organisation": "Example Platform Inc.",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class LegalWorld:
    db: Database
    vault: Vault
    settings: Settings
    alice: DeskUser
    bob: DeskUser
    admin: DeskUser
    officer: Officer
    content_item_ids: list[int]

    def file(
        self,
        session: Session,
        kind: str = "subpoena",
        *,
        targets: tuple[NewTarget, ...] = (NewTarget("account", ACCOUNT),),
        now: datetime = NOW,
        channel: str = "portal",
        **fields: object,
    ) -> int:
        values: dict[str, object] = {
            "kind": kind,
            "requester_name": "ignored for the portal",
            "agency": AGENCY,
            "targets": targets,
            "case_number": "CASE-1",
            "records_from": NOW - timedelta(days=90),
            "records_to": NOW,
            "description": "A child is in danger." if kind == "emergency" else None,
            **fields,
        }
        request = file_request(
            session,
            self.vault,
            NewRequest(**values),  # type: ignore[arg-type]
            channel=channel,
            created_by="test",
            settings=self.settings,
            now=now,
            officer=self.officer if channel == "portal" else None,
            document=None if kind == "emergency" else PDF,
            document_name="process.pdf",
        )
        session.commit()
        return request.id

    def verify(
        self, session: Session, request_id: int, *, categories: tuple[str, ...] = ()
    ) -> None:
        """Tick the whole checklist (Alice; Bob gives an emergency's second verification)."""
        from vigil.legal import get_request, missing

        request = get_request(session, request_id)
        for item in missing(request):
            if item.key == "second_verification":
                tick(
                    session,
                    request_id,
                    item.key,
                    self.bob,
                    {"categories": list(categories)},
                    now=NOW,
                )
                continue
            details = IDENTITY if item.key == "identity" else {"basis": "x", "advice": "proceed"}
            tick(session, request_id, item.key, self.alice, details, now=NOW)
        session.commit()


def make_world(db: Database, tmp_path: Path) -> LegalWorld:
    settings = settings_for(tmp_path / "home", str(db.engine.url))
    vault = open_vault(settings)  # the app's vault too (`create_app` over these settings)
    with db.sessionmaker() as session:
        users = {
            name: create_user(session, name, PASSWORD, roles=roles, email=f"{name}@platform.test")
            for name, roles in (
                ("alice", ["legal"]),
                ("bob", ["legal"]),
                ("lena", ["legal", "lead"]),
                ("root", ["admin"]),
            )
        }
        session.flush()
        desk = {name: DeskUser.of(user) for name, user in users.items()}
        decide_domain(
            session, AGENCY_DOMAIN, allow=True, user=desk["alice"], now=NOW, agency=AGENCY
        )
        officer = register(
            session,
            email=f"officer@{AGENCY_DOMAIN}",
            name="Officer Olivia Example",
            agency=AGENCY,
            password=PASSWORD,
            settings=settings,
            now=NOW,
        )
        confirm(session, confirm_secret(session, officer.email), now=NOW)
        item_ids = []
        for number in range(2):
            data = os.urandom(256)
            content = record_hashes(
                session,
                sha256=hashlib.sha256(data).hexdigest(),
                md5=hashlib.md5(data).hexdigest(),
                size=len(data),
                media_type="image",
                now=NOW,
            )
            session.add(
                UploadEvent(
                    content_id=content.id,
                    content_ref=f"upload-{number}",
                    account_id=ACCOUNT,
                    screen_name="suspect_screen",
                    ip_address=f"203.0.113.{number + 1}",
                    event_time=NOW - timedelta(days=10 - number),
                    received=NOW - timedelta(days=10 - number),
                    file_name=f"file-{number}.jpg",
                )
            )
            kept = preserve(
                session,
                vault,
                kind="content",
                data=data,
                clock=Clock.voluntary(NOW + timedelta(days=365), "test"),
                now=NOW,
                content_id=content.id,
                media_type="image/jpeg",
            )
            item_ids.append(kept.item.id)
        session.commit()
        session.refresh(officer)
        session.expunge(officer)
    return LegalWorld(
        db, vault, settings, desk["alice"], desk["bob"], desk["root"], officer, item_ids
    )


def confirm_secret(session: Session, email: str) -> str:
    """The one-time secret in the newest confirmation mail to `email`."""
    from sqlalchemy import select

    body = session.scalars(
        select(MailMessage.body)
        .where(MailMessage.to_address == email, MailMessage.purpose == "confirm")
        .order_by(MailMessage.id.desc())
    ).first()
    assert body is not None, f"no confirmation mail to {email}"
    return body.split("token=", 1)[1].split()[0]
