"""Fast decode against the full decode: the reference's 10-bit rule, and the drift measured.

The fast route (large JPEGs: luma only, reduced DCT scale, PDQ's 64 x 64 downsample computed
from it) must stay within 10 bits of the exact full-resolution hash for every image whose
full-decode quality is >= 80 (the reference's rule across decoders and resizers). Every other
image takes the exact route, so its hash must be identical.

Sets: every image of `conformance/pdq`, the 300 photos of `data/photos` (none of which is
large enough for the fast route), and those photos upscaled to 1.4 MP and 9.9 MP JPEGs (a
synthetic set generated here, so that the fast route is measured on more than a few scenes).
A self-contained synthetic set runs where `../shared` is absent. The distribution of the
distance is printed (`pytest -s`), recorded as a `fast_decode_drift` property (JUnit XML)
and repeated in the terminal summary.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vigil.config import MediaLimits
from vigil.media import open_media
from vigil.media.images import _wants_fast_route, open_image
from vigil.signals import get_signal_type
from vigil.signals.pdq import hamming

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
PDQ_DIR = SHARED / "conformance" / "pdq"
PHOTOS_DIR = SHARED / "data" / "photos"
RULE_BITS = 10
RULE_MIN_QUALITY = 80
LIMITS = MediaLimits()
UPSCALED_PHOTOS = 16  # every 6th photo; alternately x3 (~1.4 MP) and x8 (~9.9 MP)


@dataclass(frozen=True)
class Measure:
    path: str
    fast_route: bool
    quality: int
    distance: int


@dataclass(frozen=True)
class Drift:
    images: int
    fast_route: int
    ruled: int
    """Images of full-decode quality >= 80, to which the 10-bit rule applies."""
    mean: float
    p99: float
    max: int
    fast_route_mean: float
    fast_route_max: int
    histogram: dict[int, int]

    def line(self, name: str) -> str:
        return (
            f"fast decode drift [{name}]: {self.images} images, {self.fast_route} took the fast"
            f" route, {self.ruled} with quality >= {RULE_MIN_QUALITY}; distance to the full"
            f" decode: mean {self.mean:.2f}, p99 {self.p99:.1f}, max {self.max} bits"
            f" (fast route only: mean {self.fast_route_mean:.2f}, max {self.fast_route_max});"
            f" histogram {self.histogram}"
        )


def measure(paths: Iterable[Path], root: Path) -> list[Measure]:
    pdq = get_signal_type("pdq")
    measures = []
    for path in paths:
        media = open_media(path, LIMITS)
        exact = pdq.compute(media, fast=False)
        fast = pdq.compute(media, fast=True)
        with open_image(path, LIMITS) as image:
            fast_route = _wants_fast_route(image, LIMITS.fast_decode_short_side)
        assert exact.quality is not None
        measures.append(
            Measure(
                path.relative_to(root).as_posix(),
                fast_route,
                exact.quality,
                hamming(exact.value, fast.value),
            )
        )
    return measures


def summarise(measures: list[Measure]) -> Drift:
    distances = [m.distance for m in measures]
    fast = [m.distance for m in measures if m.fast_route] or [0]
    return Drift(
        images=len(measures),
        fast_route=sum(m.fast_route for m in measures),
        ruled=sum(m.quality >= RULE_MIN_QUALITY for m in measures),
        mean=statistics.fmean(distances),
        p99=float(np.percentile(distances, 99)),
        max=max(distances),
        fast_route_mean=statistics.fmean(fast),
        fast_route_max=max(fast),
        histogram={d: distances.count(d) for d in sorted(set(distances))},
    )


class _DriftSummary:
    """Collects the drift lines and prints them in pytest's terminal summary."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.section("fast decode drift")
        for line in self.lines:
            terminalreporter.write_line(line)


def report(
    request: pytest.FixtureRequest,
    record_property: pytest.RecordProperty,
    name: str,
    drift: Drift,
) -> None:
    line = drift.line(name)
    print(line)
    record_property("fast_decode_drift", json.dumps({"set": name, **asdict(drift)}))
    manager = request.config.pluginmanager
    summary = manager.get_plugin("vigil-fast-decode-drift")
    if summary is None:
        summary = _DriftSummary()
        manager.register(summary, "vigil-fast-decode-drift")
    summary.lines.append(line)


def check(measures: list[Measure]) -> None:
    broken = [m for m in measures if m.quality >= RULE_MIN_QUALITY and m.distance > RULE_BITS]
    assert broken == [], f"fast decode more than {RULE_BITS} bits from the full decode: {broken}"
    moved = [m for m in measures if not m.fast_route and m.distance != 0]
    assert moved == [], f"images off the fast route must hash exactly: {moved}"


def conformance_images() -> list[Path]:
    with (PDQ_DIR / "expected.csv").open(newline="", encoding="utf-8") as stream:
        return [PDQ_DIR / row["path"] for row in csv.DictReader(stream)]


def photos() -> list[Path]:
    return sorted(PHOTOS_DIR.glob("*.jpg"))


@pytest.mark.shared
def test_fast_decode_conformance_images(
    request: pytest.FixtureRequest, record_property: pytest.RecordProperty
) -> None:
    if not (PDQ_DIR / "expected.csv").is_file():
        pytest.skip(f"PDQ conformance material not found at {PDQ_DIR} (../shared absent)")
    measures = measure(conformance_images(), PDQ_DIR)
    report(request, record_property, "conformance/pdq", summarise(measures))
    check(measures)
    assert sum(m.fast_route for m in measures) >= 20  # the 1.6 MP and 12 MP JPEGs


@pytest.mark.shared
def test_fast_decode_photos(
    request: pytest.FixtureRequest, record_property: pytest.RecordProperty
) -> None:
    if not PHOTOS_DIR.is_dir():
        pytest.skip(f"photo set not found at {PHOTOS_DIR} (../shared absent)")
    measures = measure(photos(), PHOTOS_DIR)
    assert len(measures) == 300
    report(request, record_property, "data/photos", summarise(measures))
    check(measures)


@pytest.mark.shared
def test_fast_decode_upscaled_photos(
    request: pytest.FixtureRequest,
    record_property: pytest.RecordProperty,
    tmp_path: Path,
) -> None:
    if not PHOTOS_DIR.is_dir():
        pytest.skip(f"photo set not found at {PHOTOS_DIR} (../shared absent)")
    paths = []
    for index, photo in enumerate(photos()[::6][:UPSCALED_PHOTOS]):
        factor = 3 if index % 2 == 0 else 8
        with Image.open(photo) as image:
            rgb = image.convert("RGB")
        big = rgb.resize((rgb.width * factor, rgb.height * factor), Image.Resampling.BICUBIC)
        path = tmp_path / f"{photo.stem}-x{factor}.jpg"
        big.save(path, quality=92)
        paths.append(path)
    measures = measure(paths, tmp_path)
    report(request, record_property, "data/photos upscaled x3/x8", summarise(measures))
    check(measures)
    assert all(m.fast_route for m in measures)


def synthetic_scene(width: int, height: int, seed: int) -> Image.Image:
    """Benign structured content (colour gradient, 40 ellipses, a little noise) drawn at 1/8
    scale and upscaled: PDQ quality 100, and cheap to make at 12 MP."""
    rng = np.random.default_rng(seed)
    w, h = max(8, width // 8), max(8, height // 8)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = np.empty((h, w, 3), np.float32)
    for channel in range(3):
        a, b = rng.uniform(-1, 1, 2)
        planes[..., channel] = 128 + 70 * (a * (x / w - 0.5) + b * (y / h - 0.5))
    for _ in range(40):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.02, 0.2) * w, rng.uniform(0.02, 0.2) * h
        planes[((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1] = rng.uniform(0, 255, 3)
    planes += rng.normal(0, 3, planes.shape)
    small = Image.fromarray(np.clip(planes, 0, 255).astype(np.uint8))
    return small.resize((width, height), Image.Resampling.BICUBIC)


@pytest.mark.parametrize(
    ("width", "height", "mode", "options"),
    [
        (1600, 1200, "RGB", {}),
        (1200, 1800, "RGB", {"progressive": True}),
        (4000, 3000, "RGB", {}),  # decoded at 1/4 scale
        (2501, 1701, "RGB", {"subsampling": 0}),  # odd sizes, 4:4:4
        (2400, 1600, "L", {}),
        (2000, 1400, "CMYK", {}),
    ],
    ids=["1600x1200", "1200x1800-progressive", "4000x3000", "2501x1701-444", "grey", "cmyk"],
)
def test_fast_decode_synthetic_jpegs(
    tmp_path: Path, width: int, height: int, mode: str, options: dict[str, object]
) -> None:
    """Runs without ../shared: the fast route, taken, stays within the 10-bit rule."""
    path = tmp_path / "scene.jpg"
    synthetic_scene(width, height, seed=width + height).convert(mode).save(
        path, quality=90, **options
    )
    (result,) = measure([path], tmp_path)
    assert result.fast_route
    assert result.quality >= RULE_MIN_QUALITY
    assert result.distance <= RULE_BITS
