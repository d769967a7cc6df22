"""The auth room: who may call Vigil (docs/auth.md).

Public API (functions take a SQLAlchemy `Session`; they flush, never commit):

- API tokens (`tokens`): `create_token` -> (row, secret shown once), `list_tokens`,
  `get_token`, `revoke_token`, `authenticate_token` -> `TokenPrincipal`, `TokenCache` (what
  the HTTP API calls per request), `parse_expiry`, `hash_secret`;
- users (`users`): `create_user`, `list_users`, `get_user`, `disable_user`, `enable_user`,
  `set_password`, `verify_password` (argon2id);
- `RateLimiter` (`ratelimit`): a token bucket per key;
- errors: `AuthError` (a refused operation; `TokenExists`, `TokenNotFound`, `UserExists`,
  `UserNotFound`), `AuthenticationError` (credentials refused, one message for every reason).
  Invalid values (a bad name, scope, role, password, expiry) are `ValueError`.
"""

from vigil.auth.ratelimit import RateLimiter, burst_for
from vigil.auth.tokens import (
    AuthenticationError,
    AuthError,
    TokenCache,
    TokenExists,
    TokenNotFound,
    TokenPrincipal,
    authenticate_token,
    check_scopes,
    create_token,
    get_token,
    hash_secret,
    is_well_formed,
    list_tokens,
    parse_expiry,
    revoke_token,
)
from vigil.auth.users import (
    UserExists,
    UserNotFound,
    check_password,
    check_roles,
    check_username,
    create_user,
    disable_user,
    enable_user,
    get_user,
    list_users,
    set_password,
    verify_password,
)
from vigil.store.service_models import TOKEN_SCOPES, USER_ROLES

__all__ = [
    "TOKEN_SCOPES",
    "USER_ROLES",
    "AuthError",
    "AuthenticationError",
    "RateLimiter",
    "TokenCache",
    "TokenExists",
    "TokenNotFound",
    "TokenPrincipal",
    "UserExists",
    "UserNotFound",
    "authenticate_token",
    "burst_for",
    "check_password",
    "check_roles",
    "check_scopes",
    "check_username",
    "create_token",
    "create_user",
    "disable_user",
    "enable_user",
    "get_token",
    "get_user",
    "hash_secret",
    "is_well_formed",
    "list_tokens",
    "list_users",
    "parse_expiry",
    "revoke_token",
    "set_password",
    "verify_password",
]
