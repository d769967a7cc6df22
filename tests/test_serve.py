"""`vigil serve` as an operator runs it: a real uvicorn with two worker processes.

Checks what only a real multi-process server shows: each worker's index converges on a bank
change made through the other, metrics add up across workers, interrupted import jobs are
marked failed at start, logs are JSON lines with request ids and no secrets.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bank_helpers import rand_hex
from vigil.api.observability import access_log, configure_logging, request_id
from vigil.auth import create_token
from vigil.banks.jobs import create_import_job
from vigil.config import Settings
from vigil.store import Database, Job, open_database

STARTUP_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Database]]:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=database_url)
    database = open_database(settings)
    with database.session() as session:
        _, secret = create_token(session, "ops", ["admin"], created_by="tests")
        session.add(Job(id="f" * 32, kind="bank_import", status="running", actor="token:ops"))
        create_import_job(session, bank="gone", upload=tmp_path / "x.csv", actor="t", options={})
    port = _free_port()
    env = {
        **os.environ,
        "VIGIL_HOME": str(home),
        "VIGIL_DATABASE_URL": database_url,
        "VIGIL_INDEX_REFRESH_SECONDS": "0.3",
        "VIGIL_API_TOKEN_CACHE_SECONDS": "0",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vigil", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vigil serve did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield base, {"Authorization": f"Bearer {secret}"}, database
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        database.dispose()
        _check_log(log_path, secret)


def _check_log(path: Path, secret: str) -> None:
    text = path.read_text()
    assert secret not in text
    access = [json.loads(line) for line in text.splitlines() if '"vigil.access"' in line]
    assert access, text[-2000:]
    assert {"request_id", "route", "status", "duration_ms", "method"} <= set(access[0])


def _fresh_lookup(base: str, headers: dict[str, str], value: str) -> int:
    """One lookup on a new connection (so either worker may answer): how many matches."""
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        answer = client.get("/v1/lookup", params={"signal_type": "md5", "value": value})
        assert answer.status_code == 200, answer.text
        return len(answer.json()["matches"])


def test_two_workers_converge_and_report_together(
    server: tuple[str, dict[str, str], Database],
) -> None:
    base, headers, database = server
    with database.session() as session:
        jobs = {job.id: job.status for job in session.query(Job)}
    assert set(jobs.values()) == {"failed"}  # left running/queued by "the last run"

    value = rand_hex(random.Random(12), "md5")
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        assert client.post("/v1/banks", json={"name": "live"}).status_code == 201
        added = client.post(
            "/v1/banks/live/entries", json={"entries": [{"signal_type": "md5", "value": value}]}
        )
        assert added.json()["added"] == 1
    # Both workers must find it: the one that wrote at once, the other after its refresh.
    deadline = time.monotonic() + 20
    streak = 0
    while streak < 12 and time.monotonic() < deadline:
        streak = streak + 1 if _fresh_lookup(base, headers, value) == 1 else 0
    assert streak >= 12, "a worker did not pick up the new entry"

    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        text = client.get("/metrics").text
    lookups = [
        line
        for line in text.splitlines()
        if line.startswith(
            'vigil_http_requests_total{method="GET",route="/v1/lookup",status="200"}'
        )
    ]
    assert lookups and float(lookups[0].split()[-1]) >= 12


def test_json_logs_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    loggers = {name: logging.getLogger(name) for name in ("vigil", "uvicorn", "uvicorn.error")}
    saved = {name: (lg.handlers[:], lg.level, lg.propagate) for name, lg in loggers.items()}
    try:
        configure_logging("json")
        token = request_id.set("req-42")
        access_log.info("request", extra={"route": "/v1/lookup", "status": 200})
        request_id.reset(token)
        line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert line["request_id"] == "req-42"
        assert (line["logger"], line["route"], line["status"]) == (
            "vigil.access",
            "/v1/lookup",
            200,
        )
        assert line["level"] == "INFO" and line["message"] == "request"
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = loggers[name]
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        logging.getLogger("uvicorn.access").disabled = False
