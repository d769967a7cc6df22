"""The console's Jinja2 templates (autoescaped) and `render`, which hands every page the
signed-in user and their CSRF token."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_URL = "/console/static"


def _page_context(request: Request) -> dict[str, Any]:
    """What every template sees: `user` (a `SignedIn`, or None) and, when signed in,
    `csrf_token`. (A page rendered without a session, the sign-in form, passes its own
    `csrf_token`.)"""
    user = getattr(request.state, "console_user", None)
    if user is None:
        return {"user": None, "static": STATIC_URL}
    return {"user": user, "csrf_token": user.csrf_token, "static": STATIC_URL}


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _duration(value: timedelta | None) -> str:
    """A waiting time as people say it: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`."""
    if value is None:
        return "-"
    seconds = max(int(value.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


_environment.filters["duration"] = _duration

templates = Jinja2Templates(env=_environment, context_processors=[_page_context])
"""The console's templates; pages normally call `render` instead."""


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render template `name` (under `vigil/web/templates/`) as an HTML page. Templates also
    receive `user`, `csrf_token` (when signed in), `static` (the static files' URL) and
    `request`."""
    return templates.TemplateResponse(
        request, name, dict(context or {}), status_code=status_code, headers=headers
    )
