"""Who may use a console page, and the protections every console response carries.

- `signed_in(*roles)`: the FastAPI dependency every console page uses. It resolves the
  `vigil_session` cookie (`vigil.web.sessions.resolve`, in the thread pool), sends a browser
  without a valid session to the sign-in page (303 for GET/HEAD, 401 otherwise), checks the
  CSRF token of every POST/PUT/PATCH/DELETE (form field `csrf_token` or header
  `X-CSRF-Token`, else 403), and answers 403 to a user without one of `roles` (`admin` has
  every role).
- `ConsoleError`: raise it from a page for an HTML error page (`forbidden.html`).
- `ConsoleHeadersMiddleware`: security headers on every `/console` and `/portal` response
  (the portal's pages are `vigil.web.portal`), and a 403 for
  state-changing requests a browser marks as coming from another site (`Sec-Fetch-Site`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.audit.actor import set_actor
from vigil.store.service_models import USER_ROLES
from vigil.web.sessions import SignedIn, resolve

if TYPE_CHECKING:  # vigil.api imports this package: no import of vigil.api at run time
    from vigil.api.state import ServiceState

CONSOLE_PATH = "/console"
PORTAL_PATH = "/portal"
"""The law-enforcement portal (`vigil.web.portal`): its pages get the same headers."""
LOGIN_PATH = "/console/login"
HOME_PATH = "/console/queue"
"""Where a user lands after signing in when no other page was asked for."""
SESSION_COOKIE = "vigil_session"
LOGIN_CSRF_COOKIE = "vigil_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_NEXT_CHARS = 2000

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "media-src 'self' blob:; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-store"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
"""Set (replacing any the page set itself) on every response under `/console`."""


class ConsoleError(Exception):
    """An error shown to a person as a page (`forbidden.html`) rather than JSON."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.title = title or {
            401: "Please sign in",
            403: "Not allowed",
            404: "Not found",
            429: "Too many attempts",
        }.get(status_code, "Something went wrong")
        self.headers = dict(headers or {})


class LoginRequired(Exception):
    """No valid session: the handler sends a browser to the sign-in page."""


def is_console_path(path: str) -> bool:
    return path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/")


def is_page_path(path: str) -> bool:
    """A page of the console or of the portal: both get `SECURITY_HEADERS` and refuse
    cross-site state changes."""
    return is_console_path(path) or path == PORTAL_PATH or path.startswith(PORTAL_PATH + "/")


def safe_next(value: str | None, default: str = HOME_PATH) -> str:
    """`value` when it is a path of this console (`/console...`, relative to this site, no
    scheme, no host, no `//`, no backslash, no control character or space), else `default`:
    where to go after signing in, never another site."""
    if not isinstance(value, str) or not value or len(value) > MAX_NEXT_CHARS:
        return default
    if "\\" in value or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value):
        return default
    if not value.startswith("/") or value.startswith("//"):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not is_console_path(parts.path):
        return default
    if parts.path == LOGIN_PATH:
        return default
    return value


def login_url(next_path: str | None = None) -> str:
    """The sign-in page, coming back to `next_path` (when it is a safe one) afterwards."""
    target = safe_next(next_path, default="")
    return f"{LOGIN_PATH}?{urlencode({'next': target})}" if target else LOGIN_PATH


def is_https(request: Request) -> bool:
    """Whether the browser reached us over https (the scheme uvicorn saw, which follows
    `X-Forwarded-Proto` from a trusted proxy): the cookie is then marked `Secure`."""
    return request.url.scheme == "https"


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def set_session_cookie(response: Response, request: Request, value: str) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Path=/console, Secure over https, and
    no Max-Age (it ends with the browser; the server ends it sooner, see `sessions`)."""
    response.set_cookie(
        SESSION_COOKIE,
        value,
        path=CONSOLE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=CONSOLE_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    if not isinstance(given, str) or not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def submitted_csrf_token(request: Request) -> str | None:
    """The CSRF token a request carries: header `X-CSRF-Token` (htmx sends it on every
    request), else form field `csrf_token`."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # cached: the page's own Form() fields read it again
        value = form.get(CSRF_FIELD)
        if isinstance(value, str):
            return value
    return None


async def require_csrf(request: Request, expected: str) -> None:
    """403 unless the request carries `expected` (the session's CSRF token)."""
    if not tokens_match(await submitted_csrf_token(request), expected):
        raise ConsoleError(
            403,
            "This form has expired or did not come from this console. Go back, reload the"
            " page and try again.",
            title="Request refused",
        )


def console_state(request: Request) -> ServiceState:
    """The worker's `ServiceState` (database, settings, rate limiter)."""
    state: ServiceState = request.app.state.vigil
    return state


async def current_user(request: Request) -> SignedIn | None:
    """The signed-in user of this request, or None; resolved once per request (kept on
    `request.state.console_user`, where templates find it too)."""
    if hasattr(request.state, "console_user"):
        user: SignedIn | None = request.state.console_user
        return user
    cookie = request.cookies.get(SESSION_COOKIE)
    user = None
    if cookie:
        state = console_state(request)
        idle = timedelta(minutes=state.settings.console_idle_minutes)

        def lookup() -> SignedIn | None:
            # Immediate: resolving may write (last seen), and on SQLite a transaction that
            # reads and then writes can fail at once when another writer holds the lock.
            with state.database.session(immediate=True) as session:
                return resolve(session, cookie, idle=idle)

        user = await run_in_threadpool(lookup)
    request.state.console_user = user
    return user


SignedInDependency = Callable[[Request], Awaitable[SignedIn]]


@cache
def signed_in(*roles: str) -> SignedInDependency:
    """The dependency admitting a signed-in user with one of `roles` (any signed-in user when
    none is named; `admin` passes every check); it returns the `SignedIn`.

    Without a valid session: 303 to `/console/login?next=<this page>` for GET and HEAD, 401
    otherwise. POST, PUT, PATCH and DELETE must carry the session's CSRF token, else 403.
    Without the role: 403 page. The same roles give the same dependency object, so FastAPI
    resolves it once per request however many times a page names it.
    """
    unknown = [role for role in roles if role not in USER_ROLES]
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}: use {', '.join(USER_ROLES)}")

    async def dependency(request: Request) -> SignedIn:
        user = await current_user(request)
        if user is None:
            raise LoginRequired()
        if request.method in UNSAFE_METHODS:
            await require_csrf(request, user.csrf_token)
        if not user.has_any(*roles):
            raise ConsoleError(
                403,
                "Your account does not have access to this page. If you need it, ask an"
                " administrator.",
            )
        set_actor(f"user:{user.username}")  # the request's audit events are this user's
        return user

    dependency.__name__ = f"signed_in_{'_'.join(roles) or 'any'}"
    return dependency


CurrentUser = Annotated[SignedIn, Depends(signed_in())]
"""Any signed-in user (and, for state-changing methods, a valid CSRF token)."""
AdminUser = Annotated[SignedIn, Depends(signed_in("admin"))]


class ConsoleHeadersMiddleware:
    """For every request under `/console` and `/portal`: the `SECURITY_HEADERS` on the
    response, whatever produced it; and 403 for a POST/PUT/PATCH/DELETE that the browser
    says came from another site (`Sec-Fetch-Site: cross-site` or `same-site`), before any
    page runs. This is on top of SameSite=Strict cookies and CSRF tokens, not instead of
    them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
            await send(message)

        if scope["method"] in UNSAFE_METHODS:
            site = dict(scope["headers"]).get(b"sec-fetch-site", b"").decode("latin-1")
            if site.lower() in ("cross-site", "same-site"):
                refused = Response(
                    "Cross-site request refused.", status_code=403, media_type="text/plain"
                )
                await refused(scope, receive, send_with_headers)
                return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # An unhandled error: answer 500 here, with the headers (the server's own error
            # response, further out, would lack them), and let the error go on to be logged.
            if not started:
                failed = Response("Internal Server Error", status_code=500, media_type="text/plain")
                await failed(scope, receive, send_with_headers)
            raise
