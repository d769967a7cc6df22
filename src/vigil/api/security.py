"""Bearer-token authentication, scopes and per-token rate limits, as FastAPI dependencies.

Every route but `/healthz` and `/readyz` depends on `require(scope)`; the check is done on
the server for each request (scopes: docs/auth.md).
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from vigil.api.state import ServiceState
from vigil.audit.actor import set_actor
from vigil.auth import AuthenticationError, TokenPrincipal

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.vigil
    return state


State = Annotated[ServiceState, Depends(get_state)]


class ScopedBearer(HTTPBearer):
    """The dependency that admits a request: a valid, unexpired, unrevoked bearer token that
    has `scope` and is within its rate limit; 401, 403 and 429 otherwise.

    One dependency doing the whole check (it is an `HTTPBearer`, so the OpenAPI document
    shows the scheme): FastAPI's cost grows with each dependency it solves, and this runs
    on every request. The usual case, a cached token, touches no database and no thread.
    """

    def __init__(self, scope: str) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="bearer",
            description="An API token from `vigil tokens create`.",
        )
        self.scope = scope

    async def __call__(self, request: Request) -> TokenPrincipal:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None:
            raise HTTPException(401, "an API token is required", headers=_CHALLENGE)
        state: ServiceState = request.app.state.vigil
        try:
            principal = state.tokens.authenticate(credentials.credentials)
        except AuthenticationError:
            raise HTTPException(
                401, "the API token is invalid, expired or revoked", headers=_CHALLENGE
            ) from None
        request.state.principal = principal
        set_actor(f"token:{principal.name}")  # the request's audit events are the token's
        limit = principal.rate_limit_per_minute or state.settings.api_rate_limit_per_minute
        wait = state.limiter.check(f"token:{principal.id}", limit)
        if wait is not None:
            raise HTTPException(
                429,
                f"rate limit of {limit} requests a minute exceeded",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if not principal.allows(self.scope):
            raise HTTPException(403, f"this token lacks the {self.scope!r} scope")
        return principal


def require(scope: str) -> ScopedBearer:
    """The dependency admitting tokens with `scope` (see `ScopedBearer`)."""
    return ScopedBearer(scope)


Hasher = Annotated[TokenPrincipal, Depends(require("hash"))]
Matcher = Annotated[TokenPrincipal, Depends(require("match"))]
Curator = Annotated[TokenPrincipal, Depends(require("curate"))]
Admin = Annotated[TokenPrincipal, Depends(require("admin"))]
