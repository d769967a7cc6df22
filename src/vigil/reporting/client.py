"""The CyberTipline reporting API client: one method per call, one exception per answer.

The clearinghouse's reporting web service (`.../ispws/`) takes, in order, `GET status`,
`POST submit` (a `<report>` document) -> `reportId`, `POST upload` (multipart `id`, `file`) ->
`fileId` and the file's MD5, `POST fileinfo` (a `<fileDetails>` document), `POST finish`
(`id`), and `POST retract` (`id`) to cancel an unfinished report. HTTP Basic auth; separate
test and production hosts and credentials.

Every answer is a small XML document: `<reportResponse>` with `responseCode` (0 is success),
`responseDescription` and, depending on the call, `reportId`, `fileId`, `hash`; `finish`
answers `<reportDoneResponse>` with `responseCode`, `reportId` and `<files><fileId>...`. Error
answers may come with a non-2xx HTTP status, so the document decides, not the status; a non-2xx
status without a readable document is judged by the status alone (see `_bare_http_error`).

This client does not retry, and it keeps no state: it reports what happened, precisely enough
for the persisted submission state machine to decide. In particular a `TransportError` whose
`outcome_unknown` is true on `submit` means the report may exist at the clearinghouse under an
id this side never learned: retrying blindly can file the report twice. `on_response` hands
every successful answer to the caller before the method returns, so the caller can journal a
`reportId` or `fileId` before anything else can go wrong.

Decisions where the public record is silent (said here so they can be revisited):
- `finish` and `retract` send `id` as a multipart form field, as `upload` does (public clients
  differ between multipart and url-encoding).
- A 2xx answer that is not a readable response document, and a 5xx, 408 or 429 without one,
  are `TransportError`s (retryable, outcome unknown); a 401 or 403 without one are
  `AuthenticationFailed` / `NotAuthorised` with `code` None; any other status without one is a
  plain, non-retryable `CyberTipError` (usually a wrong base URL).
- An upload answer without a `hash` is treated as an unconfirmed receipt (`ReceiptMismatch`):
  the file's arrival intact cannot be shown without it.
- Responses are capped at `MAX_RESPONSE_BYTES`; DOCTYPEs are refused outright.
- Repeated or nested response elements are flattened into `fields` as `parent/child`, repeated
  values joined with `,` (`files/fileId` on `finish`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Protocol, Self

import httpx
from lxml import etree
from pydantic import SecretStr

__all__ = [
    "MAX_RESPONSE_BYTES",
    "AlreadyFinished",
    "AlreadyRetracted",
    "ApiResponse",
    "AuthenticationFailed",
    "CyberTipClient",
    "CyberTipEndpoint",
    "CyberTipError",
    "CyberTipNotConfigured",
    "CyberTipSettings",
    "MalformedXml",
    "NotAuthorised",
    "ReceiptMismatch",
    "ServerError",
    "Step",
    "TransportError",
    "UnexpectedResponse",
    "UnknownReport",
    "UploadedFile",
    "ValidationFailed",
    "client_from_settings",
    "endpoint_from_settings",
    "error_for_code",
    "parse_response",
]

MAX_RESPONSE_BYTES = 1024 * 1024
"""Largest response document read; the clearinghouse's answers are a few hundred bytes."""

XML_CONTENT_TYPE = "text/xml; charset=utf-8"
USER_AGENT = "vigil-cybertip-client/1"

Step = Literal["status", "submit", "upload", "fileinfo", "finish", "retract"]
ResponseHook = Callable[[str, dict[str, str]], None]

_RESPONSE_ROOTS = frozenset({"reportResponse", "reportDoneResponse"})


# --- answers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiResponse:
    """One parsed answer: its `responseCode`, `responseDescription` (empty when absent, as on
    `finish`) and every element as text (`fields`, including the two above)."""

    code: int
    description: str
    fields: dict[str, str] = field(default_factory=dict)
    request_id: str | None = None
    """The `Request-ID` header, when the service sends one (quote it to the clearinghouse)."""


@dataclass(frozen=True)
class UploadedFile:
    """A file the clearinghouse confirmed receiving intact: its id and MD5 (lower-case hex)."""

    file_id: str
    md5: str


# --- errors ---------------------------------------------------------------------------------


class CyberTipError(Exception):
    """The clearinghouse refused a call, or could not be heard.

    `code` is the `responseCode` received, or None when none was (transport failures, bare HTTP
    errors). `retryable` says whether the same call may succeed later unchanged. `step` is the
    call (`submit`, `upload`...), `report_id` the report it concerned when known.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        description: str = "",
        step: str = "",
        report_id: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.description = description
        self.step = step
        self.report_id = report_id
        self.http_status = http_status
        self.request_id = request_id


class ServerError(CyberTipError):
    """1xxx: the clearinghouse failed on its side; the same call may succeed later."""

    retryable = True


class AuthenticationFailed(CyberTipError):
    """2000: the username or password was refused."""


class NotAuthorised(CyberTipError):
    """3xxx: the account may not make this call (e.g. no submission authorisation)."""


class ValidationFailed(CyberTipError):
    """4100: the XML parsed but broke the schema (elements out of order, bad values...)."""


class MalformedXml(CyberTipError):
    """4110: the XML could not be parsed at all."""


class UnknownReport(CyberTipError):
    """5001: no such report (or file) at the clearinghouse, or not one of this account's."""


class AlreadyRetracted(CyberTipError):
    """5101: the report was retracted; nothing more can be done with it."""


class AlreadyFinished(CyberTipError):
    """5102: the report was finished; it can be neither changed nor retracted."""


class TransportError(CyberTipError):
    """No usable answer: timeout, refused or dropped connection, a 5xx without a document.

    Retryable. `outcome_unknown` is false only when the request certainly never reached the
    service (the connection could not be opened); otherwise the call may have taken effect.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        outcome_unknown: bool = True,
        step: str = "",
        report_id: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            step=step,
            report_id=report_id,
            http_status=http_status,
            request_id=request_id,
        )
        self.outcome_unknown = outcome_unknown


class UnexpectedResponse(CyberTipError):
    """The service answered in a way this client cannot use (success without a `reportId`,
    an oversized answer). Not retryable: a person has to look."""


class ReceiptMismatch(CyberTipError):
    """The MD5 the clearinghouse returned for an upload is not the file's (or is missing): the
    file did not arrive intact. Not retryable as such: the caller decides whether to upload
    again (the damaged copy keeps its `file_id`)."""

    def __init__(
        self,
        message: str,
        *,
        file_id: str,
        expected: str,
        received: str | None,
        step: str = "upload",
        report_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, step=step, report_id=report_id, request_id=request_id)
        self.file_id = file_id
        self.expected = expected
        self.received = received


class CyberTipNotConfigured(ValueError):
    """No URL, username or password for the chosen environment."""


_WHAT: dict[str, str] = {
    "status": "the status check",
    "submit": "the report's XML",
    "upload": "the file upload",
    "fileinfo": "the file details XML",
    "finish": "the request to finish the report",
    "retract": "the request to retract the report",
}


def error_for_code(
    code: int,
    description: str,
    *,
    step: str = "",
    report_id: str | None = None,
    http_status: int | None = None,
    request_id: str | None = None,
) -> CyberTipError:
    """The exception for a non-zero `responseCode`, with a message an operator can act on."""
    what = _WHAT.get(step, step or "the request")
    detail = f": {description}" if description else ""
    report = f"report {report_id}" if report_id else "the report"
    cls: type[CyberTipError]
    if 1000 <= code < 2000:
        cls = ServerError
        message = (
            f"the clearinghouse failed on its side while handling {what} ({code}){detail};"
            " retry later"
        )
    elif code == 2000:
        cls = AuthenticationFailed
        message = (
            f"the clearinghouse refused the credentials ({code}){detail}; check the CyberTipline"
            " username and password for this environment (test and production differ)"
        )
    elif 3000 <= code < 4000:
        cls = NotAuthorised
        message = (
            f"the CyberTipline account is not authorised for {step or 'this call'} ({code})"
            f"{detail}; ask the clearinghouse to grant it"
        )
    elif code == 4100:
        cls = ValidationFailed
        message = f"the clearinghouse rejected {what} ({code}){detail}"
    elif code == 4110:
        cls = MalformedXml
        message = f"the clearinghouse could not parse {what} ({code}){detail}"
    elif code == 5001:
        cls = UnknownReport
        message = f"the clearinghouse does not know {report} ({code}){detail}"
    elif code == 5101:
        cls = AlreadyRetracted
        message = f"{report} was already retracted ({code}){detail}"
    elif code == 5102:
        cls = AlreadyFinished
        message = f"{report} was already finished ({code}){detail}"
    else:
        cls = CyberTipError
        message = (
            f"the clearinghouse answered {step or 'a call'} with an undocumented code {code}"
            f"{detail}; not retried automatically"
        )
    return cls(
        message,
        code=code,
        description=description,
        step=step,
        report_id=report_id,
        http_status=http_status,
        request_id=request_id,
    )


# --- parsing --------------------------------------------------------------------------------


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]


def parse_response(data: bytes) -> ApiResponse:
    """Parse a response document safely (no DTDs, no entities, no network, size-capped).

    Raises ValueError when `data` is not a `<reportResponse>`/`<reportDoneResponse>` with an
    integer `responseCode`.
    """
    if len(data) > MAX_RESPONSE_BYTES:
        raise ValueError(f"response larger than {MAX_RESPONSE_BYTES} bytes")
    if not data.strip():
        raise ValueError("empty response")
    try:
        root = etree.fromstring(data, _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not XML: {exc}") from exc
    doctype = getattr(root.getroottree().docinfo, "doctype", "")  # not in lxml-stubs
    if doctype or root.getroottree().docinfo.internalDTD is not None:
        raise ValueError("response carries a DOCTYPE; refused")
    if _local(root.tag) not in _RESPONSE_ROOTS:
        raise ValueError(f"unexpected root element <{_local(root.tag)}>")
    fields: dict[str, str] = {}
    for child in root:
        name = _local(child.tag)
        if not name:
            continue  # an unexpanded entity or similar: not an element
        grandchildren = [g for g in child if _local(g.tag)]
        if not grandchildren:
            _add(fields, name, (child.text or "").strip())
        for grandchild in grandchildren:
            _add(fields, f"{name}/{_local(grandchild.tag)}", (grandchild.text or "").strip())
    raw_code = fields.get("responseCode")
    if raw_code is None:
        raise ValueError("response without a responseCode")
    try:
        code = int(raw_code)
    except ValueError:
        raise ValueError(f"responseCode {raw_code!r} is not an integer") from None
    return ApiResponse(code=code, description=fields.get("responseDescription", ""), fields=fields)


def _add(fields: dict[str, str], key: str, value: str) -> None:
    fields[key] = f"{fields[key]},{value}" if key in fields else value


# --- the client -----------------------------------------------------------------------------


class CyberTipClient:
    """A synchronous client for one environment (test or production) of the reporting API.

    `base_url` is the service root, e.g. `https://exttest.cybertip.org/ispws/`. `transport`
    replaces the network (tests); `on_response(step, fields)` receives every successful answer
    before the method returns; an exception it raises propagates (the journal failed).
    Use as a context manager, or call `close()`.
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: SecretStr | str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        on_response: ResponseHook | None = None,
    ) -> None:
        secret = password.get_secret_value() if isinstance(password, SecretStr) else password
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.username = username
        self._on_response = on_response
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=httpx.BasicAuth(username, secret),
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "text/xml, application/xml"},
        )

    def __repr__(self) -> str:
        return f"CyberTipClient({self.base_url!r}, username={self.username!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the calls ---------------------------------------------------------------------------

    def status(self) -> ApiResponse:
        """`GET status`: are the service and these credentials working?"""
        return self._call("status", "GET", "status")

    def submit(self, report_xml: bytes) -> str:
        """`POST submit` a `<report>` document; returns the new report's id."""
        answer = self._call(
            "submit",
            "POST",
            "submit",
            content=report_xml,
            headers={"Content-Type": XML_CONTENT_TYPE},
        )
        report_id = answer.fields.get("reportId", "")
        if not report_id:
            raise UnexpectedResponse(
                "the clearinghouse accepted the report but sent no reportId: the report may"
                " exist there unidentified; ask the clearinghouse before submitting again",
                code=answer.code,
                description=answer.description,
                step="submit",
                request_id=answer.request_id,
            )
        return report_id

    def upload(self, report_id: str, file_name: str, data: bytes) -> UploadedFile:
        """`POST upload` one file to an open report and check the MD5 the service returns.

        `on_response` sees the answer (with its `fileId`) before the check, so a file that
        arrived damaged is still journaled.
        """
        answer = self._call(
            "upload",
            "POST",
            "upload",
            report_id=report_id,
            data={"id": report_id},
            files={"file": (file_name, data, "application/octet-stream")},
        )
        file_id = answer.fields.get("fileId", "")
        if not file_id:
            raise UnexpectedResponse(
                f"the clearinghouse accepted the upload to report {report_id} but sent no fileId",
                code=answer.code,
                description=answer.description,
                step="upload",
                report_id=report_id,
                request_id=answer.request_id,
            )
        expected = hashlib.md5(data, usedforsecurity=False).hexdigest()
        received = answer.fields.get("hash", "").strip().lower() or None
        if received != expected:
            said = f"MD5 {received}" if received else "no MD5"
            raise ReceiptMismatch(
                f"the clearinghouse returned {said} for file {file_id} of report {report_id},"
                f" but the file's MD5 is {expected}: it did not arrive intact",
                file_id=file_id,
                expected=expected,
                received=received,
                step="upload",
                report_id=report_id,
                request_id=answer.request_id,
            )
        return UploadedFile(file_id=file_id, md5=expected)

    def file_info(self, file_details_xml: bytes) -> None:
        """`POST fileinfo` a `<fileDetails>` document (it names its report and file)."""
        self._call(
            "fileinfo",
            "POST",
            "fileinfo",
            content=file_details_xml,
            headers={"Content-Type": XML_CONTENT_TYPE},
        )

    def finish(self, report_id: str) -> None:
        """`POST finish`: complete the report; nothing can be added or retracted afterwards."""
        self._call("finish", "POST", "finish", report_id=report_id, files={"id": (None, report_id)})

    def retract(self, report_id: str) -> None:
        """`POST retract`: cancel a report that is not finished."""
        self._call(
            "retract", "POST", "retract", report_id=report_id, files={"id": (None, report_id)}
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _call(
        self,
        step: Step,
        method: str,
        path: str,
        *,
        report_id: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        files: dict[str, tuple[str | None, bytes | str] | tuple[str, bytes, str]] | None = None,
    ) -> ApiResponse:
        request = self._http.build_request(
            method, path, content=content, headers=headers, data=data, files=files
        )
        with self._transport_errors(step, report_id):
            response = self._http.send(request, stream=True)
            try:
                body = _read_capped(response)
            finally:
                response.close()
        request_id = response.headers.get("Request-ID")
        try:
            parsed = parse_response(body)
        except ValueError as exc:
            raise _bare_http_error(response, step, report_id, str(exc), request_id) from None
        answer = ApiResponse(parsed.code, parsed.description, parsed.fields, request_id)
        if answer.code != 0:
            raise error_for_code(
                answer.code,
                answer.description,
                step=step,
                report_id=report_id or answer.fields.get("reportId"),
                http_status=response.status_code,
                request_id=request_id,
            )
        if self._on_response is not None:
            self._on_response(step, dict(answer.fields))
        return answer

    @contextmanager
    def _transport_errors(self, step: str, report_id: str | None) -> Iterator[None]:
        try:
            yield
        except _ResponseTooLarge as exc:
            raise UnexpectedResponse(
                f"the clearinghouse's answer to {step} was larger than {MAX_RESPONSE_BYTES}"
                " bytes; refused",
                step=step,
                report_id=report_id,
                http_status=exc.status,
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportError(
                f"could not connect to the clearinghouse at {self.base_url} for {step}: {exc}"
                " (the request was not sent; safe to retry)",
                outcome_unknown=False,
                step=step,
                report_id=report_id,
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransportError(
                f"the clearinghouse did not answer {step} in time ({type(exc).__name__}): the"
                " call may or may not have taken effect",
                step=step,
                report_id=report_id,
            ) from exc
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            raise CyberTipError(
                f"cannot send {step} to {self.base_url}: {exc}", step=step, report_id=report_id
            ) from exc
        except httpx.TransportError as exc:
            raise TransportError(
                f"the connection to the clearinghouse failed during {step}"
                f" ({type(exc).__name__}: {exc}): the call may or may not have taken effect",
                step=step,
                report_id=report_id,
            ) from exc


class _ResponseTooLarge(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise _ResponseTooLarge(response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _bare_http_error(
    response: httpx.Response,
    step: str,
    report_id: str | None,
    problem: str,
    request_id: str | None,
) -> CyberTipError:
    """A response without a readable response document, judged by its HTTP status."""
    status = response.status_code
    if status == 401:
        return AuthenticationFailed(
            f"the clearinghouse refused the credentials (HTTP 401) for {step}; check the"
            " CyberTipline username and password for this environment",
            step=step,
            report_id=report_id,
            http_status=status,
            request_id=request_id,
        )
    if status == 403:
        return NotAuthorised(
            f"the CyberTipline account is not authorised for {step} (HTTP 403)",
            step=step,
            report_id=report_id,
            http_status=status,
            request_id=request_id,
        )
    if status >= 500 or status in (408, 429) or 200 <= status < 300:
        return TransportError(
            f"the clearinghouse answered {step} with HTTP {status} but no readable response"
            f" ({problem}): the call may or may not have taken effect",
            step=step,
            report_id=report_id,
            http_status=status,
            request_id=request_id,
        )
    return CyberTipError(
        f"unexpected HTTP {status} from {response.request.url} for {step} ({problem}); is the"
        " base URL right?",
        step=step,
        report_id=report_id,
        http_status=status,
        request_id=request_id,
    )


# --- settings -------------------------------------------------------------------------------


class CyberTipSettings(Protocol):
    """The settings fields this module reads (`vigil.config.Settings` carries them)."""

    @property
    def cybertip_test_url(self) -> str: ...
    @property
    def cybertip_test_username(self) -> str | None: ...
    @property
    def cybertip_test_password(self) -> SecretStr | None: ...
    @property
    def cybertip_production_url(self) -> str: ...
    @property
    def cybertip_production_username(self) -> str | None: ...
    @property
    def cybertip_production_password(self) -> SecretStr | None: ...


@dataclass(frozen=True)
class CyberTipEndpoint:
    """Where and as whom to report, for one environment."""

    environment: Literal["test", "production"]
    url: str
    username: str
    password: SecretStr = field(repr=False)

    def client(
        self,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        on_response: ResponseHook | None = None,
    ) -> CyberTipClient:
        return CyberTipClient(
            self.url,
            self.username,
            self.password,
            timeout=timeout,
            transport=transport,
            on_response=on_response,
        )


def endpoint_from_settings(
    settings: CyberTipSettings, environment: Literal["test", "production"]
) -> CyberTipEndpoint:
    """The URL and credentials configured for `environment`; CyberTipNotConfigured if missing."""
    if environment not in ("test", "production"):
        raise ValueError(f"environment must be 'test' or 'production', not {environment!r}")
    prefix = f"cybertip_{environment}"
    url: str | None = getattr(settings, f"{prefix}_url", None)
    username: str | None = getattr(settings, f"{prefix}_username", None)
    password: SecretStr | str | None = getattr(settings, f"{prefix}_password", None)
    missing = [
        f"VIGIL_{prefix.upper()}_{name.upper()}"
        for name, value in (("url", url), ("username", username), ("password", password))
        if not value
    ]
    if missing or url is None or username is None or password is None:
        raise CyberTipNotConfigured(
            f"CyberTipline {environment} reporting is not configured: set {', '.join(missing)}"
        )
    if isinstance(password, str):
        password = SecretStr(password)
    return CyberTipEndpoint(environment, url, username, password)


def client_from_settings(
    settings: CyberTipSettings,
    environment: Literal["test", "production"],
    *,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    on_response: ResponseHook | None = None,
) -> CyberTipClient:
    """A client for the configured `environment` (see `endpoint_from_settings`)."""
    return endpoint_from_settings(settings, environment).client(
        timeout=timeout, transport=transport, on_response=on_response
    )
