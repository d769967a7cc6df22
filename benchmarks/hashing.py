"""PDQ hashing speed on one core: the open-source HMA path against Vigil, exact and fast.

Run with `make bench` (or `python benchmarks/hashing.py`). Methods, on the same files in one
run:

  (a) hma    the Hasher-Matcher-Actioner's hashing path, `threatexchange`'s
             `pdq_from_file` (Pillow full decode, pdqhash on the full-resolution pixels);
  (b) exact  Vigil with the fast decode off: `open_media` (stat, size limits, type sniffing
             from the first bytes), then the PDQ signal's `compute(fast=False)` (header
             check, full RGB decode, pdqhash); MD5/SHA-256 are not included;
  (c) fast   the same with `compute(fast=True)`: large JPEGs decoded as luma at a reduced
             DCT scale, PDQ's 64 x 64 downsample computed from it, pdqhash on that.

Sets: the 300 photos of `../shared/data/photos`, the 1.6 MP bridge JPEGs (1600 x 1004, both
orientations) and the 12 MP JPEGs (4032 x 3024, `exif-rotn`) of `../shared/conformance/pdq`.

The process is pinned to one CPU before numpy is imported (so its BLAS uses one thread too);
every method is warmed up on every file first; then each repetition times every method over
the whole set, the order of the methods rotating from one repetition to the next; the median
over repetitions is reported. The drift of (c) from (b) is printed below the table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pdqhash
import PIL
from PIL import Image, features
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

from _bench import cpu_description  # first: pins this process to one CPU
from vigil.config import MediaLimits
from vigil.media import open_media
from vigil.signals import get_signal_type
from vigil.signals.pdq import hamming

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
PDQ_DIR = SHARED / "conformance" / "pdq"
PHOTOS_DIR = SHARED / "data" / "photos"
LIMITS = MediaLimits()
PDQ = get_signal_type("pdq")

Hasher = Callable[[Path], tuple[str, int]]


def hma(path: Path) -> tuple[str, int]:
    value, quality = pdq_from_file(path)
    return value, int(quality)


def vigil_exact(path: Path) -> tuple[str, int]:
    signal = PDQ.compute(open_media(path, LIMITS), fast=False)
    return signal.value, signal.quality or 0


def vigil_fast(path: Path) -> tuple[str, int]:
    signal = PDQ.compute(open_media(path, LIMITS), fast=True)
    return signal.value, signal.quality or 0


METHODS: dict[str, Hasher] = {
    "(a) HMA pdq_from_file": hma,
    "(b) Vigil exact decode": vigil_exact,
    "(c) Vigil fast decode": vigil_fast,
}


@dataclass
class Result:
    set_name: str
    images: int
    method: str
    per_second: float
    ms_per_image: float
    ratio: float


def jpeg_sizes(directory: Path, sizes: set[tuple[int, int]]) -> list[Path]:
    found = []
    for path in sorted(directory.rglob("*.jpg")):
        with Image.open(path) as image:
            if image.size in sizes and image.mode == "RGB":
                found.append(path)
    return found


def image_sets() -> dict[str, list[Path]]:
    return {
        "photos (481x321)": sorted(PHOTOS_DIR.glob("*.jpg")),
        "1.6 MP JPEG (1600x1004)": jpeg_sizes(PDQ_DIR, {(1600, 1004), (1004, 1600)}),
        "12 MP JPEG (4032x3024)": jpeg_sizes(PDQ_DIR, {(4032, 3024), (3024, 4032)}),
    }


def time_once(method: Hasher, paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        method(path)
    return time.perf_counter() - started


def bench_set(
    set_name: str, paths: list[Path], repeats: int
) -> tuple[list[Result], dict[str, list[int]]]:
    names = list(METHODS)
    hashes = {name: [METHODS[name](path) for path in paths] for name in names}  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            seconds[name].append(time_once(METHODS[name], paths))
    median = {name: statistics.median(seconds[name]) for name in names}
    baseline = median[names[0]]
    results = [
        Result(
            set_name,
            len(paths),
            name,
            len(paths) / median[name],
            1000 * median[name] / len(paths),
            baseline / median[name],
        )
        for name in names
    ]
    exact, fast = hashes[names[1]], hashes[names[2]]
    drift = {
        "all": [hamming(e[0], f[0]) for e, f in zip(exact, fast, strict=True)],
        "quality>=80": [
            hamming(e[0], f[0]) for e, f in zip(exact, fast, strict=True) if e[1] >= 80
        ],
        "hma_vs_exact": [hamming(h[0], e[0]) for h, e in zip(hashes[names[0]], exact, strict=True)],
    }
    return results, drift


def table(results: list[Result]) -> str:
    lines = [
        "| set | images | method | img/s | ms/img | ratio to (a) |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.set_name} | {r.images} | {r.method} | {r.per_second:.1f} | "
            f"{r.ms_per_image:.2f} | {r.ratio:.2f}x |"
        )
    return "\n".join(lines)


def describe_drift(set_name: str, drift: dict[str, list[int]]) -> str:
    values = drift["all"]
    return (
        f"| {set_name} | {len(values)} | {statistics.fmean(values):.2f} | "
        f"{np.percentile(values, 99):.1f} | {max(values)} | "
        f"{max(drift['quality>=80'], default=0)} | {max(drift['hma_vs_exact'])} |"
    )


def machine() -> str:
    return (
        f"{cpu_description()}, "
        f"Pillow {PIL.__version__} "
        f"(libjpeg-turbo {features.version('libjpeg_turbo')}), numpy {np.__version__}, "
        f"pdqhash {pdqhash.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed passes per set (7)")
    args = parser.parse_args(argv)
    if not PDQ_DIR.is_dir() or not PHOTOS_DIR.is_dir():
        print(
            f"benchmarks/hashing.py needs the shared material at {SHARED} "
            "(`../shared` beside the repository root: conformance/pdq and data/photos); "
            "it is not there, so there is nothing to measure.",
            file=sys.stderr,
        )
        return 2
    print(f"Machine: {machine()}", flush=True)
    results: list[Result] = []
    drifts = []
    for set_name, paths in image_sets().items():
        if not paths:
            print(f"no images for {set_name}", file=sys.stderr)
            return 2
        print(f"... {set_name}: {len(paths)} images x {args.repeats} passes", flush=True)
        set_results, drift = bench_set(set_name, paths, args.repeats)
        results.extend(set_results)
        drifts.append(describe_drift(set_name, drift))
    print()
    print(table(results))
    print()
    print("Drift of (c) from (b), bits; and (a) from (b):")
    print()
    print("| set | images | mean | p99 | max | max, quality >= 80 | max (a) vs (b) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(drifts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
