"""PDQ index speed on one core: Vigil's exact index against faiss multi-index hashing.

Run with `make bench` (or `python benchmarks/index.py [--sizes 1000000,10000000]`).

Data: synthetic clustered PDQ sets (random bits only, never real hashes): half singletons,
half in clusters of geometric size (mean 4) within 0-40 bits of a random centre, plus one
cluster of 500 near-copies per 200,000 hashes (a viral picture). Queries, in equal parts:
stored cluster members with 0-16 further bits flipped ("member"), and random hashes
("random", the common case of an upload that matches nothing). Threshold 31.

Indexes, built and measured in the same run, on the same data and queries:
  vigil          `vigil.index.PDQIndex` (exact multi-index hashing, table width chosen by
                 size: 11 x 23 bits at 10M), one segment from a bulk build;
  faiss 16x16    faiss `IndexBinaryMultiHash(256, 16, 16)`, nflip 1 (exact at 31: 16 tables,
                 some within 1 bit), the open-source Hasher-Matcher-Actioner's setting;
  faiss 11x23    `IndexBinaryMultiHash(256, 11, 23)`, nflip 2 (exact at 31), the wider
                 setting of the architecture notes; only up to 2M hashes (its hash maps take
                 several GB at 10M).

Measured: build time; resident memory per hash (growth of the process's anonymous RSS from
before the build to after it, and for vigil also the bytes of its arrays); single-query
latency p50/p99 over all queries (and p50 per kind) after a warm-up, the public search call
one query at a time; batched throughput (all queries in one call); recall against a numpy
brute force on a sample of queries (and, for vigil, that no extra or wrong-distance result
appears). For vigil also: snapshot save and load time and size, and the latency of single
add/remove/disable updates on the full index.

The process is pinned to one CPU before numpy and faiss are imported, and faiss uses one
OpenMP thread. No timing is asserted anywhere; the machine may be shared, so compare ratios
measured in the same run.
"""

from __future__ import annotations

import os
import sys


def _exact_memory_accounting() -> None:
    """Re-run with glibc returning every freed allocation of 64 KiB or more to the system,
    so the growth of resident memory over a build is the index's size, not the reuse of
    memory freed earlier (glibc's adaptive threshold would keep up to 32 MiB blocks)."""
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None and sys.platform == "linux":
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
        os.environ["MALLOC_TRIM_THRESHOLD_"] = "131072"
        os.execv(sys.executable, [sys.executable, *sys.argv])


_exact_memory_accounting()
from _bench import cpu_description  # noqa: E402 (pins this process to one CPU)

os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402 (pinning must precede numpy's import)
import gc  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from vigil.index import PDQIndex  # noqa: E402
from vigil.index._bits import to_words  # noqa: E402
from vigil.index.pdq import popcount_rows  # noqa: E402
from vigil.index.synthetic import clustered_pdq, perturb, random_pdq  # noqa: E402

THRESHOLD = 31
WIDE_FAISS_MAX = 2_000_000


def rss_anon() -> int:
    """Anonymous resident memory of this process, in bytes (heap and numpy arrays)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0  # pragma: no cover - not Linux


@dataclass
class Result:
    size: int
    name: str
    build_s: float
    rss_per_hash: float
    array_per_hash: float | None
    p50_ms: float
    p99_ms: float
    p50_member_ms: float
    p50_random_ms: float
    batch_qps: float
    recall: float
    exact: bool | None
    notes: list[str] = field(default_factory=list)


class Method:
    name = ""

    def build(self, hashes: NDArray[np.uint8]) -> None:
        raise NotImplementedError

    def one(self, query: NDArray[np.uint8]) -> Any:
        raise NotImplementedError

    def batch(self, queries: NDArray[np.uint8]) -> list[set[int]]:
        raise NotImplementedError

    def array_bytes(self) -> float | None:
        return None

    def close(self) -> None:
        pass


class Vigil(Method):
    name = "vigil"

    def build(self, hashes: NDArray[np.uint8]) -> None:
        self.index = PDQIndex.build(np.arange(hashes.shape[0], dtype=np.int64), hashes)

    def one(self, query: NDArray[np.uint8]) -> list[tuple[int, int]]:
        return self.index.search(query, THRESHOLD)[0]

    def batch(self, queries: NDArray[np.uint8]) -> list[set[int]]:
        return [{entry for entry, _ in hits} for hits in self.index.search(queries, THRESHOLD)]

    def array_bytes(self) -> float:
        return float(self.index.nbytes)

    def close(self) -> None:
        del self.index


class FaissMultiHash(Method):
    def __init__(self, tables: int, bits: int, nflip: int) -> None:
        self.tables, self.bits, self.nflip = tables, bits, nflip
        self.name = f"faiss {tables}x{bits} nflip {nflip}"

    def build(self, hashes: NDArray[np.uint8]) -> None:
        self.index = faiss.IndexBinaryMultiHash(256, self.tables, self.bits)
        self.index.nflip = self.nflip
        self.index.add(hashes)

    def one(self, query: NDArray[np.uint8]) -> Any:
        return self.index.range_search(query, THRESHOLD + 1)  # faiss keeps d < radius

    def batch(self, queries: NDArray[np.uint8]) -> list[set[int]]:
        limits, _, ids = self.index.range_search(queries, THRESHOLD + 1)
        return [set(ids[limits[i] : limits[i + 1]].tolist()) for i in range(queries.shape[0])]

    def close(self) -> None:
        del self.index


def brute_force(hashes: NDArray[np.uint8], queries: NDArray[np.uint8]) -> list[dict[int, int]]:
    """Exact answers by scanning every hash: per query, {row: distance}."""
    words, query_words = to_words(hashes), to_words(queries)
    found: list[dict[int, int]] = [{} for _ in range(queries.shape[0])]
    block = max(1, (1 << 21) // max(1, queries.shape[0]))
    for start in range(0, words.shape[0], block):
        chunk = words[start : start + block]
        x = (query_words[:, None, :] ^ chunk[None, :, :]).reshape(-1, 4)
        dist = popcount_rows(x).reshape(queries.shape[0], -1)
        q, r = np.nonzero(dist <= THRESHOLD)
        for qi, ri, di in zip(q.tolist(), r.tolist(), dist[q, r].tolist(), strict=True):
            found[qi][start + ri] = di
    return found


def make_data(
    size: int, seed: int, queries: int
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    rng = np.random.default_rng(seed)
    hashes, cluster = clustered_pdq(
        rng, size, large_clusters=max(1, size // 200_000), large_cluster_size=500
    )
    members = np.flatnonzero(cluster >= 0)
    half = queries // 2
    near = perturb(rng, hashes[rng.choice(members, size=half)], 16)
    far = random_pdq(rng, queries - half)
    kinds = np.zeros(queries, dtype=bool)
    kinds[:half] = True  # True: member with noise
    order = rng.permutation(queries)
    return hashes, np.concatenate([near, far])[order], kinds[order]


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = call()
    return time.perf_counter() - started, value


def measure(
    method: Method,
    hashes: NDArray[np.uint8],
    queries: NDArray[np.uint8],
    member: NDArray[np.bool_],
    sample: NDArray[np.intp],
    truth: list[dict[int, int]],
) -> Result:
    gc.collect()
    before = rss_anon()
    build_s, _ = timed(lambda: method.build(hashes))
    gc.collect()
    rss = (rss_anon() - before) / hashes.shape[0]
    arrays = method.array_bytes()
    for i in range(min(50, queries.shape[0])):  # warm-up
        method.one(queries[i : i + 1])
    latencies = np.empty(queries.shape[0])
    for i in range(queries.shape[0]):
        started = time.perf_counter()
        method.one(queries[i : i + 1])
        latencies[i] = time.perf_counter() - started
    batch_runs = [timed(lambda: method.batch(queries)) for _ in range(3)]
    batch_s = float(np.median([seconds for seconds, _ in batch_runs]))
    found = method.batch(queries[sample])
    expected = [set(t) for t in truth]
    hits = sum(len(f & e) for f, e in zip(found, expected, strict=True))
    total = sum(len(e) for e in expected)
    exact = None
    if isinstance(method, Vigil):
        answers = [dict(method.one(queries[i : i + 1])) for i in sample.tolist()]
        exact = answers == truth
    ms = latencies * 1000
    return Result(
        size=hashes.shape[0],
        name=method.name,
        build_s=build_s,
        rss_per_hash=rss,
        array_per_hash=None if arrays is None else arrays / hashes.shape[0],
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        p50_member_ms=float(np.percentile(ms[member], 50)),
        p50_random_ms=float(np.percentile(ms[~member], 50)),
        batch_qps=queries.shape[0] / batch_s,
        recall=hits / total if total else 1.0,
        exact=exact,
    )


def vigil_extras(hashes: NDArray[np.uint8], queries: NDArray[np.uint8]) -> list[str]:
    """Snapshot save/load and update latencies on a full-size index."""
    notes = []
    index = PDQIndex.build(np.arange(hashes.shape[0], dtype=np.int64), hashes)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pdq.vidx"
        save_s, _ = timed(lambda: index.save(path))
        size = path.stat().st_size
        gc.collect()
        load_s, loaded = timed(lambda: PDQIndex.load(path))
        same = loaded.search(queries[:50], THRESHOLD) == index.search(queries[:50], THRESHOLD)
        del loaded
    notes.append(
        f"snapshot: {size / 2**20:,.0f} MiB ({size / hashes.shape[0]:.0f} bytes/hash), "
        f"save {save_s:.2f} s, load (read + SHA-256 check + validation) {load_s:.2f} s, "
        f"answers identical after load: {same}"
    )
    rng = np.random.default_rng(5)
    count = 1000
    new_ids = np.arange(hashes.shape[0], hashes.shape[0] + count, dtype=np.int64)
    new_hashes = random_pdq(rng, count)

    def add_each() -> None:
        for i in range(count):
            index.add(new_ids[i : i + 1], new_hashes[i : i + 1])

    add_s, _ = timed(add_each)
    victims = rng.choice(hashes.shape[0], size=count, replace=False).astype(np.int64)
    off_s, _ = timed(lambda: [index.set_enabled(victims[i : i + 1], False) for i in range(count)])
    remove_s, _ = timed(lambda: [index.remove(victims[i : i + 1]) for i in range(count)])
    notes.append(
        f"updates on the full index, one id per call (visible to the next search, no rebuild):"
        f" add {add_s / count * 1e6:.0f} us, disable {off_s / count * 1e6:.0f} us, "
        f"remove {remove_s / count * 1e6:.0f} us; segments after: "
        f"{[s['rows'] for s in index.stats()['segments']]} + delta {index.stats()['delta']}"
    )
    segment = index._segments[0]
    plan = segment.plan(THRESHOLD)
    notes.append(
        f"vigil layout: {segment.tables} tables x {segment.width} bits, "
        f"{plan.size if plan else 0} probes per query at t={THRESHOLD}"
    )
    return notes


def table(results: list[Result]) -> str:
    lines = [
        "| hashes | index | build s | resident bytes/hash | p50 ms | p99 ms"
        " | p50 member / random ms | batch queries/s | recall"
        " | p50 speed-up vs faiss 16x16 | memory vs faiss 16x16 |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    baseline = {r.size: r for r in results if r.name.startswith("faiss 16x16")}
    for r in results:
        base = baseline.get(r.size)
        speed = f"{base.p50_ms / r.p50_ms:.1f}x" if base else "-"
        memory = f"{r.rss_per_hash / base.rss_per_hash:.2f}x" if base else "-"
        arrays = f" ({r.array_per_hash:.0f} in arrays)" if r.array_per_hash else ""
        exact = " (exact)" if r.exact else (" (NOT exact)" if r.exact is False else "")
        lines.append(
            f"| {r.size:,} | {r.name} | {r.build_s:.1f} | {r.rss_per_hash:.0f}{arrays} | "
            f"{r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.p50_member_ms:.3f} / {r.p50_random_ms:.3f} | "
            f"{r.batch_qps:,.0f} | {100 * r.recall:.2f}%{exact} | {speed} | {memory} |"
        )
    return "\n".join(lines)


def machine() -> str:
    return f"{cpu_description()}, numpy {np.__version__}, faiss {faiss.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="1000000,10000000",
        help="comma-separated numbers of stored hashes (default 1000000,10000000; 10M needs"
        " about 6 GB of memory)",
    )
    parser.add_argument("--queries", type=int, default=1000, help="queries (default 1000)")
    parser.add_argument(
        "--recall-sample", type=int, default=200, help="queries checked by brute force (200)"
    )
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--no-faiss-wide", action="store_true", help="skip faiss 11x23")
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    faiss.omp_set_num_threads(1)
    print(f"Machine: {machine()}", flush=True)
    results: list[Result] = []
    notes: list[str] = []
    for size in sizes:
        print(f"... {size:,} hashes: generating", flush=True)
        hashes, queries, member = make_data(size, args.seed, args.queries)
        rng = np.random.default_rng(args.seed + 1)
        half = args.recall_sample // 2
        sample = np.concatenate(
            [
                rng.choice(np.flatnonzero(member), size=half, replace=False),
                rng.choice(np.flatnonzero(~member), size=args.recall_sample - half, replace=False),
            ]
        )
        print(f"... {size:,}: brute force on {sample.size} queries", flush=True)
        truth = brute_force(hashes, queries[sample])
        matches = sum(len(t) for t in truth)
        methods: list[Method] = [Vigil(), FaissMultiHash(16, 16, 1)]
        if size <= WIDE_FAISS_MAX and not args.no_faiss_wide:
            methods.append(FaissMultiHash(11, 23, 2))
        for method in methods:
            print(f"... {size:,}: {method.name}", flush=True)
            results.append(measure(method, hashes, queries, member, sample, truth))
            method.close()
            gc.collect()
        print(f"... {size:,}: vigil snapshot and updates", flush=True)
        notes += [f"{size:,}: {note}" for note in vigil_extras(hashes, queries)]
        notes.append(
            f"{size:,}: brute-force sample {sample.size} queries, {matches} true matches "
            f"(member queries: {sum(len(t) for t in truth[:half])})"
        )
        del hashes, queries
        gc.collect()
    print()
    print(table(results))
    print()
    for note in notes:
        print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
