"""Who works the desk, the errors it raises, and small helpers shared by its modules."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from vigil.store import AppUser, LegalRequest

DESK_ROLES = frozenset({"legal", "admin"})


class LegalError(Exception):
    """A request the desk refuses, with a message for the person who made it."""


class RequestNotFound(LegalError, LookupError):
    pass


class NotVerified(LegalError):
    """Nothing is disclosed or carried out before the verification checklist is complete."""


class OutOfScope(LegalError):
    """The legal process does not reach what was asked for (its statute is named)."""


@dataclass(frozen=True)
class DeskUser:
    """A console user working the desk: checklists name who ticked what."""

    user_id: int
    username: str
    roles: frozenset[str]

    @property
    def actor(self) -> str:
        return f"user:{self.username}"

    def require_desk(self, action: str) -> None:
        if not DESK_ROLES & self.roles:
            raise LegalError(f"{self.username!r} may not {action}: it needs the legal role")

    @classmethod
    def of(cls, user: AppUser) -> DeskUser:
        return cls(user.id, user.username, frozenset(user.roles))


def reference(request: LegalRequest) -> str:
    """The request's number as people quote it: `LR-000012`."""
    return f"LR-{request.id:06d}"


def parse_reference(value: str) -> int:
    """A request id from `LR-000012`, `lr-12` or `12`; ValueError otherwise."""
    text = value.strip().upper().removeprefix("LR-")
    if not text.isdigit() or len(text) > 18:
        raise ValueError(f"{value!r} is not a request number (LR-000012)")
    return int(text)


def get_request(session: Session, request_id: int, *, lock: bool = False) -> LegalRequest:
    found = session.get(LegalRequest, request_id, with_for_update=lock, populate_existing=lock)
    if found is None:
        raise RequestNotFound(f"no legal request LR-{request_id:06d}")
    return found
