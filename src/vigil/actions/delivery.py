"""Sending the outbox: signed webhook calls, retried with backoff, dead letters kept.

One round (`deliver_due`) repeatedly *claims* a few due rows in a short transaction (moving
each row's `next_attempt` forward by a lease with an optimistic `UPDATE ... WHERE id = :id AND
next_attempt = :seen`, so two workers, on SQLite or PostgreSQL, never send one row at once),
commits, POSTs them outside any transaction, and records each result in a transaction of its
own. Semantics are at least once: a crash after a POST and before its result is recorded sends
the row again when its lease runs out, with the same `Idempotency-Key`, on which receivers
deduplicate (docs/actions.md). Each claim sets the payload's `may_notify_user` from the legal
desk's notice guard at that moment (`with_notice`), so a retry or a revived dead letter never
carries a permission an order has since withdrawn; the signature covers the body as sent.

Secrets (the signing key) and payloads are never logged nor stored with errors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vigil import __version__
from vigil.actions.rules import ActionError, get_rule
from vigil.config import Settings
from vigil.store import ActionDelivery, ActionRule, Database
from vigil.store.service_models import DELIVERY_STATUSES
from vigil.store.types import utcnow

logger = logging.getLogger("vigil.actions")

USER_AGENT = f"vigil/{__version__}"
SIGNATURE_SCHEME = "v1"
RETRY_STATUSES = frozenset({408, 425, 429})
"""Besides every 5xx: the answers after which the same request may well succeed later."""
NO_SECRET = "no signing secret configured"
NO_SECRET_RECHECK = timedelta(seconds=60)
"""How long a delivery with no signing secret waits before it is looked at again."""
ERROR_CHARS = 500
_BODY_READ_BYTES = 4 * ERROR_CHARS
_LEASE_MARGIN_SECONDS = 30.0


class DeliveryNotFound(ActionError, LookupError):
    pass


# --- Signatures ---------------------------------------------------------------------------


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>`: the `v1=` value of `X-Vigil-Signature`."""
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes,
    timestamp: int | str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance: int = 300,
) -> bool:
    """Whether `header` (`X-Vigil-Signature`, `v1=<hex>`; several comma-separated values are
    allowed while a secret is rotated) signs `body` at `timestamp` (`X-Vigil-Timestamp`) with
    `secret`, and the timestamp is within `tolerance` seconds of `now` (default: the clock),
    which bounds replays. Constant-time comparison."""
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance:
        return False
    expected = signature(secret, stamp, body).encode()
    valid = False
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == SIGNATURE_SCHEME and hmac.compare_digest(value.encode(), expected):
            valid = True
    return valid


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed) for a payload."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def resolve_secret(secret_env: str | None, settings: Settings) -> bytes | None:
    """A rule's signing key: its own environment variable when it names one (and only that:
    a receiver configured for the rule's key would reject the server's), else
    `VIGIL_WEBHOOK_SECRET`; None when there is none, and then nothing is sent."""
    if secret_env:
        value = os.environ.get(secret_env)
        return value.encode("utf-8") if value else None
    if settings.webhook_secret is not None:
        secret = settings.webhook_secret.get_secret_value()
        return secret.encode("utf-8") if secret else None
    return None


# --- Claiming -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A delivery a worker holds until `lease_until`: everything needed to send it."""

    id: int
    rule_id: int
    rule_name: str
    url: str
    secret_env: str | None
    max_attempts: int
    attempts: int
    idempotency_key: str
    payload: dict[str, Any]
    lease_until: datetime


def lease_for(settings: Settings) -> timedelta:
    """How long a claim holds a row: longer than one call can take (connect, send, read)."""
    return timedelta(seconds=settings.webhook_timeout_seconds * 2 + _LEASE_MARGIN_SECONDS)


def due_rows(session: Session, *, now: datetime, limit: int) -> list[tuple[int, datetime]]:
    """(id, next_attempt) of up to `limit` pending rows due at `now`, oldest first."""
    rows = session.execute(
        select(ActionDelivery.id, ActionDelivery.next_attempt)
        .where(ActionDelivery.status == "pending", ActionDelivery.next_attempt <= now)
        .order_by(ActionDelivery.next_attempt, ActionDelivery.id)
        .limit(limit)
    )
    return list(rows)


def take_rows(session: Session, seen: Sequence[tuple[int, datetime]], until: datetime) -> list[int]:
    """Move each row's `next_attempt` to `until`, only where it is still what was `seen`;
    the ids whose update won (a row another worker claimed meanwhile is left out)."""
    taken: list[int] = []
    for delivery_id, next_attempt in seen:
        result = session.execute(
            update(ActionDelivery)
            .where(
                ActionDelivery.id == delivery_id,
                ActionDelivery.status == "pending",
                ActionDelivery.next_attempt == next_attempt,
            )
            .values(next_attempt=until)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) == 1:
            taken.append(delivery_id)
    return taken


def uploader_account(payload: dict[str, Any]) -> str | None:
    """The account a payload is about (its uploader's `account_id`), if it names one."""
    uploader = payload.get("uploader")
    account_id = uploader.get("account_id") if isinstance(uploader, dict) else None
    return account_id if isinstance(account_id, str) and account_id else None


def with_notice(
    session: Session,
    payloads: Sequence[dict[str, Any]],
    *,
    notice_policy: bool,
    now: datetime,
) -> list[dict[str, Any]]:
    """Copies of `payloads` whose `may_notify_user` is the legal desk's notice guard's answer
    at `now` (`vigil.legal.notice`): false under an active non-disclosure order naming the
    uploader, while a report about the uploader exists, when no uploader is named, or when
    the guard cannot decide; else `notice_policy`. Decided at every attempt, since an order
    may arrive after the delivery was queued."""
    from vigil.legal.notice import may_notify_users  # only this module; nothing else of legal

    accounts = [uploader_account(payload) for payload in payloads]
    decisions = may_notify_users(session, accounts, notice_policy=notice_policy, now=now)
    return [
        {**payload, "may_notify_user": decisions[account].allowed}
        for payload, account in zip(payloads, accounts, strict=True)
    ]


def claim_due(
    database: Database,
    *,
    lease: timedelta,
    limit: int = 50,
    now: datetime | None = None,
    notice_policy: bool = False,
) -> list[Claim]:
    """Claim up to `limit` due deliveries for `lease`, in one short committed transaction
    (BEGIN IMMEDIATE on SQLite, so claimers queue instead of failing on a stale snapshot).
    Each claim's payload carries `may_notify_user` as the notice guard decides it now, in
    the claiming transaction (`with_notice`; `notice_policy`: the platform's policy,
    `Settings.legal_notice_after_order`)."""
    now = now or utcnow()
    until = now + lease
    with database.session(immediate=True) as session:
        taken = take_rows(session, due_rows(session, now=now, limit=limit), until)
        if not taken:
            return []
        rows = session.execute(
            select(ActionDelivery, ActionRule)
            .join(ActionRule, ActionRule.id == ActionDelivery.rule_id)
            .where(ActionDelivery.id.in_(taken))
            .order_by(ActionDelivery.next_attempt, ActionDelivery.id)
        ).all()
        payloads = with_notice(
            session,
            [dict(delivery.payload) for delivery, _ in rows],
            notice_policy=notice_policy,
            now=now,
        )
        return [
            Claim(
                id=delivery.id,
                rule_id=rule.id,
                rule_name=rule.name,
                url=rule.url,
                secret_env=rule.secret_env,
                max_attempts=rule.max_attempts,
                attempts=delivery.attempts,
                idempotency_key=delivery.idempotency_key,
                payload=payload,
                lease_until=until,
            )
            for (delivery, rule), payload in zip(rows, payloads, strict=True)
        ]


# --- Sending and recording ----------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """What one POST came to: an HTTP status, or an error before any status arrived."""

    status: int | None
    error: str | None = None
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Network errors, timeouts, 408, 425, 429 and 5xx; any other answer is final."""
        return self.status is None or self.status in RETRY_STATUSES or self.status >= 500

    @property
    def summary(self) -> str:
        """Safe to log: the status or the error's kind, never a body."""
        return f"HTTP {self.status}" if self.status is not None else (self.error or "error")


def delivery_headers(claim: Claim, secret: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Vigil-Timestamp": str(timestamp),
        "X-Vigil-Signature": f"{SIGNATURE_SCHEME}={signature(secret, timestamp, body)}",
        "Idempotency-Key": claim.idempotency_key,
        "X-Vigil-Delivery": str(claim.id),
    }


def _retry_after(value: str | None) -> float | None:
    """A numeric `Retry-After` (seconds); the HTTP-date form is ignored."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds else None  # NaN is not a number


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 3] + "..."


def _read_some(response: httpx.Response) -> str:
    """The start of a response body, enough for `last_error` (never the whole of it)."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= _BODY_READ_BYTES:
                break
    except httpx.HTTPError:
        pass
    return b"".join(chunks)[:_BODY_READ_BYTES].decode("utf-8", errors="replace")


def send(client: httpx.Client, claim: Claim, secret: bytes, timestamp: int) -> Attempt:
    """POST one delivery, signed at `timestamp`. Redirects are not followed: a signed body
    goes only to the URL the rule names."""
    body = encode_body(claim.payload)
    headers = delivery_headers(claim, secret, timestamp, body)
    try:
        with client.stream(
            "POST", claim.url, content=body, headers=headers, follow_redirects=False
        ) as response:
            status = response.status_code
            retry_after = _retry_after(response.headers.get("retry-after"))
            if 200 <= status < 300:
                return Attempt(status)
            text = _read_some(response)
            return Attempt(status, _short(f"HTTP {status}: {text}"), retry_after)
    except httpx.TimeoutException as error:
        return Attempt(None, f"timeout ({type(error).__name__})")
    except Exception as error:
        return Attempt(None, _short(f"{type(error).__name__}: {error}"))


def backoff(settings: Settings, attempts: int, retry_after: float | None = None) -> timedelta:
    """Delay before the next try after `attempts` failed ones: `backoff * 2**(attempts-1)`,
    at most the maximum; a larger numeric Retry-After wins, also capped at the maximum."""
    cap = settings.webhook_backoff_max_seconds
    delay = min(settings.webhook_backoff_seconds * 2 ** max(attempts - 1, 0), cap)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return timedelta(seconds=delay)


def record_attempt(
    database: Database, claim: Claim, attempt: Attempt, settings: Settings, *, now: datetime
) -> str:
    """Write one attempt's result; returns the outcome: `delivered`, `retrying`, `dead`, or
    `gone` when the row is no longer pending (another worker finished it, or it was
    deleted with its rule)."""
    with database.session(immediate=True) as session:
        row = session.get(ActionDelivery, claim.id)
        if row is None or row.status != "pending":
            return "gone"
        row.attempts += 1
        row.last_status = attempt.status
        if attempt.delivered:
            row.status = "delivered"
            row.delivered = now
            row.last_error = None
            return "delivered"
        row.last_error = attempt.error
        if attempt.retryable and row.attempts < claim.max_attempts:
            row.next_attempt = now + backoff(settings, row.attempts, attempt.retry_after)
            return "retrying"
        row.status = "dead"
        return "dead"


def _record_unsigned(database: Database, claim: Claim, *, now: datetime) -> None:
    """No key to sign with: stay pending, untried, and look again later."""
    with database.session(immediate=True) as session:
        row = session.get(ActionDelivery, claim.id)
        if row is None or row.status != "pending":
            return
        variable = f": ${claim.secret_env} is not set" if claim.secret_env else ""
        row.last_error = NO_SECRET + variable
        row.next_attempt = now + NO_SECRET_RECHECK


@dataclass
class DeliveryRound:
    """What one `deliver_due` call did."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    unsigned: int = 0
    """Left pending, unsent: no signing secret configured for their rule."""
    errors: int = 0
    """Sent (or not), but the result could not be recorded: the row is tried again later."""
    gone: int = 0
    """Finished by another worker meanwhile (or deleted with its rule): nothing recorded."""

    def as_json(self) -> dict[str, int]:
        return asdict(self)


def _process(
    database: Database,
    settings: Settings,
    client: httpx.Client,
    claim: Claim,
    now: datetime | None,
) -> str:
    """Send one claimed delivery and record the result; the `DeliveryRound` field to count."""
    try:
        secret = resolve_secret(claim.secret_env, settings)
        if secret is None:
            _record_unsigned(database, claim, now=now or utcnow())
            logger.warning("delivery %d (rule %s): %s", claim.id, claim.rule_name, NO_SECRET)
            return "unsigned"
        attempt = send(client, claim, secret, int((now or utcnow()).timestamp()))
        outcome = record_attempt(database, claim, attempt, settings, now=now or utcnow())
    except Exception as error:
        logger.error("delivery %d: could not record: %s", claim.id, type(error).__name__)
        return "errors"
    if outcome in ("retrying", "dead"):
        logger.warning(
            "delivery %d (rule %s) failed: %s; %s",
            claim.id,
            claim.rule_name,
            attempt.summary,
            "will retry" if outcome == "retrying" else "dead",
        )
    return outcome


def deliver_due(
    database: Database,
    settings: Settings,
    *,
    client: httpx.Client,
    limit: int = 50,
    now: datetime | None = None,
    concurrency: int = 4,
) -> DeliveryRound:
    """Send up to `limit` due deliveries, `concurrency` at a time: each batch is claimed
    (committed) just before it is sent, so every call runs well inside its lease. `now`
    (for tests) fixes the clock used for due times, signatures and backoff."""
    done = DeliveryRound()
    batch = max(1, concurrency)
    lease = lease_for(settings)
    while done.claimed < limit:
        claims = claim_due(
            database,
            lease=lease,
            limit=min(batch, limit - done.claimed),
            now=now,
            notice_policy=settings.legal_notice_after_order,
        )
        if not claims:
            break
        done.claimed += len(claims)
        if len(claims) == 1:
            outcomes = [_process(database, settings, client, claims[0], now)]
        else:
            with ThreadPoolExecutor(len(claims), thread_name_prefix="vigil-send") as pool:
                outcomes = list(
                    pool.map(lambda c: _process(database, settings, client, c, now), claims)
                )
        for outcome in outcomes:
            setattr(done, outcome, getattr(done, outcome) + 1)
    return done


def make_client(settings: Settings) -> httpx.Client:
    """The HTTP client deliveries share: the configured timeout, no redirects."""
    return httpx.Client(
        timeout=settings.webhook_timeout_seconds,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


# --- Inspecting and retrying --------------------------------------------------------------


def _status(status: str | None) -> str | None:
    if status is not None and status not in DELIVERY_STATUSES:
        raise ValueError(f"status must be one of {', '.join(DELIVERY_STATUSES)}, got {status!r}")
    return status


def list_deliveries(
    session: Session,
    *,
    status: str | None = None,
    rule: str | int | None = None,
    limit: int = 100,
) -> Sequence[ActionDelivery]:
    """Deliveries, newest first, of one status and one rule when given."""
    query = select(ActionDelivery).order_by(ActionDelivery.id.desc()).limit(limit)
    if _status(status) is not None:
        query = query.where(ActionDelivery.status == status)
    if rule is not None:
        query = query.where(ActionDelivery.rule_id == get_rule(session, rule).id)
    return session.scalars(query).all()


def get_delivery(session: Session, delivery_id: int) -> ActionDelivery:
    found = session.get(ActionDelivery, delivery_id)
    if found is None:
        raise DeliveryNotFound(f"no delivery {delivery_id}")
    return found


def retry_delivery(
    session: Session, delivery_id: int, *, now: datetime | None = None
) -> ActionDelivery:
    """Bring a dead delivery back: pending, attempts 0, due now (same Idempotency-Key).
    Only dead ones: a pending one may be in flight, a delivered one is done."""
    delivery = get_delivery(session, delivery_id)
    if delivery.status != "dead":
        raise ActionError(f"delivery {delivery_id} is {delivery.status}; only dead ones retry")
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt = now or utcnow()
    session.flush()
    return delivery


def retry_dead(
    session: Session, rule: str | int | None = None, *, now: datetime | None = None
) -> int:
    """Bring every dead delivery (of one rule, when given) back; how many."""
    query = (
        update(ActionDelivery)
        .where(ActionDelivery.status == "dead")
        .values(status="pending", attempts=0, next_attempt=now or utcnow())
        .execution_options(synchronize_session="fetch")
    )
    if rule is not None:
        query = query.where(ActionDelivery.rule_id == get_rule(session, rule).id)
    result = session.execute(query)
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


def outbox_depth(session: Session) -> dict[str, int]:
    """How many deliveries are in each status (every status present, 0 when none)."""
    counts = dict.fromkeys(DELIVERY_STATUSES, 0)
    for status, count in session.execute(
        select(ActionDelivery.status, func.count(ActionDelivery.id)).group_by(ActionDelivery.status)
    ):
        counts[status] = count
    return counts


# --- The background worker ----------------------------------------------------------------


class ActionWorker:
    """Runs `deliver_due` every `poll_seconds` (straight away again while rows keep coming)
    with one shared HTTP client, in a thread (`start`/`stop`) or in the foreground (`run`).
    Logs counts, never payloads or secrets."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        poll_seconds: float = 1.0,
        limit: int = 50,
        concurrency: int = 4,
        client: httpx.Client | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.poll_seconds = poll_seconds
        self.limit = limit
        self.concurrency = concurrency
        self._client = client or make_client(settings)
        self._owns_client = client is None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_once(self, now: datetime | None = None) -> DeliveryRound:
        """One round; its counts are logged when it did anything."""
        done = deliver_due(
            self.database,
            self.settings,
            client=self._client,
            limit=self.limit,
            now=now,
            concurrency=self.concurrency,
        )
        if done.claimed:
            logger.info(
                "actions: %d delivered, %d retrying, %d dead, %d unsigned, %d errors",
                done.delivered,
                done.retrying,
                done.dead,
                done.unsigned,
                done.errors,
            )
        return done

    def run(self) -> None:
        """Deliver until `stop()` is called (from another thread or a signal handler)."""
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception as error:
                logger.error("actions: delivery round failed: %s", type(error).__name__)
                done = DeliveryRound()
            if done.claimed < self.limit:
                self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        """Deliver in a daemon thread until `stop()`."""
        if self.running:
            raise RuntimeError("the action worker is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="vigil-actions", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to end after the round in flight (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop after the round in flight and close the client the worker owns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("actions: worker still busy after %s s; left to finish", timeout)
                return
            self._thread = None
        self.close()

    def close(self) -> None:
        """Close the HTTP client, when the worker made it (call once `run` has returned)."""
        if self._owns_client:
            self._client.close()


def failed_attempts(session: Session) -> int:
    """Webhook calls that failed, as the outbox records them (a delivered row's attempts
    less its one success; a retried dead letter starts again from 0)."""
    total, delivered = session.execute(
        select(
            func.coalesce(func.sum(ActionDelivery.attempts), 0),
            func.count(ActionDelivery.id).filter(ActionDelivery.status == "delivered"),
        )
    ).one()
    return int(total) - int(delivered)
