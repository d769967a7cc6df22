"""The batched query-side computations of `vigil.signals.pdq_query` give, bit for bit, what
their straightforward forms give (kept here as the reference): the ring fill of the
extrapolated samples (`_complete_many` against one grid at a time with whole-grid 3 x 3
sums) and the caption band search (`detect_band` against one side and one edge row at a
time). The query hashes depend on every bit of these, so any difference is a failure.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from vigil.demo import synthetic_image
from vigil.media.images import luma_plane
from vigil.signals import pdq_query
from vigil.signals.pdq_query import Band, axis_weights, detect_band

Floats = NDArray[np.float64]

# ----------------------------------------------------------------------------------------
# Reference forms


def reference_complete(grid: Floats, coverage: Floats) -> Floats:
    if coverage.min() >= pdq_query._COVERED:
        return grid
    known = coverage >= pdq_query._KNOWN
    if not known.any():
        return grid
    mean_value = np.where(known, grid / np.maximum(coverage, 1e-9), 0.0)
    overall = float(mean_value[known].mean())
    fill = mean_value.copy()
    distance = np.zeros(grid.shape)
    ring = 0
    while not known.all():
        ring += 1
        total = _box3(np.where(known, fill, 0.0))
        count = _box3(known.astype(np.float64))
        new = ~known & (count > 0.5)
        fill[new] = total[new] / count[new]
        distance[new] = ring
        known |= new
    if ring:
        fade = pdq_query._FADE * distance / ring
        fill = fill * (1 - fade) + overall * fade
    completed: Floats = grid + (1 - np.minimum(coverage, 1.0)) * fill
    return completed


def _box3(values: Floats) -> Floats:
    rows = values.copy()
    rows[1:] += values[:-1]
    rows[:-1] += values[1:]
    total = rows.copy()
    total[:, 1:] += rows[:, :-1]
    total[:, :-1] += rows[:, 1:]
    return total


def reference_detect_band(values: NDArray[np.float32]) -> Band | None:
    rows = pdq_query._average_across(values)
    cols = pdq_query._average_across(values.T)
    narrows = {"bottom": rows, "top": rows[::-1], "right": cols, "left": cols[::-1]}
    for mixed in (0, 1):
        best: tuple[float, Band] | None = None
        for side, narrow in narrows.items():
            view = pdq_query._side_view(values, side)
            found = _reference_band_edge(view, narrow, side, mixed)
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        if best is not None:
            return best[1]
    return None


def _reference_band_edge(
    view: NDArray[np.float32], narrow: Floats, side: str, mixed: int
) -> tuple[float, Band] | None:
    good_edges = _reference_edges(narrow, mixed)
    if good_edges is None:
        return None
    edges, step, scale, offset, residual = good_edges
    best: tuple[float, Band] | None = None
    length = view.shape[0]
    for i in range(len(edges)):
        if pdq_query._is_plain_border(view[edges[i] + mixed :]):
            continue
        score = float(step[i] / (residual[i] + 1))
        if best is None or score > best[0]:
            band = Band(side, int(length - edges[i]), float(scale[i]), float(offset[i]), mixed)
            best = (score, band)
    return best


def _reference_edges(narrow: Floats, mixed: int) -> tuple[NDArray[np.int64], ...] | None:
    """The edges that pass the step and fit tests, with their step, scale, offset and
    residual."""
    length = narrow.shape[0]
    edges = np.arange(max(2, math.ceil((1 - pdq_query._BAND_MAX) * length)), length - 2)
    edges = edges[length - edges >= max(3, pdq_query._BAND_MIN * length)]
    step = np.abs(narrow[edges + mixed] - narrow[edges - 1]).mean(axis=1)
    keep = step >= pdq_query._BAND_STEP
    edges, step = edges[keep], step[keep]
    if len(edges) == 0:
        return None
    outside, inside = narrow[edges - 1], narrow[edges + mixed]
    mean_out = outside.mean(axis=1, keepdims=True)
    mean_in = inside.mean(axis=1, keepdims=True)
    spread_out = ((outside - mean_out) ** 2).mean(axis=1)
    spread_in = ((inside - mean_in) ** 2).mean(axis=1)
    covariance = ((outside - mean_out) * (inside - mean_in)).mean(axis=1)
    scale = np.sign(covariance) * np.sqrt(spread_in / np.maximum(spread_out, 1e-6))
    offset = mean_in[:, 0] - scale * mean_out[:, 0]
    residual = _rms(inside - (scale[:, None] * outside + offset[:, None]))
    next_residual = _rms(
        narrow[edges + mixed + 1] - (scale[:, None] * narrow[edges - 2] + offset[:, None])
    )
    good = (
        (scale >= 0)
        & (scale <= pdq_query._BAND_MAX_SCALE)
        & (residual <= pdq_query._BAND_FIT[0] * step)
        & (next_residual <= pdq_query._BAND_FIT[1] * step)
    )
    return edges[good], step[good], scale[good], offset[good], residual[good]


def _rms(values: Floats) -> Floats:
    rms: Floats = np.sqrt((values**2).mean(axis=1))
    return rms


# ----------------------------------------------------------------------------------------
# Ring fill


def _uncrop_samples(rng: np.random.Generator) -> tuple[Floats, Floats]:
    """A grid and its coverage as a central-crop guess makes them (a picture placed with a
    margin on a larger canvas)."""
    size = int(rng.integers(64, 2000))
    margin = int(rng.integers(0, size // 4))
    block = int(rng.integers(1, 9))
    cells = -(-size // block)
    rows = axis_weights(size + 2 * margin, margin, block, cells, size)
    cols = axis_weights(size + 2 * margin + 3, margin + 1, block, cells, size)
    values = (rng.random((cells, cells)) * 255).astype(np.float32)
    grid = (rows @ values @ cols.T).astype(np.float64)
    coverage = np.outer(rows.sum(axis=1), cols.sum(axis=1)).astype(np.float64)
    return grid, coverage


def _masked_samples(rng: np.random.Generator) -> tuple[Floats, Floats]:
    """A grid and its coverage with holes of any shape (blurred random blobs)."""
    mask = (rng.random((16, 16)) < rng.uniform(0.05, 0.95)).astype(np.float32)
    coverage = np.asarray(Image.fromarray(mask, "F").resize((64, 64), Image.Resampling.BILINEAR))
    coverage = np.clip(coverage.astype(np.float64) ** rng.uniform(0.3, 3), 0, 1.2)
    grid = rng.random((64, 64)) * 255 * coverage
    return grid, coverage


def _special_samples() -> list[tuple[Floats, Floats]]:
    grid = np.linspace(0, 255, 64 * 64).reshape(64, 64)
    one_known = np.zeros((64, 64))
    one_known[63, 0] = 0.7
    return [
        (grid, np.ones((64, 64))),  # all covered: unchanged
        (grid, np.full((64, 64), 0.9995)),  # covered enough
        (grid, np.full((64, 64), 0.3)),  # nothing known: unchanged
        (grid * 0.7, one_known),  # one known sample fills the whole grid
        (grid, np.full((64, 64), 0.6)),  # all known, none fully covered: no ring
        (np.zeros((64, 64)), np.where(np.arange(64)[:, None] < 20, 1.0, 0.0) * np.ones(64)),
    ]


def _same(a: Floats, b: Floats) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("seed", range(40))
def test_ring_fill_of_a_stack_equals_one_grid_at_a_time(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pairs = [_uncrop_samples(rng) for _ in range(int(rng.integers(1, 5)))]
    pairs += [_masked_samples(rng) for _ in range(int(rng.integers(0, 3)))]
    if seed % 4 == 0:
        pairs += _special_samples()[seed // 4 % 6 : seed // 4 % 6 + 2]
    order = rng.permutation(len(pairs))
    grids = np.stack([pairs[i][0] for i in order])
    coverages = np.stack([pairs[i][1] for i in order])
    completed = pdq_query._complete_many(grids, coverages)
    for index, i in enumerate(order):
        expected = reference_complete(*pairs[i])
        assert _same(completed[index], expected)
        assert _same(pdq_query._complete(*pairs[i]), expected)


def test_ring_fill_of_special_grids() -> None:
    for grid, coverage in _special_samples():
        assert _same(pdq_query._complete(grid, coverage), reference_complete(grid, coverage))


# ----------------------------------------------------------------------------------------
# Caption bands


def _captioned(seed: int, size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(seed)
    picture = synthetic_image(*size, seed)
    width, height = size
    depth = int(rng.uniform(0.06, 0.4) * (height if seed % 2 else width))
    side = ("bottom", "top", "left", "right")[seed % 4]
    box = {
        "bottom": (0, height - depth, width, height),
        "top": (0, 0, width, depth),
        "left": (0, 0, depth, height),
        "right": (width - depth, 0, width, height),
    }[side]
    kind = seed // 4 % 3
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    if kind == 0:  # translucent dark bar with white text-like strokes
        draw.rectangle(box, fill=(0, 0, 0, int(rng.integers(90, 200))))
    elif kind == 1:  # translucent light bar
        draw.rectangle(box, fill=(255, 255, 255, int(rng.integers(90, 200))))
    else:  # opaque bar
        draw.rectangle(box, fill=(20, 20, 30, 255))
    x0, y0, x1, y1 = box
    for _ in range(int(rng.integers(0, 30))):
        x, y = (
            int(rng.integers(x0, max(x0 + 1, x1 - 4))),
            int(rng.integers(y0, max(y0 + 1, y1 - 4))),
        )
        draw.rectangle((x, y, x + 2, y + int(rng.integers(2, 12))), fill=(250, 250, 250, 255))
    return Image.alpha_composite(picture.convert("RGBA"), overlay).convert("RGB")


def _planes() -> list[NDArray[np.float32]]:
    planes = []
    rng = np.random.default_rng(7)
    for seed, size in enumerate([(640, 480), (480, 640), (300, 200), (1200, 700), (90, 60)] * 4):
        captioned = luma_plane(np.asarray(_captioned(seed, size))).values
        planes.append(captioned)
        # Grey levels off the integers, of many magnitudes: sums and means are rounded, and
        # their order matters.
        planes.append((captioned * 0.9 + rng.random(captioned.shape) * 3).astype(np.float32))
        planes.append((255 * (captioned / 255) ** 3).astype(np.float32))
        # Half the columns scaled down by powers of two: a black translucent band along the
        # top or bottom still blends exactly, and every row mixes many magnitudes.
        exponents = np.where(rng.random(captioned.shape[1]) < 0.5, 0, rng.integers(8, 40))
        planes.append(captioned * np.float32(2.0) ** -exponents.astype(np.float32))
        planes.append(luma_plane(np.asarray(synthetic_image(*size, 100 + seed))).values)
    padded = Image.new("RGB", (700, 600), (16, 16, 16))
    padded.paste(synthetic_image(700, 450, 3), (0, 75))
    planes.append(luma_plane(np.asarray(padded)).values)
    planes.append((rng.random((200, 300)) * 255).astype(np.float32))  # noise
    planes.append(np.round(rng.random((123, 77)) * 255).astype(np.float32))
    planes.append(np.full((50, 50), 128, np.float32))  # flat
    for shape in [(2, 40), (3, 40), (4, 70), (5, 5), (40, 3), (1, 1), (6, 100)]:
        planes.append((rng.random(shape) * 255).astype(np.float32))
    # Steps of exactly the threshold and bands with rows that do not covary.
    stepped = np.tile(np.arange(100, dtype=np.float32), (80, 1))
    stepped[60:] = np.float32(20.0)
    planes.append(stepped)
    planes.append(stepped.T.copy())
    return planes


def test_band_search_equals_one_side_and_edge_at_a_time() -> None:
    found = 0
    for values in _planes():
        expected = reference_detect_band(values)
        assert detect_band(values) == expected
        found += expected is not None
    assert found >= 20  # the captioned pictures do exercise the fits


def test_band_candidates_have_the_statistics_of_one_side_at_a_time() -> None:
    """Every candidate edge, with its step, blend and residual to the last bit (the search's
    result shows only the best one's blend)."""
    candidates = 0
    for values in _planes():
        rows = pdq_query._average_across(values)
        cols = pdq_query._average_across(values.T)
        found = pdq_query._band_candidates(rows, ("bottom", "top"))
        found |= pdq_query._band_candidates(cols, ("right", "left"))
        narrows = {"bottom": rows, "top": rows[::-1], "right": cols, "left": cols[::-1]}
        for (side, mixed), edges in found.items():
            expected = _reference_edges(narrows[side], mixed)
            if expected is None:
                assert len(edges.rows) == 0
                continue
            actual = (edges.rows, edges.step, edges.scale, edges.offset, edges.residual)
            for got, want in zip(actual, expected, strict=True):
                assert got.tobytes() == want.astype(got.dtype).tobytes()
            candidates += len(edges.rows)
    assert candidates >= 50
