"""Hasher-Matcher-Actioner (HMA 2, "OpenMediaMatch") compatible routes: `/h`, `/m`, `/c`
and `/status`, with HMA's request and response shapes, so an HMA integration moves to Vigil
by changing its base URL and sending a bearer token (docs/hma-compat.md).

A thin translation layer: every route calls the same services as its `/v1` equivalent
(`vigil.pipeline.online`, `vigil.banks`). What is translated here, and only here:

- bank names: HMA `MY_BANK` is Vigil's `my_bank` (Vigil banks whose upper-cased name is no
  valid HMA name are not listed);
- signal types: HMA `pdq`, `video_md5` (Vigil `md5` of a video) and `vpdq` (HMA's JSON list
  of `pdq_hex,quality,timestamp` strings <-> Vigil's canonical text);
- `matching_enabled_ratio`: 1.0 is an enabled bank, 0.0 a disabled one; Vigil has no
  coin-flip in between;
- a bank content id is a Vigil bank entry id;
- errors: HMA's `{"message": ...}` body with HMA's status codes; request validation errors
  as flask-openapi3 answers them (422, a list of pydantic errors).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.version import version_short
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil import banks
from vigil.api.observability import HASHES, MATCHES
from vigil.api.security import Curator, Hasher, Matcher, State
from vigil.api.state import ServiceState
from vigil.api.uploads import copy_capped
from vigil.banks.service import rename_bank
from vigil.media import ErrorCode, MediaType
from vigil.media.fetch import FetchError, FetchErrorCode, FetchPolicy, fetch_url
from vigil.pipeline.hashing import HashRecord
from vigil.pipeline.matching import FoundMatch, MatchOutcome
from vigil.pipeline.online import (
    HashQuery,
    UploadRejected,
    compare_hashes,
    hash_upload,
    lookup_hashes,
    online_options,
    parse_query,
)
from vigil.signals.vpdq import format_timestamp, parse_vpdq
from vigil.store import Bank, BankEntry

# --- What HMA calls things -----------------------------------------------------------------

SIGNAL_TYPES: dict[str, str] = {"pdq": "pdq", "video_md5": "md5", "vpdq": "vpdq"}
"""HMA signal type -> Vigil signal type."""
HMA_SIGNAL_TYPES: dict[str, str] = {vigil: hma for hma, vigil in SIGNAL_TYPES.items()}
CONTENT_TYPES: dict[str, tuple[str, ...]] = {"photo": ("pdq",), "video": ("video_md5", "vpdq")}
"""HMA content type -> the HMA signal types computed for it."""
_CONTENT_OF_MEDIA = {MediaType.IMAGE: "photo", MediaType.VIDEO: "video"}
_HMA_BANK_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_NO_DISTANCE = "-"
"""python-threatexchange's `pretty_str()` of an exact match (no distance): `video_md5`."""
_MAX_NOTE_CHARS = 255
_EXPECTS_OBJECT = "this endpoint expects a json object payload"
_FIVE_YEARS = timedelta(days=365 * 5)
_UNSERVED = (
    "Vigil does not serve HMA's {what}: Vigil manages hash sources itself, with"
    " `vigil bank import` or `POST /v1/banks/{{name}}/imports` (docs/hma-compat.md)."
)


class HMAError(Exception):
    """An answer in HMA's error shape: `{"message": ...}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def abort(status: int, message: str) -> NoReturn:
    """Answer `status` with `{"message": message}` (HMA's `flask.abort`)."""
    raise HMAError(status, message)


@contextmanager
def _refused(prefix: str = "") -> Iterator[None]:
    """Answer a `ValueError` raised within as 400 with `prefix` and the error's text."""
    try:
        yield
    except ValueError as error:
        abort(400, f"{prefix}{error}")


async def _json_object(request: Request, message: str) -> dict[str, Any]:
    """The request's JSON object body; 400 with `message` when it is not one."""
    try:
        body = await request.json()
    except ValueError:
        abort(400, message)
    if not isinstance(body, dict):
        abort(400, message)
    return body


_UPLOAD_TOO_LARGE = {
    ErrorCode.TOO_LARGE,
    ErrorCode.TOO_MANY_PIXELS,
    ErrorCode.VIDEO_TOO_LONG,
    ErrorCode.TOO_MANY_FRAMES,
}


def _error_response(exc: Exception) -> JSONResponse | None:
    """HMA's answer for an exception raised by a route or its dependencies (None: not ours)."""
    if isinstance(exc, HMAError):
        return JSONResponse({"message": exc.message}, exc.status)
    if isinstance(exc, RequestValidationError):
        # flask-openapi3's default: 422 with pydantic's error list, locations relative to
        # the model (no "query"/"body" prefix).
        errors = []
        for error in jsonable_encoder(exc.errors()):
            loc = list(error.get("loc", ()))
            if loc and loc[0] in ("query", "body", "path", "header", "cookie"):
                loc = loc[1:]
            errors.append(
                {
                    **error,
                    "loc": loc,
                    "url": f"https://errors.pydantic.dev/{version_short()}/v/{error['type']}",
                }
            )
        return JSONResponse(errors, 422)
    if isinstance(exc, StarletteHTTPException):  # authentication, rate limits, multipart
        return JSONResponse({"message": str(exc.detail)}, exc.status_code, headers=exc.headers)
    if isinstance(exc, UploadRejected):
        if exc.code in _UPLOAD_TOO_LARGE:
            return JSONResponse({"message": f"Content too large: {exc.message}"}, 413)
        status = 500 if exc.code is ErrorCode.INTERNAL else 400
        return JSONResponse({"message": f"Cannot hash the content: {exc.message}"}, status)
    if isinstance(exc, FetchError):
        if exc.code is FetchErrorCode.TOO_LARGE:
            return JSONResponse({"message": f"Content too large: {exc.message}"}, 413)
        if exc.code in (FetchErrorCode.URL_INVALID, FetchErrorCode.URL_FORBIDDEN):
            return JSONResponse({"message": f"Invalid or unsafe URL provided: {exc.message}"}, 400)
        return JSONResponse({"message": f"Failed to fetch URL: {exc.message}"}, 400)
    return None


class HMARoute(APIRoute):
    """A route answering every failure in HMA's shape, whatever raised it (the handler, the
    token check, FastAPI's validation), before the app's `/v1` exception handlers see it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                answer = _error_response(exc)
                if answer is None:
                    raise
                return answer

        return run


router = APIRouter(tags=["hma-compat"], route_class=HMARoute)


# --- Translation helpers ---------------------------------------------------------------------


def vigil_bank_name(hma_name: str) -> str | None:
    """The Vigil name of an HMA bank name (`MY_BANK` -> `my_bank`); None when invalid."""
    return hma_name.lower() if _HMA_BANK_NAME.fullmatch(hma_name) else None


def hma_bank_name(vigil_name: str) -> str | None:
    """The HMA name of a Vigil bank (`my_bank` -> `MY_BANK`); None when it has none."""
    upper = vigil_name.upper()
    return upper if _HMA_BANK_NAME.fullmatch(upper) else None


def _shown_bank_name(vigil_name: str) -> str:
    """The name a match is reported under: the HMA name, or Vigil's own when it has none
    (a match is never hidden because its bank's name does not fit HMA's rule)."""
    return hma_bank_name(vigil_name) or vigil_name


def _bank_json(bank: Bank) -> dict[str, Any]:
    return {
        "name": _shown_bank_name(bank.name),
        "matching_enabled_ratio": 1.0 if bank.enabled else 0.0,
    }


def _enabled_from_ratio(ratio: float) -> bool:
    if ratio == 1.0:
        return True
    if ratio == 0.0:
        return False
    abort(
        400,
        f"enabled_ratio {ratio} is not supported: Vigil banks are either enabled (1.0) or"
        " disabled (0.0); there is no partial, coin-flip enabling",
    )


def _enabled(ratio: float | None, enabled: bool | None) -> bool | None:
    """Whether a bank is to be enabled: `enabled_ratio` (1.0 or 0.0) when given, else
    `enabled`; None when neither is."""
    return _enabled_from_ratio(ratio) if ratio is not None else enabled


def _new_bank_name(hma_name: str) -> str:
    """The Vigil name for a bank being named `hma_name`; 400 when it is no HMA bank name."""
    name = vigil_bank_name(hma_name)
    if name is None:
        abort(400, "Bank names must be UPPER_WITH_UNDERSCORE")
    return name


@contextmanager
def _bank_change(exists: str) -> Iterator[None]:
    """HMA's answers to a bank change that fails: 403 `exists` when the name is taken, 400
    when the change is refused."""
    with _refused():
        try:
            yield
        except banks.BankExists:
            abort(403, exists)


def _parse_bank_filter(banks_param: str | None) -> set[str] | None:
    return set(banks_param.split(",")) if banks_param else None


def _vpdq_from_hma(text: str) -> str:
    """Vigil's vPDQ text from HMA's vpdq signal (a JSON list of `pdq_hex,quality,timestamp`
    strings, frames numbered in order); Vigil's own line format is accepted as it is."""
    stripped = text.strip()
    if not stripped.startswith("["):
        return text
    try:
        features = json.loads(stripped)
    except ValueError:
        raise ValueError("vpdq signal is not a valid JSON list") from None
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise ValueError("vpdq signal must be a JSON list of 'pdq_hex,quality,timestamp' strings")
    lines = []
    for number, feature in enumerate(features):
        parts = [part.strip() for part in feature.split(",")]
        if len(parts) != 3:
            raise ValueError(f"vpdq feature {number}: expected pdq_hex,quality,timestamp")
        pdq, quality, timestamp = parts
        try:
            seconds = format_timestamp(float(timestamp))
        except ValueError:
            raise ValueError(f"vpdq feature {number}: timestamp is not a number") from None
        lines.append(f"{number},{quality},{pdq},{seconds}\n")
    return "".join(lines)


def _vpdq_to_hma(text: str) -> str:
    return json.dumps(
        [f"{f.pdq},{f.quality},{format_timestamp(f.timestamp)}" for f in parse_vpdq(text)]
    )


def _hma_value(vigil_type: str, value: str) -> str:
    return _vpdq_to_hma(value) if vigil_type == "vpdq" else value


def _vigil_value(hma_type: str, value: str) -> str:
    return _vpdq_from_hma(value) if hma_type == "vpdq" else value


def _vigil_signal_type(signal_type: str) -> str:
    """The Vigil signal type of an HMA one; 400 (as HMA's lookups) when there is none."""
    vigil_type = SIGNAL_TYPES.get(signal_type)
    if vigil_type is None:
        abort(400, f"No such SignalType '{signal_type}'")
    return vigil_type


def _known_signal_type(signal_type: str) -> str:
    """`signal_type`, an HMA signal type; 400 (as HMA's curation routes) when it is none."""
    if signal_type not in SIGNAL_TYPES:
        abort(400, f"No such signal type '{signal_type}'")
    return signal_type


def _signal_type_names(signal_type: str | None) -> list[str]:
    """The HMA signal types a `signal_type` parameter names: all of them when absent."""
    return list(SIGNAL_TYPES) if signal_type is None else [_known_signal_type(signal_type)]


def _parse(signal_type: str, vigil_type: str, value: str) -> HashQuery:
    return parse_query(vigil_type, _vigil_value(signal_type, value))


def _query(signal_type: str, signal: str) -> HashQuery:
    """A hash given by HMA signal type and value, validated (HMA's 400 messages)."""
    vigil_type = _vigil_signal_type(signal_type)
    with _refused("invalid signal: "):
        return _parse(signal_type, vigil_type, signal)


def _distance(hma_type: str, distance: int) -> str:
    return _NO_DISTANCE if hma_type == "video_md5" else str(distance)


def _matches(outcome: MatchOutcome, bank_filter: set[str] | None) -> list[FoundMatch]:
    """The matches HMA reports (suppressed ones are not), within the `banks` filter."""
    found = [m for m in outcome.matches if m.signal_type in HMA_SIGNAL_TYPES]
    for match in found:
        MATCHES.labels(match.bank).inc()
    if bank_filter is None:
        return found
    return [m for m in found if _shown_bank_name(m.bank) in bank_filter]


def _lookup_signal(
    state: ServiceState, signal_type: str, signal: str, bank_filter: set[str] | None
) -> list[FoundMatch]:
    """The matches HMA reports for one hash given by HMA signal type and value."""
    (outcome,) = lookup_hashes(state.matcher, [_query(signal_type, signal)])
    return _matches(outcome, bank_filter)


def _by_bank(matches: Sequence[FoundMatch]) -> dict[str, list[dict[str, Any]]]:
    """HMA's `TMatchByBank`: bank name -> `[{"bank_content_id", "distance"}]`."""
    result: dict[str, list[dict[str, Any]]] = {}
    for match in matches:
        result.setdefault(_shown_bank_name(match.bank), []).append(
            {
                "bank_content_id": match.entry_id,
                "distance": _distance(HMA_SIGNAL_TYPES[match.signal_type], match.distance),
            }
        )
    return result


def _refresh(state: ServiceState) -> None:
    state.index.refresh()


def _index_built_to(state: ServiceState) -> int:
    """The wall-clock time of this worker's last index refresh."""
    return int(time.time() - (time.monotonic() - state.index.last_refresh))


def _find_bank(session: Session, hma_name: str) -> Bank | None:
    name = vigil_bank_name(hma_name)
    if name is None:
        return None
    try:
        return banks.get_bank(session, name)
    except banks.BankNotFound:
        return None


def _require_bank(state: ServiceState, hma_name: str) -> Bank:
    with state.database.session() as session:
        bank = _find_bank(session, hma_name)
    if bank is None:
        abort(404, f"bank '{hma_name}' not found")
    return bank


def _require_entry(session: Session, bank: Bank, content_id: int) -> BankEntry:
    try:
        return banks.get_bank_entry(session, bank.id, content_id)
    except banks.EntryNotFound:
        abort(404, f"content '{content_id}' not found")


# --- Receiving and hashing media -------------------------------------------------------------


@dataclass
class _Media:
    path: Path
    name: str
    content_type: str | None
    """The multipart field name (HMA's content type); None for a URL."""
    fields: dict[str, str] = field(default_factory=dict)


@asynccontextmanager
async def _receive(request: Request, state: ServiceState, url: str | None) -> AsyncIterator[_Media]:
    """The media of a request, in a temporary file removed afterwards: fetched from `url`
    (through the SSRF-guarded fetcher), or the one file of a multipart body, whose field
    name is the content type (`photo`, `video`)."""
    settings = state.settings
    folder = Path(tempfile.mkdtemp(prefix="vigil-hma-"))
    try:
        if url is not None:
            policy = FetchPolicy.from_settings(settings)
            fetched = await run_in_threadpool(fetch_url, url, policy, directory=folder)
            with fetched:
                yield _Media(fetched.path, url, None)
            return
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            abort(400, "Missing multipart/form-data file upload")
        async with request.form(max_files=2, max_fields=16) as form:
            files = [
                (key, value) for key, value in form.multi_items() if isinstance(value, UploadFile)
            ]
            if not files:
                abort(400, "Missing multipart/form-data file upload")
            if len(files) > 1:
                abort(400, "Only one file allowed per request")
            content_type, upload = files[0]
            if content_type not in CONTENT_TYPES:
                abort(400, f"no such content_type: '{content_type}'")
            fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
            path = folder / "upload"
            await copy_capped(upload, path, settings.max_file_bytes)
            yield _Media(path, upload.filename or "upload", content_type, fields)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _selected_types(types: str | None, content_type: str | None) -> tuple[str, ...] | None:
    """The HMA signal types `types` (comma-separated) selects, checked against the content
    type's (or, while it is unknown, every) signal type; None when not given."""
    if types is None:
        return None
    allowed = CONTENT_TYPES[content_type] if content_type else tuple(SIGNAL_TYPES)
    selected: list[str] = []
    for name in (part.strip() for part in types.split(",")):
        if not name:
            continue
        if name not in allowed:
            abort(400, f"signal type '{name}' doesn't exist or is disabled")
        if name not in selected:
            selected.append(name)
    if not selected:
        abort(400, "empty signal type selection")
    return tuple(selected)


def _hash(
    state: ServiceState,
    media: _Media,
    content_type: str | None,
    types: str | None,
    *,
    for_matching: bool = False,
) -> tuple[dict[str, str], HashRecord]:
    """HMA's hash map (signal type -> value) of the media, and the hash record holding just
    those signals (for matching). The content type is read from the file; a content type
    named by the caller (query or multipart field) must agree with it."""
    if content_type is not None and content_type not in CONTENT_TYPES:
        abort(400, f"no such content_type: '{content_type}'")
    wanted = _selected_types(types, content_type) or (
        CONTENT_TYPES[content_type] if content_type else tuple(SIGNAL_TYPES)
    )
    settings = state.settings
    options = replace(
        online_options(settings.media_limits, settings.vpdq_seconds_per_hash),
        signals=tuple(SIGNAL_TYPES[name] for name in wanted),
        pdq_query_variants=for_matching,
    )
    record = hash_upload(media.path, media.name, settings.media_limits, options)
    detected = _CONTENT_OF_MEDIA.get(record.media_type) if record.media_type else None
    if detected is None:
        abort(400, "the content is neither a photo nor a video")
    if content_type is not None and content_type != detected:
        abort(400, f"content_type is '{content_type}', but the content is a {detected}")
    selected = _selected_types(types, detected) or CONTENT_TYPES[detected]
    hashes: dict[str, str] = {}
    signals = {}
    for name in selected:
        signal = record.signals.get(SIGNAL_TYPES[name])
        if signal is None:
            continue
        hashes[name] = _hma_value(signal.signal_type, signal.value)
        signals[signal.signal_type] = signal
        HASHES.labels(signal.signal_type).inc()
    kept = HashRecord(record.path, record.media_type, record.bytes, signals)
    return hashes, kept


def _lookup_media(
    state: ServiceState,
    media: _Media,
    content_type: str | None,
    types: str | None,
    bank_filter: set[str] | None,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """HMA's `TBankMatchBySignalType` for media: signal type -> bank -> matches. Nothing is
    recorded (the matcher alone, not `record_upload`)."""
    hashes, record = _hash(state, media, content_type, types, for_matching=True)
    (outcome,) = state.matcher.match([record])
    found = _matches(outcome, bank_filter)
    return {
        name: _by_bank([m for m in found if HMA_SIGNAL_TYPES[m.signal_type] == name])
        for name in hashes
    }


async def _hash_received(
    request: Request,
    state: ServiceState,
    url: str | None,
    content_type: str | None,
    types: str | None,
) -> dict[str, str]:
    """HMA's hash map of the media at `url`, or (None) of the multipart upload, whose field
    name is its content type."""
    async with _receive(request, state, url) as media:
        kind = content_type if url is not None else media.content_type
        hashes, _record = await run_in_threadpool(_hash, state, media, kind, types)
    return hashes


async def _lookup_received(
    request: Request,
    state: ServiceState,
    url: str | None,
    content_type: str | None,
    types: str | None,
    bank_filter: set[str] | None,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """`_lookup_media` of the media at `url`, or (None) of the multipart upload."""
    async with _receive(request, state, url) as media:
        kind = content_type if url is not None else media.content_type
        return await run_in_threadpool(_lookup_media, state, media, kind, types, bank_filter)


# --- Query parameters, as HMA's request schemas (OpenMediaMatch/schemas) ---------------------


class _MediaParams(BaseModel):
    """Which media to hash, and how: `url` (else a multipart upload), `content_type`
    (`photo` or `video`, checked against the content), `types` (comma-separated signal
    types)."""

    url: str | None = None
    content_type: str | None = None
    types: str | None = None


class _HashParams(_MediaParams):
    """HMA's `HashRequest`."""

    url: str


class _LookupParams(_MediaParams):
    """HMA's `LookupRequest`: media, or one hash (`signal_type`, `signal`), looked up in
    `banks` (comma-separated; all when absent). `seed` and `bypass_coinflip` change nothing."""

    signal: str | None = None
    signal_type: str | None = None
    banks: str | None = None
    seed: str | None = None
    bypass_coinflip: bool = False


class _RawLookupParams(BaseModel):
    """HMA's `RawLookupRequest`."""

    signal: str
    signal_type: str
    banks: str | None = None
    include_distance: bool = False


# --- Health ----------------------------------------------------------------------------------


@router.get("/status", response_class=PlainTextResponse)
def status(state: State) -> PlainTextResponse:
    """HMA's health check (no token): `I-AM-ALIVE`, or 503 `INDEX-STALE` when this worker's
    match index has not been refreshed recently."""
    if not state.index.is_current():
        return PlainTextResponse("INDEX-STALE", 503)
    return PlainTextResponse("I-AM-ALIVE")


# --- Hashing (/h) ----------------------------------------------------------------------------


@router.get("/h/hash")
async def hash_url(
    state: State, request: Request, _: Hasher, params: Annotated[_HashParams, Query()]
) -> dict[str, str]:
    """Fetch `url` and return its hashes: `{"pdq": "..."}` for a photo, `{"video_md5":
    "...", "vpdq": "..."}` for a video (`types` narrows it)."""
    return await _hash_received(request, state, params.url, params.content_type, params.types)


@router.post("/h/hash")
async def hash_file(
    state: State, request: Request, _: Hasher, types: str | None = None
) -> dict[str, str]:
    """Hash one multipart file whose field name is its content type (`photo`, `video`)."""
    return await _hash_received(request, state, None, None, types)


# --- Matching (/m) ---------------------------------------------------------------------------


@router.get("/m/raw_lookup")
def raw_lookup(
    state: State, _: Matcher, params: Annotated[_RawLookupParams, Query()]
) -> dict[str, list[Any]]:
    """Bank content ids matching one hash (with their distances, as strings, on request)."""
    signal_type = params.signal_type
    found = _lookup_signal(state, signal_type, params.signal, _parse_bank_filter(params.banks))
    if params.include_distance:
        return {
            "matches": [
                {"bank_content_id": m.entry_id, "distance": _distance(signal_type, m.distance)}
                for m in found
            ]
        }
    return {"matches": [m.entry_id for m in found]}


@router.get("/m/lookup")
async def lookup(
    state: State, request: Request, _: Matcher, params: Annotated[_LookupParams, Query()]
) -> dict[str, Any]:
    """Matches by bank for a hash (`signal_type` and `signal`), or by signal type then bank
    for the media at `url`. `seed` and `bypass_coinflip` are accepted and change nothing:
    Vigil banks are on or off, never sampled."""
    bank_filter = _parse_bank_filter(params.banks)
    url, signal, signal_type = params.url, params.signal, params.signal_type
    if url:
        by_type = await _lookup_received(
            request, state, url, params.content_type, params.types, bank_filter
        )
        if signal_type is not None:
            selected: dict[str, Any] = by_type.get(signal_type, {})
            return selected
        return by_type
    if not signal or not signal_type:
        abort(400, "Either url or both signal and signal_type are required")
    return _by_bank(_lookup_signal(state, signal_type, signal, bank_filter))


@router.post("/m/lookup")
async def lookup_file(
    state: State,
    request: Request,
    _: Matcher,
    types: str | None = None,
    banks: str | None = None,
    seed: str | None = None,
    bypass_coinflip: str | None = None,
) -> dict[str, Any]:
    """Hash one multipart file (field name = content type) and return its matches by
    signal type then bank. Nothing is recorded: use `/v1/match` to record and act."""
    bank_filter = _parse_bank_filter(banks)
    return await _lookup_received(request, state, None, None, types, bank_filter)


@router.post("/m/compare")
async def compare(request: Request, _: Matcher) -> dict[str, Any]:
    """Compare pairs of hashes: `{"pdq": [a, b]}` -> `{"pdq": [match, {"distance": d}]}`."""
    body = await _json_object(request, "Request input was not a dict")
    results: dict[str, Any] = {}
    for signal_type, pair in body.items():
        if not isinstance(pair, list):
            abort(400, f"Comparison hashes for {signal_type} was not a list")
        if len(pair) != 2:
            abort(400, "Comparison hash list length must be exactly 2")
        vigil_type = _vigil_signal_type(signal_type)
        with _refused(f"Invalid {signal_type} hash: "):
            if not all(isinstance(value, str) for value in pair):
                raise ValueError("hashes must be strings")
            a, b = (_parse(signal_type, vigil_type, value) for value in pair)
            result = compare_hashes(a, b)
        similarity = {} if signal_type == "video_md5" else {"distance": result.distance}
        results[signal_type] = [result.match, similarity]
    return results


@router.get("/m/index/status")
def index_status(state: State, _: Matcher, signal_type: str | None = None) -> dict[str, Any]:
    """Per signal type: whether the index is present, when it was last brought up to date
    (unix time) and how many hashes it holds."""
    names = _signal_type_names(signal_type)
    counts = state.matcher.index.counts()
    built_to = _index_built_to(state)
    return {
        name: {"present": True, "built_to": built_to, "size": counts.get(SIGNAL_TYPES[name], 0)}
        for name in names
    }


# --- Curation (/c): banks --------------------------------------------------------------------


class BankCreateIn(BaseModel):
    name: str
    enabled_ratio: float | None = 1.0
    enabled: bool | None = None


class BankUpdateIn(BaseModel):
    name: str | None = None
    enabled_ratio: float | None = None
    enabled: bool | None = None


@router.get("/c/banks")
def list_banks(state: State, _: Curator) -> list[dict[str, Any]]:
    """Every Vigil bank whose name has an HMA form (`my_bank` is `MY_BANK`)."""
    with state.database.session() as session:
        return [
            _bank_json(summary.bank)
            for summary in banks.list_banks(session)
            if hma_bank_name(summary.bank.name) is not None
        ]


@router.post("/c/banks", status_code=201)
def create_bank(body: BankCreateIn, state: State, _: Curator) -> dict[str, Any]:
    """Create a (match) bank; 403 when the name is taken."""
    enabled = _enabled(body.enabled_ratio, body.enabled)
    name = _new_bank_name(body.name)
    with _bank_change("Bank already exists"), state.database.session() as session:
        result = _bank_json(banks.create_bank(session, name, enabled=enabled is not False))
    _refresh(state)
    return result


@router.get("/c/bank/{bank_name}")
def get_bank(bank_name: str, state: State, _: Curator) -> dict[str, Any]:
    return _bank_json(_require_bank(state, bank_name))


@router.put("/c/bank/{bank_name}")
def update_bank(bank_name: str, body: BankUpdateIn, state: State, _: Curator) -> dict[str, Any]:
    """Rename (`name`), enable or disable (`enabled`, `enabled_ratio` 1.0 or 0.0) a bank."""
    enabled = _enabled(body.enabled_ratio, body.enabled)
    new_name = _new_bank_name(body.name) if body.name is not None else None
    with _bank_change("Bank name already exists"), state.database.session() as session:
        bank = _find_bank(session, bank_name)
        if bank is None:
            abort(404, "Bank not found")
        if new_name is not None:
            bank = rename_bank(session, bank, new_name)
        if enabled is not None:
            bank = banks.update_bank(session, bank, enabled=enabled)
        result = _bank_json(bank)
    _refresh(state)
    return result


@router.delete("/c/bank/{bank_name}")
def delete_bank(bank_name: str, state: State, _: Curator) -> dict[str, str]:
    """Delete a bank and its content; also 200 when there is no such bank (as HMA)."""
    name = vigil_bank_name(bank_name)
    if name is not None:
        with state.database.session() as session, suppress(banks.BankNotFound):
            banks.delete_bank(session, name)
        _refresh(state)
    return {"message": "Done"}


# --- Curation (/c): bank content -------------------------------------------------------------


class _Metadata(BaseModel):
    """HMA's `BankedContentMetadata` (its `collab` key is dropped, as HMA does)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    content_id: str | None = None
    content_uri: str | None = None
    json_data: dict[str, Any] | None = Field(None, alias="json")


def _metadata(raw: Any) -> _Metadata | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        abort(400, "metadata should be a json object")
    raw = {key: value for key, value in raw.items() if key != "collab"}
    try:
        return _Metadata.model_validate(raw)
    except ValidationError as error:
        abort(400, f"Invalid metadata: {error}")


def _note(raw: Any) -> str | None:
    if not raw:
        return None
    if not isinstance(raw, str):
        abort(400, "note should be a string")
    if len(raw) > _MAX_NOTE_CHARS:
        abort(400, f"note must be at most {_MAX_NOTE_CHARS} characters")
    return raw


def _add_signals(
    state: ServiceState,
    bank: Bank,
    signals: dict[str, Any],
    metadata: _Metadata | None,
    note: str | None,
) -> dict[str, Any]:
    """Add one bank entry per signal (HMA type -> value); HMA's `{"id", "signals"}` with the
    first entry's id. A value the bank holds already keeps its entry (and id)."""
    if not signals:
        abort(400, "No signals given")
    entries: list[banks.NewEntry] = []
    shown: dict[str, str] = {}
    for name, value in signals.items():
        vigil_type = SIGNAL_TYPES.get(name)
        if vigil_type is None:
            abort(400, f"No such signal type {name}")
        with _refused(f"Invalid {name} signal: "):
            if not isinstance(value, str):
                raise ValueError("a signal must be a string")
            canonical = banks.check_value(vigil_type, _vigil_value(name, value))
        external_id = metadata.content_id if metadata else None
        entries.append(banks.NewEntry(vigil_type, canonical, external_id=external_id, note=note))
        shown[name] = _hma_value(vigil_type, canonical)
    with _refused(), state.database.session(immediate=True) as session:
        banks.add_entries(session, bank.id, entries)
        ids = []
        for entry in entries:
            found = banks.find_entry(session, bank.id, entry.signal_type, entry.value)
            assert found is not None
            ids.append(found.id)
    _refresh(state)
    return {"id": ids[0], "signals": shown}


def _disable_until_ts(entry: BankEntry) -> int:
    """HMA's `disable_until_ts`: 1 enabled, 0 disabled until enabled again, else unix time."""
    until = entry.disabled_until
    if until is None:
        return 1
    if until >= banks.FOREVER:
        return 0
    return int(until.timestamp())


def _entry_signals(entry: BankEntry) -> dict[str, str]:
    name = HMA_SIGNAL_TYPES.get(entry.signal_type)
    return {name: _hma_value(entry.signal_type, entry.value)} if name else {}


def _user_metadata(entry: BankEntry) -> dict[str, Any] | None:
    return {"content_id": entry.external_id} if entry.external_id else None


@router.post("/c/bank/{bank_name}/content")
async def add_content(
    bank_name: str,
    state: State,
    request: Request,
    _: Curator,
    params: Annotated[_MediaParams, Query()],
) -> dict[str, Any]:
    """Add the media at `url` (JSON body: optional `metadata`, `note`) or one multipart file
    (field name = content type; form fields `metadata` as JSON text, `note`) to a bank."""
    bank = await run_in_threadpool(_require_bank, state, bank_name)
    url, types = params.url, params.types
    if url:
        body: Any = None
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = await request.json()
            except ValueError:
                abort(400, "the body is not valid JSON")
        given = body if isinstance(body, dict) else {}
        metadata, note = _metadata(given.get("metadata")), _note(given.get("note"))
        hashes = await _hash_received(request, state, url, params.content_type, types)
    elif request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with _receive(request, state, None) as media:
            metadata = None
            if "metadata" in media.fields:
                try:
                    metadata = _metadata(json.loads(media.fields["metadata"]))
                except ValueError:
                    abort(400, "metadata form field must be valid JSON")
            note = _note(media.fields.get("note"))
            hashes, _record = await run_in_threadpool(
                _hash, state, media, media.content_type, types
            )
    else:
        abort(400, "Neither `url` nor multipart file upload was received")
    return await run_in_threadpool(_add_signals, state, bank, hashes, metadata, note)


@router.post("/c/bank/{bank_name}/signal")
async def add_signals(bank_name: str, state: State, request: Request, _: Curator) -> dict[str, Any]:
    """Add hashes by value: `{"pdq": "<64 hex>", "note": "..."}`."""
    bank = await run_in_threadpool(_require_bank, state, bank_name)
    body = await _json_object(request, _EXPECTS_OBJECT)
    note = _note(body.pop("note", None))
    return await run_in_threadpool(_add_signals, state, bank, body, None, note)


@router.get("/c/bank/{bank_name}/content/{content_id}")
def get_content(
    bank_name: str,
    content_id: int,
    state: State,
    _: Curator,
    include_signals: str = "false",
    include_metadata: str = "true",
    signal_type: str | None = None,
) -> dict[str, Any]:
    """One bank content item (a Vigil bank entry). `signal_type` (older HMA) always returns
    `signals`, holding that type's value if the entry is of that type."""
    bank = _require_bank(state, bank_name)
    if signal_type is not None:
        _known_signal_type(signal_type)
    with state.database.session() as session:
        entry = _require_entry(session, bank, content_id)
        result: dict[str, Any] = {
            "id": entry.id,
            "disable_until_ts": _disable_until_ts(entry),
            "original_media_uri": None,
            "bank": _bank_json(bank),
        }
        signals = _entry_signals(entry)
        if signal_type is not None:
            result["signals"] = {k: v for k, v in signals.items() if k == signal_type}
        elif include_signals.lower() == "true" and signals:
            result["signals"] = signals
        metadata = _user_metadata(entry)
        if include_metadata.lower() == "true" and metadata:
            result["metadata"] = {**metadata, "content_uri": None, "json": None, "collab": None}
        if entry.note is not None:
            result["note"] = entry.note
        return result


def _timestamp(raw: Any) -> int:
    """HMA's `str_to_type(raw, int)`."""
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        abort(400, f"Invalid int: '{raw}'")
    try:
        return int(raw)
    except ValueError:
        abort(400, f"Invalid int: '{raw}'")


@router.put("/c/bank/{bank_name}/content/{content_id}")
async def update_content(
    bank_name: str, content_id: int, state: State, request: Request, _: Curator
) -> dict[str, Any]:
    """Disable (`disable_until_ts`: 0 until enabled again, a unix time, or 1 / a past time to
    enable) or annotate (`note`) one bank content item."""
    body = await _json_object(request, _EXPECTS_OBJECT)
    until: int | None = None
    if "disable_until_ts" in body:
        until = _timestamp(body["disable_until_ts"])
        if until < 0:
            abort(400, "disable_until_ts must be a non-negative integer")
        if until > (datetime.now(UTC) + _FIVE_YEARS).timestamp():
            abort(400, "disable_until_ts must be less than 5 years in the future")
    note = _note(body["note"]) if "note" in body else None

    def run() -> dict[str, Any]:
        bank = _require_bank(state, bank_name)
        with state.database.session() as session:
            entry = _require_entry(session, bank, content_id)
            if note is not None:
                banks.add_entries(
                    session, bank.id, [banks.NewEntry(entry.signal_type, entry.value, note=note)]
                )
            if until is not None:
                moment = datetime.fromtimestamp(until, UTC)
                if until == 0:
                    banks.disable_entry(session, entry.id)
                elif until == 1 or moment <= datetime.now(UTC):
                    banks.enable_entry(session, entry.id)
                else:
                    banks.disable_entry(session, entry.id, moment)
            session.refresh(entry)
            result = {
                "id": entry.id,
                "disable_until_ts": _disable_until_ts(entry),
                "collab_metadata": {},
                "original_media_uri": None,
                "bank": _bank_json(bank),
                "user_metadata": _user_metadata(entry),
                "note": entry.note,
            }
        _refresh(state)
        return result

    return await run_in_threadpool(run)


@router.delete("/c/bank/{bank_name}/content/{content_id}")
def delete_content(bank_name: str, content_id: int, state: State, _: Curator) -> dict[str, int]:
    """Remove one bank content item: `{"deleted": 1}` (0 when it was not there)."""
    bank = _require_bank(state, bank_name)
    with state.database.session() as session:
        removed = banks.remove_entry(session, bank.id, entry_id=content_id)
    if removed:
        _refresh(state)
    return {"deleted": int(removed)}


# --- Curation (/c): configuration ------------------------------------------------------------


@router.get("/c/signal_type")
def signal_types(_: Curator) -> list[dict[str, Any]]:
    """The signal types served, all always on."""
    return [{"name": name, "enabled_ratio": 1.0} for name in SIGNAL_TYPES]


@router.put("/c/signal_type/{signal_type_name}")
async def update_signal_type(signal_type_name: str, request: Request, _: Curator) -> Response:
    """Vigil's signal types are always on: `enabled_ratio` 1.0 is accepted (204), anything
    else is refused (501)."""
    try:
        body = await request.json()
    except ValueError:
        body = None
    raw = body.get("enabled_ratio") if isinstance(body, dict) else None
    if raw is None:
        abort(400, "enabled_ratio is required")
    try:
        ratio = float(raw)
    except (TypeError, ValueError):
        abort(400, f"Invalid float: '{raw}'")
    _known_signal_type(signal_type_name)
    if ratio != 1.0:
        abort(501, "Vigil's signal types are always enabled; only enabled_ratio 1.0 is accepted")
    return Response(status_code=204)


@router.get("/c/signal_type/index")
def signal_type_index(
    state: State, _: Curator, signal_type: str | None = None
) -> dict[str, dict[str, Any]]:
    """Per signal type: hashes in the banks, hashes in this worker's index (only enabled
    banks' active entries), whether the index is stale, and when each last changed."""
    names = _signal_type_names(signal_type)
    with state.database.session() as session:
        summaries = banks.list_banks(session)
    counts = state.matcher.index.counts()
    built_to = _index_built_to(state)
    stale = not state.index.is_current()
    result = {}
    for name in names:
        vigil_type = SIGNAL_TYPES[name]
        holding = [s for s in summaries if s.counts.get(vigil_type)]
        result[name] = {
            "db_size": sum(s.counts[vigil_type] for s in holding),
            "index_size": counts.get(vigil_type, 0),
            "index_out_of_date": stale,
            "newest_db_item": max((int(s.bank.updated.timestamp()) for s in holding), default=0),
            "index_built_to": built_to,
        }
    return result


@router.get("/c/content_type")
def content_types(_: Curator) -> list[dict[str, Any]]:
    return [{"name": name, "enabled": True} for name in CONTENT_TYPES]


# --- Not served ------------------------------------------------------------------------------

_ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _unserved(what: str) -> Callable[[], JSONResponse]:
    def answer() -> JSONResponse:
        return JSONResponse({"message": _UNSERVED.format(what=what)}, 501)

    return answer


for _path, _what in (
    ("/c/exchanges", "exchange (collaboration) API"),
    ("/c/exchanges/{rest:path}", "exchange (collaboration) API"),
    ("/c/exchange/{rest:path}", "exchange (collaboration) API"),
    ("/ui", "debugging UI"),
    ("/ui/{rest:path}", "debugging UI"),
    ("/dev", "development routes"),
    ("/dev/{rest:path}", "development routes"),
):
    router.add_api_route(
        _path, _unserved(_what), methods=_ALL_METHODS, include_in_schema=False, status_code=501
    )
