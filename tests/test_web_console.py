"""The web console's foundation: sign-in, sessions, CSRF, roles, security headers, static files
(docs/console.md)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api_helpers import Api
from vigil.auth import AuthenticationError, create_user, disable_user
from vigil.store import AppUser, WebSession
from vigil.web import AdminUser, CurrentUser, SignedIn, render, signed_in
from vigil.web.security import CONTENT_SECURITY_POLICY, safe_next
from vigil.web.sessions import purge_expired, resolve, sign_in, sign_out, sign_out_user

PASSWORD = "a long enough passphrase"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "media-src 'self' blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

# Pages the way a later room's router writes them.
pages = APIRouter(prefix="/console/test")


@pages.get("/page")
async def any_user_page(user: CurrentUser) -> dict[str, Any]:
    return {"username": user.username, "csrf": user.csrf_token, "roles": list(user.roles)}


@pages.get("/html", response_class=HTMLResponse)
def html_page(request: Request, user: CurrentUser) -> HTMLResponse:
    return render(request, "forbidden.html", {"title": "A page", "message": f"hi {user.name}"})


@pages.get("/boom")
def broken_page(user: CurrentUser) -> None:
    raise RuntimeError("a bug")


@pages.get("/admin")
def admin_page(user: AdminUser) -> dict[str, str]:
    return {"admin": user.username}


Reviewer = Annotated[SignedIn, Depends(signed_in("reviewer"))]


@pages.post("/action")
def reviewer_action(user: Reviewer, note: Annotated[str, Form()] = "") -> dict[str, str]:
    return {"by": user.username, "note": note}


@pytest.fixture
def console(api: Api) -> Api:
    """The API with the console, plus the test pages above."""
    app = api.client.app
    assert isinstance(app, FastAPI)
    app.include_router(pages)
    return api


def add_user(api: Api, username: str = "alice", roles: tuple[str, ...] = ("reviewer",)) -> None:
    with api.database.session() as session:
        create_user(session, username, PASSWORD, roles, display_name=username.title())


def login(
    client: Any, username: str = "alice", password: str = PASSWORD, **form: str
) -> httpx.Response:
    page = client.get("/console/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    data = {"username": username, "password": password, "csrf_token": match.group(1), **form}
    response: httpx.Response = client.post("/console/login", data=data, follow_redirects=False)
    return response


def session_csrf(api: Api) -> str:
    token: str = api.client.get("/console/test/page").json()["csrf"]
    return token


def rows(api: Api) -> list[WebSession]:
    with api.database.session() as session:
        return list(session.scalars(select(WebSession)))


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, name


# --- Sign-in ------------------------------------------------------------------------------


def test_sign_in_sets_a_strict_httponly_cookie_and_stores_only_its_hash(console: Api) -> None:
    add_user(console)
    response = login(console.client)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/queue"
    set_cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith("vigil_session=")
    )
    attributes = {part.strip().lower() for part in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= attributes
    assert "secure" not in attributes  # plain http here; https below
    secret = set_cookie.split(";")[0].removeprefix("vigil_session=")
    assert len(secret) >= 43
    [row] = rows(console)
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (row.secret_hash, row.csrf_token)
    with console.database.session() as session:
        user = session.scalars(select(AppUser)).one()
        assert user.last_login is not None
    assert console.client.get("/console/test/page").json()["username"] == "alice"


def test_cookies_are_secure_over_https(console: Api) -> None:
    add_user(console)
    client = console.client
    page = client.get("https://testserver/console/login")
    assert "secure" in page.headers["set-cookie"].lower()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "https://testserver/console/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    session_cookie = next(
        value for value in response.headers.get_list("set-cookie") if "vigil_session=" in value
    )
    assert "secure" in session_cookie.lower()


def test_wrong_password_unknown_user_and_disabled_account_look_the_same(console: Api) -> None:
    add_user(console)
    add_user(console, "bob")
    with console.database.session() as session:
        disable_user(session, "bob")
    answers = [
        login(console.client, "alice", "not the right password"),
        login(console.client, "nobody", PASSWORD),
        login(console.client, "bob", PASSWORD),
    ]
    for response in answers:
        assert response.status_code == 401
        assert "vigil_session=" not in response.headers.get("set-cookie", "")
        assert "The username or password is not right" in response.text
    errors = [re.search(r'role="alert"[^>]*>(.*?)<', r.text) for r in answers]
    assert len({error.group(1) for error in errors if error}) == 1
    assert rows(console) == []
    assert login(console.client, "ALICE ").status_code == 303  # usernames are lower case


def test_sign_in_is_rate_limited_per_username_and_per_address(console: Api) -> None:
    add_user(console)
    # 10 a minute for a username: a burst of 2, then one every 6 seconds.
    assert login(console.client, password="wrong password 1").status_code == 401
    assert login(console.client, password="wrong password 2").status_code == 401
    refused = login(console.client)  # even the right password waits
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "Too many sign-in attempts" in refused.text
    assert "vigil_session=" not in refused.headers.get("set-cookie", "")
    assert_security_headers(refused)

    console.state.limiter.reset()
    # 30 a minute from one address: a burst of 5, whichever usernames are tried.
    statuses = [login(console.client, f"user{n}").status_code for n in range(6)]
    assert statuses == [401] * 5 + [429]


def test_login_form_needs_its_double_submit_token(console: Api) -> None:
    add_user(console)
    client = console.client
    client.get("/console/login")
    for token in ("", "forged-token-forged-token-forged-token-1"):
        response = client.post(
            "/console/login",
            data={"username": "alice", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 403
        assert "vigil_session=" not in response.headers.get("set-cookie", "")
    assert rows(console) == []


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example",
        "//evil.example/console/queue",
        "http://evil.example/console/queue",
        "https:/console/queue",
        "javascript:alert(1)",
        "/\\evil.example",
        "/console\\..\\x",
        "evil.example/console",
        "/console/queue\nSet-Cookie: x=1",
        " /console/queue",
        "/other/page",
        "/consolex",
        "/console/login",
        "",
        None,
    ],
)
def test_unsafe_next_values_are_ignored(value: str | None) -> None:
    assert safe_next(value) == "/console/queue"


@pytest.mark.parametrize("value", ["/console", "/console/", "/console/task/12?tab=files"])
def test_console_next_values_are_kept(value: str) -> None:
    assert safe_next(value) == value


def test_next_is_followed_only_within_the_console(console: Api) -> None:
    add_user(console)
    evil = login(console.client, next="//evil.example")
    assert evil.headers["location"] == "/console/queue"
    # Already signed in: the sign-in page sends the browser on, within the console only.
    page = console.client.get("/console/login?next=//evil.example", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/console/queue")
    console.client.cookies.clear()
    good = login(console.client, next="/console/test/page?x=1")
    assert good.headers["location"] == "/console/test/page?x=1"


# --- Protected pages ----------------------------------------------------------------------


def test_pages_need_a_session(console: Api) -> None:
    client = console.client
    response = client.get("/console/test/page?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Ftest%2Fpage%3Fx%3D1"
    followed = client.get(response.headers["location"])
    assert 'name="next" value="/console/test/page?x=1"' in followed.text
    assert client.post("/console/test/action", follow_redirects=False).status_code == 401
    htmx = client.get("/console/test/page", headers={"HX-Request": "true"})
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"].startswith("/console/login")
    client.cookies.set("vigil_session", "made-up", path="/console")
    assert client.get("/console/test/page", follow_redirects=False).status_code == 303
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/queue"
    assert client.get("/console/", follow_redirects=False).headers["location"] == "/console/queue"


def test_state_changing_requests_need_the_session_csrf_token(console: Api) -> None:
    add_user(console)
    login(console.client)
    client = console.client
    csrf = session_csrf(console)
    missing = client.post("/console/test/action", data={"note": "x"})
    assert missing.status_code == 403
    assert "text/html" in missing.headers["content-type"]
    wrong = client.post("/console/test/action", data={"note": "x", "csrf_token": csrf[:-1] + "A"})
    assert wrong.status_code == 403
    header_wrong = client.post("/console/test/action", headers={"X-CSRF-Token": "nope"})
    assert header_wrong.status_code == 403
    by_form = client.post("/console/test/action", data={"note": "kept", "csrf_token": csrf})
    assert by_form.status_code == 200
    assert by_form.json() == {"by": "alice", "note": "kept"}
    by_header = client.post(
        "/console/test/action", data={"note": "h"}, headers={"X-CSRF-Token": csrf}
    )
    assert by_header.status_code == 200
    cross_site = client.post(
        "/console/test/action",
        data={"csrf_token": csrf},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross_site.status_code == 403
    assert_security_headers(cross_site)


def test_roles_are_enforced_and_admin_passes_every_check(console: Api) -> None:
    add_user(console, "alice", ("auditor",))
    add_user(console, "root", ("admin",))
    login(console.client, "alice")
    forbidden = console.client.get("/console/test/admin")
    assert forbidden.status_code == 403
    assert "does not have access" in forbidden.text
    assert_security_headers(forbidden)
    csrf = session_csrf(console)
    assert console.client.post("/console/test/action", data={"csrf_token": csrf}).status_code == 403
    console.client.cookies.clear()
    login(console.client, "root")
    assert console.client.get("/console/test/admin").json() == {"admin": "root"}
    csrf = session_csrf(console)
    assert console.client.post("/console/test/action", data={"csrf_token": csrf}).status_code == 200


def test_pages_carry_the_csrf_token_for_htmx_and_no_inline_code(console: Api) -> None:
    add_user(console, "alice", ("reviewer",))
    login(console.client)
    page = console.client.get("/console/test/html")
    csrf = session_csrf(console)
    assert page.status_code == 200
    assert f'hx-headers=\'{{"X-CSRF-Token": "{csrf}"}}\'' in page.text
    assert f'name="csrf_token" value="{csrf}"' in page.text  # the sign-out form
    assert '<main id="main"' in page.text and 'href="#main"' in page.text
    assert "Signed in as <strong>Alice</strong>" in page.text
    assert ">Admin<" not in page.text
    assert '<script src="/console/static/htmx.min.js"></script>' in page.text
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None
    assert "<style" not in page.text and " style=" not in page.text
    assert_security_headers(page)


def test_security_headers_on_every_console_answer(console: Api) -> None:
    client = console.client
    assert_security_headers(client.get("/console/login"))
    assert_security_headers(client.get("/console/test/page", follow_redirects=False))
    assert_security_headers(client.get("/console/no-such-page"))
    assert client.get("/console/no-such-page").status_code == 404
    assert "content-security-policy" not in client.get("/healthz").headers
    add_user(console)
    login(client)
    crashing = TestClient(client.app, raise_server_exceptions=False, cookies=client.cookies)
    failed = crashing.get("/console/test/boom")
    assert failed.status_code == 500
    assert_security_headers(failed)
    assert CONTENT_SECURITY_POLICY == CSP


def test_static_files_are_served(console: Api) -> None:
    htmx = console.client.get("/console/static/htmx.min.js")
    assert htmx.status_code == 200
    assert "javascript" in htmx.headers["content-type"]
    assert htmx.text.startswith("var htmx=")
    assert_security_headers(htmx)
    css = console.client.get("/console/static/console.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert console.client.get("/console/static/../app.py").status_code == 404


# --- Sessions -----------------------------------------------------------------------------


def test_sign_out_ends_the_session(console: Api) -> None:
    add_user(console)
    login(console.client)
    client = console.client
    old = client.cookies.get("vigil_session")
    csrf = session_csrf(console)
    assert client.post("/console/logout", follow_redirects=False).status_code == 403
    response = client.post("/console/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"
    assert 'vigil_session=""' in response.headers["set-cookie"]
    assert rows(console) == []
    client.cookies.set("vigil_session", old or "", path="/console")
    again = client.get("/console/test/page", follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/console/login")


def test_idle_and_disabled_sessions_are_refused_over_http(console: Api) -> None:
    add_user(console)
    login(console.client)
    assert console.client.get("/console/test/page").status_code == 200
    with console.database.session() as session:
        row = session.scalars(select(WebSession)).one()
        row.last_seen -= timedelta(minutes=31)
    assert console.client.get("/console/test/page", follow_redirects=False).status_code == 303
    assert rows(console) == []
    console.client.cookies.clear()
    login(console.client)
    with console.database.session() as session:
        disable_user(session, "alice")
    assert console.client.get("/console/test/page", follow_redirects=False).status_code == 303


def _user(session: Session, name: str = "alice") -> AppUser:
    return create_user(session, name, PASSWORD, ["reviewer"], display_name="Alice A.")


def test_resolve_slides_last_seen_within_the_session_lifetime(session: Session) -> None:
    user = _user(session)
    idle = timedelta(minutes=30)
    secret, row = sign_in(session, "alice", PASSWORD, lifetime=timedelta(hours=1), now=T0)
    assert row.expires == T0 + timedelta(hours=1)
    signed = resolve(session, secret, idle=idle, now=T0 + timedelta(minutes=20))
    assert signed is not None
    assert (signed.user_id, signed.username, signed.display_name) == (user.id, "alice", "Alice A.")
    assert signed.roles == ("reviewer",) and signed.csrf_token == row.csrf_token
    assert signed.session_id == row.id and signed.name == "Alice A."
    assert row.last_seen == T0 + timedelta(minutes=20)
    assert resolve(session, secret, idle=idle, now=T0 + timedelta(minutes=45)) is not None
    # Active all along, but the lifetime is over: signed out.
    assert resolve(session, secret, idle=idle, now=T0 + timedelta(minutes=60)) is None
    assert session.scalars(select(WebSession)).all() == []


def test_resolve_refuses_idle_unknown_and_disabled(session: Session) -> None:
    _user(session)
    idle = timedelta(minutes=30)
    lifetime = timedelta(hours=12)
    secret, _ = sign_in(session, "alice", PASSWORD, lifetime=lifetime, now=T0)
    assert resolve(session, secret, idle=idle, now=T0 + timedelta(minutes=31)) is None
    for value in ("", "x" * 1000, secret + "x", None):
        assert resolve(session, value, idle=idle, now=T0) is None
    secret, _ = sign_in(session, "alice", PASSWORD, lifetime=lifetime, now=T0)
    disable_user(session, "alice")
    assert resolve(session, secret, idle=idle, now=T0) is None
    with pytest.raises(AuthenticationError):
        sign_in(session, "alice", PASSWORD, lifetime=lifetime, now=T0)


def test_sign_out_and_sign_out_user(session: Session) -> None:
    user = _user(session)
    _user(session, "bob")
    idle = timedelta(minutes=30)
    lifetime = timedelta(hours=12)
    first, _ = sign_in(session, "alice", PASSWORD, lifetime=lifetime, now=T0)
    second, _ = sign_in(session, "alice", PASSWORD, lifetime=lifetime, now=T0)
    bobs, _ = sign_in(session, "bob", PASSWORD, lifetime=lifetime, now=T0)
    assert sign_out(session, first) is True
    assert sign_out(session, first) is False
    assert resolve(session, first, idle=idle, now=T0) is None
    assert resolve(session, second, idle=idle, now=T0) is not None
    assert sign_out_user(session, user.id) == 1
    assert resolve(session, second, idle=idle, now=T0) is None
    assert resolve(session, bobs, idle=idle, now=T0) is not None
    assert purge_expired(session, idle=idle, now=T0 + timedelta(hours=1)) == 1
    assert session.scalars(select(WebSession)).all() == []


def test_has_any_role() -> None:
    def user(*roles: str) -> SignedIn:
        return SignedIn(1, "u", None, roles, "t", 1)

    assert user("reviewer").has_any("reviewer", "legal")
    assert not user("auditor").has_any("reviewer")
    assert user("admin").has_any("legal")
    assert user("auditor").has_any()
    assert user("auditor").name == "u"
    with pytest.raises(ValueError, match="unknown role"):
        signed_in("superuser")
