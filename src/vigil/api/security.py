"""Bearer-token authentication, scopes and per-token rate limits, as FastAPI dependencies.

Every route but `/healthz` and `/readyz` depends on `require(scope)`; the check is done on
the server for each request (scopes: docs/auth.md).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from vigil.api.state import ServiceState
from vigil.auth import AuthenticationError, TokenPrincipal

_bearer = HTTPBearer(auto_error=False, description="An API token from `vigil tokens create`.")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.vigil
    return state


State = Annotated[ServiceState, Depends(get_state)]


def require(scope: str) -> Callable[..., Awaitable[TokenPrincipal]]:
    """A dependency admitting only a valid, unexpired, unrevoked token that has `scope` and
    is within its rate limit: 401, 403 and 429 otherwise. Async, so the usual case (a
    cached token) costs no thread hand-off."""

    async def check(
        request: Request,
        state: State,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> TokenPrincipal:
        if credentials is None:
            raise HTTPException(401, "an API token is required", headers=_CHALLENGE)
        try:
            principal = state.tokens.authenticate(credentials.credentials)
        except AuthenticationError:
            raise HTTPException(
                401, "the API token is invalid, expired or revoked", headers=_CHALLENGE
            ) from None
        request.state.principal = principal
        limit = principal.rate_limit_per_minute or state.settings.api_rate_limit_per_minute
        wait = state.limiter.check(f"token:{principal.id}", limit)
        if wait is not None:
            raise HTTPException(
                429,
                f"rate limit of {limit} requests a minute exceeded",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        if not principal.allows(scope):
            raise HTTPException(403, f"this token lacks the {scope!r} scope")
        return principal

    return check


Hasher = Annotated[TokenPrincipal, Depends(require("hash"))]
Matcher = Annotated[TokenPrincipal, Depends(require("match"))]
Curator = Annotated[TokenPrincipal, Depends(require("curate"))]
Admin = Annotated[TokenPrincipal, Depends(require("admin"))]
