"""The console's vault page (`legal`, `admin`): items with their clocks, what the next sweep
destroys and what goes within 30 days, legal holds (place, release), and reading an item with
a stated reason (audited; the file is downloaded, never shown inline)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Request
from starlette.responses import RedirectResponse, Response

from vigil.store import utcnow
from vigil.vault.items import Reader, VaultError, list_items, open_vault, read_item
from vigil.vault.retention import create_hold, is_kept, kept_until, list_holds, release_hold
from vigil.web.security import ConsoleError, console_state, signed_in
from vigil.web.sessions import SignedIn
from vigil.web.templating import render as render_page

router = APIRouter(prefix="/console/vault", include_in_schema=False)

VaultUser = Annotated[SignedIn, Depends(signed_in("legal"))]
SOON = timedelta(days=30)


def _actor(user: SignedIn) -> str:
    return f"user:{user.username}"


def _back(message: str) -> RedirectResponse:
    return RedirectResponse(f"/console/vault?message={quote(message)}", status_code=303)


@router.get("")
def vault_page(request: Request, user: VaultUser, message: str | None = None) -> Response:
    state = console_state(request)
    now = utcnow()
    with state.database.session() as session:
        items = list_items(session, limit=500)
        rows: list[dict[str, Any]] = [
            {"item": item, "kept": is_kept(item, now), "kept_until": kept_until(item, now)}
            for item in items
        ]
        due = [row for row in rows if not row["kept"]]
        soon = sum(
            1
            for row in rows
            if row["kept"] and row["kept_until"] is not None and row["kept_until"] < now + SOON
        )
        return render_page(
            request,
            "vault/index.html",
            {
                "active": "vault",
                "items": items,
                "rows": rows,
                "due": due,
                "soon": soon,
                "holds": list_holds(session),
                "message": message,
            },
        )


@router.post("/items/{item_id}/read")
def read(
    request: Request,
    user: VaultUser,
    item_id: Annotated[int, Path()],
    reason: Annotated[str, Form(max_length=1000)],
) -> Response:
    """The item's bytes as a download (no-store, never inline); the read is audited."""
    state = console_state(request)
    vault = open_vault(state.settings)
    try:
        with state.database.session(immediate=True) as session:
            data = read_item(
                session,
                vault,
                item_id,
                reader=Reader(user.username, frozenset(user.roles)),
                reason=reason,
            )
    except VaultError as error:
        raise ConsoleError(409, str(error), title="Not read") from None
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="vault-item-{item_id}"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/holds")
def place_hold(
    request: Request,
    user: VaultUser,
    name: Annotated[str, Form(max_length=200)],
    account: Annotated[str, Form(max_length=200)],
    reason: Annotated[str, Form(max_length=1000)],
) -> Response:
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            hold, clocks = create_hold(
                session,
                name,
                reason=reason,
                actor=_actor(user),
                now=utcnow(),
                account_key=account.strip(),
            )
            placed = f"Hold {hold.id} placed on {len(clocks)} item(s)."
    except VaultError as error:
        raise ConsoleError(409, str(error), title="No hold placed") from None
    return _back(placed)


@router.post("/holds/{hold_id}/release")
def release(request: Request, user: VaultUser, hold_id: Annotated[int, Path()]) -> Response:
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            release_hold(session, hold_id, actor=_actor(user), now=utcnow())
    except VaultError as error:
        raise ConsoleError(409, str(error), title="Not released") from None
    return _back(f"Hold {hold_id} released: items nothing else keeps go at the next sweep.")
