"""The console's own routes (sign-in, sign-out, `/console/`), its static files, its error
pages, and `install_console`, which adds all of it to the FastAPI app."""

from __future__ import annotations

import math
import re
import secrets
from datetime import timedelta
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRouter
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, RedirectResponse, Response

from vigil.auth import AuthenticationError
from vigil.web import legal as legal_pages
from vigil.web import portal as portal_pages
from vigil.web import reports as report_pages
from vigil.web import review as review_pages
from vigil.web import sessions
from vigil.web import vault as vault_pages
from vigil.web.security import (
    CONSOLE_PATH,
    LOGIN_CSRF_COOKIE,
    LOGIN_PATH,
    SESSION_COOKIE,
    ConsoleError,
    ConsoleHeadersMiddleware,
    LoginRequired,
    clear_session_cookie,
    client_address,
    console_state,
    current_user,
    is_https,
    login_url,
    require_csrf,
    safe_next,
    set_session_cookie,
    tokens_match,
)
from vigil.web.templating import STATIC_DIR, STATIC_URL, render

router = APIRouter(prefix=CONSOLE_PATH, include_in_schema=False)

SIGN_IN_FAILED = "The username or password is not right, or this account cannot sign in."
_MAX_USERNAME_CHARS = 64
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")


@router.get("")
@router.get("/")
async def console_home() -> RedirectResponse:
    """The console's front door: the review queue (which asks for a sign-in if needed)."""
    return RedirectResponse("/console/queue", status_code=303)


def _login_page(
    request: Request,
    *,
    next_path: str,
    username: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in form, with a double-submit CSRF token (cookie `vigil_login_csrf`, same
    value in the form): there is no session yet to hold one."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not _TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {
            "csrf_token": token,
            "next": next_path,
            "username": username,
            "error": error,
        },
        status_code=status_code,
        headers=headers,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


@router.get("/login", response_model=None)
async def login_form(request: Request, next: str | None = None) -> Response:
    """The sign-in page; a user already signed in goes straight on."""
    next_path = safe_next(next)
    if await current_user(request) is not None:
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, next_path=next_path)


@router.post("/login", response_model=None)
async def login(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """Check the form's CSRF token, the rate limits (per username and per client address),
    then the password; on success start a session and go to `next` (when it is a console
    page) or the queue."""
    state = console_state(request)
    next_path = safe_next(next)
    username = username.strip().lower()[: _MAX_USERNAME_CHARS + 1]
    if not tokens_match(csrf_token, request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        return _login_page(
            request,
            next_path=next_path,
            username=username,
            error="The sign-in form had expired. Please try again.",
            status_code=403,
        )
    settings = state.settings
    for key, limit in (
        (
            f"console-login-ip:{client_address(request)}",
            settings.console_login_ip_attempts_per_minute,
        ),
        (f"console-login-user:{username}", settings.console_login_attempts_per_minute),
    ):
        wait = state.limiter.check(key, limit)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            return _login_page(
                request,
                next_path=next_path,
                username=username,
                error=f"Too many sign-in attempts. Please wait {seconds} seconds and try again.",
                status_code=429,
                headers={"Retry-After": str(seconds)},
            )

    old_cookie = request.cookies.get(SESSION_COOKIE)
    lifetime = timedelta(hours=settings.console_session_hours)

    def start() -> str | None:
        with state.database.session(immediate=True) as session:
            try:
                secret, _row = sessions.sign_in(session, username, password, lifetime=lifetime)
            except AuthenticationError:
                return None
            if old_cookie:  # a new sign-in replaces this browser's previous session
                sessions.sign_out(session, old_cookie)
            return secret

    secret = await run_in_threadpool(start)
    if secret is None:
        return _login_page(
            request, next_path=next_path, username=username, error=SIGN_IN_FAILED, status_code=401
        )
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, request, secret)
    response.delete_cookie(
        LOGIN_CSRF_COOKIE,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    """End this browser's session (the form carries the CSRF token) and show the sign-in
    page. Without a live session there is nothing to end: straight to the sign-in page."""
    user = await current_user(request)
    if user is not None:
        await require_csrf(request, user.csrf_token)
        state = console_state(request)
        cookie = request.cookies.get(SESSION_COOKIE)

        def end() -> None:
            with state.database.session(immediate=True) as session:
                sessions.sign_out(session, cookie)

        await run_in_threadpool(end)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    clear_session_cookie(response, request)
    return response


async def _console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    return render(
        request,
        "forbidden.html",
        {"title": exc.title, "message": exc.message, "status_code": exc.status_code},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _login_required(request: Request, exc: Exception) -> Response:
    """To the sign-in page and back: 303 for a browser's GET/HEAD, 401 otherwise (htmx
    follows `HX-Redirect`, so a partial update does not land the form inside the page)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request") == "true":
        current = request.headers.get("hx-current-url", "")
        back = _path_and_query(current) if current else None
        return Response(status_code=401, headers={"HX-Redirect": login_url(back)})
    if request.method in ("GET", "HEAD"):
        response: Response = RedirectResponse(login_url(target), status_code=303)
    else:
        response = render(
            request,
            "forbidden.html",
            {
                "title": "Please sign in",
                "message": "Your session has ended. Sign in again, then repeat what you were"
                " doing.",
                "status_code": 401,
                "login_link": login_url(None),
            },
            status_code=401,
        )
    if request.cookies.get(SESSION_COOKIE):
        clear_session_cookie(response, request)
    return response


def _path_and_query(url: str) -> str:
    """The path and query of a URL (what `HX-Current-URL` names), to come back to."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def install_console(app: FastAPI) -> None:
    """Add the console to `app`: its routes, `/console/static`, its HTML error pages and the
    security-headers middleware. Page routers of later rooms are included here too."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="console-static")
    app.include_router(router)
    app.include_router(review_pages.router)
    app.include_router(report_pages.router)
    app.include_router(vault_pages.router)
    app.include_router(legal_pages.router)
    portal_pages.install(app)  # the law-enforcement portal, `/portal`
    app.add_exception_handler(ConsoleError, _console_error)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_middleware(ConsoleHeadersMiddleware)
