"""A local stand-in for the CyberTipline reporting API, to develop and test against.

Same calls and wire format as `vigil.reporting.client` expects (`/ispws/status`, `submit`,
`upload`, `fileinfo`, `finish`, `retract`; HTTP Basic auth; `<reportResponse>` answers and
`<reportDoneResponse>` from `finish`), with reports kept in SQLite (`store/sandbox.db`, WAL)
and uploaded files under `store/files/`, so a restarted sandbox still knows its reports.
Nothing is sent anywhere. Test uploads must be synthetic (random bytes, generated pictures).

Failures can be injected per endpoint, consumed in order (`FailurePlan`):

- `code:<n>`: answer `responseCode` n without doing anything;
- `timeout:<seconds>`: wait that long first; if the client gave up meanwhile, do nothing
  (the request was lost in a queue), else carry on normally;
- `drop`: close the connection without answering, doing nothing;
- `corrupt_md5` (upload only): store the file, answer with a wrong MD5;
- `after:<failure>` (code, timeout or drop): do the operation first, then fail, e.g.
  `submit:after:drop` stores the report and drops the connection, so the client never learns
  the `reportId` (what crash-safety has to cope with).

Set them on the command line (`vigil cybertip-sandbox --fail submit:code:1000 --fail
upload:after:drop`) or at run time: `POST /_sandbox/failures` with JSON `{"endpoint":
"submit", "failure": "code:1000"}`, `DELETE /_sandbox/failures`, `GET /_sandbox/failures`;
`GET /_sandbox/reports` shows the store. These take the same Basic credentials.

Behaviour chosen where the public record is silent (said here so it can be revisited):
- Report ids are increasing integers (never reused, even after a restart); file ids are 32
  hexadecimal characters. Both as public examples show them.
- Error answers carry an HTTP status by code family (1xxx 500, 2000 401, 3xxx 403, 4xxx 400,
  5001 404, other 5xxx 409); the client judges by `responseCode`, not the status.
- `fileinfo` for a file that is not one of the named report's files answers 5001, as for an
  unknown report; sending `fileinfo` again for the same file replaces the details (so a
  retry after a lost answer is harmless). Uploads and file details to a finished report
  answer 5102, to a retracted one 5101.
- A missing or non-numeric `id` is 5001 (no such report); a missing `file` part is 4100.
- `drop` aborts the TCP connection when served by uvicorn (it reaches the connection through
  the server's `receive` callable); under another server it sends a truncated response
  instead. Either way the client sees a transport error.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import os
import secrets
import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from lxml import etree
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "ENDPOINTS",
    "Failure",
    "FailurePlan",
    "SandboxStore",
    "create_sandbox_app",
    "parse_fail_option",
    "parse_failure",
]

Endpoint = Literal["status", "submit", "upload", "fileinfo", "finish", "retract"]
ENDPOINTS: tuple[Endpoint, ...] = ("status", "submit", "upload", "fileinfo", "finish", "retract")
Validator = Callable[[bytes], None]

DESCRIPTIONS = {
    0: "Success",
    1000: "Server error",
    1100: "Save failed",
    2000: "Authentication required",
    3000: "User is not authorized to perform this action",
    3100: "User does not have authorization to make submissions",
    4100: "Validation failed",
    4110: "Malformed XML submittal",
    5001: "Report does not exist",
    5101: "Report already retracted",
    5102: "Report already finished",
}

_RECEIVE_KEY = "vigil.sandbox.receive"


# --- failure injection ----------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One injected failure; `spec` is its text (`after:drop`, `code:1000`...)."""

    kind: Literal["code", "timeout", "drop", "corrupt_md5"]
    spec: str
    after: bool = False
    code: int = 0
    seconds: float = 0.0


def parse_failure(text: str) -> Failure:
    """Parse `code:<n>`, `timeout:<seconds>`, `drop`, `corrupt_md5` or `after:<one of the
    first three>`; ValueError with the accepted syntax otherwise."""
    spec = text.strip()
    body = spec
    after = False
    if body.startswith("after:"):
        after = True
        body = body[len("after:") :]
    kind, _, argument = body.partition(":")
    if kind == "code" and argument.strip().isdigit():
        return Failure("code", spec, after=after, code=int(argument))
    if kind == "timeout":
        try:
            seconds = float(argument)
        except ValueError:
            seconds = -1.0
        if 0 <= seconds <= 3600:
            return Failure("timeout", spec, after=after, seconds=seconds)
    if kind == "drop" and not argument:
        return Failure("drop", spec, after=after)
    if kind == "corrupt_md5" and not argument:
        return Failure("corrupt_md5", spec, after=True)
    raise ValueError(
        f"unknown failure {text!r}: expected code:<n>, timeout:<seconds>, drop, corrupt_md5,"
        " or after:<code:<n>|timeout:<seconds>|drop>"
    )


def parse_fail_option(text: str) -> tuple[Endpoint, Failure]:
    """Parse a command-line `--fail` value: `<endpoint>:<failure>`, e.g. `submit:after:drop`."""
    endpoint, _, failure = text.strip().partition(":")
    return _check_endpoint(endpoint), _check_failure(endpoint, parse_failure(failure))


def _check_endpoint(endpoint: str) -> Endpoint:
    for known in ENDPOINTS:
        if endpoint == known:
            return known
    raise ValueError(f"unknown endpoint {endpoint!r}: expected one of {', '.join(ENDPOINTS)}")


def _check_failure(endpoint: str, failure: Failure) -> Failure:
    if failure.kind == "corrupt_md5" and endpoint != "upload":
        raise ValueError("corrupt_md5 applies to upload only")
    return failure


class FailurePlan:
    """Queues of injected failures per endpoint, consumed in order; thread-safe."""

    def __init__(self, options: list[str] | tuple[str, ...] = ()) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Failure]] = {name: deque() for name in ENDPOINTS}
        for option in options:
            endpoint, failure = parse_fail_option(option)
            self.add(endpoint, failure)

    def add(self, endpoint: str, failure: str | Failure) -> Failure:
        """Queue a failure for `endpoint`; ValueError for an unknown endpoint or syntax."""
        name = _check_endpoint(endpoint)
        parsed = _check_failure(
            name, parse_failure(failure) if isinstance(failure, str) else failure
        )
        with self._lock:
            self._queues[name].append(parsed)
        return parsed

    def take(self, endpoint: str) -> Failure | None:
        """The next failure queued for `endpoint`, removed from the queue, or None."""
        with self._lock:
            queue = self._queues.get(endpoint)
            return queue.popleft() if queue else None

    def clear(self) -> None:
        with self._lock:
            for queue in self._queues.values():
                queue.clear()

    def pending(self) -> dict[str, list[str]]:
        """Failures still queued, by endpoint (endpoints with none left out)."""
        with self._lock:
            return {
                name: [failure.spec for failure in queue]
                for name, queue in self._queues.items()
                if queue
            }


# --- the store ------------------------------------------------------------------------------


_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status TEXT NOT NULL CHECK (status IN ('open', 'finished', 'retracted')),
    xml BLOB NOT NULL,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    report_id INTEGER NOT NULL REFERENCES reports (id),
    name TEXT NOT NULL,
    md5 TEXT NOT NULL,
    size INTEGER NOT NULL,
    details_xml BLOB,
    uploaded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_report ON files (report_id);
"""


@dataclass(frozen=True)
class _Outcome:
    """What an operation on the store came to: a response code and the answer's fields."""

    code: int
    fields: dict[str, str] = field(default_factory=dict)
    file_ids: tuple[str, ...] = ()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SandboxStore:
    """The sandbox's reports and files: `root/sandbox.db` (SQLite, WAL) and `root/files/`.

    Every method opens its own connection, so one store may be used from any thread (the
    server's and a test's at once)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.files_dir = self.root / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "sandbox.db"
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, isolation_level=None, timeout=10.0)
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=10000")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _status(db: sqlite3.Connection, report_id: str) -> str | None:
        if not report_id.isdigit():
            return None
        row = db.execute("SELECT status FROM reports WHERE id = ?", (int(report_id),)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _closed_code(status: str | None) -> int:
        """0 for an open report, else the code that refuses a change to it."""
        return {None: 5001, "open": 0, "finished": 5102, "retracted": 5101}.get(status, 1000)

    # -- operations (each returns the response code) -------------------------------------

    def open_report(self, xml: bytes) -> _Outcome:
        now = _now()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO reports (status, xml, opened_at, updated_at) VALUES (?, ?, ?, ?)",
                ("open", xml, now, now),
            )
        return _Outcome(0, {"reportId": str(cursor.lastrowid)})

    def add_file(self, report_id: str, name: str, data: bytes) -> _Outcome:
        file_id = uuid.uuid4().hex
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        with self._transaction() as db:
            code = self._closed_code(self._status(db, report_id))
            if code:
                return _Outcome(code, {"reportId": report_id})
            path = self.files_dir / file_id
            partial = path.with_suffix(".part")
            partial.write_bytes(data)
            os.replace(partial, path)
            db.execute(
                "INSERT INTO files (id, report_id, name, md5, size, uploaded_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (file_id, int(report_id), name, md5, len(data), _now()),
            )
            db.execute("UPDATE reports SET updated_at = ? WHERE id = ?", (_now(), int(report_id)))
        return _Outcome(0, {"reportId": report_id, "fileId": file_id, "hash": md5})

    def set_file_details(self, report_id: str, file_id: str, xml: bytes) -> _Outcome:
        with self._transaction() as db:
            code = self._closed_code(self._status(db, report_id))
            if code:
                return _Outcome(code, {"reportId": report_id})
            updated = db.execute(
                "UPDATE files SET details_xml = ? WHERE id = ? AND report_id = ?",
                (xml, file_id, int(report_id)),
            ).rowcount
            if not updated:
                return _Outcome(5001, {"reportId": report_id})
            db.execute("UPDATE reports SET updated_at = ? WHERE id = ?", (_now(), int(report_id)))
        return _Outcome(0, {"reportId": report_id})

    def finish(self, report_id: str) -> _Outcome:
        return self._close(report_id, "finished")

    def retract(self, report_id: str) -> _Outcome:
        return self._close(report_id, "retracted")

    def _close(self, report_id: str, status: str) -> _Outcome:
        with self._transaction() as db:
            code = self._closed_code(self._status(db, report_id))
            if code:
                return _Outcome(code, {"reportId": report_id})
            db.execute(
                "UPDATE reports SET status = ?, updated_at = ? WHERE id = ?",
                (status, _now(), int(report_id)),
            )
            file_ids = tuple(
                str(row[0])
                for row in db.execute(
                    "SELECT id FROM files WHERE report_id = ? ORDER BY rowid", (int(report_id),)
                )
            )
        return _Outcome(0, {"reportId": report_id}, file_ids)

    # -- reading -------------------------------------------------------------------------

    def reports(self) -> list[dict[str, Any]]:
        """Every report, oldest first: `id`, `status` (open, finished, retracted), `xml`,
        `opened_at`, `updated_at`, `files` (`id`, `name`, `md5`, `size`, `details_xml`)."""
        with closing(self._connect()) as db:
            files: dict[int, list[dict[str, Any]]] = {}
            for file_id, report_id, name, md5, size, details in db.execute(
                "SELECT id, report_id, name, md5, size, details_xml FROM files ORDER BY rowid"
            ):
                files.setdefault(report_id, []).append(
                    {
                        "id": file_id,
                        "name": name,
                        "md5": md5,
                        "size": size,
                        "details_xml": None if details is None else _text(details),
                    }
                )
            return [
                {
                    "id": str(report_id),
                    "status": status,
                    "xml": _text(xml),
                    "opened_at": opened_at,
                    "updated_at": updated_at,
                    "files": files.get(report_id, []),
                }
                for report_id, status, xml, opened_at, updated_at in db.execute(
                    "SELECT id, status, xml, opened_at, updated_at FROM reports ORDER BY id"
                )
            ]

    def report(self, report_id: str) -> dict[str, Any] | None:
        return next((r for r in self.reports() if r["id"] == str(report_id)), None)

    def counts(self) -> dict[str, int]:
        """Reports by status (`open`, `finished`, `retracted`), all `reports`, and `files`."""
        with closing(self._connect()) as db:
            counts = {"open": 0, "finished": 0, "retracted": 0}
            for status, count in db.execute("SELECT status, count(*) FROM reports GROUP BY 1"):
                counts[str(status)] = int(count)
            counts["reports"] = sum(counts.values())
            counts["files"] = int(db.execute("SELECT count(*) FROM files").fetchone()[0])
            return counts

    def file_bytes(self, file_id: str) -> bytes:
        """An uploaded file's bytes as stored."""
        if not file_id.isalnum():
            raise FileNotFoundError(file_id)
        return (self.files_dir / file_id).read_bytes()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


# --- wire format ----------------------------------------------------------------------------


def _http_status(code: int) -> int:
    if code == 0:
        return 200
    if 1000 <= code < 2000:
        return 500
    if 2000 <= code < 3000:
        return 401
    if 3000 <= code < 4000:
        return 403
    if 4000 <= code < 5000:
        return 400
    if code == 5001:
        return 404
    if 5000 <= code < 6000:
        return 409
    return 500


def _describe(code: int) -> str:
    return DESCRIPTIONS.get(code, f"Error {code}")


def _xml_answer(
    code: int,
    description: str | None = None,
    fields: dict[str, str] | None = None,
    *,
    root: str = "reportResponse",
    file_ids: tuple[str, ...] | None = None,
) -> Response:
    """A response document: `responseCode`, `responseDescription` (left out when None), the
    `fields` in order, and for `reportDoneResponse` the `files`."""
    element = etree.Element(root)
    etree.SubElement(element, "responseCode").text = str(code)
    if description is not None:
        etree.SubElement(element, "responseDescription").text = description
    for name, value in (fields or {}).items():
        etree.SubElement(element, name).text = value
    if file_ids is not None:
        files = etree.SubElement(element, "files")
        for file_id in file_ids:
            etree.SubElement(files, "fileId").text = file_id
    body = etree.tostring(element, xml_declaration=True, encoding="UTF-8", standalone=True)
    headers = {"Request-ID": uuid.uuid4().hex}
    if code == 2000:
        headers["WWW-Authenticate"] = 'Basic realm="ispws"'
    return Response(
        body,
        status_code=_http_status(code),
        media_type="text/xml; charset=utf-8",
        headers=headers,
    )


def _render(outcome: _Outcome, endpoint: str, description: str | None = None) -> Response:
    if endpoint == "finish" and outcome.code == 0:
        # The public record shows `finish` answering <reportDoneResponse> without a description.
        return _xml_answer(
            0, None, outcome.fields, root="reportDoneResponse", file_ids=outcome.file_ids
        )
    return _xml_answer(outcome.code, description or _describe(outcome.code), outcome.fields)


def _parse_xml(data: bytes) -> etree._Element | str:
    """The parsed document, or why it is not well-formed XML (DTDs and entities refused)."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        return str(exc) or "not well-formed"
    if getattr(root.getroottree().docinfo, "doctype", ""):
        return "DOCTYPE declarations are not accepted"
    return root


def _child_text(root: etree._Element, name: str) -> str:
    for child in root:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag.rsplit("}", 1)[-1] == name:
            return (child.text or "").strip()
    return ""


# --- the app --------------------------------------------------------------------------------


def _lazy_validator(name: str) -> Validator:
    """`vigil.reporting.xml.<name>`, imported at first use."""

    def validate(data: bytes) -> None:
        module = importlib.import_module("vigil.reporting.xml")
        getattr(module, name)(data)

    return validate


class _KeepReceive:
    """Puts the server's `receive` callable in the scope, so `drop` can find the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_RECEIVE_KEY] = receive
        await self.app(scope, receive, send)


class _ConnectionDropped(Exception):
    """Raised mid-response so the server closes the connection (the fallback `drop`)."""


class _Truncated(Response):
    """Starts a response it never finishes, then fails, so the server cuts the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/xml"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b"<reportResp", "more_body": True})
        raise _ConnectionDropped("connection dropped on purpose by the sandbox")


async def _drop(request: Request) -> Response:
    receive = request.scope.get(_RECEIVE_KEY)
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
        for _ in range(5):  # let the server see the connection go, so it answers nothing
            await asyncio.sleep(0)
        return Response(status_code=204)
    return _Truncated()


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    return (username, password) if colon else None


def create_sandbox_app(
    store: Path,
    *,
    username: str,
    password: str,
    validate_report: Validator | None = None,
    validate_file_details: Validator | None = None,
    failures: FailurePlan | None = None,
) -> FastAPI:
    """The sandbox as an ASGI app over `store` (created if missing).

    `validate_report` / `validate_file_details` raise ValueError (its message becomes the 4100
    description) for a well-formed document the schema refuses; they default to
    `vigil.reporting.xml.validate_report_xml` / `validate_file_details_xml`. `failures` is
    the injection plan (a new, empty one by default); `app.state.failures` and
    `app.state.store` expose both.
    """
    sandbox_store = SandboxStore(store)
    plan = failures if failures is not None else FailurePlan()
    check_report = validate_report or _lazy_validator("validate_report_xml")
    check_details = validate_file_details or _lazy_validator("validate_file_details_xml")

    app = FastAPI(
        title="Vigil CyberTipline sandbox",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(_KeepReceive)
    app.state.store = sandbox_store
    app.state.failures = plan

    def authorised(request: Request) -> bool:
        given = _basic_credentials(request)
        if given is None:
            return False
        user_ok = secrets.compare_digest(given[0].encode(), username.encode())
        password_ok = secrets.compare_digest(given[1].encode(), password.encode())
        return user_ok and password_ok

    def validated(
        body: bytes, check: Validator, what: str
    ) -> tuple[etree._Element | None, _Outcome | None, str | None]:
        parsed = _parse_xml(body)
        if isinstance(parsed, str):
            return None, _Outcome(4110), f"{_describe(4110)}: {what}: {parsed}"
        try:
            check(body)
        except ValueError as exc:
            return None, _Outcome(4100), f"{_describe(4100)}: {exc}"
        except Exception as exc:  # a broken validator is the server's failure, not the XML's
            why = f"{_describe(1000)}: the sandbox's {what} validator failed: {exc!r}"
            return None, _Outcome(1000), why
        return parsed, None, None

    async def operate(request: Request, endpoint: str) -> tuple[_Outcome, str | None]:
        """Perform `endpoint` on the store: the outcome and a description (None: standard)."""
        if endpoint == "status":
            client = request.client.host if request.client else "unknown"
            return _Outcome(0), f"Remote User : {username}, Remote Ip : {client}"
        if endpoint == "submit":
            body = await request.body()
            _, refused, why = validated(body, check_report, "report")
            if refused is not None:
                return refused, why
            return sandbox_store.open_report(body), None
        if endpoint == "fileinfo":
            body = await request.body()
            root, refused, why = validated(body, check_details, "fileDetails")
            if refused is not None or root is None:
                return refused or _Outcome(4110), why
            report_id = _child_text(root, "reportId")
            file_id = _child_text(root, "fileId")
            if not report_id or not file_id:
                return _Outcome(4100), f"{_describe(4100)}: fileDetails needs reportId and fileId"
            return sandbox_store.set_file_details(report_id, file_id, body), None
        try:
            form = await request.form(max_part_size=1024 * 1024)
        except StarletteHTTPException as exc:
            return _Outcome(4100), f"{_describe(4100)}: {exc.detail}"
        try:
            raw_id = form.get("id")
            report_id = raw_id.strip() if isinstance(raw_id, str) else ""
            if endpoint == "upload":
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    return _Outcome(4100, {"reportId": report_id}), (
                        f"{_describe(4100)}: the multipart field 'file' is missing"
                    )
                data = await upload.read()
                return sandbox_store.add_file(report_id, upload.filename or "file", data), None
        finally:
            await form.close()
        if endpoint == "finish":
            return sandbox_store.finish(report_id), None
        return sandbox_store.retract(report_id), None

    async def handle(request: Request, endpoint: str) -> Response:
        if not authorised(request):
            return _xml_answer(2000, f"{_describe(2000)}: wrong or missing credentials")
        await request.body()  # read it now: waiting for a disconnect must not consume it
        failure = plan.take(endpoint)
        if failure is not None and not failure.after:
            if failure.kind == "code":
                return _xml_answer(failure.code, f"{_describe(failure.code)} (injected)")
            if failure.kind == "drop":
                return await _drop(request)
            await asyncio.sleep(failure.seconds)
            if await request.is_disconnected():
                return Response(status_code=204)  # nobody to answer; nothing was done
        outcome, description = await operate(request, endpoint)
        if failure is not None and failure.after:
            if failure.kind == "code":
                return _xml_answer(failure.code, f"{_describe(failure.code)} (injected)")
            if failure.kind == "drop":
                return await _drop(request)
            if failure.kind == "timeout":
                await asyncio.sleep(failure.seconds)
            if failure.kind == "corrupt_md5" and "hash" in outcome.fields:
                wrong = hashlib.md5(outcome.fields["hash"].encode(), usedforsecurity=False)
                outcome = replace(outcome, fields={**outcome.fields, "hash": wrong.hexdigest()})
        return _render(outcome, endpoint, description)

    @app.get("/ispws/status")
    async def status(request: Request) -> Response:
        return await handle(request, "status")

    @app.post("/ispws/submit")
    async def submit(request: Request) -> Response:
        return await handle(request, "submit")

    @app.post("/ispws/upload")
    async def upload(request: Request) -> Response:
        return await handle(request, "upload")

    @app.post("/ispws/fileinfo")
    async def fileinfo(request: Request) -> Response:
        return await handle(request, "fileinfo")

    @app.post("/ispws/finish")
    async def finish(request: Request) -> Response:
        return await handle(request, "finish")

    @app.post("/ispws/retract")
    async def retract(request: Request) -> Response:
        return await handle(request, "retract")

    # -- control and inspection ----------------------------------------------------------

    def refused() -> JSONResponse:
        return JSONResponse(
            {"error": "wrong or missing credentials"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="sandbox"'},
        )

    @app.get("/_sandbox/failures")
    async def list_failures(request: Request) -> JSONResponse:
        if not authorised(request):
            return refused()
        return JSONResponse({"pending": plan.pending()})

    @app.post("/_sandbox/failures")
    async def add_failure(request: Request) -> JSONResponse:
        if not authorised(request):
            return refused()
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "expected a JSON object"}, status_code=400)
        endpoint, failure = payload.get("endpoint"), payload.get("failure")
        if not isinstance(endpoint, str) or not isinstance(failure, str):
            return JSONResponse(
                {"error": 'expected {"endpoint": "<name>", "failure": "<failure>"}'},
                status_code=400,
            )
        try:
            plan.add(endpoint, failure)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"pending": plan.pending()})

    @app.delete("/_sandbox/failures")
    async def clear_failures(request: Request) -> JSONResponse:
        if not authorised(request):
            return refused()
        plan.clear()
        return JSONResponse({"pending": plan.pending()})

    @app.get("/_sandbox/reports")
    async def list_reports(request: Request) -> JSONResponse:
        if not authorised(request):
            return refused()
        return JSONResponse({"reports": sandbox_store.reports(), "counts": sandbox_store.counts()})

    return app


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox served in this process: its base URL, app (`app.state.failures`) and store."""

    url: str
    app: FastAPI
    store: SandboxStore


@contextmanager
def running_sandbox(
    store: Path, password: str, *, username: str = "demo", host: str = "127.0.0.1"
) -> Iterator[RunningSandbox]:
    """Serve a sandbox on a free local port in a background thread for the duration of the
    block (the demo's stand-in, and the tests')."""
    from vigil.background import serving

    app = create_sandbox_app(store, username=username, password=password)
    with serving(app, host=host, name="cybertip-sandbox") as url:
        yield RunningSandbox(f"{url}/ispws/", app, app.state.store)
