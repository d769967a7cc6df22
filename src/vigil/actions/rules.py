"""Action rules: which webhook to call, with which action, when content matches a bank.

Every function takes a SQLAlchemy `Session` and flushes but never commits (the caller owns
the transaction). A rule names one match bank and optionally one Industry Classification
category; the outbox (`vigil.actions.outbox`) turns its matches into deliveries.

Actions ask the *platform* to do something (remove the content, suspend the account,
preserve evidence). They never notify the uploader: telling a suspect that a match was found
can warn them before law enforcement acts, so that decision belongs to the platform's own
notice path, behind legal review, and a rule whose action reads like a user notice is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vigil.banks.classification import Industry
from vigil.banks.service import get_bank
from vigil.store import ActionDelivery, ActionRule, Bank
from vigil.store.types import utcnow

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ACTION = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_UPLOADER_WORDS = ("notify", "message_user", "email_user")
NO_UPLOADER_NOTICE = "Actions never notify the uploader; a platform's own notice path does"
MAX_ATTEMPTS_LIMIT = 100
_URL_CHARS = 2048


class ActionError(Exception):
    """An action operation that cannot be done (the message says why)."""


class RuleNotFound(ActionError, LookupError):
    pass


class RuleExists(ActionError):
    pass


def check_rule_name(name: str) -> str:
    """A rule name, like a bank name: 1-64 of lower-case letters, digits, `.`, `_`, `-`."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"rule name {name[:70]!r} must be 1-64 lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return name


def check_action(action: str) -> str:
    """An action name (`remove_content`, `suspend_account`...); never a notice to the user."""
    if not _ACTION.fullmatch(action):
        raise ValueError(
            f"action {action[:70]!r} must be 1-64 lower-case letters, digits or '_',"
            " starting with a letter"
        )
    if any(word in action for word in _UPLOADER_WORDS):
        raise ValueError(f"action {action!r} refused: {NO_UPLOADER_NOTICE}")
    return action


def check_url(url: str) -> str:
    """An http(s) URL with a host. Credentials in the URL are refused: the URL is shown by
    `vigil actions rules list`, and requests are authenticated by their signature."""
    url = url.strip()
    if len(url) > _URL_CHARS:
        raise ValueError(f"url is longer than {_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"url {url[:100]!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"url {url[:100]!r} must be http:// or https:// with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("url must not contain credentials (user:password@)")
    return url


def check_classification(classification: str | None) -> str | None:
    """An Industry Classification category (A1, A2, B1, B2; any case), or None for all."""
    if classification is None:
        return None
    try:
        return Industry(classification.strip().upper()).value
    except ValueError:
        allowed = ", ".join(i.value for i in Industry)
        raise ValueError(
            f"classification must be one of {allowed}, got {classification[:20]!r}"
        ) from None


def check_secret_env(name: str | None) -> str | None:
    """The name (never the value) of the environment variable holding a signing secret."""
    if name is None:
        return None
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(
            f"secret environment variable {name[:70]!r} must be letters, digits and '_',"
            " not starting with a digit (the variable's name, not the secret)"
        )
    return name


def check_max_attempts(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"max attempts must be a whole number, got {value!r}")
    if not 1 <= value <= MAX_ATTEMPTS_LIMIT:
        raise ValueError(f"max attempts must be 1-{MAX_ATTEMPTS_LIMIT}, got {value}")
    return value


def create_rule(
    session: Session,
    *,
    name: str,
    bank: str | int,
    action: str,
    url: str,
    classification: str | None = None,
    secret_env: str | None = None,
    max_attempts: int = 8,
) -> ActionRule:
    """Create an enabled rule. ValueError for a bad setting, `BankNotFound` for an unknown
    bank, RuleExists when the name is taken. A suppression bank is refused: its hits cancel
    matches and never fire anything."""
    rule = ActionRule(
        name=check_rule_name(name),
        action=check_action(action),
        url=check_url(url),
        classification=check_classification(classification),
        secret_env=check_secret_env(secret_env),
        max_attempts=check_max_attempts(max_attempts),
        enabled=True,
        created=utcnow(),
    )
    found = get_bank(session, bank)
    if found.kind != "match":
        raise ValueError(
            f"bank {found.name!r} is a suppression bank: its hits cancel matches and never"
            " fire actions"
        )
    rule.bank_id = found.id
    if session.scalar(select(ActionRule.id).where(ActionRule.name == rule.name)) is not None:
        raise RuleExists(f"a rule named {rule.name!r} already exists")
    try:
        with session.begin_nested():
            session.add(rule)
    except IntegrityError:
        raise RuleExists(f"a rule named {rule.name!r} already exists") from None
    return rule


def get_rule(session: Session, rule: str | int) -> ActionRule:
    """A rule by name or id; RuleNotFound when there is none."""
    found = (
        session.get(ActionRule, rule)
        if isinstance(rule, int)
        else session.scalars(select(ActionRule).where(ActionRule.name == rule)).one_or_none()
    )
    if found is None:
        raise RuleNotFound(f"no action rule {rule!r}")
    return found


def list_rules(session: Session, bank: str | int | None = None) -> Sequence[ActionRule]:
    """Every rule (of one bank, when given), by name."""
    query = select(ActionRule).order_by(ActionRule.name)
    if bank is not None:
        query = query.where(ActionRule.bank_id == get_bank(session, bank).id)
    return session.scalars(query).all()


def rule_bank_names(session: Session, rules: Sequence[ActionRule]) -> dict[int, str]:
    """The name of each rule's bank, by bank id (for listings)."""
    ids = {rule.bank_id for rule in rules}
    if not ids:
        return {}
    rows = session.execute(select(Bank.id, Bank.name).where(Bank.id.in_(ids)))
    return {bank_id: name for bank_id, name in rows}


def set_rule_enabled(session: Session, name: str | int, enabled: bool) -> ActionRule:
    """Enable or disable a rule. A disabled rule fires nothing new; deliveries it already
    owes are still delivered."""
    rule = get_rule(session, name)
    rule.enabled = bool(enabled)
    session.flush()
    return rule


def pending_count(session: Session, rule: ActionRule) -> int:
    """How many deliveries the rule still owes."""
    return (
        session.scalar(
            select(func.count(ActionDelivery.id)).where(
                ActionDelivery.rule_id == rule.id, ActionDelivery.status == "pending"
            )
        )
        or 0
    )


def delete_rule(session: Session, name: str | int) -> None:
    """Delete a rule and its delivered and dead deliveries. Refused (ValueError) while any
    delivery is pending, so no owed event is dropped: disable the rule and wait instead."""
    rule = get_rule(session, name)
    pending = pending_count(session, rule)
    if pending:
        raise ValueError(
            f"rule {rule.name!r} has {pending} pending deliveries: disable it and delete it"
            " once they are delivered or dead"
        )
    session.delete(rule)
    session.flush()
