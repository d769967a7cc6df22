"""The banks room's service: banks, entries, and the entries a match index is built from.

Every function takes a SQLAlchemy `Session` and works the same on SQLite and PostgreSQL.
They flush but never commit (the caller owns the transaction), except `import_file` in
`vigil.banks.importing`, which commits in batches.

Entries are keyed by (bank, signal type, value): adding a value a bank already holds changes
no row but merges what is new (classification given where there was none, labels). Values are
validated and normalised by their signal type's `parse`, so `ABC...` and `abc...` are one
entry. An entry is *active* when `disabled_until` is None or in the past; the index is built
from the active entries of enabled banks (`iter_index_entries`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.banks.classification import (
    EMPTY,
    Classification,
    Industry,
    UKCategory,
    parse_classification,
)
from vigil.banks.formats.base import (
    MAX_NOTE_CHARS,
    Deletion,
    Entry,
    ImportLimits,
    Row,
    check_text,
    normalise_value,
)
from vigil.signals import get_signal_type
from vigil.store.bank_models import (
    BANK_KINDS,
    BANK_SOURCES,
    BANK_TRUST,
    PDQ_DEFAULT_THRESHOLD,
    REVIEW_POLICIES,
    VPDQ_DEFAULT_COMPARED_SHARE,
    VPDQ_DEFAULT_FRAME_THRESHOLD,
    VPDQ_DEFAULT_QUERY_SHARE,
    Bank,
    BankEntry,
    BankImport,
)
from vigil.store.models import value_digest
from vigil.store.types import utcnow

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
FOREVER = datetime(9999, 12, 31, tzinfo=UTC)
"""`disabled_until` of an entry disabled with no end."""
_IN_CHUNK = 500  # values per IN (...) list: well under every dialect's parameter limit
_RACE_RETRIES = 3
_T = TypeVar("_T")
_ENTRY_TABLE = BankEntry.metadata.tables["bank_entry"]


class BankError(Exception):
    """A bank operation that cannot be done (the message says why)."""


class BankNotFound(BankError, LookupError):
    pass


class BankExists(BankError):
    pass


class EntryNotFound(BankError, LookupError):
    pass


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    """`items` in slices short enough for one `IN (...)` list."""
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


# --- Banks ------------------------------------------------------------------------------


def check_bank_name(name: str) -> str:
    """A bank name: 1-64 of lower-case letters, digits, `.`, `_`, `-`, starting alphanumeric."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"bank name {name[:70]!r} must be 1-64 lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


def _choice(label: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{label} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _threshold(label: str, value: int, signal_type: str) -> int:
    limit = get_signal_type(signal_type).max_threshold
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise ValueError(f"{label} must be a whole number 0-{limit}, got {value!r}")
    return value


def _share(label: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ValueError(f"{label} must be a percentage 0-100, got {value!r}")
    return float(value)


def _check_policy(review_policy: str, trust: str) -> None:
    if review_policy == "auto_confirm_exact" and trust != "verified":
        raise ValueError(
            "only a verified bank may auto-confirm exact matches (set trust to verified first)"
        )


def _default_classification(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    return parse_classification(text).to_text()


def create_bank(
    session: Session,
    name: str,
    *,
    kind: str = "match",
    source: str = "own",
    source_name: str | None = None,
    trust: str = "unverified",
    description: str = "",
    default_classification: str | None = None,
    enabled: bool = True,
    pdq_threshold: int = PDQ_DEFAULT_THRESHOLD,
    vpdq_frame_threshold: int = VPDQ_DEFAULT_FRAME_THRESHOLD,
    vpdq_compared_share: float = VPDQ_DEFAULT_COMPARED_SHARE,
    vpdq_query_share: float = VPDQ_DEFAULT_QUERY_SHARE,
    review_policy: str = "review",
    now: datetime | None = None,
) -> Bank:
    """Create a bank; BankExists when the name is taken, ValueError for a bad setting."""
    now = now or utcnow()
    bank = Bank(
        name=check_bank_name(name),
        kind=_choice("kind", kind, BANK_KINDS),
        source=_choice("source", source, BANK_SOURCES),
        source_name=check_text("source name", source_name),
        trust=_choice("trust", trust, BANK_TRUST),
        description=description.strip(),
        default_classification=_default_classification(default_classification),
        enabled=bool(enabled),
        pdq_threshold=_threshold("pdq threshold", pdq_threshold, "pdq"),
        vpdq_frame_threshold=_threshold("vpdq frame threshold", vpdq_frame_threshold, "vpdq"),
        vpdq_compared_share=_share("vpdq compared share", vpdq_compared_share),
        vpdq_query_share=_share("vpdq query share", vpdq_query_share),
        review_policy=_choice("review policy", review_policy, REVIEW_POLICIES),
        created=now,
        updated=now,
    )
    _check_policy(bank.review_policy, bank.trust)
    if session.scalar(select(Bank.id).where(Bank.name == bank.name)) is not None:
        raise BankExists(f"a bank named {bank.name!r} already exists")
    try:
        with session.begin_nested():
            session.add(bank)
    except IntegrityError:
        raise BankExists(f"a bank named {bank.name!r} already exists") from None
    return bank


def get_bank(session: Session, bank: str | int) -> Bank:
    """A bank by name or id; BankNotFound when there is none."""
    found = (
        session.get(Bank, bank)
        if isinstance(bank, int)
        else session.scalars(select(Bank).where(Bank.name == bank)).one_or_none()
    )
    if found is None:
        raise BankNotFound(f"no bank {bank!r}")
    return found


def _bank(session: Session, bank: Bank | str | int) -> Bank:
    return bank if isinstance(bank, Bank) else get_bank(session, bank)


@dataclass(frozen=True)
class BankSummary:
    """A bank and how many entries it holds, by signal type."""

    bank: Bank
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_json(self) -> dict[str, Any]:
        """The bank's settings and counts, as the CLI's `--json` and the API show them."""
        bank = self.bank
        return {
            "id": bank.id,
            "name": bank.name,
            "description": bank.description,
            "kind": bank.kind,
            "source": bank.source,
            "source_name": bank.source_name,
            "trust": bank.trust,
            "review_policy": bank.review_policy,
            "default_classification": bank.default_classification,
            "enabled": bank.enabled,
            "pdq_threshold": bank.pdq_threshold,
            "vpdq_frame_threshold": bank.vpdq_frame_threshold,
            "vpdq_compared_share": bank.vpdq_compared_share,
            "vpdq_query_share": bank.vpdq_query_share,
            "created": bank.created.isoformat(),
            "updated": bank.updated.isoformat(),
            "entries": self.total,
            "entries_by_signal_type": self.counts,
        }


def entry_counts(session: Session, bank: Bank | str | int) -> dict[str, int]:
    """Entries of a bank by signal type."""
    bank = _bank(session, bank)
    rows = session.execute(
        select(BankEntry.signal_type, func.count())
        .where(BankEntry.bank_id == bank.id)
        .group_by(BankEntry.signal_type)
        .order_by(BankEntry.signal_type)
    )
    return {signal_type: count for signal_type, count in rows}


def list_banks(session: Session) -> list[BankSummary]:
    """Every bank, by name, with its entry counts per signal type."""
    counts: dict[int, dict[str, int]] = {}
    for bank_id, signal_type, count in session.execute(
        select(BankEntry.bank_id, BankEntry.signal_type, func.count()).group_by(
            BankEntry.bank_id, BankEntry.signal_type
        )
    ):
        counts.setdefault(bank_id, {})[signal_type] = count
    return [
        BankSummary(bank, dict(sorted(counts.get(bank.id, {}).items())))
        for bank in session.scalars(select(Bank).order_by(Bank.name))
    ]


_UNSET: Any = object()


def update_bank(
    session: Session,
    bank: Bank | str | int,
    *,
    description: str = _UNSET,
    kind: str = _UNSET,
    source: str = _UNSET,
    source_name: str | None = _UNSET,
    trust: str = _UNSET,
    default_classification: str | None = _UNSET,
    enabled: bool = _UNSET,
    pdq_threshold: int = _UNSET,
    vpdq_frame_threshold: int = _UNSET,
    vpdq_compared_share: float = _UNSET,
    vpdq_query_share: float = _UNSET,
    review_policy: str = _UNSET,
    now: datetime | None = None,
) -> Bank:
    """Change the settings given (others stay); thresholds are checked against the signal
    type's `max_threshold`. Everything is validated before anything changes."""
    bank = _bank(session, bank)
    changes: dict[str, Any] = {}
    if description is not _UNSET:
        changes["description"] = description.strip()
    if kind is not _UNSET:
        changes["kind"] = _choice("kind", kind, BANK_KINDS)
    if source is not _UNSET:
        changes["source"] = _choice("source", source, BANK_SOURCES)
    if source_name is not _UNSET:
        changes["source_name"] = check_text("source name", source_name)
    if trust is not _UNSET:
        changes["trust"] = _choice("trust", trust, BANK_TRUST)
    if default_classification is not _UNSET:
        changes["default_classification"] = _default_classification(default_classification)
    if enabled is not _UNSET:
        changes["enabled"] = bool(enabled)
    if pdq_threshold is not _UNSET:
        changes["pdq_threshold"] = _threshold("pdq threshold", pdq_threshold, "pdq")
    if vpdq_frame_threshold is not _UNSET:
        changes["vpdq_frame_threshold"] = _threshold(
            "vpdq frame threshold", vpdq_frame_threshold, "vpdq"
        )
    if vpdq_compared_share is not _UNSET:
        changes["vpdq_compared_share"] = _share("vpdq compared share", vpdq_compared_share)
    if vpdq_query_share is not _UNSET:
        changes["vpdq_query_share"] = _share("vpdq query share", vpdq_query_share)
    if review_policy is not _UNSET:
        changes["review_policy"] = _choice("review policy", review_policy, REVIEW_POLICIES)
    _check_policy(
        changes.get("review_policy", bank.review_policy), changes.get("trust", bank.trust)
    )
    changed = {key: value for key, value in changes.items() if getattr(bank, key) != value}
    for key, value in changed.items():
        setattr(bank, key, value)
    if changed:
        bank.updated = now or utcnow()
    session.flush()
    return bank


def set_enabled(session: Session, bank: Bank | str | int, enabled: bool) -> Bank:
    """Enable or disable a bank (a disabled bank takes no part in matching)."""
    return update_bank(session, bank, enabled=enabled)


def rename_bank(
    session: Session, bank: Bank | str | int, new_name: str, *, now: datetime | None = None
) -> Bank:
    """Give a bank a new name (its entries, imports and action rules follow: they refer to
    it by id). BankExists when the name is taken, ValueError when it is not a valid name."""
    bank = _bank(session, bank)
    name = check_bank_name(new_name)
    if name == bank.name:
        return bank
    if session.scalar(select(Bank.id).where(Bank.name == name)) is not None:
        raise BankExists(f"a bank named {name!r} already exists")
    try:
        with session.begin_nested():
            bank.name = name
            bank.updated = now or utcnow()
            session.flush()
    except IntegrityError:
        raise BankExists(f"a bank named {name!r} already exists") from None
    return bank


def delete_bank(session: Session, bank: Bank | str | int) -> None:
    """Delete a bank with its entries and import records."""
    bank = _bank(session, bank)
    session.execute(delete(Bank).where(Bank.id == bank.id))


def _touch(session: Session, bank: Bank, now: datetime) -> None:
    session.execute(update(Bank).where(Bank.id == bank.id).values(updated=now))
    if bank.updated is None or now > bank.updated:
        bank.updated = now


# --- Entries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewEntry:
    """A value to add by hand (`add_entries`); validated and normalised when added."""

    signal_type: str
    value: str
    classification: Classification | str | None = None
    external_id: str | None = None
    note: str | None = None
    list_name: str | None = None
    member: str | None = None


@dataclass
class ChangeCounts:
    """What a batch of additions and removals did to a bank."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    def __iadd__(self, other: ChangeCounts) -> ChangeCounts:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.removed += other.removed
        return self


def _row(item: NewEntry, limits: ImportLimits) -> Row:
    signal_type = item.signal_type.strip().lower()
    classification = (
        item.classification
        if isinstance(item.classification, Classification)
        else parse_classification(item.classification)
    )
    return Row(
        position=0,
        signal_type=signal_type,
        value=normalise_value(signal_type, item.value, limits),
        classification=classification,
        external_id=check_text("external id", item.external_id),
        note=check_text("note", item.note, MAX_NOTE_CHARS, multiline=True),
        list_name=check_text("list name", item.list_name),
        member=check_text("member", item.member),
    )


def add_entries(
    session: Session,
    bank: Bank | str | int,
    entries: Iterable[NewEntry],
    *,
    now: datetime | None = None,
) -> ChangeCounts:
    """Add values to a bank; ValueError (nothing added) when any value is invalid.

    A value the bank holds already is not added again: the classification given fills or
    replaces the one held, labels are united, and it counts as updated (or unchanged).
    """
    bank = _bank(session, bank)
    limits = ImportLimits()
    rows = [_row(item, limits) for item in entries]
    return apply_records(session, bank, rows, now=now)


def add_entry(
    session: Session,
    bank: Bank | str | int,
    signal_type: str,
    value: str,
    *,
    classification: Classification | str | None = None,
    external_id: str | None = None,
    note: str | None = None,
    list_name: str | None = None,
    member: str | None = None,
    now: datetime | None = None,
) -> tuple[BankEntry, bool]:
    """Add one value; returns the entry and whether it was new."""
    bank = _bank(session, bank)
    item = NewEntry(signal_type, value, classification, external_id, note, list_name, member)
    row = _row(item, ImportLimits())
    counts = apply_records(session, bank, [row], now=now)
    entry = find_entry(session, bank, row.signal_type, row.value)
    assert entry is not None
    return entry, counts.added == 1


def find_entry(
    session: Session, bank: Bank | str | int, signal_type: str, value: str
) -> BankEntry | None:
    """The entry of a bank holding `value` (normalised first), or None."""
    bank = _bank(session, bank)
    signal_type = signal_type.strip().lower()
    try:
        canonical = normalise_value(signal_type, value, ImportLimits())
    except ValueError:
        return None
    return session.scalars(
        select(BankEntry).where(
            BankEntry.bank_id == bank.id,
            BankEntry.signal_type == signal_type,
            BankEntry.value_digest == value_digest(canonical),
        )
    ).one_or_none()


def get_entry(session: Session, entry_id: int) -> BankEntry:
    entry = session.get(BankEntry, entry_id)
    if entry is None:
        raise EntryNotFound(f"no bank entry {entry_id}")
    return entry


def remove_entry(
    session: Session,
    bank: Bank | str | int,
    *,
    entry_id: int | None = None,
    signal_type: str | None = None,
    value: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Remove one entry of a bank, by id or by (signal type, value); whether one was there."""
    bank = _bank(session, bank)
    if (entry_id is None) == (value is None):
        raise ValueError("give either an entry id or a signal type and value")
    if entry_id is not None:
        condition: ColumnElement[bool] = BankEntry.id == entry_id
    else:
        assert value is not None
        if signal_type is None:
            raise ValueError("removing by value needs the signal type")
        signal_type = signal_type.strip().lower()
        canonical = normalise_value(signal_type, value, ImportLimits())
        condition = (BankEntry.signal_type == signal_type) & (
            BankEntry.value_digest == value_digest(canonical)
        )
    result = session.execute(delete(BankEntry).where(BankEntry.bank_id == bank.id, condition))
    removed = bool(getattr(result, "rowcount", 0))
    if removed:
        _touch(session, bank, now or utcnow())
    return removed


def disable_entry(session: Session, entry_id: int, until: datetime | None = None) -> BankEntry:
    """Keep an entry out of matching until `until` (None: until enabled again)."""
    if until is not None and (until.tzinfo is None or until.utcoffset() is None):
        raise ValueError("until must be timezone-aware")
    entry = get_entry(session, entry_id)
    entry.disabled_until = FOREVER if until is None else until
    _touch(session, entry.bank, utcnow())
    session.flush()
    return entry


def enable_entry(session: Session, entry_id: int) -> BankEntry:
    """Let a disabled entry take part in matching again."""
    entry = get_entry(session, entry_id)
    entry.disabled_until = None
    _touch(session, entry.bank, utcnow())
    session.flush()
    return entry


def record_false_positive(session: Session, entry_id: int) -> int:
    """Count one false-positive report against an entry; returns the new count.

    Atomic (one UPDATE), so reviewers reporting at once never lose a count.
    """
    increment = (
        update(BankEntry)
        .where(BankEntry.id == entry_id)
        .values(false_positive_count=BankEntry.false_positive_count + 1)
    )
    count: int | None
    if session.get_bind().dialect.update_returning:
        result = session.execute(increment.returning(BankEntry.false_positive_count))
        count = result.scalar_one_or_none()
    else:  # SQLite before 3.35: no RETURNING; the UPDATE itself is still atomic
        session.execute(increment)
        count = session.scalar(
            select(BankEntry.false_positive_count).where(BankEntry.id == entry_id)
        )
    if count is None:
        raise EntryNotFound(f"no bank entry {entry_id}")
    held = session.identity_map.get(session.identity_key(BankEntry, entry_id))
    if held is not None:  # an entry object the caller holds shows the new count too
        session.refresh(held, ["false_positive_count"])
    return int(count)


def page_entries(
    session: Session,
    bank: Bank | str | int,
    *,
    signal_type: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[BankEntry]:
    """Up to `limit` entries of a bank with ids above `after`, in id order (paging)."""
    bank = _bank(session, bank)
    query = select(BankEntry).where(BankEntry.bank_id == bank.id, BankEntry.id > after)
    if signal_type is not None:
        query = query.where(BankEntry.signal_type == signal_type)
    return list(session.scalars(query.order_by(BankEntry.id).limit(limit)))


def get_bank_entry(session: Session, bank: Bank | str | int, entry_id: int) -> BankEntry:
    """Entry `entry_id` of this bank; EntryNotFound when the bank holds no such entry."""
    bank = _bank(session, bank)
    entry = session.get(BankEntry, entry_id)
    if entry is None or entry.bank_id != bank.id:
        raise EntryNotFound(f"bank {bank.name!r} has no entry {entry_id}")
    return entry


def check_value(signal_type: str, value: str) -> str:
    """The canonical form of a value; KeyError for an unknown signal type, ValueError (with
    the reason) for a malformed value."""
    return get_signal_type(signal_type.strip().lower()).parse(value)


def iter_entries(
    session: Session,
    bank: Bank | str | int,
    signal_type: str | None = None,
    *,
    batch: int = 1000,
) -> Iterator[BankEntry]:
    """The entries of a bank (of one signal type), in id order, streamed `batch` at a time."""
    bank = _bank(session, bank)
    query = select(BankEntry).where(BankEntry.bank_id == bank.id)
    if signal_type is not None:
        query = query.where(BankEntry.signal_type == signal_type)
    yield from session.scalars(query.order_by(BankEntry.id).execution_options(yield_per=batch))


def entry_classification(entry: BankEntry) -> Classification:
    """An entry's own classification (without its bank's default)."""
    return _classification(
        entry.industry, entry.uk_category, entry.vics_category, entry.vics_region, entry.labels
    )


def _classification(
    industry: str | None,
    uk: str | None,
    vics_category: int | None,
    vics_region: str | None,
    labels: Sequence[str] | None,
) -> Classification:
    return Classification(
        industry=None if industry is None else Industry(industry),
        uk=None if uk is None else UKCategory(uk),
        vics_category=vics_category if vics_region is not None else None,
        vics_region=vics_region if vics_category is not None else None,
        labels=tuple(labels or ()),
    )


# --- The index's view ---------------------------------------------------------------------


@dataclass(frozen=True)
class IndexEntry:
    """What a match index needs of one active entry of an enabled bank.

    `classification` is the entry's own, with the bank's default classification filling
    the schemes the entry lacks.
    """

    entry_id: int
    bank_id: int
    bank_name: str
    bank_kind: str
    signal_type: str
    value: str
    classification: Classification = field(default=EMPTY)


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def _active(query: _Query, now: datetime | None) -> _Query:
    """Only active entries (`disabled_until` None or past) of enabled banks, by entry id."""
    return (
        query.join(Bank, Bank.id == BankEntry.bank_id)
        .where(
            Bank.enabled.is_(True),
            or_(BankEntry.disabled_until.is_(None), BankEntry.disabled_until <= (now or utcnow())),
        )
        .order_by(BankEntry.id)
    )


def _with_default(
    own: Classification, default_text: str | None, parsed: dict[str, Classification]
) -> Classification:
    """An entry's classification completed by its bank's default (parsed once per text)."""
    if not default_text:
        return own
    if default_text not in parsed:
        parsed[default_text] = parse_classification(default_text)
    return own.merged_over(parsed[default_text])


_CLASSIFICATION_COLUMNS = (
    Bank.default_classification,
    BankEntry.industry,
    BankEntry.uk_category,
    BankEntry.vics_category,
    BankEntry.vics_region,
    BankEntry.labels,
)


def iter_index_entries(
    session: Session,
    *,
    signal_types: Iterable[str] | None = None,
    now: datetime | None = None,
    batch: int = 5000,
) -> Iterator[IndexEntry]:
    """Every active entry (`disabled_until` None or past) of every enabled bank, streamed
    in entry-id order; optionally only of some signal types."""
    query = _active(
        select(
            BankEntry.id,
            BankEntry.bank_id,
            Bank.name,
            Bank.kind,
            BankEntry.signal_type,
            BankEntry.value,
            *_CLASSIFICATION_COLUMNS,
        ),
        now,
    )
    if signal_types is not None:
        query = query.where(BankEntry.signal_type.in_(list(signal_types)))
    parsed: dict[str, Classification] = {}
    for row in session.execute(query.execution_options(yield_per=batch)):
        own = _classification(row[7], row[8], row[9], row[10], row[11])
        yield IndexEntry(
            entry_id=row[0],
            bank_id=row[1],
            bank_name=row[2],
            bank_kind=row[3],
            signal_type=row[4],
            value=row[5],
            classification=_with_default(own, row[6], parsed),
        )


def iter_index_values(
    session: Session,
    *,
    now: datetime | None = None,
    batch: int = 5000,
    entry_ids: Sequence[int] | None = None,
) -> Iterator[tuple[int, int, str, str]]:
    """`(entry id, bank id, signal type, value)` of every active entry of every enabled
    bank (or only of `entry_ids`), in entry-id order: all a match index holds
    (classifications are read only for the entries that match, with `entry_classifications`)."""
    columns = (BankEntry.id, BankEntry.bank_id, BankEntry.signal_type, BankEntry.value)
    if entry_ids is None:
        rows: Iterable[Any] = session.execute(
            _active(select(*columns), now).execution_options(yield_per=batch)
        )
    else:
        rows = (
            row
            for chunk in _chunks(entry_ids)
            for row in session.execute(
                _active(select(*columns), now).where(BankEntry.id.in_(chunk))
            )
        )
    yield from ((row.id, row.bank_id, row.signal_type, row.value) for row in rows)


def active_entry_ids(session: Session, bank_id: int, *, now: datetime | None = None) -> list[int]:
    """Ids of the active entries of one bank (none when the bank is disabled or gone): what
    a match index must hold of it, read cheaply to find what changed."""
    query = _active(select(BankEntry.id).where(BankEntry.bank_id == bank_id), now)
    return list(session.scalars(query))


def reactivated_banks(session: Session, since: datetime, now: datetime) -> set[int]:
    """Banks with an entry whose `disabled_until` passed between `since` and `now`: the
    entry became active again without any write to its bank."""
    query = select(BankEntry.bank_id).where(
        BankEntry.disabled_until > since, BankEntry.disabled_until <= now
    )
    return set(session.scalars(query.distinct()))


def entry_classifications(session: Session, entry_ids: Iterable[int]) -> dict[int, Classification]:
    """The classification of each entry, completed by its bank's default."""
    parsed: dict[str, Classification] = {}
    rows = session.execute(
        select(BankEntry.id, *_CLASSIFICATION_COLUMNS)
        .join(Bank, Bank.id == BankEntry.bank_id)
        .where(BankEntry.id.in_(list(entry_ids)))
    )
    return {row[0]: _with_default(_classification(*row[2:]), row[1], parsed) for row in rows}


# --- Applying rows, entries and deletions --------------------------------------------------

_FIELDS = (
    "industry",
    "uk_category",
    "vics_category",
    "vics_region",
    "labels",
    "list_name",
    "external_id",
    "member",
    "note",
)


def _merge(existing: dict[str, Any], row: Row, list_name: str | None) -> dict[str, Any]:
    """The fields an existing entry should have after `row` is imported over it.

    The row's classification replaces the held one scheme by scheme (a source re-grading an
    entry is news), labels are united, a note given replaces the held one, and identifying
    fields (list, external id, member) are only filled in, never overwritten, so a value
    listed under two ids keeps the first.
    """
    c = row.classification
    merged = dict(existing)
    if c.industry is not None:
        merged["industry"] = c.industry.value
    if c.uk is not None:
        merged["uk_category"] = c.uk.value
    if c.vics_category is not None:
        merged["vics_category"] = c.vics_category
        merged["vics_region"] = c.vics_region
    merged["labels"] = sorted({*(existing["labels"] or ()), *c.labels})
    if row.note is not None:
        merged["note"] = row.note
    for key, value in (
        ("list_name", row.list_name or list_name),
        ("external_id", row.external_id),
        ("member", row.member),
    ):
        if merged[key] is None and value is not None:
            merged[key] = value
    return merged


def _combine(first: Row, second: Row) -> Row:
    """Two rows of one value in one batch, as one (the later wins, labels united)."""
    a, b = first.classification, second.classification
    classification = b.merged_over(a)
    return Row(
        position=second.position,
        signal_type=second.signal_type,
        value=second.value,
        classification=classification,
        external_id=first.external_id or second.external_id,
        note=second.note if second.note is not None else first.note,
        list_name=first.list_name or second.list_name,
        member=first.member or second.member,
    )


def _scope(list_name: str | None) -> ColumnElement[bool]:
    return BankEntry.list_name.is_(None) if list_name is None else BankEntry.list_name == list_name


def apply_records(
    session: Session,
    bank: Bank,
    records: Sequence[Row | Entry | Deletion],
    *,
    import_id: int | None = None,
    list_name: str | None = None,
    now: datetime | None = None,
) -> ChangeCounts:
    """Apply parsed records to a bank in order: rows are added or merged, an authoritative
    entry also removes the values its external id no longer lists, a deletion removes its
    external id's values. External ids are matched within `list_name` (the import's list).
    Flushes, does not commit; safe against a concurrent writer adding the same values."""
    now = now or utcnow()
    counts = ChangeCounts()
    # Deletions and additions are gathered and applied together, deletions first, so a batch
    # costs a few statements however they interleave. File order is kept where it matters:
    # a deletion of an id added earlier in the gathered work applies that work first. A
    # deletion of one id and an addition of another commute, except for a value both list,
    # which deleting first leaves with the entry that still lists it.
    deletions: list[Row | Entry | Deletion] = []
    additions: list[Row | Entry | Deletion] = []
    added_ids: set[str] = set()

    def flush() -> None:
        nonlocal counts
        for segment in (deletions, additions):
            if segment:
                counts += _apply_segment(session, bank, segment, import_id, list_name, now)
                segment.clear()
        added_ids.clear()

    for record in records:
        if isinstance(record, Deletion):
            if record.external_id in added_ids:
                flush()
            deletions.append(record)
        else:
            additions.append(record)
            if record.external_id is not None:
                added_ids.add(record.external_id)
    flush()
    if counts.added or counts.updated or counts.removed:
        _touch(session, bank, now)
    session.flush()
    return counts


def _apply_segment(
    session: Session,
    bank: Bank,
    segment: list[Row | Entry | Deletion],
    import_id: int | None,
    list_name: str | None,
    now: datetime,
) -> ChangeCounts:
    if isinstance(segment[0], Deletion):
        ids = sorted({record.external_id for record in segment if isinstance(record, Deletion)})
        removed = 0
        for chunk in _chunks(ids):
            result = session.execute(
                delete(BankEntry).where(
                    BankEntry.bank_id == bank.id,
                    BankEntry.external_id.in_(chunk),
                    _scope(list_name),
                )
            )
            removed += int(getattr(result, "rowcount", 0) or 0)
        return ChangeCounts(removed=removed)

    # The last version of an external entry in the segment is the one that counts.
    entries: dict[str, Entry] = {}
    rows: list[Row] = []
    for record in segment:
        if isinstance(record, Entry):
            entries.pop(record.external_id, None)
            entries[record.external_id] = record
        elif isinstance(record, Row):
            rows.append(record)
    for entry in entries.values():
        rows.extend(entry.rows)
    wanted: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row.signal_type, value_digest(row.value))
        wanted[key] = _combine(wanted[key], row) if key in wanted else row

    for attempt in range(_RACE_RETRIES):
        try:
            with session.begin_nested():
                counts = _upsert(session, bank, wanted, import_id, list_name, now)
                authoritative = [entry for entry in entries.values() if entry.authoritative]
                counts.removed += _remove_stale(session, bank, authoritative, wanted, list_name)
            return counts
        except IntegrityError:
            if attempt == _RACE_RETRIES - 1:
                raise
            continue  # another writer added some of these values first: merge into theirs
    raise AssertionError("unreachable")  # pragma: no cover


def _upsert(
    session: Session,
    bank: Bank,
    wanted: dict[tuple[str, str], Row],
    import_id: int | None,
    list_name: str | None,
    now: datetime,
) -> ChangeCounts:
    counts = ChangeCounts()
    existing: dict[tuple[str, str], dict[str, Any]] = {}
    columns = [getattr(BankEntry, name) for name in _FIELDS]
    by_type: dict[str, list[str]] = {}
    for signal_type, digest in wanted:
        by_type.setdefault(signal_type, []).append(digest)
    for signal_type, digests in by_type.items():
        for chunk in _chunks(digests):
            # (bank_id, signal_type, value_digest) is the unique index: one probe per value.
            for found in session.execute(
                select(BankEntry.id, BankEntry.value_digest, *columns).where(
                    BankEntry.bank_id == bank.id,
                    BankEntry.signal_type == signal_type,
                    BankEntry.value_digest.in_(chunk),
                )
            ):
                existing[(signal_type, found[1])] = {
                    "id": found[0],
                    **dict(zip(_FIELDS, found[2:], strict=True)),
                }

    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for key, row in wanted.items():
        held = existing.get(key)
        if held is None:
            c = row.classification
            inserts.append(
                {
                    "bank_id": bank.id,
                    "signal_type": row.signal_type,
                    "value": row.value,
                    "value_digest": key[1],
                    "industry": None if c.industry is None else c.industry.value,
                    "uk_category": None if c.uk is None else c.uk.value,
                    "vics_category": c.vics_category,
                    "vics_region": c.vics_region,
                    "labels": list(c.labels),
                    "list_name": row.list_name or list_name,
                    "external_id": row.external_id,
                    "member": row.member,
                    "import_id": import_id,
                    "added_at": now,
                    "disabled_until": None,
                    "note": row.note,
                    "false_positive_count": 0,
                }
            )
            continue
        merged = _merge(held, row, list_name)
        if merged == held:
            counts.unchanged += 1
        else:
            updates.append(merged)
    if inserts:
        # Core executemany (no ORM unit of work): the rows are not needed as objects.
        session.execute(insert(_ENTRY_TABLE), inserts)
        counts.added = len(inserts)
    if updates:
        session.execute(update(BankEntry), updates)
        counts.updated = len(updates)
    return counts


def _remove_stale(
    session: Session,
    bank: Bank,
    entries: list[Entry],
    wanted: dict[tuple[str, str], Row],
    list_name: str | None,
) -> int:
    """Remove the values of authoritative entries that they no longer list."""
    if not entries:
        return 0
    listed = {
        entry.external_id: {(row.signal_type, value_digest(row.value)) for row in entry.rows}
        for entry in entries
    }
    ids = sorted(listed)
    stale: list[int] = []
    for chunk in _chunks(ids):
        for entry_id, external_id, signal_type, digest in session.execute(
            select(
                BankEntry.id, BankEntry.external_id, BankEntry.signal_type, BankEntry.value_digest
            ).where(
                BankEntry.bank_id == bank.id,
                BankEntry.external_id.in_(chunk),
                _scope(list_name),
            )
        ):
            key = (signal_type, digest)
            if key not in listed.get(external_id or "", ()) and key not in wanted:
                stale.append(entry_id)
    for stale_chunk in _chunks(stale):
        session.execute(delete(BankEntry).where(BankEntry.id.in_(stale_chunk)))
    return len(stale)


# --- Imports ------------------------------------------------------------------------------


def list_imports(session: Session, bank: Bank | str | int, limit: int = 20) -> list[BankImport]:
    """The newest imports into a bank first."""
    bank = _bank(session, bank)
    return list(
        session.scalars(
            select(BankImport)
            .where(BankImport.bank_id == bank.id)
            .order_by(BankImport.id.desc())
            .limit(limit)
        )
    )


def undo_import(session: Session, import_id: int) -> int:
    """Remove the entries an import added (not those it updated or removed); returns how
    many. Used after a failed import, or to take back an import into the wrong bank."""
    record = session.get(BankImport, import_id)
    if record is None:
        raise BankError(f"no import {import_id}")
    result = session.execute(delete(BankEntry).where(BankEntry.import_id == import_id))
    removed = int(getattr(result, "rowcount", 0) or 0)
    if removed:
        _touch(session, record.bank, utcnow())
    return removed
