"""Automatic audit events for every change to the audited tables.

`install(factory)` (done by `vigil.store.session_factory`, so by every `Database`) puts
listeners on the sessions that factory makes:

- `after_flush`: each new, changed or deleted row of an `AUDITED_MODELS` table becomes an
  event `<table>.created|updated|deleted` (object type the table, object id its primary key,
  details the columns set or changed with their new values: small scalars as they are,
  larger values by size and SHA-256, secret columns never: a changed one is only named,
  under `redacted`);
- `do_orm_execute`: an ORM `update(...)`/`delete(...)` statement on an audited table becomes
  one event (`details`: `bulk`, `rows`, the values set and the WHERE clause; the object id
  when the clause names one primary key);
- `before_commit`: the events of the transaction are appended to the chain there, at the
  very end, in one step (`chain.append_entries`). Holding the chain's head lock only from
  then until the commit keeps writers from waiting on each other any longer than that, and
  keeps the head out of lock cycles with other rows (a transaction holding the head takes no
  other lock before it commits).
- rollbacks drop the events of what they undo (a savepoint's, or all of them).

Writing at commit also makes the log exact: an event exists if and only if its change was
committed. Changes that are not worth an event on their own (`QUIET_COLUMNS`: a session's
`last_seen`, a token's `last_used`, a report sender's lease) are not logged unless something
else changes with them. Content, uploads, matches and bank entries are not audited (imports
write millions of entries: a bank import is audited through its `bank_import` row).

Sessions made otherwise (`Session(engine)`) are not audited; `record` still works on them,
appending at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from vigil.audit.actor import current_actor
from vigil.audit.chain import Entry, _is_secret_key, _object_id, _scrub, _short, append_entries
from vigil.store import (
    ActionRule,
    AgencyDomain,
    ApiToken,
    AppUser,
    Bank,
    BankImport,
    LegalCheck,
    LegalHold,
    LegalRequest,
    LegalTarget,
    Officer,
    PortalSession,
    PreservationRequest,
    Production,
    Report,
    ReviewDecision,
    ReviewReveal,
    ReviewTask,
    VaultClock,
    VaultDestruction,
    VaultExport,
    VaultItem,
    WebSession,
)

AUDITED_MODELS: tuple[type[Any], ...] = (
    ReviewTask,
    ReviewDecision,
    ReviewReveal,
    Report,
    PreservationRequest,
    VaultItem,
    VaultClock,
    LegalHold,
    VaultDestruction,
    VaultExport,
    AppUser,
    ApiToken,
    Bank,
    BankImport,
    WebSession,
    ActionRule,
    LegalRequest,
    LegalTarget,
    LegalCheck,
    Production,
    Officer,
    AgencyDomain,
    PortalSession,
)
"""The models whose every change is an audit event."""
AUDITED_TABLES: frozenset[str] = frozenset(model.__tablename__ for model in AUDITED_MODELS)

SECRET_COLUMNS: frozenset[str] = frozenset(
    {"password_hash", "secret_hash", "csrf_token", "wrapped_key", "confirm_hash", "download_hash"}
)
"""Never in an event, whatever the table (`chain._scrub` drops them too)."""
QUIET_COLUMNS: dict[str, frozenset[str]] = {
    "web_session": frozenset({"last_seen"}),
    "legal_portal_session": frozenset({"last_seen"}),
    "api_token": frozenset({"last_used"}),
    "report": frozenset({"lease_until"}),
}
"""Columns whose change alone is not an event (bookkeeping, written on many requests)."""
MAX_VALUE_CHARS = 1024
"""A value whose JSON is longer is summarised: `{"omitted": true, "chars": n, "sha256": h}`."""
MAX_WHERE_CHARS = 500

_MARK = "_vigil_audited"
_PENDING = "vigil.audit.pending"
_COMMITTING = "vigil.audit.committing"


@dataclass(frozen=True)
class _Pending:
    savepoint: SessionTransaction | None
    """The innermost savepoint the change was made in (None: the transaction itself)."""
    entry: Entry


# --- Values -----------------------------------------------------------------------------------


def _summary(text: str) -> dict[str, Any]:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return {"omitted": True, "chars": len(text), "sha256": digest}


def _value(value: Any) -> Any:
    """A column's value as an event shows it: scrubbed, large ones summarised."""
    cleaned = _scrub(value)
    if isinstance(cleaned, str):
        return cleaned if len(cleaned) <= MAX_VALUE_CHARS else _summary(cleaned)
    if isinstance(cleaned, dict | list):
        text = json.dumps(cleaned, sort_keys=True, separators=(",", ":"))
        return cleaned if len(text) <= MAX_VALUE_CHARS else _summary(text)
    return cleaned


def _is_secret_column(key: str) -> bool:
    return key in SECRET_COLUMNS or _is_secret_key(key)


# --- Row changes (after_flush) ----------------------------------------------------------------


def _primary_key(mapper: Any, state_dict: dict[str, Any]) -> str | None:
    keys = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    values = [state_dict.get(key) for key in keys]
    if any(value is None for value in values):
        return None
    return ",".join(str(value) for value in values)


def _columns(obj: object, *, changed_only: bool) -> tuple[Any, dict[str, Any], set[str]]:
    """(the mapper, the column values to show, the names of every changed column)."""
    state = inspect(obj)
    mapper = state.mapper
    shown: dict[str, Any] = {}
    changed: set[str] = set()
    for attr in mapper.column_attrs:
        key = attr.key
        if changed_only:
            if not state.attrs[key].history.has_changes():
                continue
            changed.add(key)
        if _is_secret_column(key):
            if changed_only:  # say that it changed, never to what
                shown.setdefault("redacted", []).append(key)
            continue
        if key in state.dict:
            shown[key] = _value(state.dict[key])
    return mapper, shown, changed


def _row_entries(session: Session) -> Iterator[Entry]:
    actor = current_actor()
    for kind, objects in (
        ("created", session.new),
        ("updated", session.dirty),
        ("deleted", session.deleted),
    ):
        for obj in objects:
            table = getattr(obj, "__tablename__", None)
            if table not in AUDITED_TABLES:
                continue
            mapper, shown, changed = _columns(obj, changed_only=kind == "updated")
            if kind == "updated" and not changed - QUIET_COLUMNS.get(table, frozenset()):
                continue  # nothing changed, or only bookkeeping
            state_dict = inspect(obj).dict
            yield Entry(actor, f"{table}.{kind}", table, _primary_key(mapper, state_dict), shown)


def _after_flush(session: Session, _flush_context: object) -> None:
    entries = list(_row_entries(session))
    if entries:
        _queue(session, entries)


# --- Bulk statements (do_orm_execute) --------------------------------------------------------


def _bound(value: Any) -> Any:
    if isinstance(value, BindParameter):
        return _value(value.effective_value)
    return str(value)[:MAX_WHERE_CHARS]


def _bulk_values(statement: Any) -> dict[str, Any]:
    values = getattr(statement, "_values", None) or {}
    shown: dict[str, Any] = {}
    for key, value in dict(values).items():
        name = str(getattr(key, "key", None) or getattr(key, "name", None) or key)
        if not _is_secret_column(name):
            shown[name] = _bound(value)
    return shown


def _conjuncts(clause: Any) -> Iterable[Any]:
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        for inner in clause.clauses:
            yield from _conjuncts(inner)
    elif clause is not None:
        yield clause


def _where_id(table: Table, where: Any) -> str | None:
    """The primary key a WHERE clause pins (`id = :id_1`, alone or ANDed), if it pins one."""
    keys = {column.name for column in table.primary_key.columns}
    if len(keys) != 1:
        return None
    found = []
    for clause in _conjuncts(where):
        if not isinstance(clause, BinaryExpression) or clause.operator is not operators.eq:
            continue
        left, right = clause.left, clause.right
        if isinstance(left, BindParameter):
            left, right = right, left
        owner = getattr(left, "table", None)
        if (
            isinstance(right, BindParameter)
            and getattr(owner, "name", None) == table.name
            and getattr(left, "name", None) in keys
        ):
            found.append(right.effective_value)
    return str(found[0]) if len(found) == 1 and found[0] is not None else None


def _do_orm_execute(state: ORMExecuteState) -> Any:
    if not (state.is_update or state.is_delete):
        return None
    statement: Any = state.statement
    table = getattr(statement, "table", None)
    name = getattr(table, "name", None)
    if not isinstance(table, Table) or name not in AUDITED_TABLES:
        return None
    values = _bulk_values(statement) if state.is_update else {}
    if state.is_update and values and set(values) <= QUIET_COLUMNS.get(name, frozenset()):
        return None
    result = state.invoke_statement()
    rows = getattr(result, "rowcount", None)
    if rows == 0:
        return result
    where = statement.whereclause
    details: dict[str, Any] = {"bulk": True}
    if isinstance(rows, int) and rows >= 0:
        details["rows"] = rows
    if state.is_update:
        details["values"] = values
    if where is not None:
        details["where"] = str(where)[:MAX_WHERE_CHARS]
    kind = "updated" if state.is_update else "deleted"
    entry = Entry(current_actor(), f"{name}.{kind}", name, _where_id(table, where), details)
    _queue(state.session, [entry])
    return result


# --- Transactions --------------------------------------------------------------------------


def _queue(session: Session, entries: list[Entry]) -> None:
    """Keep `entries` for the commit (or append them now, when the commit is under way)."""
    if session.info.get(_COMMITTING):
        append_entries(session.connection(), entries)
        return
    savepoint = session.get_nested_transaction()
    pending: list[_Pending] = session.info.setdefault(_PENDING, [])
    pending.extend(_Pending(savepoint, entry) for entry in entries)


def _before_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint is released: its events wait for the real commit
    session.flush()  # the last changes' events join the others
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    session.info[_COMMITTING] = True
    if pending:
        append_entries(session.connection(), [item.entry for item in pending])


def _within(savepoint: SessionTransaction | None, ended: SessionTransaction) -> bool:
    transaction = savepoint
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def _after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
    pending: list[_Pending] | None = session.info.get(_PENDING)
    if not pending:
        return
    if previous.parent is None:
        pending.clear()
    else:
        pending[:] = [item for item in pending if not _within(item.savepoint, previous)]


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost: committed (written) or abandoned
        session.info.pop(_PENDING, None)
        session.info.pop(_COMMITTING, None)


_LISTENERS: tuple[tuple[str, Any], ...] = (
    ("after_flush", _after_flush),
    ("do_orm_execute", _do_orm_execute),
    ("before_commit", _before_commit),
    ("after_soft_rollback", _after_soft_rollback),
    ("after_transaction_end", _after_transaction_end),
)


def install(target: sessionmaker[Session] | type[Session]) -> None:
    """Audit the sessions `target` makes (idempotent). `vigil.store.session_factory` calls it
    for every session factory Vigil builds."""
    for name, listener in _LISTENERS:
        if not event.contains(target, name, listener):
            event.listen(target, name, listener)
    setattr(target.class_ if isinstance(target, sessionmaker) else target, _MARK, True)


def installed(session: Session) -> bool:
    """Whether `session` is audited (made by a factory given to `install`)."""
    return bool(getattr(type(session), _MARK, False))


def record(
    session: Session,
    action: str,
    object_type: str,
    object_id: object,
    details: dict[str, Any] | None = None,
) -> None:
    """An explicit event by the current actor, for what is not a row change (evidence read
    with its reason, an export, a checkpoint): appended when `session` commits, with the
    transaction's other events (at once on a session that is not audited)."""
    entry = Entry(
        current_actor(),
        _short(action, 64, "action"),
        _short(object_type, 64, "object type"),
        _object_id(object_id),
        dict(details or {}),
    )
    if installed(session):
        _queue(session, [entry])
    else:
        append_entries(session.connection(), [entry])
