"""The scan job: hash -> look up in the banks -> record, for files in bulk.

Hashing runs in worker processes (`hash_files`); matching and recording run here in batches,
against one `BankMatcher` built at the start. A bad file becomes an error row; nothing stops
the batch.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from vigil.config import MediaLimits
from vigil.pipeline.hashing import HashOptions, HashRecord, hash_files
from vigil.pipeline.matching import BankMatcher, MatchOutcome
from vigil.pipeline.recording import HashRecorder

SCAN_SIGNALS = ("md5", "sha1", "sha256", "pdq", "vpdq")
"""What a scan computes: every signal a bank can hold for the file's media type (SHA-1 is
free, read in the same pass as MD5 and SHA-256, and is what many law-enforcement lists use)."""


@dataclass(frozen=True)
class ScanResult:
    record: HashRecord
    outcome: MatchOutcome

    def as_json(self) -> dict[str, Any]:
        """The `vigil hash` record plus `matches` (suppressed matches are not listed)."""
        return {**self.record.as_json(), "matches": [m.as_json() for m in self.outcome.matches]}


@dataclass
class ScanSummary:
    """Counts for the summary line. `failed` counts files with an error record; such a file
    can still match by its exact hashes, and is then counted as matched too."""

    scanned: int = 0
    matched: int = 0
    suppressed: int = 0
    failed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)

    def add(self, result: ScanResult) -> None:
        self.scanned += 1
        if result.record.error:
            self.failed += 1
            self.failures[result.record.error.code.value] += 1
        if result.outcome.matches:
            self.matched += 1
        elif result.outcome.suppressing:
            self.suppressed += 1

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        detail = ", ".join(f"{code}={n}" for code, n in sorted(self.failures.items()))
        return (
            f"scanned={self.scanned} matched={self.matched} suppressed={self.suppressed} "
            f"failed={self.failed}"
            + (f" (errors: {detail})" if detail else "")
            + f" rate={self.scanned / elapsed:.1f} files/s"
        )


def scan_options(*, fast_decode: bool, vpdq_seconds_per_hash: float) -> HashOptions:
    """Hash options for matching: every bankable signal, and PDQ's query-side variants."""
    return HashOptions(
        signals=SCAN_SIGNALS,
        fast_decode=fast_decode,
        vpdq_seconds_per_hash=vpdq_seconds_per_hash,
        pdq_query_variants=True,
    )


def scan_files(
    paths: Iterable[Path],
    limits: MediaLimits,
    options: HashOptions,
    matcher: BankMatcher,
    recorder: HashRecorder | None,
    *,
    workers: int = 1,
    batch_size: int = 64,
) -> Iterator[ScanResult]:
    """Scan files in input order; results are recorded (when `recorder` is given) as they go."""
    records = hash_files(paths, limits, options, workers=workers)
    while batch := list(islice(records, batch_size)):
        for record, outcome in zip(batch, matcher.match(batch), strict=True):
            if recorder is not None:
                recorder.add(record, outcome)
            yield ScanResult(record, outcome)
