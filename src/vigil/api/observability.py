"""Metrics, request ids, structured logs and the request-body cap, as one ASGI middleware.

Prometheus metrics (prometheus-client) are served at `/metrics`; with several server
workers they are aggregated through prometheus-client's multiprocess mode (`vigil serve`
sets `PROMETHEUS_MULTIPROC_DIR`). Logs are one JSON object a line carrying the request id;
they name routes, never query strings, bodies, media or tokens.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "vigil_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "vigil_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HASHES = Counter("vigil_hashes_total", "Hashes computed for uploads.", ["signal_type"])
MATCHES = Counter("vigil_matches_total", "Matches found for uploads and lookups.", ["bank"])

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
access_log = logging.getLogger("vigil.access")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure_logging(fmt: str, level: int = logging.INFO) -> None:
    """Send Vigil's and uvicorn's logs to stderr as JSON lines (or plain text), each with
    the request id of the request being served."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    for name in ("vigil", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # replaced by vigil.access


class ServiceMiddleware:
    """Per request: a request id (the caller's `X-Request-ID` when sane, else new), echoed
    in the response; the request-body cap (413 before the body is read when
    `Content-Length` says too much, and while streaming otherwise); metrics; one access log
    line."""

    def __init__(self, app: ASGIApp, body_limit: Callable[[str], int]) -> None:
        self.app = app
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        limit = self.body_limit(scope["path"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _too_large(send, rid)
            self._observe(scope, 413, started)
            request_id.reset(token)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            status = 413
            await _too_large(send, rid)
        finally:
            self._observe(scope, status, started)
            request_id.reset(token)

    @staticmethod
    def _observe(scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", "unmatched")
        method = scope["method"]
        REQUESTS.labels(method, route, str(status)).inc()
        LATENCY.labels(method, route).observe(elapsed)
        principal = getattr(scope.get("state", {}).get("principal"), "name", None)
        access_log.info(
            "request",
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "token": principal,
            },
        )


class BodyTooLarge(Exception):
    """The request body passed the cap while being read."""


async def _too_large(send: Send, rid: str) -> None:
    body = b'{"detail":"the request body is too large","code":"too_large"}'
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _ScrapeTimeGauges(Collector):
    """Gauges read when scraped (from the database and this worker's index, so they are
    right whichever worker answers): index size, outbox depth, failed webhook calls."""

    def __init__(self, read: Any) -> None:
        self.read = read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        index_counts, outbox, failures = self.read()
        index = GaugeMetricFamily(
            "vigil_index_entries", "Entries in the match index.", labels=["signal_type"]
        )
        for signal_type, count in index_counts.items():
            index.add_metric([signal_type], count)
        depth = GaugeMetricFamily(
            "vigil_outbox_depth", "Webhook deliveries by status.", labels=["status"]
        )
        for status, count in outbox.items():
            depth.add_metric([status], count)
        yield index
        yield depth
        yield GaugeMetricFamily(
            "vigil_webhook_failed_attempts",
            "Webhook calls that failed, as the outbox records them.",
            value=failures,
        )


def render_metrics(read_gauges: Any) -> tuple[bytes, str]:
    """The Prometheus exposition: counters and histograms of every worker, and the gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (REQUESTS, LATENCY, HASHES, MATCHES):
            registry.register(collector)
    registry.register(_ScrapeTimeGauges(read_gauges))
    return generate_latest(registry), CONTENT_TYPE_LATEST
