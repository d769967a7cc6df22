"""The HTTP API under load: lookups and upload-matches a second from `vigil serve --workers 2`.

Loopback only. A 1,000,000-entry PDQ bank (random bits, never real hashes) is written
straight into a SQLite `VIGIL_HOME` (SQLAlchemy core, in chunks; not the API nor the CSV
import, too slow for a set-up) together with its index snapshot and 50 synthetic 1 MP JPEGs
(`vigil.demo.synthetic_image`, quality 90). All of it is cached under the system's temporary
folder, keyed by a version string, so a second run skips the build; each run works on a
fresh copy of it, with a new API token of its own.

Scenarios, each against the same server, every answer checked (status, length):

1. `GET /healthz` (no token, a trivial route): the server and client ceiling on this
   machine, the baseline of the lookups;
2. `GET /v1/lookup?signal_type=pdq&value=...`: random hashes (misses) and 10% copies of
   bank entries with up to 24 bits flipped (hits, within PDQ's threshold of 31);
3. the same lookups in this process through `BankMatcher.lookup`, no HTTP, on one core:
   the index's own ceiling;
4. `POST /v1/match`, multipart `file`, the 1 MP JPEGs in turn (each upload is hashed,
   matched against the bank and recorded), against the baseline of hashing the same files
   here with `vigil.pipeline.hashing.hash_file` and the API's options, on one core.

The load generator is this script in client processes: keep-alive connections (opened
20 ms apart), requests encoded before the run, one request in flight per connection,
minimal HTTP/1.1 parsing (status, Content-Length, body), the latency of every request.
After a warm-up every client counts the answers completed in one common window. The server
uses both CPUs; the clients run beside it (unpinned), and their CPU time is part of what a
request costs on this machine, so the figures are a floor for a server with CPUs of its own.
No timing is asserted: compare the ratios from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

# The CPUs this process may use, before `_bench` pins it to one (for the in-process
# baselines): the server and the load generators get all of them back.
ALL_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

from _bench import cpu_description  # noqa: E402 (pins this process to one CPU)

# isort: split
import numpy as np  # noqa: E402 (after the pinning, so its BLAS starts with one thread)

CACHE_VERSION = "1"
"""Bump when the cached home's contents change (bank layout, images)."""
BANK_NAME = "bench-random"
NEAR_SHARE = 0.10
NEAR_MAX_FLIPS = 24
LOOKUP_GOAL = 3000.0
MATCH_GOAL = 150.0
_INSERT_CHUNK = 50_000


# --- The load generator (runs in its own processes: `api_load.py --client CONFIG`) --------


class _Load:
    """What one client process counts: answers completed inside [start, stop]."""

    def __init__(self, requests: list[bytes], start: float, stop: float) -> None:
        self.requests = requests
        self.start = start
        self.stop = stop
        self.latencies = array("d")
        self.statuses: Counter[int] = Counter()
        self.error_sample = ""
        self.hits = 0
        self.lost = 0
        self.warmup_errors = 0
        self.open = 0
        self.finished: asyncio.Future[None] | None = None

    def answered(self, status: int, latency: float, done: float, body: bytes | bytearray) -> None:
        ok = 200 <= status < 300
        if not ok and not self.error_sample:
            self.error_sample = f"{status}: {bytes(body[:300]).decode('latin-1')}"
        if done < self.start:
            self.warmup_errors += not ok
            return
        if done > self.stop:
            return
        self.latencies.append(latency)
        self.statuses[status] += 1
        if ok and b'"entry_id"' in body:
            self.hits += 1

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and self.finished is not None and not self.finished.done():
            self.finished.set_result(None)


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending one request at a time, callbacks only."""

    def __init__(self, load: _Load, first: int) -> None:
        self.load = load
        self.next = first
        self.buffer = bytearray()
        self.need = -1
        self.status = 0
        self.body_at = 0
        self.sent = 0.0
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport
        self.done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.load.open += 1

    def send(self) -> None:
        load = self.load
        now = time.monotonic()
        if now >= load.stop:
            self.finish()
            return
        self.sent = now
        self.transport.write(load.requests[self.next % len(load.requests)])
        self.next += 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.need < 0:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0 or not head.startswith(b"http/1.1 "):
                self.load.statuses[-1] += 1
                self.load.error_sample = self.load.error_sample or head[:300].decode("latin-1")
                self.finish()
                return
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end > 0 else len(head)])
            self.status = int(head[9:12])
            self.body_at = end + 4
            self.need = end + 4 + length
        if len(buffer) < self.need:
            return
        done = time.monotonic()
        self.load.answered(self.status, done - self.sent, done, buffer[self.body_at : self.need])
        if len(buffer) > self.need:  # more than one answer to one request
            self.load.statuses[-2] += 1
            self.finish()
            return
        buffer.clear()
        self.need = -1
        self.send()

    def finish(self) -> None:
        if not self.done and self.transport is not None:
            self.done = True
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done:
            self.done = True
            self.load.lost += 1
        self.load.closed()


def _same(connection: _Connection) -> _Connection:
    return connection


async def _drive(config: dict[str, Any], requests: list[bytes]) -> _Load:
    loop = asyncio.get_running_loop()
    load = _Load(requests, 0.0, 0.0)
    load.finished = loop.create_future()
    step = max(1, len(requests) // config["connections"])
    offset = config["offset"]
    connections = []
    for i in range(config["connections"]):
        # One at a time and spaced, as a growing client pool would: opened in one burst,
        # they would all queue at once and the first server worker to wake accepts them all.
        await asyncio.sleep(config["spacing"])
        connection = _Connection(load, offset + i * step)
        await loop.create_connection(partial(_same, connection), config["host"], config["port"])
        connections.append(connection)
    print("ready", flush=True)
    go = sys.stdin.readline().split()  # "go START STOP", time.monotonic() values
    load.start, load.stop = float(go[1]), float(go[2])
    for connection in connections:
        connection.send()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(load.finished, load.stop - time.monotonic() + 60)
    for connection in connections:
        connection.finish()
    return load


def client_main(config_path: str) -> int:
    """A load-generator process: connect, say `ready`, wait for `go`, send until stop."""
    config = json.loads(Path(config_path).read_text())
    if config["cpus"] and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, config["cpus"])  # undo `_bench`'s pinning
    requests = pickle.loads(Path(config["requests"]).read_bytes())
    run: Callable[[Coroutine[Any, Any, _Load]], _Load] = asyncio.run
    with contextlib.suppress(ImportError):  # uvicorn[standard] brings uvloop
        import uvloop

        run = uvloop.run
    load = run(_drive(config, requests))
    with open(config["latencies"], "wb") as out:
        load.latencies.tofile(out)
    summary = {
        "statuses": {str(k): v for k, v in load.statuses.items()},
        "error_sample": load.error_sample,
        "hits": load.hits,
        "lost": load.lost,
        "warmup_errors": load.warmup_errors,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["--client"]:
    sys.exit(client_main(sys.argv[2]))


# --- Set-up: the cached home (bank, index snapshot, images) --------------------------------

from sqlalchemy import insert, update  # noqa: E402

from vigil import __version__  # noqa: E402
from vigil.auth import create_token  # noqa: E402
from vigil.banks import create_bank  # noqa: E402
from vigil.config import Settings  # noqa: E402
from vigil.demo import synthetic_image  # noqa: E402
from vigil.index.synthetic import perturb, random_pdq  # noqa: E402
from vigil.pipeline.hashing import hash_file  # noqa: E402
from vigil.pipeline.matching import BankMatcher  # noqa: E402
from vigil.pipeline.online import online_options  # noqa: E402
from vigil.store import Bank, BankEntry, head_revision, open_database, utcnow  # noqa: E402
from vigil.store import value_digest as digest_of  # noqa: E402


def say(message: str) -> None:
    print(f"... {message}", flush=True)


def bank_hashes(size: int, seed: int) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return random_pdq(np.random.default_rng(seed), size)


def hex_rows(hashes: np.ndarray[Any, np.dtype[np.uint8]]) -> list[str]:
    text = hashes.tobytes().hex()
    return [text[i : i + 64] for i in range(0, len(text), 64)]


def cache_key(size: int, seed: int, images: int) -> str:
    return f"v{CACHE_VERSION}-{size}-{seed}-{images}-schema-{head_revision()}"


def build_home(folder: Path, size: int, seed: int, images: int) -> None:
    """A VIGIL_HOME with one bank of `size` random PDQ entries and its index snapshot, and
    `images` 1 MP JPEGs beside it."""
    settings = Settings(home=folder / "home")
    database = open_database(settings)
    try:
        started = time.perf_counter()
        values = hex_rows(bank_hashes(size, seed))
        with database.session() as session:
            bank_id = create_bank(session, BANK_NAME, trust="verified").id
        now = utcnow()
        with database.session() as session:
            connection = session.connection()
            for start in range(0, size, _INSERT_CHUNK):
                connection.execute(
                    insert(BankEntry),
                    [
                        {
                            "bank_id": bank_id,
                            "signal_type": "pdq",
                            "value": value,
                            "value_digest": digest_of(value),
                            "labels": [],
                            "added_at": now,
                            "false_positive_count": 0,
                        }
                        for value in values[start : start + _INSERT_CHUNK]
                    ],
                )
            session.execute(update(Bank).where(Bank.id == bank_id).values(updated=utcnow()))
        say(f"bank: {size:,} entries inserted in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        BankMatcher.from_database(database, cache_dir=settings.index_cache_dir)
        say(f"index snapshot built in {time.perf_counter() - started:.1f} s")
    finally:
        database.dispose()
    (folder / "images").mkdir()
    for number in range(images):
        synthetic_image(1000, 1000, number).save(
            folder / "images" / f"upload-{number:02d}.jpg", quality=90
        )


def cached_home(size: int, seed: int, images: int, rebuild: bool) -> tuple[Path, bool]:
    """The cached folder (`home/`, `images/`) and whether it was reused."""
    folder = Path(tempfile.gettempdir()) / f"vigil-api-bench-{cache_key(size, seed, images)}"
    if folder.is_dir() and (folder / "complete").exists() and not rebuild:
        return folder, True
    shutil.rmtree(folder, ignore_errors=True)
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    say(f"building the {size:,}-entry bank and {images} JPEGs in {folder} (cached for next time)")
    try:
        build_home(partial, size, seed, images)
        (partial / "complete").write_text(f"vigil {__version__}\n")
        partial.rename(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return folder, False


def lookup_values(size: int, seed: int, count: int) -> list[str]:
    """`count` query hashes: random (misses) and NEAR_SHARE near-copies of bank entries."""
    rng = np.random.default_rng(seed + 1)
    near = int(count * NEAR_SHARE)
    stored = bank_hashes(size, seed)[rng.choice(size, size=near, replace=False)]
    queries = np.concatenate([perturb(rng, stored, NEAR_MAX_FLIPS), random_pdq(rng, count - near)])
    return hex_rows(queries[rng.permutation(count)])


# --- Requests ----------------------------------------------------------------------------


def get_request(host: str, target: str, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()


def upload_request(host: str, token: str, path: Path) -> bytes:
    boundary = "vigil-bench-6b1f0c2a9e"
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="file";'
            f' filename="{path.name}"\r\nContent-Type: image/jpeg\r\n\r\n'.encode(),
            path.read_bytes(),
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    head = (
        f"POST /v1/match HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# --- The server and CPU accounting -------------------------------------------------------


def _unpin() -> None:
    if ALL_CPUS and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, ALL_CPUS)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(home: Path) -> dict[str, str]:
    """The environment without any VIGIL_* setting (defaults everywhere) but the home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env["VIGIL_HOME"] = str(home)
    return env


def cpu_ticks(pid: int) -> int:
    """User plus system CPU of one process, in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


def machine_ticks() -> tuple[int, int]:
    """(busy, all) clock ticks of every CPU since boot, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


class Server:
    """`vigil serve --workers N` on a free loopback port, its log in `log_path`."""

    def __init__(self, home: Path, workers: int, log_path: Path, extra_env: dict[str, str]) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        script = Path(sys.executable).with_name("vigil")
        command = (
            [str(script)]
            if script.exists()
            else [sys.executable, "-c", "from vigil.cli import app; app()"]
        )
        command += ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", str(workers)]
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env={**clean_environment(home), **extra_env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_unpin,
        )
        self.workers = workers

    def wait_ready(self, timeout: float) -> None:
        """Until /healthz answers and every worker has logged the end of its start-up."""
        deadline = time.monotonic() + timeout
        request = get_request(self.host, "/healthz", None)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vigil serve exited with status {self.process.returncode}")
            answered = False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn,
            ):
                conn.sendall(request)
                answered = conn.recv(64).startswith(b"HTTP/1.1 200")
            if answered and self.log_text().count("Application startup complete") >= self.workers:
                return
            time.sleep(0.25)
        raise RuntimeError(f"vigil serve was not ready within {timeout:.0f} s")

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# --- Running a load ----------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    ratio: str
    goal: str = "-"
    notes: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    count: int
    seconds: float
    latencies_ms: np.ndarray[Any, np.dtype[np.float64]]
    statuses: Counter[int]
    error_sample: str
    hits: int
    lost: int
    warmup_errors: int
    server_cpu_s: float
    worker_cpu_s: list[float]
    client_cpu_s: float
    machine_cpu_s: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def errors(self) -> int:
        return (
            sum(n for status, n in self.statuses.items() if not 200 <= status < 300)
            + self.lost
            + self.warmup_errors
        )

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.count else float("nan")


def run_load(
    server: Server,
    requests: list[bytes],
    *,
    connections: int,
    processes: int,
    warmup: float,
    duration: float,
    work: Path,
    spacing: float = 0.02,
) -> LoadResult:
    """Drive `server` with `connections` keep-alive connections spread over `processes`
    client processes; count what completes in one window of `duration` s after `warmup`."""
    requests_path = work / "requests.pickle"
    requests_path.write_bytes(pickle.dumps(requests))
    clients: list[tuple[subprocess.Popen[str], Path]] = []
    per_process = [
        connections // processes + (i < connections % processes) for i in range(processes)
    ]
    try:
        for number, count in enumerate(per_process):
            latencies_path = work / f"latencies-{number}.bin"
            config = {
                "host": "127.0.0.1",
                "port": server.port,
                "connections": count,
                "offset": number * (len(requests) // processes),
                "requests": str(requests_path),
                "latencies": str(latencies_path),
                "cpus": ALL_CPUS,
                "spacing": spacing,
            }
            config_path = work / f"client-{number}.json"
            config_path.write_text(json.dumps(config))
            process = subprocess.Popen(
                [sys.executable, __file__, "--client", str(config_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=_unpin,
            )
            clients.append((process, latencies_path))
        for process, _ in clients:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"a load generator failed to start ({line or 'no output'})")
        start = time.monotonic() + warmup
        stop = start + duration
        for process, _ in clients:
            assert process.stdin is not None
            process.stdin.write(f"go {start!r} {stop!r}\n")
            process.stdin.flush()
        server_pids = descendants(server.process.pid)
        time.sleep(max(0.0, start - time.monotonic()))
        before = {pid: cpu_ticks(pid) for pid in server_pids + [p.pid for p, _ in clients]}
        machine_before = machine_ticks()
        time.sleep(max(0.0, stop - time.monotonic()))
        after = {pid: cpu_ticks(pid) for pid in before}
        machine_after = machine_ticks()
        summaries = []
        for process, _ in clients:
            out, _ = process.communicate(timeout=120)
            if process.returncode:
                raise RuntimeError(f"a load generator failed (status {process.returncode})")
            summaries.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process, _ in clients:
            if process.poll() is None:
                process.kill()
                process.wait()
    tick = os.sysconf("SC_CLK_TCK")
    used = {pid: (after[pid] - before[pid]) / tick for pid in before}
    client_pids = {p.pid for p, _ in clients}
    latencies = np.concatenate([np.fromfile(path, dtype=np.float64) for _, path in clients])
    statuses: Counter[int] = Counter()
    for summary in summaries:
        statuses.update({int(k): v for k, v in summary["statuses"].items()})
    return LoadResult(
        count=int(latencies.size),
        seconds=duration,
        latencies_ms=latencies * 1000,
        statuses=statuses,
        error_sample=next((s["error_sample"] for s in summaries if s["error_sample"]), ""),
        hits=sum(s["hits"] for s in summaries),
        lost=sum(s["lost"] for s in summaries),
        warmup_errors=sum(s["warmup_errors"] for s in summaries),
        server_cpu_s=sum(v for pid, v in used.items() if pid not in client_pids),
        worker_cpu_s=sorted((v for pid, v in used.items() if pid not in client_pids), reverse=True)[
            : server.workers
        ],
        client_cpu_s=sum(v for pid, v in used.items() if pid in client_pids),
        machine_cpu_s=(machine_after[0] - machine_before[0]) / tick,
    )


def describe(result: LoadResult, connections: int, processes: int) -> str:
    per = result.count or 1
    workers = " + ".join(f"{s:.1f}" for s in result.worker_cpu_s)
    other = max(0.0, result.machine_cpu_s - result.server_cpu_s - result.client_cpu_s)
    ceiling = len(ALL_CPUS) * per / max(result.server_cpu_s, 1e-9)
    text = (
        f"{connections} connections in {processes} client process(es), {result.count:,} answers"
        f" in {result.seconds:.0f} s; CPU per request: server {result.server_cpu_s / per * 1e3:.2f}"
        f" ms, load generator {result.client_cpu_s / per * 1e3:.2f} ms; CPUs busy"
        f" {result.machine_cpu_s / result.seconds:.2f} of {len(ALL_CPUS)} (server workers"
        f" {workers} s, load generator {result.client_cpu_s:.1f} s, kernel and other processes"
        f" {other:.1f} s); at this server CPU per request, {len(ALL_CPUS)} CPUs given wholly to"
        f" the server would answer at most {ceiling:,.0f}/s"
    )
    if result.errors:
        text += (
            f"; ERRORS: statuses {dict(result.statuses)}, lost connections {result.lost},"
            f" during warm-up {result.warmup_errors}; first: {result.error_sample!r}"
        )
    return text


# --- In-process baselines (one core) -----------------------------------------------------


def timed_each(calls: Iterator[Callable[[], Any]], seconds: float) -> np.ndarray[Any, Any]:
    """Run calls one at a time until `seconds` have passed; each one's time in ms."""
    took = []
    deadline = time.perf_counter() + seconds
    for call in calls:
        started = time.perf_counter()
        call()
        ended = time.perf_counter()
        took.append(ended - started)
        if ended >= deadline:
            break
    return np.asarray(took) * 1000


def cycle(
    items: list[Any], make: Callable[[Any], Callable[[], Any]]
) -> Iterator[Callable[[], Any]]:
    while True:
        for item in items:
            yield make(item)


def in_process_lookups(settings: Settings, values: list[str], seconds: float) -> tuple[Row, bool]:
    """The lookups through `BankMatcher.lookup`, one at a time; and whether the index came
    from the cached snapshot (False: it was stale and has been rebuilt in `settings.home`)."""
    database = open_database(settings)
    try:
        matcher = BankMatcher.from_database(database, cache_dir=settings.index_cache_dir)
        hits = 0

        def one(value: str) -> Callable[[], Any]:
            def call() -> None:
                nonlocal hits
                (outcome,) = matcher.lookup("pdq", [value])
                hits += bool(outcome.matches)

            return call

        timed_each(cycle(values[:500], one), 0.5)  # warm-up
        hits = 0
        ms = timed_each(cycle(values, one), seconds)
    finally:
        database.dispose()
    row = Row(
        "3. `BankMatcher.lookup` in-process, one core (the index's ceiling)",
        ms.size / (ms.sum() / 1000),
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        0,
        "-",
    )
    row.notes.append(f"{ms.size:,} lookups, {100 * hits / ms.size:.1f}% hits")
    return row, matcher.from_snapshot


def in_process_hashing(settings: Settings, paths: list[Path], seconds: float) -> Row:
    options = online_options(settings.media_limits, settings.vpdq_seconds_per_hash)
    limits = settings.media_limits

    def one(path: Path) -> Callable[[], Any]:
        return lambda: hash_file(path, limits, options)

    timed_each(cycle(paths, one), 0.5)  # warm-up
    ms = timed_each(cycle(paths, one), seconds)
    return Row(
        "4b. `hash_file` in-process, one core (the baseline of 4)",
        ms.size / (ms.sum() / 1000),
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        0,
        "1.00x",
    )


# --- Report ------------------------------------------------------------------------------


def http_row(name: str, result: LoadResult, ratio: str, goal: str) -> Row:
    return Row(
        name, result.rate, result.percentile(50), result.percentile(99), result.errors, ratio, goal
    )


def goal_text(rate: float, goal: float, unit: str) -> str:
    verdict = "met" if rate >= goal else f"MISSED ({rate / goal:.0%} of it)"
    return f">= {goal:,.0f} {unit}/s: {verdict}"


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | requests/s | p50 ms | p99 ms | errors | ratio to baseline | goal |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.scenario} | {r.rate:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} |"
            f" {r.ratio} | {r.goal} |"
        )
    return "\n".join(lines)


def versions() -> str:
    import fastapi
    import uvicorn

    try:
        loop = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        loop = "asyncio loop"
    return (
        f"vigil {__version__}, uvicorn {uvicorn.__version__}, fastapi {fastapi.__version__}, {loop}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bank-size", type=int, default=1_000_000, help="bank entries (1000000)")
    parser.add_argument("--images", type=int, default=50, help="distinct 1 MP JPEGs (50)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (2)")
    parser.add_argument("--connections", type=int, default=32, help="for healthz and lookups (32)")
    parser.add_argument("--upload-connections", type=int, default=16, help="for uploads (16)")
    parser.add_argument("--clients", type=int, default=1, help="load-generator processes (1)")
    parser.add_argument("--queries", type=int, default=50_000, help="distinct lookups (50000)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--scenarios", default="healthz,lookup,match", help="HTTP scenarios to run (all three)"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached bank")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="VIGIL_NAME=VALUE",
        help="a setting for the server only, to try a change (repeatable; default: none, every"
        " setting at its default)",
    )
    args = parser.parse_args(argv)
    server_env = dict(item.split("=", 1) for item in args.server_env)
    scenarios = {name.strip() for name in args.scenarios.split(",")}
    for name in [k for k in os.environ if k.startswith("VIGIL_")]:
        del os.environ[name]  # Vigil's defaults, whatever the caller's environment says
    began = time.perf_counter()
    print(f"Machine: {cpu_description()}; {versions()}", flush=True)
    print(
        f"(this process is pinned for the in-process rows; the server's {args.workers} workers"
        f" and the load generators run unpinned on all {len(ALL_CPUS)} CPUs)",
        flush=True,
    )
    if server_env:
        print(f"(server settings changed from the defaults: {server_env})", flush=True)
    cache, reused = cached_home(args.bank_size, args.seed, args.images, args.rebuild)
    if reused:
        say(f"reusing the cached bank and images in {cache} (--rebuild to make them again)")
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vigil-api-run-") as scratch:
        work = Path(scratch)
        home = work / "home"
        started = time.perf_counter()
        shutil.copytree(cache / "home", home)
        say(f"copied the cached home for this run in {time.perf_counter() - started:.1f} s")
        settings = Settings(home=home)
        database = open_database(settings)
        try:
            with database.session() as session:
                _, token = create_token(
                    session,
                    "bench",
                    ["admin"],
                    created_by="bench",
                    rate_limit_per_minute=10_000_000,
                )
        finally:
            database.dispose()
        images = sorted((cache / "images").glob("*.jpg"))
        values = lookup_values(args.bank_size, args.seed, args.queries)

        say("3. in-process lookups (one core)")
        index_row, current = in_process_lookups(settings, values, 3.0)
        if not current:  # the index's snapshot format changed: keep the rebuilt one
            say("the cached index snapshot was stale; rebuilt, and cached again")
            shutil.rmtree(cache / "home" / "index")
            shutil.copytree(settings.index_cache_dir, cache / "home" / "index")
        say("4b. in-process hashing (one core)")
        hash_row = in_process_hashing(settings, images, 3.0)

        server = Server(home, args.workers, work / "server.log", server_env)
        try:
            say(f"starting vigil serve --workers {args.workers} on {server.host}")
            try:
                server.wait_ready(120)
            except RuntimeError as error:
                print(f"{error}; its log ends with:\n{server.log_tail()}", file=sys.stderr)
                return 1
            loads: dict[str, LoadResult] = {}
            plan: list[tuple[str, list[bytes], int]] = [
                ("healthz", [get_request(server.host, "/healthz", None)], args.connections),
                (
                    "lookup",
                    [
                        get_request(server.host, f"/v1/lookup?signal_type=pdq&value={v}", token)
                        for v in values
                    ],
                    args.connections,
                ),
                (
                    "match",
                    [upload_request(server.host, token, path) for path in images],
                    args.upload_connections,
                ),
            ]
            for name, requests, connections in [p for p in plan if p[0] in scenarios]:
                say(f"HTTP {name}: {args.warmup:.0f} s warm-up, {args.duration:.0f} s measured")
                loads[name] = result = run_load(
                    server,
                    requests,
                    connections=connections,
                    processes=args.clients,
                    warmup=args.warmup,
                    duration=args.duration,
                    work=work,
                )
                notes.append(f"{name}: {describe(result, connections, args.clients)}")
                if result.errors:
                    print(f"{name}: errors; the server's log ends with:\n{server.log_tail()}")
        finally:
            server.stop()
        health, lookup, match = (loads.get(name) for name in ("healthz", "lookup", "match"))
        if health:
            rows.append(
                http_row("1. `GET /healthz`, no token (the baseline of 2)", health, "1.00x", "-")
            )
        if lookup:
            rows.append(
                http_row(
                    f"2. `GET /v1/lookup` PDQ, {args.bank_size:,}-entry bank",
                    lookup,
                    f"{lookup.rate / health.rate:.2f}x healthz" if health else "-",
                    goal_text(lookup.rate, LOOKUP_GOAL, "lookups"),
                )
            )
            notes.append(
                f"lookup: {100 * lookup.hits / max(1, lookup.count):.1f}% of the answered lookups"
                f" had a match (the near-copies are {NEAR_SHARE:.0%} of the queries);"
                f" {index_row.notes[0]} in-process; HTTP is"
                f" {lookup.rate / index_row.rate:.2f}x the in-process rate of one core"
            )
        rows.append(index_row)
        if match:
            rows.append(
                http_row(
                    "4. `POST /v1/match` 1 MP JPEG: hash, match, record",
                    match,
                    f"{match.rate / hash_row.rate:.2f}x 4b",
                    goal_text(match.rate, MATCH_GOAL, "upload-matches"),
                )
            )
            size = np.mean([path.stat().st_size for path in images]) / 1024
            notes.append(f"match: the {len(images)} JPEGs average {size:,.0f} KiB")
        rows.append(hash_row)
    print()
    print(table(rows))
    print()
    for note in notes:
        print(f"- {note}")
    missed = [r.scenario for r in rows if "MISSED" in r.goal]
    if missed:
        print(f"- goal missed: {'; '.join(missed)} (see docs/performance.md, HTTP API)")
    print(f"- the whole run took {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
