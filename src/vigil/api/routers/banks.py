"""`/v1/banks`: banks, their entries, imports (background jobs) and exports. `curate` scope.

Every change is committed before the answer, and this worker's match index is brought up to
date before it answers too, so a lookup right after an addition sees it (other workers
follow within `VIGIL_INDEX_REFRESH_SECONDS`).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Literal, TextIO

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from vigil import banks
from vigil.api.errors import FieldError
from vigil.api.security import Curator, State
from vigil.api.state import ServiceState
from vigil.api.streaming import stream_text
from vigil.api.uploads import copy_capped
from vigil.banks.importing import ExportFormat, check_export_options, limits_from_settings
from vigil.banks.jobs import create_import_job, job_view, start_import_job
from vigil.store import BankEntry

router = APIRouter(prefix="/v1/banks", tags=["banks"])
MAX_ENTRIES_PER_CALL = 10_000
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}$")


class BankSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(None, max_length=10_000)
    kind: Literal["match", "suppress"] | None = None
    source: Literal["own", "imported", "exchange"] | None = None
    source_name: str | None = Field(None, max_length=200)
    trust: Literal["verified", "unverified"] | None = None
    default_classification: str | None = Field(None, max_length=200)
    enabled: bool | None = None
    pdq_threshold: int | None = None
    vpdq_frame_threshold: int | None = None
    vpdq_compared_share: float | None = None
    vpdq_query_share: float | None = None

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class NewBank(BankSettings):
    name: str = Field(max_length=64, examples=["own-confirmed"])


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signal_type: str = Field(max_length=32)
    value: str = Field(max_length=8 * 1024 * 1024)
    classification: str | None = Field(None, max_length=200)
    external_id: str | None = Field(None, max_length=200)
    note: str | None = Field(None, max_length=10_000)


class EntriesIn(BaseModel):
    entries: list[EntryIn] = Field(min_length=1, max_length=MAX_ENTRIES_PER_CALL)


class DisableIn(BaseModel):
    until: AwareDatetime | None = Field(None, description="None: until enabled again.")


def _settings_error(error: ValueError) -> FieldError:
    message = str(error)
    field = next((f for f in BankSettings.model_fields if f.replace("_", " ") in message), None)
    return FieldError(["body", field] if field else ["body"], message)


def _refresh(state: ServiceState) -> None:
    state.index.refresh()


def _entry_json(entry: BankEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "signal_type": entry.signal_type,
        "value": entry.value,
        "classification": banks.entry_classification(entry).to_text() or None,
        "external_id": entry.external_id,
        "list_name": entry.list_name,
        "member": entry.member,
        "note": entry.note,
        "added": entry.added_at.isoformat(),
        "disabled_until": entry.disabled_until.isoformat() if entry.disabled_until else None,
        "false_positives": entry.false_positive_count,
    }


@router.get("")
def list_banks(state: State, _: Curator) -> list[dict[str, Any]]:
    with state.database.session() as session:
        return [summary.as_json() for summary in banks.list_banks(session)]


@router.post("", status_code=201)
def create_bank(body: NewBank, state: State, _: Curator) -> dict[str, Any]:
    settings = body.given()
    name = settings.pop("name")
    settings.pop("description", None)
    try:
        with state.database.session() as session:
            bank = banks.create_bank(session, name, description=body.description or "", **settings)
            result = banks.BankSummary(bank, {}).as_json()
    except ValueError as error:
        raise _settings_error(error) from None
    _refresh(state)
    return result


@router.get("/{name}")
def get_bank(name: str, state: State, _: Curator) -> dict[str, Any]:
    with state.database.session() as session:
        bank = banks.get_bank(session, name)
        data = banks.BankSummary(bank, banks.entry_counts(session, bank)).as_json()
        data["imports"] = [
            banks.ImportReport.from_record(record, bank.name).as_json()
            for record in banks.list_imports(session, bank)
        ]
        return data


@router.patch("/{name}")
def update_bank(name: str, body: BankSettings, state: State, _: Curator) -> dict[str, Any]:
    try:
        with state.database.session() as session:
            bank = banks.update_bank(session, name, **body.given())
            result = banks.BankSummary(bank, banks.entry_counts(session, bank)).as_json()
    except ValueError as error:
        raise _settings_error(error) from None
    _refresh(state)
    return result


@router.delete("/{name}", status_code=204)
def delete_bank(name: str, state: State, _: Curator) -> Response:
    with state.database.session() as session:
        banks.delete_bank(session, name)
    _refresh(state)
    return Response(status_code=204)


@router.get("/{name}/entries")
def list_entries(
    name: str,
    state: State,
    _: Curator,
    signal_type: str | None = None,
    after: int = Query(0, ge=0, description="Entries with a larger id (paging)."),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    with state.database.session() as session:
        entries = banks.page_entries(
            session, name, signal_type=signal_type, after=after, limit=limit
        )
        items = [_entry_json(e) for e in entries]
    return {"entries": items, "next_after": items[-1]["id"] if len(items) == limit else None}


@router.post("/{name}/entries")
def add_entries(name: str, body: EntriesIn, state: State, _: Curator) -> dict[str, int]:
    """Add up to 10,000 values; all are validated first and none is added if one is bad."""
    for position, item in enumerate(body.entries):
        try:
            banks.check_value(item.signal_type, item.value)
        except (KeyError, ValueError) as error:
            field = "signal_type" if isinstance(error, KeyError) else "value"
            message = str(error.args[0]) if isinstance(error, KeyError) else str(error)
            raise FieldError(["body", "entries", position, field], message) from None
    try:
        with state.database.session(immediate=True) as session:
            counts = banks.add_entries(
                session, name, [banks.NewEntry(**item.model_dump()) for item in body.entries]
            )
    except ValueError as error:
        raise FieldError(["body", "entries"], str(error)) from None
    _refresh(state)
    return {
        "added": counts.added,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "removed": counts.removed,
    }


@router.get("/{name}/entries/{entry_id}")
def get_entry(name: str, entry_id: int, state: State, _: Curator) -> dict[str, Any]:
    with state.database.session() as session:
        return _entry_json(banks.get_bank_entry(session, name, entry_id))


@router.delete("/{name}/entries/{entry_id}", status_code=204)
def remove_entry(name: str, entry_id: int, state: State, _: Curator) -> Response:
    with state.database.session() as session:
        if not banks.remove_entry(session, name, entry_id=entry_id):
            raise banks.EntryNotFound(f"bank {name!r} has no entry {entry_id}")
    _refresh(state)
    return Response(status_code=204)


@router.post("/{name}/entries/{entry_id}/disable")
def disable_entry(
    name: str, entry_id: int, body: DisableIn, state: State, _: Curator
) -> dict[str, Any]:
    """Keep an entry out of matching (until a time, or until enabled again)."""
    with state.database.session() as session:
        entry = banks.get_bank_entry(session, name, entry_id)
        result = _entry_json(banks.disable_entry(session, entry.id, body.until))
    _refresh(state)
    return result


@router.post("/{name}/entries/{entry_id}/enable")
def enable_entry(name: str, entry_id: int, state: State, _: Curator) -> dict[str, Any]:
    with state.database.session() as session:
        entry = banks.get_bank_entry(session, name, entry_id)
        result = _entry_json(banks.enable_entry(session, entry.id))
    _refresh(state)
    return result


@router.post("/{name}/imports", status_code=202)
async def import_upload(
    name: str, request: Request, response: Response, state: State, principal: Curator
) -> dict[str, Any]:
    """Upload a hash list (multipart `file`, with optional `format`, `signal_type`,
    `list_name`, `vics_region` fields); it is imported in the background. Poll the job at
    the `Location` given."""
    settings = state.settings
    async with request.form(max_files=1, max_fields=8) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise FieldError(["body", "file"], "a multipart field 'file' is required")
        options = {
            key: value
            for key in ("format", "signal_type", "list_name", "vics_region")
            if isinstance(value := form.get(key), str) and value
        }
        if "format" in options:
            options["fmt"] = options.pop("format")
        with state.database.session() as session:
            banks.get_bank(session, name)  # 404 before the upload is stored
        settings.upload_dir.mkdir(parents=True, exist_ok=True)
        suffix = _EXTENSION.search(upload.filename or "")
        target = settings.upload_dir / f"{uuid.uuid4().hex}{suffix.group(0) if suffix else ''}"
        try:
            await copy_capped(upload, target, settings.bank_import_max_bytes)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    with state.database.session() as session:
        job = create_import_job(
            session, bank=name, upload=target, actor=principal.actor, options=options
        )
        job_id = job.id
        view = job_view(session, job)
    start_import_job(
        state.database, job_id, limits_from_settings(settings), on_done=lambda: _refresh(state)
    )
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    return view


@router.get("/{name}/export")
def export(
    name: str,
    state: State,
    _: Curator,
    format: ExportFormat = ExportFormat.CSV,
    signal_type: str | None = None,
) -> StreamingResponse:
    """The bank's entries as a streamed download (CSV reads back with the import)."""
    try:
        check_export_options(format, signal_type)
    except ValueError as error:
        raise FieldError(["query"], str(error)) from None
    with state.database.session() as session:
        banks.get_bank(session, name)

    def write(stream: TextIO) -> None:
        with state.database.session() as session:
            banks.export_bank(session, name, stream, fmt=format, signal_type=signal_type)

    stamp = datetime.now().strftime("%Y%m%d")
    extension = "csv" if format == ExportFormat.CSV else "txt"
    return StreamingResponse(
        stream_text(write),
        media_type="text/csv" if format == ExportFormat.CSV else "text/plain",
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.{extension}"'},
    )
