"""The law-enforcement portal (`/portal`): officers register with their agency address,
confirm it by the mailed one-time link, wait for a legal user to vet a new agency domain,
sign in, file requests with their legal document, follow them, and download a production
once through the single-use link mailed to them.

Officers are not console users. Their session is the `vigil_portal` cookie (Path=/portal,
HttpOnly, SameSite=Strict, Secure over https; `vigil.legal.portal` keeps only its hash), of
the console's lifetime and idle limit; every POST carries the session's CSRF token, and the
sign-in and registration forms, before there is a session, a double-submit token (cookie
`vigil_portal_csrf`). The console's security headers and cross-site refusal cover `/portal`
too (`ConsoleHeadersMiddleware`). A production's password is never shown here: the legal
team gives it by phone.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from argon2 import PasswordHasher
from fastapi import APIRouter, Depends, FastAPI, File, Form, Path, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from vigil.audit.actor import set_actor
from vigil.legal import deadlines, intake
from vigil.legal import portal as officers
from vigil.legal.desk import LegalError, get_request, reference
from vigil.legal.portal import SignedInOfficer
from vigil.legal.production import productions_of, take_download
from vigil.store import Officer, utcnow
from vigil.store.legal_models import REQUEST_KINDS, TARGET_KINDS
from vigil.vault.items import open_vault
from vigil.web.legal import (
    KIND_NAMES,
    new_request,
    parent_of,
    read_document,
    request_values,
)
from vigil.web.security import (
    PORTAL_PATH,
    UNSAFE_METHODS,
    client_address,
    console_state,
    is_https,
    submitted_csrf_token,
    tokens_match,
)
from vigil.web.templating import render

router = APIRouter(prefix=PORTAL_PATH, include_in_schema=False)

PORTAL_COOKIE = "vigil_portal"
FORM_CSRF_COOKIE = "vigil_portal_csrf"
LOGIN_PATH = f"{PORTAL_PATH}/login"
HOME_PATH = PORTAL_PATH
SIGN_IN_FAILED = "The email or password is not right, or the account is not active yet."
_EQUALISER = PasswordHasher()
"""Hashes a password nobody keeps when an address registers again, so that the answer takes
as long as a new registration's."""
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,64}")
_MAX_NEXT_CHARS = 2000


class PortalLoginRequired(Exception):
    """No valid portal session: to the portal's sign-in page."""


class PortalError(Exception):
    """An error shown to an officer as a portal page."""

    def __init__(self, status_code: int, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.title = title or {403: "Request refused", 404: "Not found"}.get(
            status_code, "That did not work"
        )


# --- Sessions and pages --------------------------------------------------------------------


def _timing(request: Request) -> tuple[timedelta, timedelta]:
    settings = console_state(request).settings
    return (
        timedelta(hours=settings.console_session_hours),
        timedelta(minutes=settings.console_idle_minutes),
    )


async def current_officer(request: Request) -> SignedInOfficer | None:
    """The officer signed in on this request, or None (resolved once per request)."""
    if hasattr(request.state, "portal_officer"):
        found: SignedInOfficer | None = request.state.portal_officer
        return found
    cookie = request.cookies.get(PORTAL_COOKIE)
    officer = None
    if cookie:
        state = console_state(request)
        _lifetime, idle = _timing(request)

        def lookup() -> SignedInOfficer | None:
            with state.database.session(immediate=True) as session:
                return officers.resolve(session, cookie, idle=idle, now=utcnow())

        officer = await run_in_threadpool(lookup)
    request.state.portal_officer = officer
    return officer


async def _require_csrf(request: Request, expected: str) -> None:
    if not tokens_match(await submitted_csrf_token(request), expected):
        raise PortalError(
            403,
            "This form has expired or did not come from this portal. Go back, reload the page"
            " and try again.",
        )


async def signed_in_officer(request: Request) -> SignedInOfficer:
    """The dependency of every signed-in portal page: a live session (else the sign-in
    page), and the session's CSRF token on every POST."""
    officer = await current_officer(request)
    if officer is None:
        raise PortalLoginRequired()
    if request.method in UNSAFE_METHODS:
        await _require_csrf(request, officer.csrf_token)
    set_actor(f"officer:{officer.email}")
    return officer


OfficerUser = Annotated[SignedInOfficer, Depends(signed_in_officer)]


def safe_next(value: str | None) -> str:
    """`value` when it is a portal page of this site (not the sign-in page), else home."""
    if not isinstance(value, str) or not value or len(value) > _MAX_NEXT_CHARS:
        return HOME_PATH
    if "\\" in value or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value):
        return HOME_PATH
    if not value.startswith("/") or value.startswith("//"):
        return HOME_PATH
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return HOME_PATH
    if not (parts.path == PORTAL_PATH or parts.path.startswith(PORTAL_PATH + "/")):
        return HOME_PATH
    if parts.path == LOGIN_PATH:
        return HOME_PATH
    return value


def login_url(next_path: str | None = None) -> str:
    target = safe_next(next_path)
    return f"{LOGIN_PATH}?{urlencode({'next': target})}" if target != HOME_PATH else LOGIN_PATH


def page(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    officer: SignedInOfficer | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A portal page (templates under `portal/`), with the officer and their CSRF token."""
    values: dict[str, Any] = {"officer": officer, **(context or {})}
    if officer is not None:
        values["csrf_token"] = officer.csrf_token
    return render(request, name, values, status_code=status_code, headers=headers)


def _set_cookie(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(
        name, value, path=PORTAL_PATH, httponly=True, samesite="strict", secure=is_https(request)
    )


def _clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=PORTAL_PATH, httponly=True, samesite="strict", secure=is_https(request)
    )


def _form_page(
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A form shown before sign-in (sign-in, registration) with a double-submit CSRF token:
    the same value in the form and in the `vigil_portal_csrf` cookie."""
    token = request.cookies.get(FORM_CSRF_COOKIE, "")
    if not _TOKEN.fullmatch(token):
        token = secrets.token_urlsafe(32)
    response = page(
        request, name, {**context, "csrf_token": token}, status_code=status_code, headers=headers
    )
    _set_cookie(response, request, FORM_CSRF_COOKIE, token)
    return response


def _form_token_ok(request: Request, given: str) -> bool:
    return tokens_match(given, request.cookies.get(FORM_CSRF_COOKIE, ""))


def _rate_limited(request: Request, keys: list[tuple[str, int]]) -> int | None:
    """Seconds to wait when one of `keys` is over its limit a minute, else None."""
    limiter = console_state(request).limiter
    for key, limit in keys:
        wait = limiter.check(key, limit)
        if wait is not None:
            return max(1, math.ceil(wait))
    return None


# --- Registration and confirmation ---------------------------------------------------------


@router.get("/register", response_model=None)
async def register_form(request: Request) -> Response:
    return _form_page(request, "portal/register.html", {"values": {}, "error": None})


@router.post("/register", response_model=None)
async def register(
    request: Request,
    email: Annotated[str, Form(max_length=300)] = "",
    name: Annotated[str, Form(max_length=300)] = "",
    agency: Annotated[str, Form(max_length=300)] = "",
    title: Annotated[str, Form(max_length=300)] = "",
    phone: Annotated[str, Form(max_length=60)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Register and mail the confirmation link. The answer is the same whether the address
    was known or not (no probing for who is registered)."""
    values = {"email": email, "name": name, "agency": agency, "title": title, "phone": phone}
    if not _form_token_ok(request, csrf_token):
        return _form_page(
            request,
            "portal/register.html",
            {"values": values, "error": "The form had expired. Please try again."},
            status_code=403,
        )
    state = console_state(request)
    settings = state.settings
    wait = _rate_limited(
        request,
        [
            (
                f"portal-register-ip:{client_address(request)}",
                settings.console_login_ip_attempts_per_minute,
            )
        ],
    )
    if wait is not None:
        return _form_page(
            request,
            "portal/register.html",
            {"values": values, "error": f"Too many attempts. Please wait {wait} seconds."},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )

    def run() -> None:
        now = utcnow()
        with state.database.session(immediate=True) as session:
            officer = officers.register(
                session,
                email=email,
                name=name,
                agency=agency,
                password=password,
                settings=settings,
                now=now,
                title=title or None,
                phone=phone or None,
            )
            known = officer.created != now
        if known:  # take as long as a new registration's password hashing does
            _EQUALISER.hash(password)

    try:
        await run_in_threadpool(run)
    except LegalError as error:
        return _form_page(
            request,
            "portal/register.html",
            {"values": values, "error": str(error)},
            status_code=400,
        )
    return page(request, "portal/registered.html", {"email": email.strip()})


@router.get("/confirm", response_model=None)
async def confirm_form(request: Request, token: str = "") -> Response:
    """The mailed one-time link opens a page with a button; only pressing it uses the link
    (a mail scanner that fetches links must not use it up)."""
    return _form_page(request, "portal/confirm.html", {"token": token[:128]})


@router.post("/confirm", response_model=None)
async def confirm(
    request: Request,
    token: Annotated[str, Form(max_length=128)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Use the one-time link: active (allowed domain), waiting for vetting (a new domain),
    or refused."""
    if not _form_token_ok(request, csrf_token):
        return _form_page(request, "portal/confirm.html", {"token": token}, status_code=403)
    state = console_state(request)

    def run() -> str:
        with state.database.session(immediate=True) as session:
            return officers.confirm(session, token, now=utcnow()).status

    try:
        status = await run_in_threadpool(run)
    except LegalError as error:
        return page(
            request,
            "portal/confirmed.html",
            {"status": "invalid", "error": str(error)},
            status_code=400,
        )
    return page(request, "portal/confirmed.html", {"status": status, "error": None})


# --- Sign-in -------------------------------------------------------------------------------


@router.get("/login", response_model=None)
async def login_form(request: Request, next: str | None = None) -> Response:
    target = safe_next(next)
    if await current_officer(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _form_page(request, "portal/login.html", {"next": target, "email": "", "error": None})


@router.post("/login", response_model=None)
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=300)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    target = safe_next(next)
    address = email.strip().lower()[:254]
    context = {"next": target, "email": address}
    if not _form_token_ok(request, csrf_token):
        return _form_page(
            request,
            "portal/login.html",
            {**context, "error": "The sign-in form had expired. Please try again."},
            status_code=403,
        )
    state = console_state(request)
    settings = state.settings
    wait = _rate_limited(
        request,
        [
            (
                f"portal-login-ip:{client_address(request)}",
                settings.console_login_ip_attempts_per_minute,
            ),
            (f"portal-login-user:{address}", settings.console_login_attempts_per_minute),
        ],
    )
    if wait is not None:
        return _form_page(
            request,
            "portal/login.html",
            {
                **context,
                "error": f"Too many sign-in attempts. Please wait {wait} seconds and try again.",
            },
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    lifetime, _idle = _timing(request)
    old_cookie = request.cookies.get(PORTAL_COOKIE)

    def start() -> str | None:
        with state.database.session(immediate=True) as session:
            try:
                secret = officers.sign_in(
                    session, address, password, lifetime=lifetime, now=utcnow()
                )
            except LegalError:
                return None
            if old_cookie:
                officers.sign_out(session, old_cookie)
            return secret

    secret = await run_in_threadpool(start)
    if secret is None:
        return _form_page(
            request,
            "portal/login.html",
            {**context, "error": SIGN_IN_FAILED},
            status_code=401,
        )
    response = RedirectResponse(target, status_code=303)
    _set_cookie(response, request, PORTAL_COOKIE, secret)
    _clear_cookie(response, request, FORM_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> RedirectResponse:
    officer = await current_officer(request)
    if officer is not None:
        await _require_csrf(request, officer.csrf_token)
        state = console_state(request)
        cookie = request.cookies.get(PORTAL_COOKIE)

        def end() -> None:
            with state.database.session(immediate=True) as session:
                officers.sign_out(session, cookie)

        await run_in_threadpool(end)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    _clear_cookie(response, request, PORTAL_COOKIE)
    return response


# --- The officer's requests ----------------------------------------------------------------


@router.get("", response_model=None)
@router.get("/", response_model=None)
def home(request: Request, officer: OfficerUser, message: str | None = None) -> Response:
    state = console_state(request)
    now = utcnow()
    with state.database.session() as session:
        requests = intake.list_requests(session, officer_id=officer.officer_id, limit=200)
        rows = [
            {
                "request": r,
                "ref": reference(r),
                "clock": deadlines.clock(r, state.settings, now),
                "productions": productions_of(session, r.id),
            }
            for r in requests
        ]
        return page(
            request,
            "portal/home.html",
            {"rows": rows, "kind_names": KIND_NAMES, "message": message, "now": now},
            officer=officer,
        )


def _new_form(
    request: Request,
    officer: SignedInOfficer,
    values: Mapping[str, str],
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "portal/new.html",
        {
            "kinds": REQUEST_KINDS,
            "kind_names": KIND_NAMES,
            "target_kinds": TARGET_KINDS,
            "values": dict(values),
            "error": error,
            "desk": False,
        },
        officer=officer,
        status_code=status_code,
    )


@router.get("/requests/new", response_model=None)
def new_request_form(request: Request, officer: OfficerUser) -> Response:
    return _new_form(request, officer, {"kind": "subpoena", "agency": officer.agency})


@router.post("/requests/new", response_model=None)
async def file_request(
    request: Request,
    officer: OfficerUser,
    document: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """File a request: its process (PDF, required except for an emergency), what it names."""
    form = await request.form()
    values = request_values(form)
    state = console_state(request)
    settings = state.settings

    def run() -> str:
        data, name = read_document(document)
        if data is None and values.get("kind") != "emergency":
            raise LegalError("attach the legal document (a PDF)")
        vault = open_vault(settings)
        with state.database.session(immediate=True) as session:
            row = session.get(Officer, officer.officer_id)
            parent_id = parent_of(values)
            if parent_id is not None:
                try:
                    parent = get_request(session, parent_id)
                except LegalError:
                    parent = None
                if parent is None or parent.officer_id != officer.officer_id:
                    raise LegalError(f"LR-{parent_id:06d} is not one of your requests")
            filed = intake.file_request(
                session,
                vault,
                new_request({**values, "requester_name": officer.name}, parent_id=parent_id),
                channel="portal",
                created_by=f"officer:{officer.email}",
                settings=settings,
                now=utcnow(),
                officer=row,
                document=data,
                document_name=name,
            )
            return reference(filed)

    try:
        filed = await run_in_threadpool(run)
    except LegalError as error:
        return _new_form(request, officer, values, error=str(error), status_code=400)
    message = f"{filed} received. The legal team will verify it and answer by its due date."
    return RedirectResponse(f"{HOME_PATH}?{urlencode({'message': message})}", status_code=303)


# --- Downloads -----------------------------------------------------------------------------


def _check_secret(secret: str) -> None:
    if not 0 < len(secret) <= 128 or not re.fullmatch(r"[A-Za-z0-9_-]+", secret):
        raise PortalError(404, "This download link is not valid.")


@router.get("/download/{secret}", response_model=None)
def download_page(
    request: Request, officer: OfficerUser, secret: Annotated[str, Path(max_length=128)]
) -> Response:
    """Confirm before taking the single-use download (a mail scanner's GET must not use it)."""
    _check_secret(secret)
    return page(request, "portal/download.html", {"secret": secret}, officer=officer)


@router.post("/download/{secret}", response_model=None)
def download(
    request: Request, officer: OfficerUser, secret: Annotated[str, Path(max_length=128)]
) -> Response:
    """The package, once, for the officer whose request it answers."""
    _check_secret(secret)
    state = console_state(request)
    vault = open_vault(state.settings)
    try:
        with state.database.session(immediate=True) as session:
            production, data = take_download(
                session,
                vault,
                secret,
                officer_id=officer.officer_id,
                officer_email=officer.email,
                address=client_address(request),
                now=utcnow(),
            )
            name = f"LR-{production.request_id:06d}-production.zip"
    except LegalError as error:
        return page(
            request,
            "portal/error.html",
            {
                "title": "Download not available",
                "message": f"{error}. A download link works once, for a limited time: contact"
                " the legal team for a new one.",
                "status_code": 410,
            },
            officer=officer,
            status_code=410,
        )
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


# --- Errors and installation ---------------------------------------------------------------


async def _portal_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PortalError)
    return page(
        request,
        "portal/error.html",
        {"title": exc.title, "message": exc.message, "status_code": exc.status_code},
        officer=getattr(request.state, "portal_officer", None),
        status_code=exc.status_code,
    )


async def _login_required(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method in ("GET", "HEAD"):
        response: Response = RedirectResponse(login_url(target), status_code=303)
    else:
        response = page(
            request,
            "portal/error.html",
            {
                "title": "Please sign in",
                "message": "Your session has ended. Sign in again, then repeat what you were"
                " doing.",
                "status_code": 401,
                "login_link": LOGIN_PATH,
            },
            status_code=401,
        )
    if request.cookies.get(PORTAL_COOKIE):
        _clear_cookie(response, request, PORTAL_COOKIE)
    return response


def install(app: FastAPI) -> None:
    """Add the portal's routes and error pages to `app` (`install_console` calls it)."""
    app.include_router(router)
    app.add_exception_handler(PortalError, _portal_error)
    app.add_exception_handler(PortalLoginRequired, _login_required)


__all__ = [
    "FORM_CSRF_COOKIE",
    "PORTAL_COOKIE",
    "PortalError",
    "PortalLoginRequired",
    "current_officer",
    "install",
    "router",
    "signed_in_officer",
]
