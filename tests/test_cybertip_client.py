"""The CyberTipline client against the local sandbox, served for real by uvicorn on a free port.

The sandbox gets trivial validators (well-formed, right root element) so these tests need no
schema. Every upload is random bytes or a synthetic picture.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import typer
from pydantic import SecretStr
from typer.testing import CliRunner

from vigil.cli.cybertip_sandbox import cybertip_sandbox
from vigil.demo import synthetic_image
from vigil.reporting.client import (
    AlreadyFinished,
    AlreadyRetracted,
    ApiResponse,
    AuthenticationFailed,
    CyberTipClient,
    CyberTipError,
    CyberTipNotConfigured,
    MalformedXml,
    NotAuthorised,
    ReceiptMismatch,
    ServerError,
    TransportError,
    UnexpectedResponse,
    UnknownReport,
    ValidationFailed,
    client_from_settings,
    parse_response,
)
from vigil.reporting.sandbox import (
    FailurePlan,
    SandboxStore,
    create_sandbox_app,
    parse_fail_option,
    parse_failure,
)

USER = "esp-tester"
PASSWORD = "not-a-real-password"
REPORT = b'<?xml version="1.0" encoding="UTF-8"?><report><incidentSummary/></report>'


def _root_is(name: str) -> Callable[[bytes], None]:
    def validate(data: bytes) -> None:
        root = ET.fromstring(data)
        if root.tag != name:
            raise ValueError(f"root must be <{name}>, not <{root.tag}>")
        if root.find("outOfOrder") is not None:
            raise ValueError("incidentSummary: elements out of order")
        if root.find("breakTheValidator") is not None:
            raise RuntimeError("validator bug")

    return validate


def _details(report_id: str, file_id: str, extra: str = "") -> bytes:
    return (
        f"<fileDetails><reportId>{report_id}</reportId><fileId>{file_id}</fileId>"
        f"<fileViewedByEsp>false</fileViewedByEsp>{extra}</fileDetails>"
    ).encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    def __init__(self, root: Path, plan: FailurePlan) -> None:
        import uvicorn

        self.app = create_sandbox_app(
            root,
            username=USER,
            password=PASSWORD,
            validate_report=_root_is("report"),
            validate_file_details=_root_is("fileDetails"),
            failures=plan,
        )
        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=2,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Sandbox:
    root: Path
    plan: FailurePlan = field(default_factory=FailurePlan)
    server: _Server | None = None

    def start(self) -> None:
        self.server = _Server(self.root, self.plan)

    def restart(self) -> None:
        assert self.server is not None
        self.server.stop()
        self.start()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/ispws/"

    @property
    def store(self) -> SandboxStore:
        return SandboxStore(self.root)

    def client(self, **options: Any) -> CyberTipClient:
        password = options.pop("password", PASSWORD)
        return CyberTipClient(self.url, USER, password, **options)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path / "sandbox")
    box.start()
    try:
        yield box
    finally:
        assert box.server is not None
        box.server.stop()


def _png() -> bytes:
    buffer = io.BytesIO()
    synthetic_image(64, 48, seed=3).save(buffer, format="PNG")
    return buffer.getvalue()


# --- the happy path -------------------------------------------------------------------------


def test_full_submission_and_the_store(sandbox: Sandbox) -> None:
    journal: list[tuple[str, dict[str, str]]] = []
    picture, noise = _png(), os.urandom(3000)
    with sandbox.client(on_response=lambda step, fields: journal.append((step, fields))) as c:
        status = c.status()
        assert status.code == 0
        assert f"Remote User : {USER}" in status.description
        report_id = c.submit(REPORT)
        first = c.upload(report_id, "picture.png", picture)
        second = c.upload(report_id, "noise.bin", noise)
        assert first.md5 == hashlib.md5(picture).hexdigest()
        assert second.md5 == hashlib.md5(noise).hexdigest()
        assert first.file_id != second.file_id and len(first.file_id) == 32
        c.file_info(_details(report_id, first.file_id))
        c.file_info(_details(report_id, second.file_id))
        c.finish(report_id)

    assert [step for step, _ in journal] == [
        "status",
        "submit",
        "upload",
        "upload",
        "fileinfo",
        "fileinfo",
        "finish",
    ]
    assert journal[1][1]["reportId"] == report_id
    assert journal[2][1] == {
        "responseCode": "0",
        "responseDescription": "Success",
        "reportId": report_id,
        "fileId": first.file_id,
        "hash": first.md5,
    }
    assert journal[-1][1]["files/fileId"] == f"{first.file_id},{second.file_id}"

    (report,) = sandbox.store.reports()
    assert report["id"] == report_id
    assert report["status"] == "finished"
    assert report["xml"] == REPORT.decode()
    assert [(f["id"], f["name"], f["md5"]) for f in report["files"]] == [
        (first.file_id, "picture.png", first.md5),
        (second.file_id, "noise.bin", second.md5),
    ]
    assert report["files"][0]["details_xml"] == _details(report_id, first.file_id).decode()
    assert sandbox.store.file_bytes(first.file_id) == picture
    assert sandbox.store.counts() == {
        "open": 0,
        "finished": 1,
        "retracted": 0,
        "reports": 1,
        "files": 2,
    }


def test_the_wire_format(sandbox: Sandbox) -> None:
    """What the sandbox sends and accepts, checked without the client."""
    auth = (USER, PASSWORD)
    with httpx.Client(base_url=sandbox.url, auth=auth) as http:
        submitted = http.post(
            "submit", content=REPORT, headers={"Content-Type": "text/xml; charset=utf-8"}
        )
        assert submitted.status_code == 200
        assert submitted.headers["content-type"].startswith("text/xml")
        root = ET.fromstring(submitted.content)
        assert root.tag == "reportResponse"
        assert [child.tag for child in root] == ["responseCode", "responseDescription", "reportId"]
        report_id = root.findtext("reportId")
        assert report_id is not None
        finished = http.post("finish", files={"id": (None, report_id)})
        done = ET.fromstring(finished.content)
        assert done.tag == "reportDoneResponse"
        assert [child.tag for child in done] == ["responseCode", "reportId", "files"]
        again = http.post("finish", data={"id": report_id})  # url-encoded is accepted too
        assert again.status_code == 409
        assert ET.fromstring(again.content).findtext("responseCode") == "5102"


# --- refusals -------------------------------------------------------------------------------


def test_wrong_password_is_authentication_failed(sandbox: Sandbox) -> None:
    with sandbox.client(password=SecretStr("wrong")) as c, pytest.raises(AuthenticationFailed) as e:
        c.status()
    assert e.value.code == 2000
    assert e.value.http_status == 401
    assert not e.value.retryable
    assert "credentials" in str(e.value)
    assert sandbox.store.counts()["reports"] == 0


@pytest.mark.parametrize(
    ("code", "exception", "retryable"),
    [
        (1000, ServerError, True),
        (1100, ServerError, True),
        (2000, AuthenticationFailed, False),
        (3000, NotAuthorised, False),
        (3100, NotAuthorised, False),
        (4100, ValidationFailed, False),
        (4110, MalformedXml, False),
        (5001, UnknownReport, False),
        (5101, AlreadyRetracted, False),
        (5102, AlreadyFinished, False),
        (6543, CyberTipError, False),
    ],
)
def test_each_code_maps_to_its_exception(
    sandbox: Sandbox, code: int, exception: type[CyberTipError], retryable: bool
) -> None:
    sandbox.plan.add("submit", f"code:{code}")
    with sandbox.client() as c, pytest.raises(CyberTipError) as e:
        c.submit(REPORT)
    assert type(e.value) is exception
    assert e.value.code == code
    assert e.value.retryable is retryable
    assert e.value.step == "submit"
    assert f"({code})" in str(e.value) or str(code) in str(e.value)
    assert sandbox.store.counts()["reports"] == 0  # refused before doing anything
    with sandbox.client() as c:  # the failure was consumed
        assert c.submit(REPORT)


def test_validation_messages_reach_the_operator(sandbox: Sandbox) -> None:
    with sandbox.client() as c:
        with pytest.raises(ValidationFailed) as invalid:
            c.submit(b"<report><outOfOrder/></report>")
        assert str(invalid.value).startswith("the clearinghouse rejected the report's XML (4100)")
        assert "incidentSummary: elements out of order" in invalid.value.description
        with pytest.raises(ValidationFailed, match="root must be <report>"):
            c.submit(b"<fileDetails/>")
        with pytest.raises(MalformedXml) as malformed:
            c.submit(b"<report><unclosed></report>")
        assert "could not parse the report's XML (4110)" in str(malformed.value)
        with pytest.raises(MalformedXml):  # no DTDs, no entities
            c.submit(b'<!DOCTYPE report [<!ENTITY x "y">]><report>&x;</report>')
        with pytest.raises(ValidationFailed, match="file details XML"):
            c.file_info(b"<report/>")
        with pytest.raises(ServerError, match="validator bug"):  # the server's fault
            c.submit(b"<report><breakTheValidator/></report>")
    assert sandbox.store.counts()["reports"] == 0


# --- transport failures ---------------------------------------------------------------------


def test_a_timeout_is_a_retryable_transport_error(sandbox: Sandbox) -> None:
    sandbox.plan.add("submit", "timeout:1.0")
    started = time.monotonic()
    with sandbox.client(timeout=0.5) as c, pytest.raises(TransportError) as e:
        c.submit(REPORT)
    assert time.monotonic() - started < 0.95
    assert e.value.retryable and e.value.outcome_unknown
    assert e.value.code is None
    assert "did not answer submit in time" in str(e.value)
    time.sleep(0.8)  # the sandbox wakes, sees nobody waiting, and does nothing
    assert sandbox.store.counts()["reports"] == 0


def test_after_timeout_the_operation_happened(sandbox: Sandbox) -> None:
    sandbox.plan.add("submit", "after:timeout:1.0")
    with sandbox.client(timeout=0.5) as c, pytest.raises(TransportError):
        c.submit(REPORT)
    assert sandbox.store.counts()["open"] == 1


def test_a_dropped_connection_is_a_retryable_transport_error(sandbox: Sandbox) -> None:
    sandbox.plan.add("status", "drop")
    sandbox.plan.add("submit", "drop")
    with sandbox.client() as c:
        with pytest.raises(TransportError) as status:
            c.status()
        with pytest.raises(TransportError) as submit:
            c.submit(REPORT)
        assert c.status().code == 0  # the next call goes through
    assert status.value.retryable and submit.value.outcome_unknown
    assert sandbox.store.counts()["reports"] == 0


def test_drop_falls_back_to_a_truncated_answer(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the connection cannot be reached, `drop` cuts the answer short instead."""
    from vigil.reporting import sandbox as module

    async def keep_nothing(self: Any, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    monkeypatch.setattr(module._KeepReceive, "__call__", keep_nothing)
    sandbox.plan.add("submit", "after:drop")
    with sandbox.client() as c, pytest.raises(TransportError) as e:
        c.submit(REPORT)
    assert e.value.outcome_unknown
    assert isinstance(e.value.__cause__, httpx.RemoteProtocolError)
    assert sandbox.store.counts()["open"] == 1


def test_a_refused_connection_was_certainly_not_sent() -> None:
    with (
        CyberTipClient(f"http://127.0.0.1:{_free_port()}/ispws/", USER, PASSWORD) as c,
        pytest.raises(TransportError) as e,
    ):
        c.submit(REPORT)
    assert e.value.retryable
    assert not e.value.outcome_unknown


def test_after_drop_on_submit_leaves_a_report_the_client_never_learned_of(
    sandbox: Sandbox,
) -> None:
    journal: list[tuple[str, dict[str, str]]] = []
    sandbox.plan.add("submit", "after:drop")
    with sandbox.client(on_response=lambda s, f: journal.append((s, f))) as c:
        with pytest.raises(TransportError) as e:
            c.submit(REPORT)
        assert e.value.outcome_unknown
        assert journal == []  # no reportId reached this side
        (orphan,) = sandbox.store.reports()
        assert orphan["status"] == "open" and orphan["xml"] == REPORT.decode()
        # what the state machine must then do: find it out of band and retract it
        c.retract(orphan["id"])
    assert sandbox.store.counts() == {
        "open": 0,
        "finished": 0,
        "retracted": 1,
        "reports": 1,
        "files": 0,
    }


def test_after_failures_on_upload_and_finish_happen_after_the_operation(
    sandbox: Sandbox,
) -> None:
    sandbox.plan.add("upload", "after:drop")
    sandbox.plan.add("finish", "after:code:1000")
    with sandbox.client() as c:
        report_id = c.submit(REPORT)
        with pytest.raises(TransportError):
            c.upload(report_id, "noise.bin", os.urandom(100))
        with pytest.raises(ServerError):
            c.finish(report_id)
        with pytest.raises(AlreadyFinished):  # it was finished all the same
            c.finish(report_id)
    (report,) = sandbox.store.reports()
    assert report["status"] == "finished" and len(report["files"]) == 1


# --- report states --------------------------------------------------------------------------


def test_finished_and_retracted_reports_refuse_changes(sandbox: Sandbox) -> None:
    with sandbox.client() as c:
        finished = c.submit(REPORT)
        c.finish(finished)
        with pytest.raises(AlreadyFinished) as twice:
            c.finish(finished)
        assert twice.value.report_id == finished
        assert str(twice.value).startswith(f"report {finished} was already finished (5102)")
        with pytest.raises(AlreadyFinished):
            c.retract(finished)
        with pytest.raises(AlreadyFinished):
            c.upload(finished, "late.bin", os.urandom(10))

        retracted = c.submit(REPORT)
        c.retract(retracted)
        with pytest.raises(AlreadyRetracted):
            c.retract(retracted)
        with pytest.raises(AlreadyRetracted):
            c.finish(retracted)
        with pytest.raises(AlreadyRetracted):
            c.upload(retracted, "late.bin", os.urandom(10))
    statuses = {r["id"]: r["status"] for r in sandbox.store.reports()}
    assert statuses == {finished: "finished", retracted: "retracted"}


def test_unknown_reports_and_files(sandbox: Sandbox) -> None:
    with sandbox.client() as c:
        for call in (c.finish, c.retract):
            with pytest.raises(UnknownReport) as e:
                call("999999")
            assert e.value.code == 5001 and not e.value.retryable
            assert "does not know report 999999" in str(e.value)
        with pytest.raises(UnknownReport):
            c.upload("999999", "x.bin", os.urandom(10))
        with pytest.raises(UnknownReport):
            c.finish("not-a-number")
        one, other = c.submit(REPORT), c.submit(REPORT)
        uploaded = c.upload(one, "x.bin", os.urandom(10))
        with pytest.raises(UnknownReport):  # a file of another report
            c.file_info(_details(other, uploaded.file_id))
        with pytest.raises(UnknownReport):
            c.file_info(_details(one, "0" * 32))
        c.file_info(_details(one, uploaded.file_id))


def test_a_tampered_md5_is_a_receipt_mismatch(sandbox: Sandbox) -> None:
    journal: list[tuple[str, dict[str, str]]] = []
    data = os.urandom(4096)
    sandbox.plan.add("upload", "corrupt_md5")
    with sandbox.client(on_response=lambda s, f: journal.append((s, f))) as c:
        report_id = c.submit(REPORT)
        with pytest.raises(ReceiptMismatch) as e:
            c.upload(report_id, "noise.bin", data)
    assert not e.value.retryable
    assert e.value.expected == hashlib.md5(data).hexdigest()
    assert e.value.received not in (None, e.value.expected)
    assert "did not arrive intact" in str(e.value)
    # the answer was journaled before the check: the damaged copy's id is known
    assert journal[-1][0] == "upload" and journal[-1][1]["fileId"] == e.value.file_id


def test_on_response_runs_before_submit_returns(sandbox: Sandbox) -> None:
    """The journal gets the reportId even if the caller dies right after the answer."""
    journal: list[str] = []

    def crash_after_journaling(step: str, fields: dict[str, str]) -> None:
        journal.append(fields["reportId"])
        raise RuntimeError("the process died here")

    with (
        sandbox.client(on_response=crash_after_journaling) as c,
        pytest.raises(RuntimeError, match="died"),
    ):
        c.submit(REPORT)
    (report,) = sandbox.store.reports()
    assert journal == [report["id"]]


def test_the_sandbox_survives_a_restart(sandbox: Sandbox) -> None:
    data = os.urandom(500)
    with sandbox.client() as c:
        kept = c.submit(REPORT)
        uploaded = c.upload(kept, "kept.bin", data)
        finished = c.submit(REPORT)
        c.finish(finished)
    sandbox.restart()
    with sandbox.client() as c:
        c.file_info(_details(kept, uploaded.file_id))
        c.finish(kept)
        with pytest.raises(AlreadyFinished):
            c.finish(finished)
        newer = c.submit(REPORT)
    assert int(newer) > int(finished) > int(kept)  # ids never reused
    reports = {r["id"]: r for r in sandbox.store.reports()}
    assert reports[kept]["status"] == "finished"
    assert reports[kept]["files"][0]["md5"] == hashlib.md5(data).hexdigest()
    assert sandbox.store.file_bytes(uploaded.file_id) == data


# --- the control endpoints and the failure plan ---------------------------------------------


def test_failures_set_and_reports_read_over_http(sandbox: Sandbox) -> None:
    base = sandbox.url.removesuffix("ispws/")
    with httpx.Client(base_url=base, auth=(USER, PASSWORD)) as http:
        assert httpx.get(base + "_sandbox/reports").status_code == 401
        assert http.post("_sandbox/failures", json={"endpoint": "nope", "failure": "drop"}).is_error
        assert http.post("_sandbox/failures", json={"endpoint": "finish", "failure": "x"}).is_error
        added = http.post("_sandbox/failures", json={"endpoint": "submit", "failure": "code:1000"})
        assert added.json() == {"pending": {"submit": ["code:1000"]}}
        http.post("_sandbox/failures", json={"endpoint": "finish", "failure": "after:drop"})
        with sandbox.client() as c, pytest.raises(ServerError):
            c.submit(REPORT)
        assert http.get("_sandbox/failures").json() == {"pending": {"finish": ["after:drop"]}}
        assert http.delete("_sandbox/failures").json() == {"pending": {}}
        with sandbox.client() as c:
            report_id = c.submit(REPORT)
            c.finish(report_id)
        listing = http.get("_sandbox/reports").json()
    assert listing["counts"]["finished"] == 1
    assert listing["reports"][0]["id"] == report_id


def test_failure_syntax() -> None:
    assert parse_failure("code:1000").code == 1000
    assert parse_failure("timeout:0.25").seconds == 0.25
    assert parse_failure("drop").kind == "drop" and not parse_failure("drop").after
    nested = parse_failure("after:code:5102")
    assert (nested.kind, nested.after, nested.code) == ("code", True, 5102)
    assert parse_failure("corrupt_md5").after
    for bad in ("", "code:", "code:x", "timeout:-1", "drop:1", "after:after:drop", "explode"):
        with pytest.raises(ValueError):
            parse_failure(bad)
    endpoint, failure = parse_fail_option("upload:after:drop")
    assert (endpoint, failure.kind, failure.after) == ("upload", "drop", True)
    with pytest.raises(ValueError, match="upload only"):
        parse_fail_option("submit:corrupt_md5")
    with pytest.raises(ValueError, match="unknown endpoint"):
        FailurePlan(["sumbit:drop"])
    plan = FailurePlan(["submit:code:1000", "submit:drop", "finish:timeout:1"])
    assert plan.pending() == {"submit": ["code:1000", "drop"], "finish": ["timeout:1"]}
    first = plan.take("submit")
    assert first is not None and first.code == 1000
    plan.clear()
    assert plan.take("submit") is None and plan.pending() == {}


def test_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    served: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(options))
    app = typer.Typer()
    app.command()(cybertip_sandbox)
    runner = CliRunner()
    store = tmp_path / "box"
    result = runner.invoke(
        app, ["--store", str(store), "--port", "9999", "--fail", "submit:after:drop"]
    )
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:9999/ispws/" in result.output
    assert "submit: after:drop" in result.output
    assert served == [{"host": "127.0.0.1", "port": 9999, "server_header": False}]
    assert (store / "sandbox.db").exists()
    bad = runner.invoke(app, ["--store", str(store), "--fail", "submit:explode"])
    assert bad.exit_code == 2 and "explode" in bad.output


# --- the client alone -----------------------------------------------------------------------


def _mock(status: int, body: bytes, headers: dict[str, str] | None = None) -> CyberTipClient:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return CyberTipClient(
        "https://exttest.example/ispws", USER, PASSWORD, transport=httpx.MockTransport(answer)
    )


def test_answers_without_a_response_document() -> None:
    with _mock(401, b"") as c, pytest.raises(AuthenticationFailed) as bare_401:
        c.status()
    assert bare_401.value.code is None and bare_401.value.http_status == 401
    with _mock(403, b"") as c, pytest.raises(NotAuthorised):
        c.status()
    with _mock(502, b"<html>Bad Gateway</html>") as c, pytest.raises(TransportError) as gateway:
        c.finish("1")
    assert gateway.value.retryable and gateway.value.report_id == "1"
    with _mock(404, b"Not Found") as c, pytest.raises(CyberTipError) as missing:
        c.status()
    assert type(missing.value) is CyberTipError and not missing.value.retryable
    assert "base URL" in str(missing.value)
    with _mock(200, b"<html/>") as c, pytest.raises(TransportError):
        c.submit(REPORT)
    hostile = (
        b'<?xml version="1.0"?><!DOCTYPE reportResponse [<!ENTITY e "0">]>'
        b"<reportResponse><responseCode>&e;</responseCode></reportResponse>"
    )
    with _mock(200, hostile) as c, pytest.raises(TransportError, match="DOCTYPE"):
        c.status()
    huge = b"<reportResponse><responseCode>0</responseCode>" + b" " * 2_000_000
    with _mock(200, huge) as c, pytest.raises(UnexpectedResponse):
        c.status()


def test_a_success_without_its_id_is_unexpected() -> None:
    ok = b"<reportResponse><responseCode>0</responseCode></reportResponse>"
    with _mock(200, ok) as c, pytest.raises(UnexpectedResponse, match="no reportId"):
        c.submit(REPORT)
    no_hash = (
        b"<reportResponse><responseCode>0</responseCode><reportId>1</reportId>"
        b"<fileId>abc</fileId></reportResponse>"
    )
    with _mock(200, no_hash) as c, pytest.raises(ReceiptMismatch, match="no MD5"):
        c.upload("1", "x.bin", b"xyz")


def test_requests_on_the_wire() -> None:
    seen: list[httpx.Request] = []
    data = os.urandom(64)

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        request.read()
        fields = "<reportId>7</reportId><fileId>f</fileId>"
        fields += f"<hash>{hashlib.md5(data).hexdigest().upper()}</hash>"
        return httpx.Response(
            200,
            content=f"<reportResponse><responseCode>0</responseCode>{fields}</reportResponse>",
            headers={"Request-ID": "req-1"},
        )

    with CyberTipClient(
        "https://exttest.example/ispws",
        USER,
        SecretStr(PASSWORD),
        transport=httpx.MockTransport(answer),
    ) as c:
        assert PASSWORD not in repr(c)
        assert c.submit(REPORT) == "7"
        assert c.upload("7", "x.bin", data).md5 == hashlib.md5(data).hexdigest()
        c.finish("7")
        assert c.status().request_id == "req-1"
    submit, upload, finish, status = seen
    assert (submit.method, str(submit.url)) == ("POST", "https://exttest.example/ispws/submit")
    assert submit.headers["content-type"] == "text/xml; charset=utf-8"
    assert submit.headers["authorization"].startswith("Basic ")
    assert submit.content == REPORT
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert b'name="id"\r\n\r\n7' in upload.content
    assert b'name="file"; filename="x.bin"' in upload.content and data in upload.content
    assert b'name="id"\r\n\r\n7' in finish.content
    assert (status.method, status.url.path) == ("GET", "/ispws/status")


def test_parse_response_flattens_nested_fields() -> None:
    parsed = parse_response(
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><reportDoneResponse>'
        b"<responseCode>0</responseCode><reportId>4564654</reportId>"
        b"<files><fileId>a</fileId><fileId>b</fileId></files></reportDoneResponse>"
    )
    assert parsed == ApiResponse(
        0, "", {"responseCode": "0", "reportId": "4564654", "files/fileId": "a,b"}
    )


def test_client_from_settings() -> None:
    settings = SimpleNamespace(
        cybertip_test_url="https://exttest.example/ispws/",
        cybertip_test_username="esp",
        cybertip_test_password=SecretStr("secret"),
        cybertip_production_url="https://report.example/ispws/",
        cybertip_production_username=None,
        cybertip_production_password=None,
    )
    with client_from_settings(settings, "test") as c:
        assert c.base_url == "https://exttest.example/ispws/" and c.username == "esp"
        assert "secret" not in repr(c)
    with pytest.raises(CyberTipNotConfigured) as e:
        client_from_settings(settings, "production")
    assert "VIGIL_CYBERTIP_PRODUCTION_USERNAME" in str(e.value)
    assert "VIGIL_CYBERTIP_PRODUCTION_PASSWORD" in str(e.value)
