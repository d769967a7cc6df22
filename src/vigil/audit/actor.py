"""Who is acting: the actor every audit event is attributed to.

A `contextvars.ContextVar`, so each request, thread or task has its own: the API sets
`token:<name>` when it admits a bearer token, the web console `user:<username>` when it
admits a signed-in user, the command line `cli:<os user>`; anything else (background
workers, the pipeline) is `system`. FastAPI runs sync endpoints in a thread pool with a copy
of the request's context, so a value set by an (async) dependency reaches them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

SYSTEM = "system"
"""The actor when nobody in particular is acting (background workers, the pipeline)."""
MAX_ACTOR_CHARS = 200
"""`audit_event.actor` is a VARCHAR(200)."""

_actor: ContextVar[str] = ContextVar("vigil_audit_actor", default=SYSTEM)


def _checked(actor: str) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise ValueError("an actor must be a non-empty string")
    return actor.strip()[:MAX_ACTOR_CHARS]


def current_actor() -> str:
    """The actor of the running context (`system` unless someone set one)."""
    return _actor.get()


def set_actor(actor: str) -> Token[str]:
    """Make `actor` the actor of the running context until it ends (or `reset_actor`): for
    request dependencies, whose context lives exactly as long as the request."""
    return _actor.set(_checked(actor))


def reset_actor(token: Token[str]) -> None:
    """Undo a `set_actor`."""
    _actor.reset(token)


@contextmanager
def acting_as(actor: str) -> Iterator[str]:
    """Attribute what the block does to `actor` (restoring the previous actor after)."""
    token = set_actor(actor)
    try:
        yield _actor.get()
    finally:
        _actor.reset(token)
