"""Fetch a file the platform hosts, for the API's `{"url": ...}` requests, without becoming a
proxy into the network Vigil runs in (SSRF).

A URL is fetched only when it is http(s), carries no credentials, names a host that the
policy allows, and EVERY address that host resolves to is public (or inside a network the
operator allowed). The connection then goes to the address that was checked, never to a
second resolution of the name (DNS rebinding), with the original name in `Host` and in TLS
(SNI and certificate verification). Redirects are followed by hand and each hop is checked
the same way; the body is streamed to a temporary file under a byte limit and one deadline
covers the whole fetch. docs/fetching.md describes the rules.

Every failure is a `FetchError` with a stable code and the HTTP status the API answers.
Messages name URLs only in a normalised form without credentials or query string.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx
import idna

if TYPE_CHECKING:
    import ssl

    from vigil.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
"""`(host, port) -> addresses`, as strings; the default asks `socket.getaddrinfo`."""

_CHUNK = 64 * 1024
_MAX_URL_CHARS = 8192
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "vigil-fetch/1"

# A host whose last label is a number (decimal, or 0x hex) is an IPv4 address to browsers and
# to inet_aton: `2130706433`, `0x7f.1`, `127.1`, `0177.0.0.1`. Only the canonical dotted quad
# is accepted as an address; anything else that looks numeric is refused outright.
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0x[0-9a-f]*)$")
_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
# NAT64 prefixes: the well-known one embeds an IPv4 address in its last 32 bits; the
# local-use one (RFC 8215) is for private deployments and is refused unless allowed.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class FetchErrorCode(StrEnum):
    """Stable codes the API answers with; each has its HTTP status in `FETCH_STATUS`."""

    URL_INVALID = "url_invalid"
    URL_FORBIDDEN = "url_forbidden"
    TOO_LARGE = "too_large"
    FETCH_FAILED = "fetch_failed"
    TIMEOUT = "timeout"


FETCH_STATUS: dict[FetchErrorCode, int] = {
    FetchErrorCode.URL_INVALID: 422,
    FetchErrorCode.URL_FORBIDDEN: 422,
    FetchErrorCode.TOO_LARGE: 413,
    FetchErrorCode.FETCH_FAILED: 502,
    FetchErrorCode.TIMEOUT: 504,
}


class FetchError(Exception):
    """A URL that was not fetched: `code`, the `status` the API answers, and a message."""

    def __init__(self, code: FetchErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = FETCH_STATUS[code]
        self.message = message

    def __reduce__(self) -> tuple[type[FetchError], tuple[FetchErrorCode, str]]:
        return (FetchError, (self.code, self.message))

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message}


@dataclass(frozen=True)
class FetchPolicy:
    """What may be fetched. Defaults match the `VIGIL_FETCH_*` settings' defaults.

    `allowed_hosts`: exact names or `*.example.com` (any name below example.com, not
    example.com itself); empty allows any host. `allowed_networks`: CIDRs that may be reached
    although not public. `allowed_ports`: None allows any port.
    """

    allowed_hosts: Sequence[str] = ()
    allowed_networks: Sequence[str | IPNetwork] = ()
    max_bytes: int = 64 * 1024 * 1024
    timeout_seconds: float = 10.0
    max_redirects: int = 3
    allowed_ports: frozenset[int] | None = None
    _exact_hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _host_suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        if not self.timeout_seconds > 0:
            raise ValueError("timeout_seconds must be > 0")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must be >= 0")
        if self.allowed_ports is not None and any(
            not 0 < port < 65536 for port in self.allowed_ports
        ):
            raise ValueError("allowed_ports must lie in 1-65535")
        exact: set[str] = set()
        suffixes: list[str] = []
        for pattern in self.allowed_hosts:
            wildcard = pattern.startswith("*.")
            try:
                host = _normalise_host(pattern[2:] if wildcard else pattern)
            except FetchError as exc:
                raise ValueError(f"allowed host {pattern!r}: {exc.message}") from None
            if wildcard:
                suffixes.append("." + host)
            else:
                exact.add(host)
        networks: list[IPNetwork] = []
        for network in self.allowed_networks:
            try:
                networks.append(ipaddress.ip_network(network))
            except ValueError as exc:
                raise ValueError(f"allowed network {network!r}: {exc}") from None
        object.__setattr__(self, "allowed_hosts", tuple(self.allowed_hosts))
        object.__setattr__(self, "allowed_networks", tuple(networks))
        object.__setattr__(self, "_exact_hosts", frozenset(exact))
        object.__setattr__(self, "_host_suffixes", tuple(suffixes))
        object.__setattr__(self, "_networks", tuple(networks))

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        return cls(
            allowed_hosts=tuple(settings.fetch_allowed_hosts),
            allowed_networks=tuple(settings.fetch_allowed_networks),
            max_bytes=settings.fetch_max_bytes,
            timeout_seconds=settings.fetch_timeout_seconds,
            max_redirects=settings.fetch_max_redirects,
        )

    def host_allowed(self, host: str) -> bool:
        """Whether a normalised host name (or address) matches `allowed_hosts`."""
        if not self.allowed_hosts:
            return True
        return host in self._exact_hosts or host.endswith(self._host_suffixes)

    def address_allowed(self, address: str | IPAddress) -> bool:
        """Whether one resolved address may be connected to: public, or in an allowed network.

        IPv6 addresses that stand for an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64) are
        judged by that IPv4 address.
        """
        try:
            ip = address if not isinstance(address, str) else ipaddress.ip_address(address)
        except ValueError:
            return False
        if any(ip in network for network in self._networks):
            return True
        if isinstance(ip, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(ip)
            if embedded is not None:
                return all(self.address_allowed(v4) for v4 in embedded)
            if ip in _IPV4_COMPATIBLE or ip in _NAT64_LOCAL:
                return False
        return _is_public(ip)


def _is_public(ip: IPAddress) -> bool:
    """`is_global`, less multicast (which `ipaddress` counts as global for 224/4 and ff0e::)."""
    return ip.is_global and not ip.is_multicast


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...] | None:
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)
    if ip.sixtofour is not None:
        return (ip.sixtofour,)
    if ip.teredo is not None:
        return ip.teredo
    if ip in _NAT64:
        return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)
    return None


@dataclass
class FetchedFile:
    """A fetched body on disk. Use as a context manager: the file is deleted on exit."""

    path: Path
    size: int
    content_type: str | None
    final_url: str

    def close(self) -> None:
        """Delete the file (again is harmless)."""
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> FetchedFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- URLs --------------------------------------------------------------------------------


class _Target(NamedTuple):
    """A checked URL: normalised host (IDNA, lower case; an address in canonical form)."""

    scheme: str
    host: str
    ip: IPAddress | None  # set when the URL names an address rather than a name
    port: int
    target: str  # path and query, as sent in the request line

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"

    @property
    def display(self) -> str:
        """For messages: no query string (signed URLs carry secrets there)."""
        return f"{self.scheme}://{self.authority}{self.target.partition('?')[0]}"


def _invalid(message: str) -> FetchError:
    return FetchError(FetchErrorCode.URL_INVALID, message)


def _normalise_host(raw: str) -> str:
    """Lower-case ASCII (IDNA) name, or an address in canonical form; refuses the rest."""
    host = raw[:-1] if raw.endswith(".") else raw
    if not host:
        raise _invalid("URL has no host")
    if ":" in host or (host.startswith("[") and host.endswith("]")):
        try:
            ip = ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            raise _invalid("host is not a valid IPv6 address") from None
        if ip.scope_id:
            raise _invalid("IPv6 zone identifiers are not allowed")
        return str(ip)
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise _invalid("host is not a valid internationalised domain name") from None
    host = host.lower()
    with contextlib.suppress(ValueError):
        return str(ipaddress.IPv4Address(host))
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        raise _invalid("host looks like an IP address but is not a canonical dotted quad")
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise _invalid("host is not a valid host name")
    return host


def _parse(url: str, policy: FetchPolicy) -> _Target:
    """Check the syntax of `url` and the policy's host and port rules (not addresses)."""
    if len(url) > _MAX_URL_CHARS:
        raise _invalid(f"URL is longer than {_MAX_URL_CHARS} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise _invalid("URL contains whitespace, control characters or backslashes")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _invalid("URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme!r}" if scheme and len(scheme) <= 20 else "its scheme"
        raise _invalid(f"only http and https URLs can be fetched, not {shown}")
    if "@" in parts.netloc:
        raise _invalid("URL must not include credentials (nothing may precede an '@' in its host)")
    hostport = parts.netloc
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _invalid("URL has an unterminated IPv6 address")
        raw_host, rest = hostport[: end + 1], hostport[end + 1 :]
    else:
        raw_host, colon, port_part = hostport.partition(":")
        rest = colon + port_part
    if rest and not rest.startswith(":"):
        raise _invalid("URL has text after its host")
    port_text = rest[1:]
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        raise _invalid("URL port is not a number")
    port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise _invalid("URL port is out of range")
    host = _normalise_host(raw_host)
    ip: IPAddress | None = None
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(host)
    path = parts.path or "/"
    if not path.startswith("/"):
        raise _invalid("URL path must start with '/'")
    target = _Target(scheme, host, ip, port, path + (f"?{parts.query}" if parts.query else ""))
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        raise FetchError(
            FetchErrorCode.URL_FORBIDDEN, f"port {port} is not allowed: {target.display}"
        )
    if not policy.host_allowed(host):
        raise FetchError(
            FetchErrorCode.URL_FORBIDDEN,
            f"host {host} is not in the allowed hosts (VIGIL_FETCH_ALLOWED_HOSTS): "
            f"{target.display}",
        )
    return target


# --- Resolution and the address check ----------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to for TCP, in the system's preferred order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _remaining(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(FetchErrorCode.TIMEOUT, f"timed out {what}")
    return left


def _resolve(resolver: Resolver, target: _Target, deadline: float) -> list[str]:
    """Run the resolver in a thread so a stuck DNS lookup cannot outlive the deadline."""
    outcome: list[list[str] | Exception] = []
    done = threading.Event()

    def work() -> None:
        try:
            outcome.append(list(resolver(target.host, target.port)))
        except Exception as exc:
            outcome.append(exc)
        finally:
            done.set()

    threading.Thread(target=work, name="vigil-fetch-resolve", daemon=True).start()
    if not done.wait(_remaining(deadline, f"resolving {target.host}")):
        raise FetchError(FetchErrorCode.TIMEOUT, f"timed out resolving {target.host}")
    result = outcome[0]
    if isinstance(result, OSError | UnicodeError):
        reason = result.strerror if isinstance(result, OSError) else None
        raise FetchError(
            FetchErrorCode.FETCH_FAILED, f"cannot resolve {target.host}: {reason or result}"
        )
    if isinstance(result, Exception):
        raise result
    return result


def _vet(
    target: _Target, policy: FetchPolicy, resolver: Resolver, deadline: float
) -> list[IPAddress]:
    """The addresses to connect to, all of them allowed, or `url_forbidden`."""
    raw = [str(target.ip)] if target.ip is not None else _resolve(resolver, target, deadline)
    addresses: list[IPAddress] = []
    for text in raw:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise FetchError(
                FetchErrorCode.FETCH_FAILED, f"{target.host} resolved to an invalid address"
            ) from None
        if not policy.address_allowed(ip):
            what = f"{ip} is" if target.ip is not None else f"{target.host} resolves to {ip},"
            raise FetchError(
                FetchErrorCode.URL_FORBIDDEN,
                f"{what} not a public address (VIGIL_FETCH_ALLOWED_NETWORKS lists the private"
                f" networks that may be reached): {target.display}",
            )
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise FetchError(FetchErrorCode.FETCH_FAILED, f"{target.host} has no addresses")
    return addresses


# --- The pinned transport ----------------------------------------------------------------


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the overall deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _timeout(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the overall fetch deadline has passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._timeout(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._timeout(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(
            ssl_context, server_hostname, self._timeout(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects only to vetted addresses (given as IP literals: nothing is resolved here)."""

    def __init__(self, deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline
        self.vetted: set[IPAddress] = set()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is None or ip not in self.vetted:
            raise httpcore.ConnectError("refusing to connect to an address that was not vetted")
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the overall fetch deadline has passed")
        stream = self._inner.connect_tcp(
            host,
            port,
            timeout=left if timeout is None else min(timeout, left),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are never used for fetching")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@contextlib.contextmanager
def _httpcore_errors() -> Iterator[None]:
    """httpcore's exceptions as httpx's, so both transports fail the same way."""
    try:
        yield
    except httpcore.TimeoutException as exc:
        raise httpx.TimeoutException(str(exc)) from exc
    except httpcore.ConnectError as exc:
        raise httpx.ConnectError(str(exc)) from exc
    except (
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
        httpcore.ProxyError,
    ) as exc:
        raise httpx.TransportError(str(exc)) from exc


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _httpcore_errors():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verification (certifi, hostname checked), built once per process."""
    return httpx.create_ssl_context()


class _PinnedTransport(httpx.BaseTransport):
    """httpx's HTTP/1.1 transport, on a backend that enforces vetting and the deadline."""

    def __init__(self, deadline: float) -> None:
        self.backend = _PinnedBackend(deadline)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=4,
            http1=True,
            http2=False,
            retries=0,
            network_backend=self.backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpcore_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


# --- Fetching ----------------------------------------------------------------------------


def _request(target: _Target, ip: IPAddress, deadline: float) -> httpx.Request:
    """GET `target` from `ip`: the URL names the address, `Host` and TLS name the host."""
    address = f"[{ip}]" if ip.version == 6 else str(ip)
    url = httpx.URL(f"{target.scheme}://{address}:{target.port}{target.target}")
    if url.host != str(ip):  # the URL parser must agree that the host is the vetted address
        raise _invalid("URL cannot be rewritten safely")
    left = _remaining(deadline, f"fetching {target.display}")
    extensions: dict[str, Any] = {"timeout": httpx.Timeout(left).as_dict()}
    if target.scheme == "https" and target.ip is None:
        extensions["sni_hostname"] = target.host  # SNI and certificate check use the name
    headers = {
        "Host": target.authority,
        "User-Agent": _USER_AGENT,
        "Accept": "*/*",
        "Accept-Encoding": "identity",
    }
    return httpx.Request("GET", url, headers=headers, extensions=extensions)


def _send(
    transport: httpx.BaseTransport,
    target: _Target,
    addresses: list[IPAddress],
    deadline: float,
) -> httpx.Response:
    """The response from the first vetted address that accepts a connection."""
    for index, ip in enumerate(addresses):
        try:
            return transport.handle_request(_request(target, ip, deadline))
        except httpx.ConnectError:
            if index == len(addresses) - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _check_deadline(deadline: float, target: _Target) -> None:
    if time.monotonic() >= deadline:
        raise FetchError(FetchErrorCode.TIMEOUT, f"timed out fetching {target.display}")


def _save(
    response: httpx.Response,
    target: _Target,
    policy: FetchPolicy,
    directory: Path | None,
    deadline: float,
) -> FetchedFile:
    length = response.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > policy.max_bytes:
        raise FetchError(
            FetchErrorCode.TOO_LARGE,
            f"{target.display} is {int(length)} bytes, over the limit of {policy.max_bytes}"
            " (VIGIL_FETCH_MAX_BYTES)",
        )
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchError(
            FetchErrorCode.FETCH_FAILED,
            f"{target.display} was sent with Content-Encoding {encoding[:40]!r}, not identity",
        )
    fd, name = tempfile.mkstemp(prefix="vigil-fetch-", dir=directory)
    path = Path(name)
    try:
        size = 0
        with os.fdopen(fd, "wb") as out:
            # A response buffered by its transport (a mock, say) can no longer be streamed;
            # its content is the raw body, as only the identity encoding gets this far.
            chunks = (
                [response.content] if response.is_stream_consumed else response.iter_raw(_CHUNK)
            )
            for chunk in chunks:
                size += len(chunk)
                if size > policy.max_bytes:
                    raise FetchError(
                        FetchErrorCode.TOO_LARGE,
                        f"{target.display} is over the limit of {policy.max_bytes} bytes"
                        " (VIGIL_FETCH_MAX_BYTES)",
                    )
                _check_deadline(deadline, target)
                out.write(chunk)
        return FetchedFile(
            path=path,
            size=size,
            content_type=response.headers.get("content-type"),
            final_url=target.url,
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def fetch_url(
    url: str,
    policy: FetchPolicy,
    *,
    directory: Path | None = None,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> FetchedFile:
    """Fetch `url` into a temporary file in `directory` (default: the system's temp dir).

    `resolver` and `transport` exist for tests; the default transport connects only to the
    addresses vetted for the current hop and enforces the deadline on every socket operation.
    Raises `FetchError`; nothing is left on disk when it does.
    """
    deadline = time.monotonic() + policy.timeout_seconds
    resolve = resolver or system_resolver
    target = _parse(url, policy)
    previous: _Target | None = None  # the hop that redirected to `target`
    own = _PinnedTransport(deadline) if transport is None else None
    send_with = own or transport
    assert send_with is not None
    try:
        redirects = 0
        while True:
            try:
                addresses = _vet(target, policy, resolve, deadline)
            except FetchError as exc:
                if previous is None or exc.code is not FetchErrorCode.URL_FORBIDDEN:
                    raise
                raise FetchError(
                    exc.code, f"redirect from {previous.display} refused: {exc.message}"
                ) from None
            if own is not None:
                own.backend.vetted = set(addresses)
            try:
                response = _send(send_with, target, addresses, deadline)
                try:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        if redirects >= policy.max_redirects:
                            raise FetchError(
                                FetchErrorCode.FETCH_FAILED,
                                f"more than {policy.max_redirects} redirects"
                                f" (VIGIL_FETCH_MAX_REDIRECTS), the last from {target.display}",
                            )
                        redirects += 1
                        previous = target
                        target = _redirect(target, response.headers["location"], policy)
                        continue
                    if not 200 <= response.status_code < 300:
                        raise FetchError(
                            FetchErrorCode.FETCH_FAILED,
                            f"{target.display} answered HTTP {response.status_code}",
                        )
                    return _save(response, target, policy, directory, deadline)
                finally:
                    response.close()
            except httpx.TimeoutException:
                raise FetchError(
                    FetchErrorCode.TIMEOUT,
                    f"timed out fetching {target.display} (VIGIL_FETCH_TIMEOUT_SECONDS is"
                    f" {policy.timeout_seconds:g})",
                ) from None
            except httpx.HTTPError as exc:
                if time.monotonic() >= deadline:  # a connection cut at the deadline
                    raise FetchError(
                        FetchErrorCode.TIMEOUT, f"timed out fetching {target.display}"
                    ) from None
                reason = str(exc)[:200] or type(exc).__name__
                raise FetchError(
                    FetchErrorCode.FETCH_FAILED, f"fetching {target.display} failed: {reason}"
                ) from None
    finally:
        if own is not None:
            own.close()


def _redirect(current: _Target, location: str, policy: FetchPolicy) -> _Target:
    """The checked target of a `Location` header, relative ones resolved against `current`."""
    try:
        joined = urljoin(current.url, location.strip())
    except ValueError:
        raise _invalid(f"{current.display} redirected to a URL that cannot be parsed") from None
    try:
        return _parse(joined, policy)
    except FetchError as exc:
        raise FetchError(
            exc.code, f"redirect from {current.display} refused: {exc.message}"
        ) from None
