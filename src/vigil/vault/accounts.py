"""What the platform knows about an account: for the report's `personOrUserReported`, the
vault's preserved account data and, later, legal productions.

Vigil holds only what came with uploads (account id, screen name, the upload's address and
time). A platform supplies the rest (display name, profile URL, login and registration
addresses, device ids, whether it disabled the account) through a `UserDataConnector`:
a small interface a deployment implements over its own user service. `UploadsConnector` is
the default: what Vigil recorded itself. `JsonDirectoryConnector` reads one JSON file per
account, for platforms that export account data in batches (and for tests).
`SyntheticConnector` makes up clearly fake subscriber records, for the demo.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.store import UploadEvent

MAX_ACCOUNT_FILE_BYTES = 1024 * 1024
_SAFE_NAME = re.compile(r"[A-Za-z0-9._@-]{1,200}")


@dataclass(frozen=True)
class IpEvent:
    ip_address: str
    event_name: str
    """Login, Registration, Purchase, Upload, Other or Unknown."""
    at: datetime
    port: int | None = None
    possible_proxy: bool | None = None


@dataclass(frozen=True)
class AccountData:
    """Everything known about one account that a report may carry."""

    account_id: str
    screen_name: str | None = None
    display_name: str | None = None
    profile_url: str | None = None
    ip_events: tuple[IpEvent, ...] = ()
    device_ids: tuple[str, ...] = ()
    temporarily_disabled: bool | None = None
    permanently_disabled: bool | None = None
    email: str | None = None
    phone: str | None = None
    postal_address: str | None = None
    registered_at: datetime | None = None
    service_types: tuple[str, ...] = ()
    payment: str | None = None
    """Means and source of payment, as the platform describes it (card type and last
    digits, bank account): legal process only, never in a report."""

    def merged(self, other: AccountData) -> AccountData:
        """This data completed by `other`'s (its fields fill what this one lacks)."""
        return replace(
            self,
            screen_name=self.screen_name or other.screen_name,
            display_name=self.display_name or other.display_name,
            profile_url=self.profile_url or other.profile_url,
            ip_events=tuple(dict.fromkeys((*self.ip_events, *other.ip_events))),
            device_ids=tuple(dict.fromkeys((*self.device_ids, *other.device_ids))),
            temporarily_disabled=self.temporarily_disabled
            if self.temporarily_disabled is not None
            else other.temporarily_disabled,
            permanently_disabled=self.permanently_disabled
            if self.permanently_disabled is not None
            else other.permanently_disabled,
            email=self.email or other.email,
            phone=self.phone or other.phone,
            postal_address=self.postal_address or other.postal_address,
            registered_at=self.registered_at or other.registered_at,
            service_types=tuple(dict.fromkeys((*self.service_types, *other.service_types))),
            payment=self.payment or other.payment,
        )


class UserDataConnector(Protocol):
    """A platform's source of account data; None when it knows nothing of the account."""

    def account(self, session: Session, account_id: str) -> AccountData | None: ...


@dataclass(frozen=True)
class UploadsConnector:
    """What Vigil recorded with the account's uploads: screen name and upload addresses."""

    def account(self, session: Session, account_id: str) -> AccountData | None:
        events = list(
            session.scalars(
                select(UploadEvent)
                .where(UploadEvent.account_id == account_id)
                .order_by(UploadEvent.id)
            )
        )
        if not events:
            return None
        return AccountData(
            account_id=account_id,
            screen_name=next((e.screen_name for e in reversed(events) if e.screen_name), None),
            ip_events=tuple(
                IpEvent(e.ip_address, "Upload", e.event_time or e.received)
                for e in events
                if e.ip_address
            ),
        )


@dataclass(frozen=True)
class JsonDirectoryConnector:
    """`<folder>/<account id>.json` per account, e.g. `{"display_name": "...",
    "profile_url": "...", "ip_events": [{"ip_address": "...", "event_name": "Login",
    "at": "2026-11-20T09:00:00+00:00"}], "device_ids": ["..."],
    "temporarily_disabled": true, "email": "...", "phone": "...", "postal_address": "...",
    "registered_at": "...", "service_types": ["..."], "payment": "..."}`. Files over 1 MiB,
    unsafe names and malformed JSON are refused with ValueError."""

    folder: Path
    _cache: dict[str, AccountData | None] = field(default_factory=dict, compare=False)

    def account(self, session: Session, account_id: str) -> AccountData | None:
        if not _SAFE_NAME.fullmatch(account_id) or account_id.startswith("."):
            return None
        path = self.folder / f"{account_id}.json"
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_ACCOUNT_FILE_BYTES:
            raise ValueError(f"{path} is larger than {MAX_ACCOUNT_FILE_BYTES} bytes")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return AccountData(
                account_id=account_id,
                screen_name=data.get("screen_name"),
                display_name=data.get("display_name"),
                profile_url=data.get("profile_url"),
                ip_events=tuple(
                    IpEvent(
                        str(e["ip_address"]),
                        str(e.get("event_name", "Unknown")),
                        datetime.fromisoformat(e["at"]),
                        e.get("port"),
                        e.get("possible_proxy"),
                    )
                    for e in data.get("ip_events", [])
                ),
                device_ids=tuple(str(d) for d in data.get("device_ids", [])),
                temporarily_disabled=data.get("temporarily_disabled"),
                permanently_disabled=data.get("permanently_disabled"),
                email=data.get("email"),
                phone=data.get("phone"),
                postal_address=data.get("postal_address"),
                registered_at=datetime.fromisoformat(data["registered_at"])
                if data.get("registered_at")
                else None,
                service_types=tuple(str(t) for t in data.get("service_types", [])),
                payment=data.get("payment"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}: not valid account data ({error})") from error


@dataclass(frozen=True)
class SyntheticConnector:
    """Made-up subscriber records for any account, derived from its id: for the demo and
    tests, where no platform stands behind Vigil. Clearly fake (`Demo Subscriber`, example.com
    addresses, documentation IP ranges 192.0.2.0/24 and 198.51.100.0/24)."""

    def account(self, session: Session, account_id: str) -> AccountData | None:
        number = int(hashlib.sha256(account_id.encode("utf-8")).hexdigest()[:8], 16)
        registered = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=number % 600)
        return AccountData(
            account_id=account_id,
            display_name=f"Demo Subscriber {number % 10_000:04d}",
            email=f"subscriber{number % 10_000:04d}@example.com",
            phone=f"+1-555-01{number % 100:02d}",
            postal_address=f"{number % 900 + 100} Example Street, Springfield",
            registered_at=registered,
            service_types=("free account", "photo sharing"),
            payment="none (free service)",
            ip_events=(
                IpEvent(f"192.0.2.{number % 250 + 1}", "Registration", registered),
                IpEvent(
                    f"198.51.100.{number % 250 + 1}",
                    "Login",
                    registered + timedelta(days=30, hours=number % 24),
                ),
            ),
            device_ids=(f"demo-device-{number % 100_000:05d}",),
        )


def account_data(
    session: Session, account_id: str, connectors: tuple[UserDataConnector, ...]
) -> AccountData:
    """The account's data from every connector, the first one's answers first."""
    result = AccountData(account_id=account_id)
    for connector in connectors:
        found = connector.account(session, account_id)
        if found is not None:
            result = result.merged(found)
    return result


def connectors_from_settings(settings: Settings) -> tuple[UserDataConnector, ...]:
    """The platform's account files (when configured), the synthetic records (the demo),
    then Vigil's own upload records."""
    found: tuple[UserDataConnector, ...] = (UploadsConnector(),)
    if settings.account_data_synthetic:
        found = (SyntheticConnector(), *found)
    if settings.report_account_data_dir is not None:
        found = (JsonDirectoryConnector(Path(settings.report_account_data_dir)), *found)
    return found
