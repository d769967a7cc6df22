"""The review console's pages: the queue, the review screen, history, the reviewer's own
settings and the admin's wellbeing defaults and bank policies; and the media routes.

Media leaves the server in two forms only: blurred (and, by default, greyscale) previews, and
unblurred bytes served while a reviewer holds the reveal control. Every unblurred response
is recorded as a reveal before it is sent, which is what lets the console pre-fill, and the
service enforce, whether a file was viewed. Media is only for the reviewer holding the task.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from sqlalchemy import func, select
from starlette.responses import JSONResponse, RedirectResponse, Response

from vigil import review
from vigil.auth.users import get_user
from vigil.banks import list_banks, update_bank
from vigil.review.decisions import FILE_ANNOTATIONS
from vigil.review.media import Rendering, render
from vigil.review.views import item_media, recent_decisions, task_view
from vigil.store import ReviewItem, ReviewTask, utcnow
from vigil.store.bank_models import INDUSTRY_CODES
from vigil.web.security import ConsoleError, console_state, signed_in
from vigil.web.sessions import SignedIn
from vigil.web.templating import render as render_page

router = APIRouter(prefix="/console", include_in_schema=False)

ReviewerUser = Annotated[SignedIn, Depends(signed_in("reviewer", "lead"))]
AdminUser = Annotated[SignedIn, Depends(signed_in("admin"))]

QUEUE_NAMES = {
    "escalated": "Imminent danger",
    "second_opinion": "Second opinions",
    "main": "To review",
}
REVEAL_RENDERING = {"thumbnail": Rendering.THUMBNAIL, "keyframes": Rendering.PREVIEW}


def _reviewer(user: SignedIn) -> review.Reviewer:
    return review.Reviewer(user.user_id, frozenset(user.roles))


def _refused(error: review.ReviewError) -> ConsoleError:
    status = 404 if isinstance(error, review.TaskNotFound) else 409
    return ConsoleError(status, str(error), title="That did not work")


def _lease(request: Request) -> timedelta:
    return timedelta(minutes=console_state(request).settings.review_lease_minutes)


# --- Queue --------------------------------------------------------------------------------


@router.get("/queue")
def queue_page(request: Request, user: ReviewerUser, done: int | None = None) -> Response:
    state = console_state(request)
    reviewer = _reviewer(user)
    now = utcnow()
    with state.database.session() as session:
        counts = review.queue_counts(session)
        tasks = review.list_queue(session, reviewer, limit=100, now=now)
        files = dict(
            session.execute(
                select(ReviewItem.task_id, func.count())
                .where(ReviewItem.task_id.in_([task.id for task in tasks]))
                .group_by(ReviewItem.task_id)
            ).all()
        )
        rows = [(task, files.get(task.id, 0)) for task in tasks]
        return render_page(
            request,
            "review/queue.html",
            {
                "active": "queue",
                "counts": counts,
                "queue_names": QUEUE_NAMES,
                "rows": rows,
                "now": now,
                "done": done,
                "industry": {4: "A1", 3: "A2", 2: "B1", 1: "B2", 0: "-"},
            },
        )


@router.get("/queue/counts")
def queue_counts(request: Request, user: ReviewerUser) -> Response:
    """The counts alone, for the queue page to refresh in place."""
    with console_state(request).database.session() as session:
        return render_page(
            request,
            "review/_counts.html",
            {"counts": review.queue_counts(session), "queue_names": QUEUE_NAMES, "now": utcnow()},
        )


@router.post("/queue/next")
def claim_next(request: Request, user: ReviewerUser) -> Response:
    state = console_state(request)
    with state.database.session(immediate=True) as session:
        task = review.claim_next(session, _reviewer(user), lease=_lease(request))
        if task is None:
            return RedirectResponse("/console/queue?empty=1", status_code=303)
        return RedirectResponse(f"/console/tasks/{task.id}", status_code=303)


# --- Review screen ------------------------------------------------------------------------


@router.post("/tasks/{task_id}/claim")
def claim_task(request: Request, user: ReviewerUser, task_id: Annotated[int, Path()]) -> Response:
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            review.claim(session, task_id, _reviewer(user), lease=_lease(request))
    except review.ReviewError as error:
        raise _refused(error) from None
    return RedirectResponse(f"/console/tasks/{task_id}", status_code=303)


@router.post("/tasks/{task_id}/release")
def release_task(request: Request, user: ReviewerUser, task_id: Annotated[int, Path()]) -> Response:
    state = console_state(request)
    with state.database.session(immediate=True) as session:
        task = review.get_task(session, task_id)
        if review.queue.holds(task, _reviewer(user), utcnow()):
            review.release(session, task)
    return RedirectResponse("/console/queue", status_code=303)


@router.get("/tasks/{task_id}")
def task_page(request: Request, user: ReviewerUser, task_id: Annotated[int, Path()]) -> Response:
    state = console_state(request)
    reviewer = _reviewer(user)
    now = utcnow()
    try:
        with state.database.session(immediate=True) as session:
            view = task_view(session, task_id)
            holding = review.queue.holds(view.task, reviewer, now)
            if holding:  # looking at a task is activity: the lease runs on
                review.claim(session, task_id, reviewer, lease=_lease(request), now=now)
            settings = review.effective_settings(session, user.user_id)
            today = review.exposure_summary(session, user.user_id, days=1, now=now)
            return render_page(
                request,
                "review/task.html",
                {
                    "active": "queue",
                    "view": view,
                    "task": view.task,
                    "holding": holding,
                    "wellbeing": settings,
                    "screen_seconds": today[0].screen_seconds if today else 0.0,
                    "industries": INDUSTRY_CODES,
                    "annotations": FILE_ANNOTATIONS,
                    "queue_names": QUEUE_NAMES,
                    "lease_minutes": state.settings.review_lease_minutes,
                },
            )
    except review.ReviewError as error:
        raise _refused(error) from None


@router.post("/tasks/{task_id}/decide")
def decide(
    request: Request,
    user: ReviewerUser,
    task_id: Annotated[int, Path()],
    action: Annotated[str, Form()],
    industry: Annotated[str | None, Form()] = None,
    annotations: Annotated[list[str] | None, Form()] = None,
    viewed: Annotated[list[int] | None, Form()] = None,
    publicly_available: Annotated[str | None, Form()] = None,
    notes: Annotated[str | None, Form(max_length=10_000)] = None,
    reason: Annotated[str | None, Form(max_length=3000)] = None,
    assignee: Annotated[str | None, Form(max_length=64)] = None,
    proposal: Annotated[str | None, Form(pattern="^(|confirmed|false_positive)$")] = None,
) -> Response:
    state = console_state(request)
    reviewer = _reviewer(user)
    banks = review.FeedbackBanks.from_settings(state.settings)
    public = {"yes": True, "no": False}.get(publicly_available or "")
    try:
        with state.database.session(immediate=True) as session:
            if action == "confirm":
                review.confirm(
                    session,
                    task_id,
                    reviewer,
                    industry=industry or "",
                    annotations=annotations or [],
                    publicly_available=public,
                    viewed_items=viewed or [],
                    notes=notes,
                    banks=banks,
                )
            elif action == "false_positive":
                review.false_positive(session, task_id, reviewer, notes=notes, banks=banks)
            elif action == "escalate":
                review.escalate(session, task_id, reviewer, reason=reason or "")
                return RedirectResponse(f"/console/tasks/{task_id}", status_code=303)
            elif action == "second_opinion":
                assignee_id = None
                if assignee and assignee.strip():
                    assignee_id = get_user(session, assignee.strip()).id
                review.request_second_opinion(
                    session,
                    task_id,
                    reviewer,
                    reason=reason or "",
                    assignee_id=assignee_id,
                    proposed_verdict=proposal or None,
                    proposed_industry=(industry or None) if proposal == "confirmed" else None,
                )
            else:
                raise review.ReviewError(f"unknown decision {action!r}")
    except (review.ReviewError, LookupError) as error:
        raise ConsoleError(409, str(error), title="Decision not recorded") from None
    return RedirectResponse(f"/console/queue?done={task_id}", status_code=303)


# --- Media --------------------------------------------------------------------------------


def _media_bytes(request: Request, user: SignedIn, item_id: int) -> tuple[Any, bytes]:
    """The item and its kept bytes, for the reviewer holding its task only."""
    state = console_state(request)
    with state.database.session() as session:
        try:
            item, content = item_media(session, item_id)
        except LookupError:
            raise ConsoleError(404, "No such item.") from None
        task = session.get(ReviewTask, item.task_id)
        assert task is not None
        if not review.queue.holds(task, _reviewer(user), utcnow()):
            raise ConsoleError(403, "Claim the task to see its media.")
        sha256, media_type = content.sha256, content.media_type or "image"
    try:
        data = state.media.read(sha256)
    except KeyError:
        raise ConsoleError(404, "This file was not kept, so it cannot be shown.") from None
    return (item, media_type), data


def _jpeg(data: bytes) -> Response:
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/media/{item_id}/preview")
def media_preview(
    request: Request, user: ReviewerUser, item_id: Annotated[int, Path()]
) -> Response:
    """Blurred (and by default greyscale), at the reviewer's chosen strength."""
    state = console_state(request)

    def build() -> bytes:
        (_, media_type), data = _media_bytes(request, user, item_id)
        with state.database.session() as session:
            settings = review.effective_settings(session, user.user_id)
        rendering = Rendering.THUMBNAIL if settings.thumbnails_first else Rendering.PREVIEW
        return render(
            data,
            rendering,
            media_type=media_type,
            blur_radius=max(settings.blur_radius, 1.0),
            greyscale=settings.greyscale,
            limits=state.settings.media_limits,
        )

    return _jpeg(build())


@router.get("/media/{item_id}/reveal")
def media_reveal(
    request: Request,
    user: ReviewerUser,
    item_id: Annotated[int, Path()],
    scope: Annotated[str, Query(pattern="^(thumbnail|keyframes|full)$")] = "full",
) -> Response:
    """Unblurred, recorded as a reveal (its id in `X-Reveal-Id`, to end it on release). A
    `full` reveal of a picture is the whole picture; of a video, see `/video`."""
    state = console_state(request)
    (item, media_type), data = _media_bytes(request, user, item_id)
    if media_type == "video" and scope == "full":
        raise ConsoleError(400, "A video is viewed in full through its player.")
    with state.database.session() as session:
        settings = review.effective_settings(session, user.user_id)
    image = render(
        data,
        REVEAL_RENDERING.get(scope, Rendering.FULL),
        media_type=media_type,
        blur_radius=0.0,
        greyscale=settings.greyscale,
        limits=state.settings.media_limits,
    )
    with state.database.session(immediate=True) as session:
        reveal = review.record_reveal(session, item.task_id, item.id, _reviewer(user), scope)
        reveal_id = reveal.id
    response = _jpeg(image)
    response.headers["X-Reveal-Id"] = str(reveal_id)
    return response


@router.get("/media/{item_id}/video")
def media_video(request: Request, user: ReviewerUser, item_id: Annotated[int, Path()]) -> Response:
    """The video itself (muted and not autoplayed by the page), recorded as a full reveal."""
    state = console_state(request)
    (item, media_type), data = _media_bytes(request, user, item_id)
    if media_type != "video":
        raise ConsoleError(400, "Not a video.")
    with state.database.session(immediate=True) as session:
        reveal = review.record_reveal(session, item.task_id, item.id, _reviewer(user), "full")
        reveal_id = reveal.id
    return Response(
        data,
        media_type="video/mp4" if data[4:8] == b"ftyp" else "application/octet-stream",
        headers={"Cache-Control": "no-store", "X-Reveal-Id": str(reveal_id)},
    )


@router.post("/reveals/{reveal_id}/end", status_code=204)
def end_reveal(request: Request, user: ReviewerUser, reveal_id: Annotated[int, Path()]) -> Response:
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            review.end_reveal(session, reveal_id, _reviewer(user))
    except review.ReviewError as error:
        raise _refused(error) from None
    return Response(status_code=204)


@router.post("/exposure")
def exposure(
    request: Request, user: ReviewerUser, seconds: Annotated[float, Form(ge=0, le=3600)]
) -> JSONResponse:
    """The review screen's heartbeat: time spent on it since the last one."""
    state = console_state(request)
    with state.database.session(immediate=True) as session:
        row = review.count_screen_time(session, user.user_id, seconds)
        return JSONResponse({"screen_seconds": row.screen_seconds})


# --- History and settings -----------------------------------------------------------------


@router.get("/history")
def history_page(request: Request, user: ReviewerUser, mine: bool = False) -> Response:
    """Decisions, newest first; leads and admins see everyone's, reviewers their own."""
    state = console_state(request)
    own_only = mine or not (user.has_any("lead"))
    with state.database.session() as session:
        decisions = recent_decisions(session, user_id=user.user_id if own_only else None)
        task_ids = {d.decision.task_id for d in decisions}
        disagreements = set(
            session.scalars(
                select(ReviewTask.id).where(ReviewTask.id.in_(task_ids), ReviewTask.disagreement)
            )
        )
        return render_page(
            request,
            "review/history.html",
            {
                "active": "history",
                "decisions": decisions,
                "disagreements": disagreements,
                "own_only": own_only,
            },
        )


def _settings_values(
    blur_radius: str | None,
    greyscale: str | None,
    thumbnails_first: str | None,
    break_minutes: str | None,
) -> dict[str, Any]:
    """Form values: an empty field or `default` means "follow the organisation"."""

    def choice(value: str | None) -> bool | None:
        return {"on": True, "off": False}.get(value or "")

    def number(value: str | None) -> float | None:
        return float(value) if value not in (None, "", "default") else None

    minutes = number(break_minutes)
    return {
        "blur_radius": number(blur_radius),
        "greyscale": choice(greyscale),
        "thumbnails_first": choice(thumbnails_first),
        "break_minutes": None if minutes is None else int(minutes),
    }


@router.get("/settings")
def settings_page(request: Request, user: ReviewerUser, saved: bool = False) -> Response:
    state = console_state(request)
    with state.database.session() as session:
        return render_page(
            request,
            "review/settings.html",
            {
                "active": "settings",
                "effective": review.effective_settings(session, user.user_id),
                "own": review.user_overrides(session, user.user_id),
                "defaults": review.organisation_defaults(session),
                "exposure": review.exposure_summary(session, user.user_id, days=7),
                "saved": saved,
            },
        )


@router.post("/settings")
def save_settings(
    request: Request,
    user: ReviewerUser,
    blur_radius: Annotated[str | None, Form()] = None,
    greyscale: Annotated[str | None, Form()] = None,
    thumbnails_first: Annotated[str | None, Form()] = None,
    break_minutes: Annotated[str | None, Form()] = None,
) -> Response:
    state = console_state(request)
    try:
        values = _settings_values(blur_radius, greyscale, thumbnails_first, break_minutes)
        with state.database.session(immediate=True) as session:
            review.update_settings(session, user.user_id, **values)
    except ValueError as error:
        raise ConsoleError(422, f"Settings not saved: {error}", title="Check the values") from None
    return RedirectResponse("/console/settings?saved=1", status_code=303)


@router.get("/admin")
def admin_page(request: Request, user: AdminUser, saved: bool = False) -> Response:
    state = console_state(request)
    with state.database.session() as session:
        return render_page(
            request,
            "review/admin.html",
            {
                "active": "admin",
                "defaults": review.organisation_defaults(session),
                "banks": [summary.bank for summary in list_banks(session)],
                "saved": saved,
            },
        )


@router.post("/admin/wellbeing")
def save_defaults(
    request: Request,
    user: AdminUser,
    blur_radius: Annotated[str, Form()],
    break_minutes: Annotated[str, Form()],
    greyscale: Annotated[str | None, Form()] = None,
    thumbnails_first: Annotated[str | None, Form()] = None,
) -> Response:
    state = console_state(request)
    try:
        values = _settings_values(
            blur_radius, greyscale or "off", thumbnails_first or "off", break_minutes
        )
        with state.database.session(immediate=True) as session:
            review.update_settings(session, None, **values)
    except ValueError as error:
        raise ConsoleError(422, f"Defaults not saved: {error}", title="Check the values") from None
    return RedirectResponse("/console/admin?saved=1", status_code=303)


@router.post("/admin/banks/{name}/policy")
def save_policy(
    request: Request,
    user: AdminUser,
    name: Annotated[str, Path(max_length=64)],
    review_policy: Annotated[str, Form()],
) -> Response:
    state = console_state(request)
    try:
        with state.database.session(immediate=True) as session:
            update_bank(session, name, review_policy=review_policy)
    except (ValueError, LookupError) as error:
        raise ConsoleError(422, f"Policy not changed: {error}", title="Check the policy") from None
    return RedirectResponse("/console/admin?saved=1", status_code=303)
