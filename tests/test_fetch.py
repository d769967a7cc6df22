"""vigil.media.fetch: URL fetching that cannot be turned against the network Vigil runs in.

A real HTTP server on 127.0.0.1 covers the transfer itself (limits, redirects, timeouts,
clean-up); the default policy must refuse that very server. `httpx.MockTransport` shows
where requests would go (the vetted address, with the original Host and TLS name).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pickle
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vigil.media.fetch as fetch_module
from vigil.config import Settings
from vigil.media.fetch import (
    FetchedFile,
    FetchError,
    FetchErrorCode,
    FetchPolicy,
    _PinnedBackend,
    fetch_url,
)

LIMIT = 4096
OK_BODY = b"hello from vigil\n" * 8
PUBLIC = "93.184.216.34"
SLOW_SECONDS = 3.0
MULTICAST = ipaddress.ip_network("224.0.0.0/4")

DEFAULT = FetchPolicy()
LOCAL = FetchPolicy(allowed_networks=("127.0.0.0/8",), max_bytes=LIMIT, timeout_seconds=5.0)
"""The test server is on loopback: only this policy may reach it."""


# --- The local server ---------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self._send(302, Location=location)

    def do_GET(self) -> None:
        self.close_connection = True
        url = urlsplit(self.path)
        self.server.hits.append(self.path)
        path = url.path
        if path == "/ok":
            self._send(200, OK_BODY, Content_Type="application/octet-stream")
        elif path == "/echo-host":
            self._send(200, self.headers["Host"].encode())
        elif path == "/big":
            size = LIMIT * 10
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x" * LIMIT)
        elif path == "/chunked-big":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"400\r\n" + b"y" * 1024 + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/redirect-to-private":
            self._redirect("http://169.254.169.254/latest/meta-data/")
        elif path == "/redirect":
            self._redirect(parse_qs(url.query)["to"][0])
        elif path == "/redirect-loop":
            self._redirect("/redirect-loop")
        elif path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[1])
            self._redirect(f"/hops/{left - 1}") if left else self._send(200, OK_BODY)
        elif path == "/slow":
            time.sleep(SLOW_SECONDS)
            self._send(200, OK_BODY)
        elif path == "/drip":  # each byte in time, the whole far too late
            self.send_response(200)
            self.send_header("Content-Length", "40")
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b"z")
                self.wfile.flush()
                time.sleep(0.1)
        elif path == "/gzip":
            self._send(200, b"\x1f\x8b not really", Content_Encoding="gzip")
        else:
            self._send(404, b"not here")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on /big, /slow and /drip by design


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def base(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    directory = tmp_path / "downloads"
    directory.mkdir()
    return directory


def _refused(url: str, policy: FetchPolicy, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch_url(url, policy, **kwargs)
    return caught.value


class _Recorder:
    """A MockTransport handler that answers 200 and keeps every request it was sent."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond or (lambda request: httpx.Response(200, content=b"data"))
        self.transport = httpx.MockTransport(self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)


def _fixed(*addresses: str) -> Callable[[str, int], list[str]]:
    return lambda host, port: list(addresses)


def _recording(resolved: list[str]) -> Callable[[str, int], list[str]]:
    """Resolves every name to PUBLIC, noting the names asked for."""

    def resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return [PUBLIC]

    return resolve


# --- Fetching from the local server ------------------------------------------------------


def test_fetches_a_file_and_deletes_it_on_exit(base: str, downloads: Path) -> None:
    with fetch_url(f"{base}/ok", LOCAL, directory=downloads) as fetched:
        assert isinstance(fetched, FetchedFile)
        assert fetched.path.parent == downloads
        assert fetched.path.read_bytes() == OK_BODY
        assert fetched.size == len(OK_BODY)
        assert fetched.content_type == "application/octet-stream"
        assert fetched.final_url == f"{base}/ok"
    assert list(downloads.iterdir()) == []


def test_connects_to_the_resolved_address_with_the_original_host(
    server: _Server, downloads: Path
) -> None:
    port = server.server_address[1]
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["127.0.0.1"]

    url = f"http://Files.Vigil.TEST:{port}/echo-host"
    with fetch_url(url, LOCAL, directory=downloads, resolver=resolver) as fetched:
        assert fetched.path.read_bytes() == f"files.vigil.test:{port}".encode()
        assert fetched.final_url == f"http://files.vigil.test:{port}/echo-host"
    assert calls == [("files.vigil.test", port)]


@pytest.mark.parametrize("path", ["/big", "/chunked-big"])
def test_too_large_bodies_are_refused_and_removed(base: str, downloads: Path, path: str) -> None:
    error = _refused(f"{base}{path}", LOCAL, directory=downloads)
    assert (error.code, error.status) == (FetchErrorCode.TOO_LARGE, 413)
    assert str(LIMIT) in str(error)
    assert list(downloads.iterdir()) == []


@pytest.mark.parametrize(
    "path",
    [
        "/redirect-to-private",
        "/redirect?to=http://10.0.0.1/",
        "/redirect?to=http://[::1]/",
        "/redirect?to=http://2130706433/",
    ],
)
def test_redirects_are_checked_like_the_first_url(base: str, downloads: Path, path: str) -> None:
    error = _refused(f"{base}{path}", LOCAL, directory=downloads)
    assert error.code in (FetchErrorCode.URL_FORBIDDEN, FetchErrorCode.URL_INVALID)
    assert error.status == 422
    assert "redirect" in str(error)
    assert list(downloads.iterdir()) == []


@pytest.mark.parametrize(
    ("location", "code"),
    [
        ("ftp://example.com/x", FetchErrorCode.URL_INVALID),
        ("file:///etc/passwd", FetchErrorCode.URL_INVALID),
        ("http://user:pass@example.com/", FetchErrorCode.URL_INVALID),
    ],
)
def test_redirects_to_other_schemes_or_credentials_are_refused(
    base: str, location: str, code: FetchErrorCode
) -> None:
    error = _refused(f"{base}/redirect?to={location}", LOCAL)
    assert error.code == code
    assert "pass" not in str(error)


def test_redirect_loop_stops(base: str, downloads: Path) -> None:
    error = _refused(f"{base}/redirect-loop", LOCAL, directory=downloads)
    assert (error.code, error.status) == (FetchErrorCode.FETCH_FAILED, 502)
    assert "redirects" in str(error)
    assert list(downloads.iterdir()) == []


def test_follows_at_most_max_redirects(base: str) -> None:
    policy = dataclasses.replace(LOCAL, max_redirects=2)
    with fetch_url(f"{base}/hops/2", policy) as fetched:
        assert fetched.path.read_bytes() == OK_BODY
        assert fetched.final_url == f"{base}/hops/0"
    assert _refused(f"{base}/hops/3", policy).code == FetchErrorCode.FETCH_FAILED
    no_redirects = dataclasses.replace(LOCAL, max_redirects=0)
    assert _refused(f"{base}/hops/1", no_redirects).code == FetchErrorCode.FETCH_FAILED


@pytest.mark.parametrize("location", ["/ok", "ok", "./ok?x=1"])
def test_relative_redirects_resolve_against_the_current_url(base: str, location: str) -> None:
    with fetch_url(f"{base}/redirect?to={location}", LOCAL) as fetched:
        assert fetched.path.read_bytes() == OK_BODY
        assert urlsplit(fetched.final_url).path == "/ok"


@pytest.mark.parametrize("path", ["/slow", "/drip"])
def test_one_deadline_covers_the_whole_fetch(base: str, downloads: Path, path: str) -> None:
    policy = dataclasses.replace(LOCAL, timeout_seconds=0.5)
    error = _refused(f"{base}{path}", policy, directory=downloads)
    assert (error.code, error.status) == (FetchErrorCode.TIMEOUT, 504)
    assert list(downloads.iterdir()) == []


def test_error_status_is_a_failure(base: str, downloads: Path) -> None:
    error = _refused(f"{base}/404", LOCAL, directory=downloads)
    assert (error.code, error.status) == (FetchErrorCode.FETCH_FAILED, 502)
    assert "404" in str(error)
    assert list(downloads.iterdir()) == []


def test_encoded_bodies_are_refused(base: str, downloads: Path) -> None:
    error = _refused(f"{base}/gzip", LOCAL, directory=downloads)
    assert error.code == FetchErrorCode.FETCH_FAILED
    assert "gzip" in str(error)
    assert list(downloads.iterdir()) == []


def test_connection_refused_is_a_failure() -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = _refused(f"http://127.0.0.1:{port}/", LOCAL)
    assert error.code == FetchErrorCode.FETCH_FAILED


# --- What the default policy refuses ------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:{port}/ok", FetchErrorCode.URL_FORBIDDEN),
        ("http://localhost:{port}/ok", FetchErrorCode.URL_FORBIDDEN),
        ("http://LOCALHOST.:{port}/ok", FetchErrorCode.URL_FORBIDDEN),
        ("http://[::1]:{port}/", FetchErrorCode.URL_FORBIDDEN),
        ("http://[::ffff:127.0.0.1]:{port}/", FetchErrorCode.URL_FORBIDDEN),
        ("http://[::ffff:7f00:1]:{port}/", FetchErrorCode.URL_FORBIDDEN),
        ("http://169.254.169.254/latest/meta-data/", FetchErrorCode.URL_FORBIDDEN),
        ("http://10.1.2.3/", FetchErrorCode.URL_FORBIDDEN),
        ("http://172.16.0.1/", FetchErrorCode.URL_FORBIDDEN),
        ("http://192.168.1.1/", FetchErrorCode.URL_FORBIDDEN),
        ("http://100.64.0.1/", FetchErrorCode.URL_FORBIDDEN),
        ("http://0.0.0.0:{port}/", FetchErrorCode.URL_FORBIDDEN),
        ("http://224.0.0.1/", FetchErrorCode.URL_FORBIDDEN),
        ("http://240.0.0.1/", FetchErrorCode.URL_FORBIDDEN),
        ("http://255.255.255.255/", FetchErrorCode.URL_FORBIDDEN),
        ("http://[::]/", FetchErrorCode.URL_FORBIDDEN),
        ("http://[fe80::1]/", FetchErrorCode.URL_FORBIDDEN),
        ("http://[fc00::1]/", FetchErrorCode.URL_FORBIDDEN),
        ("http://[ff02::1]/", FetchErrorCode.URL_FORBIDDEN),
        ("http://[2002:7f00:1::1]/", FetchErrorCode.URL_FORBIDDEN),  # 6to4 of 127.0.0.1
        ("http://[2002:a9fe:a9fe::]/", FetchErrorCode.URL_FORBIDDEN),  # 6to4 of metadata
        ("http://[64:ff9b::a9fe:a9fe]/", FetchErrorCode.URL_FORBIDDEN),  # NAT64 of metadata
        ("http://[::7f00:1]/", FetchErrorCode.URL_FORBIDDEN),  # IPv4-compatible
        ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11:{port}/", FetchErrorCode.URL_FORBIDDEN),
        ("http://2130706433:{port}/ok", FetchErrorCode.URL_INVALID),
        ("http://0x7f.1:{port}/ok", FetchErrorCode.URL_INVALID),
        ("http://0x7f000001/", FetchErrorCode.URL_INVALID),
        ("http://127.1:{port}/ok", FetchErrorCode.URL_INVALID),
        ("http://0177.0.0.1/", FetchErrorCode.URL_INVALID),
        ("http://127.000.000.001/", FetchErrorCode.URL_INVALID),
        ("http://1.2.3.4.5/", FetchErrorCode.URL_INVALID),
        ("http://[fe80::1%25eth0]/", FetchErrorCode.URL_INVALID),
        ("ftp://example.com/x", FetchErrorCode.URL_INVALID),
        ("file:///etc/passwd", FetchErrorCode.URL_INVALID),
        ("gopher://127.0.0.1:{port}/", FetchErrorCode.URL_INVALID),
        ("//example.com/x", FetchErrorCode.URL_INVALID),
        ("http:///x", FetchErrorCode.URL_INVALID),
        ("http://example.com:99999/", FetchErrorCode.URL_INVALID),
        ("http://example.com:8o/", FetchErrorCode.URL_INVALID),
        ("http://exa mple.com/", FetchErrorCode.URL_INVALID),
        ("http://example.com\\@127.0.0.1/", FetchErrorCode.URL_INVALID),
        ("http://127.0.0.1\t:{port}/", FetchErrorCode.URL_INVALID),
        ("http://[::1/", FetchErrorCode.URL_INVALID),
    ],
)
def test_default_policy_refuses(
    server: _Server, downloads: Path, url: str, code: FetchErrorCode
) -> None:
    hits = len(server.hits)
    error = _refused(url.format(port=server.server_address[1]), DEFAULT, directory=downloads)
    assert (error.code, error.status) == (code, 422)
    assert len(server.hits) == hits  # the server never saw a request
    assert list(downloads.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@example.com/",
        "https://:pass@example.com/",
        "http://user:pass@127.0.0.1:{port}/ok",
        "http://user%3Apass@example.com/",
    ],
)
def test_credentials_are_refused_and_never_echoed(server: _Server, url: str) -> None:
    resolved: list[str] = []
    error = _refused(
        url.format(port=server.server_address[1]),
        LOCAL,
        resolver=_recording(resolved),
    )
    assert error.code == FetchErrorCode.URL_INVALID
    assert "pass" not in str(error) and "pass" not in repr(error)
    assert "user" not in str(error)
    assert resolved == []


def test_messages_leave_out_the_query_string() -> None:
    error = _refused("http://10.0.0.1/file.jpg?X-Signature=s3cr3t", DEFAULT)
    assert "http://10.0.0.1/file.jpg" in str(error)
    assert "s3cr3t" not in str(error)


# --- Resolution, allowed hosts and DNS rebinding (no network: MockTransport) ----------------


def test_every_resolved_address_must_be_public() -> None:
    recorder = _Recorder()
    error = _refused(
        "http://files.example.com/a.jpg",
        DEFAULT,
        resolver=_fixed(PUBLIC, "10.0.0.5"),
        transport=recorder.transport,
    )
    assert error.code == FetchErrorCode.URL_FORBIDDEN
    assert "10.0.0.5" in str(error)
    assert recorder.requests == []


def test_the_vetted_address_is_the_one_connected_to() -> None:
    """DNS rebinding: a second lookup would say 127.0.0.1; there is no second lookup."""
    answers = iter([[PUBLIC], ["127.0.0.1"]])
    calls: list[tuple[str, int]] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return next(answers)

    recorder = _Recorder()
    with fetch_url(
        "http://files.example.com/media/a.jpg?size=large#frag",
        DEFAULT,
        resolver=rebinding,
        transport=recorder.transport,
    ) as fetched:
        assert fetched.path.read_bytes() == b"data"
        assert fetched.final_url == "http://files.example.com/media/a.jpg?size=large"
    assert calls == [("files.example.com", 80)]
    [request] = recorder.requests
    assert str(request.url) == f"http://{PUBLIC}/media/a.jpg?size=large"
    assert request.headers["Host"] == "files.example.com"
    assert "sni_hostname" not in request.extensions


def test_https_keeps_the_name_for_tls() -> None:
    recorder = _Recorder()
    with fetch_url(
        "https://files.example.com:8443/a.jpg",
        DEFAULT,
        resolver=_fixed(PUBLIC),
        transport=recorder.transport,
    ):
        pass
    [request] = recorder.requests
    assert (request.url.scheme, request.url.host, request.url.port) == ("https", PUBLIC, 8443)
    assert request.headers["Host"] == "files.example.com:8443"
    assert request.extensions["sni_hostname"] == "files.example.com"
    assert request.extensions["timeout"]["read"] <= DEFAULT.timeout_seconds


def test_ipv6_addresses_are_bracketed() -> None:
    recorder = _Recorder()
    with fetch_url(
        "http://files.example.com/",
        DEFAULT,
        resolver=_fixed("2606:4700::1111"),
        transport=recorder.transport,
    ):
        pass
    [request] = recorder.requests
    assert request.url.host == "2606:4700::1111"
    assert request.headers["Host"] == "files.example.com"


def test_international_names_are_sent_in_idna() -> None:
    recorder = _Recorder()
    resolved: list[str] = []
    with fetch_url(
        "http://Bücher.example/x",
        DEFAULT,
        resolver=_recording(resolved),
        transport=recorder.transport,
    ):
        pass
    assert resolved == ["xn--bcher-kva.example"]
    assert recorder.requests[0].headers["Host"] == "xn--bcher-kva.example"


def test_each_redirect_is_resolved_and_checked() -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://internal.example.com/"})

    recorder = _Recorder(respond)
    addresses = {"files.example.com": [PUBLIC], "internal.example.com": ["192.168.0.7"]}
    error = _refused(
        "http://files.example.com/",
        DEFAULT,
        resolver=lambda host, port: addresses[host],
        transport=recorder.transport,
    )
    assert error.code == FetchErrorCode.URL_FORBIDDEN
    assert "internal.example.com resolves to 192.168.0.7" in str(error)
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://files.example.com/a", True),
        ("http://FILES.example.com./a", True),
        ("http://a.cdn.example.com/a", True),
        ("http://b.a.cdn.example.com/a", True),
        ("http://cdn.example.com/a", False),
        ("http://example.com/a", False),
        ("http://files.example.com.evil.test/a", False),
        ("http://evilfiles.example.com/a", False),
        ("http://xcdn.example.com/a", False),
        (f"http://{PUBLIC}/a", False),
    ],
)
def test_allowed_hosts(url: str, allowed: bool) -> None:
    policy = FetchPolicy(allowed_hosts=["files.example.com", "*.cdn.example.com"])
    resolved: list[str] = []
    recorder = _Recorder()

    def fetch() -> None:
        with fetch_url(
            url,
            policy,
            resolver=_recording(resolved),
            transport=recorder.transport,
        ):
            pass

    if allowed:
        fetch()
        assert len(recorder.requests) == 1
    else:
        with pytest.raises(FetchError) as caught:
            fetch()
        assert caught.value.code == FetchErrorCode.URL_FORBIDDEN
        assert "allowed hosts" in str(caught.value)
        assert resolved == [] and recorder.requests == []


def test_an_allowed_host_must_still_have_public_addresses() -> None:
    policy = FetchPolicy(allowed_hosts=["files.example.com"])
    error = _refused("http://files.example.com/", policy, resolver=_fixed("10.0.0.1"))
    assert error.code == FetchErrorCode.URL_FORBIDDEN


def test_allowed_ports() -> None:
    policy = FetchPolicy(allowed_ports=frozenset({80, 443}))
    recorder = _Recorder()
    with fetch_url(
        "https://files.example.com/", policy, resolver=_fixed(PUBLIC), transport=recorder.transport
    ):
        pass
    error = _refused("http://files.example.com:8080/", policy, resolver=_fixed(PUBLIC))
    assert error.code == FetchErrorCode.URL_FORBIDDEN


def test_resolution_failures() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    error = _refused("http://nowhere.example.com/", DEFAULT, resolver=fails)
    assert (error.code, error.status) == (FetchErrorCode.FETCH_FAILED, 502)
    assert _refused("http://nowhere.example.com/", DEFAULT, resolver=_fixed()).code == (
        FetchErrorCode.FETCH_FAILED
    )


def test_declared_length_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    recorder = _Recorder(
        lambda request: httpx.Response(200, headers={"Content-Length": str(10**12)}, content=b"")
    )
    error = _refused(
        "http://files.example.com/",
        DEFAULT,
        resolver=_fixed(PUBLIC),
        transport=recorder.transport,
        directory=tmp_path,
    )
    assert error.code == FetchErrorCode.TOO_LARGE
    assert list(tmp_path.iterdir()) == []


def test_the_pinned_backend_connects_only_to_vetted_addresses(server: _Server) -> None:
    backend = _PinnedBackend(time.monotonic() + 5)
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("127.0.0.1", server.server_address[1])
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("localhost", server.server_address[1])
    backend.vetted = {ipaddress.ip_address("127.0.0.1")}
    backend.connect_tcp("127.0.0.1", server.server_address[1]).close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_https_verifies_the_certificate_against_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over real TLS to the pinned address: SNI and verification use the URL's host name."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    (tmp_path / "file.bin").write_bytes(OK_BODY)
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=files.vigil.test"),
            *("-addext", "subjectAltName=DNS:files.vigil.test"),
        ],
        check=True,
        capture_output=True,
    )
    names: list[str | None] = []
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server_context.sni_callback = lambda sock, name, context: names.append(name)

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    srv = _Server()
    srv.RequestHandlerClass = Quiet
    srv.socket = server_context.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        monkeypatch.setattr(
            fetch_module, "_ssl_context", lambda: ssl.create_default_context(cafile=str(cert))
        )
        loopback = _fixed("127.0.0.1")
        with fetch_url(
            f"https://files.vigil.test:{port}/file.bin", LOCAL, resolver=loopback
        ) as fetched:
            assert fetched.path.read_bytes() == OK_BODY
        assert names == ["files.vigil.test"]
        for url in (f"https://other.vigil.test:{port}/file.bin", f"https://127.0.0.1:{port}/"):
            error = _refused(url, LOCAL, resolver=loopback)
            assert error.code == FetchErrorCode.FETCH_FAILED
            assert "certificate" in str(error)
    finally:
        srv.shutdown()
        srv.server_close()


# --- The address rule, as a property --------------------------------------------------------

_ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)


def _public(address: ipaddress.IPv4Address) -> bool:
    # `ipaddress` calls multicast global; the policy refuses it (224.0.0.0/4).
    return address.is_global and not address.is_multicast


@given(_ipv4)
def test_ipv4_decision_is_is_global(address: ipaddress.IPv4Address) -> None:
    assert DEFAULT.address_allowed(str(address)) == _public(address)
    assert _public(address) == (address.is_global and address not in MULTICAST)
    for embedding in (
        f"::ffff:{address}",  # IPv4-mapped
        f"2002:{int(address) >> 16:x}:{int(address) & 0xFFFF:x}::1",  # 6to4
        f"64:ff9b::{address}",  # NAT64
    ):
        assert DEFAULT.address_allowed(embedding) == _public(address), embedding


@given(_ipv4)
def test_ipv4_decision_with_allowed_networks(address: ipaddress.IPv4Address) -> None:
    networks = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "10.20.0.0/16")]
    policy = FetchPolicy(allowed_networks=("127.0.0.0/8", "10.20.0.0/16"))
    expected = _public(address) or any(address in network for network in networks)
    assert policy.address_allowed(address) == expected


@settings(max_examples=40, deadline=None)
@given(_ipv4)
def test_fetch_url_applies_the_address_rule(address: ipaddress.IPv4Address) -> None:
    recorder = _Recorder()
    for url, resolver in (
        (f"http://{address}/", None),
        ("http://files.example.com/", _fixed(str(address))),
    ):
        try:
            with fetch_url(url, DEFAULT, resolver=resolver, transport=recorder.transport):
                fetched = True
        except FetchError as error:
            assert error.code == FetchErrorCode.URL_FORBIDDEN
            fetched = False
        assert fetched == _public(address)


# --- Policy and errors ------------------------------------------------------------------------


def test_policy_from_settings() -> None:
    settings_ = Settings(
        fetch_allowed_hosts=["files.example.com", "*.cdn.example.com"],
        fetch_allowed_networks=["10.20.0.0/16"],
        fetch_max_bytes=1000,
        fetch_timeout_seconds=2.5,
        fetch_max_redirects=1,
    )
    policy = FetchPolicy.from_settings(settings_)
    assert policy.allowed_hosts == ("files.example.com", "*.cdn.example.com")
    assert policy.allowed_networks == (ipaddress.ip_network("10.20.0.0/16"),)
    assert (policy.max_bytes, policy.timeout_seconds, policy.max_redirects) == (1000, 2.5, 1)
    assert policy.allowed_ports is None
    assert policy.address_allowed("10.20.3.4") and not policy.address_allowed("10.21.0.1")
    defaults = FetchPolicy.from_settings(Settings())
    assert defaults == DEFAULT


@pytest.mark.parametrize(
    "kwargs",
    [
        {"allowed_networks": ["10.0.0.1/8"]},
        {"allowed_networks": ["not a network"]},
        {"allowed_hosts": ["*"]},
        {"allowed_hosts": ["127.1"]},
        {"max_bytes": 0},
        {"timeout_seconds": 0},
        {"max_redirects": -1},
        {"allowed_ports": frozenset({0})},
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        FetchPolicy(**kwargs)


def test_errors_carry_code_status_and_pickle() -> None:
    statuses = {code: FetchError(code, "m").status for code in FetchErrorCode}
    assert statuses == {
        "url_invalid": 422,
        "url_forbidden": 422,
        "too_large": 413,
        "fetch_failed": 502,
        "timeout": 504,
    }
    error = pickle.loads(pickle.dumps(FetchError(FetchErrorCode.TIMEOUT, "slow")))
    assert (error.code, error.status, str(error)) == ("timeout", 504, "slow")
    assert error.as_dict() == {"code": "timeout", "message": "slow"}
