"""Reviewer wellbeing: how media is shown, and each reviewer's own exposure.

An admin sets the organisation's defaults; each reviewer may override any of them for
themselves. Exposure (time on review screens, time with media revealed, reveals, decisions)
is counted per reviewer and UTC day for their own view, to prompt breaks; it is not a
productivity measure and the console shows it to nobody else.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.store import ReviewExposure, WellbeingSettings, utcnow

MAX_HEARTBEAT_SECONDS = 120.0
"""Screen time one heartbeat may add: a page that slept (laptop closed) adds no more."""


@dataclass(frozen=True)
class Wellbeing:
    """How media is shown to one reviewer."""

    blur_radius: float = 18.0
    """Gaussian blur of previews, in pixels of a 480-pixel preview (0: none)."""
    greyscale: bool = True
    thumbnails_first: bool = True
    """Show a small preview first; full size only on request."""
    break_minutes: int = 45
    """Prompt a break after this long on review screens without one."""

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


FIELDS = tuple(f.name for f in fields(Wellbeing))


def _check(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown wellbeing setting(s): {', '.join(sorted(unknown))}")
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            checked[name] = None
        elif name == "blur_radius":
            radius = float(value)
            if not 0 <= radius <= 64:
                raise ValueError("blur radius must be 0-64 pixels")
            checked[name] = radius
        elif name == "break_minutes":
            minutes = int(value)
            if not 1 <= minutes <= 480:
                raise ValueError("break reminder must be 1-480 minutes")
            checked[name] = minutes
        else:
            checked[name] = bool(value)
    return checked


def _row(session: Session, user_id: int | None) -> WellbeingSettings | None:
    query = select(WellbeingSettings).where(
        WellbeingSettings.user_id.is_(None)
        if user_id is None
        else WellbeingSettings.user_id == user_id
    )
    return session.scalars(query).first()


def _merged(base: Wellbeing, row: WellbeingSettings | None) -> Wellbeing:
    if row is None:
        return base
    values = {name: getattr(row, name) for name in FIELDS if getattr(row, name) is not None}
    return Wellbeing(**{**base.as_json(), **values})


def organisation_defaults(session: Session) -> Wellbeing:
    return _merged(Wellbeing(), _row(session, None))


def effective_settings(session: Session, user_id: int) -> Wellbeing:
    """The organisation's defaults with this reviewer's own choices over them."""
    return _merged(organisation_defaults(session), _row(session, user_id))


def user_overrides(session: Session, user_id: int) -> dict[str, Any]:
    """Only the settings this reviewer chose (None: follows the organisation)."""
    row = _row(session, user_id)
    return {name: getattr(row, name) if row else None for name in FIELDS}


def update_settings(
    session: Session, user_id: int | None, *, now: datetime | None = None, **values: Any
) -> Wellbeing:
    """Set the organisation's defaults (`user_id` None) or one reviewer's overrides; a value
    of None returns that setting to the default. ValueError for a bad value."""
    checked = _check(values)
    row = _row(session, user_id)
    if row is None:
        row = WellbeingSettings(user_id=user_id)
        session.add(row)
    for name, value in checked.items():
        if user_id is None and value is None:
            raise ValueError(f"the organisation's {name} needs a value")
        setattr(row, name, value)
    row.updated = now or utcnow()
    session.flush()
    return (
        organisation_defaults(session) if user_id is None else effective_settings(session, user_id)
    )


# --- Exposure -----------------------------------------------------------------------------


def _exposure(session: Session, user_id: int, day: date) -> ReviewExposure:
    row = session.scalars(
        select(ReviewExposure).where(ReviewExposure.user_id == user_id, ReviewExposure.day == day)
    ).first()
    if row is not None:
        return row
    row = ReviewExposure(
        user_id=user_id, day=day, screen_seconds=0.0, reveal_seconds=0.0, reveals=0, decisions=0
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another request of the same reviewer made it first
        return _exposure(session, user_id, day)
    return row


def count_screen_time(
    session: Session, user_id: int, seconds: float, *, now: datetime | None = None
) -> ReviewExposure:
    """Add time spent on a review screen (the page's heartbeat), capped per heartbeat."""
    now = now or utcnow()
    row = _exposure(session, user_id, now.date())
    row.screen_seconds += min(max(float(seconds), 0.0), MAX_HEARTBEAT_SECONDS)
    return row


def count_reveal(
    session: Session, user_id: int, now: datetime, *, seconds: float = 0.0, new: bool = True
) -> None:
    row = _exposure(session, user_id, now.date())
    row.reveals += 1 if new else 0
    row.reveal_seconds += seconds


def count_decision(session: Session, user_id: int, now: datetime) -> None:
    _exposure(session, user_id, now.date()).decisions += 1


def exposure_summary(
    session: Session, user_id: int, *, days: int = 7, now: datetime | None = None
) -> list[ReviewExposure]:
    """This reviewer's last `days` UTC days that had any exposure, newest first."""
    today = (now or utcnow()).date()
    return list(
        session.scalars(
            select(ReviewExposure)
            .where(
                ReviewExposure.user_id == user_id,
                ReviewExposure.day > today - timedelta(days=days),
                ReviewExposure.day <= today,
            )
            .order_by(ReviewExposure.day.desc())
        )
    )
