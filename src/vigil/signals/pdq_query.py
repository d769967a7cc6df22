"""Query-side PDQ matching: more hashes for the file being checked, none for the bank.

A bank stores one PDQ hash per original. A copy that was mirrored, rotated, padded, cropped
or captioned hashes far from it (often 60-130 bits, against a match threshold of 31), although
most of the original's pixels are still there. `query_hashes` therefore hashes, from one
decode of the query, a few *variants* that undo common edits:

- ``original``: the plain hash (identical to `PDQSignal.compute`) and its 8 dihedral variants
  (rotations by 90 degrees and mirrors), all from pdqhash's one DCT;
- ``trimmed``: uniform borders (letterbox, pillarbox, padding, frames) cut off, each side by
  its own colour, when some side loses at least 2%;
- ``derotated:<degrees>``: a rotation of up to 45 degrees undone, when the picture shows the
  tell-tale corner triangles of a picture rotated on a uniform background (canvas of its own
  size, or enlarged to hold it); corners the rotation cut off are extrapolated;
- ``caption:<side>``: a band across the picture along one side (a translucent or opaque
  caption or subtitle bar) undone: translucent pixels mapped back through the blend fitted at
  the band's edge, text and opaque bars extrapolated;
- ``uncrop:<percent>``: blind guesses that the query is a central crop losing that many
  percent per side; the canvas is widened and the margin extrapolated from the edges (no
  dihedral variants: a guess is kept to one hash each).

The trimmed, derotated and caption variants exist only when their detector fires (and have
dihedral variants too: a mirrored letterboxed copy is found); the plain hash and the uncrop
guesses always. Every variant is computed on the image's `LumaPlane` (full-resolution luma,
or block means fine enough for PDQ) with PDQ's own sampling weights for the variant's
full-resolution size (two passes of a box of ceil(n / 128) pixels, 64 x 64 samples), so a
variant hashes as PDQ would hash that image; pdqhash then hashes the 64 x 64 grid. Every hash
keeps PDQ's quality rule (below the threshold it is dropped, never matched); duplicates are
dropped.

Measured effect (recall, false matches, cost): docs/performance.md, "Matching quality"
(`benchmarks/robustness.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pdqhash
from numpy.typing import NDArray
from PIL import Image

from vigil.config import MediaLimits
from vigil.media import MediaFile
from vigil.media.images import LumaPlane, Pixels, load_pdq_pixels_and_luma, luma_plane
from vigil.signals.base import Signal
from vigil.signals.pdq import PDQSignal

GRID = 64
"""PDQ samples its blurred luma at 64 x 64 points."""
WINDOW_DIVISOR = 128
"""PDQ's box window along an axis of n pixels is ceil(n / 128)."""

MIN_QUALITY = PDQSignal.min_quality

Floats = NDArray[np.float64]
Plane = NDArray[np.float32]
"""A `LumaPlane`'s values, or a part or transform of them."""


@dataclass(frozen=True)
class QueryHash:
    """One hash of a query: which variant (`label`), which dihedral transform of it (0-7,
    the reference order of `Dihedral`), the PDQ value (hex) and its quality."""

    label: str
    dihedral: int
    pdq: str
    quality: int


@dataclass(frozen=True)
class QueryOptions:
    """Which variants `query_hashes` adds to the plain hash (all on by default)."""

    dihedral: bool = True
    """The 8 dihedral variants of the original, trimmed and derotated hashes."""
    trim: bool = True
    derotate: bool = True
    caption: bool = True
    uncrop: tuple[float, ...] = (0.025, 0.05, 0.075, 0.1)
    """Crops per side (fractions of the original's width and height) to undo, blindly."""
    min_quality: int = MIN_QUALITY


DEFAULT_OPTIONS = QueryOptions()
PLAIN = QueryOptions(dihedral=False, trim=False, derotate=False, caption=False, uncrop=())
"""Only the plain hash: what `PDQSignal.compute` gives, as a one-element list."""


def query_hashes(
    path: Path, limits: MediaLimits, *, fast: bool, options: QueryOptions = DEFAULT_OPTIONS
) -> list[QueryHash]:
    """The hashes to look up for the image at `path`, decoded once (exact or fast route, as
    `PDQSignal.compute`); only those of quality >= `options.min_quality`, the plain hash first.

    Raises `MediaError` for a file that cannot be decoded, as `PDQSignal.compute` does.
    """
    pixels, plane = load_pdq_pixels_and_luma(path, limits, fast=fast)
    return query_hashes_from_pixels(pixels, plane=plane, options=options)


def query_hashes_from_pixels(
    pixels: Pixels, *, plane: LumaPlane | None = None, options: QueryOptions = DEFAULT_OPTIONS
) -> list[QueryHash]:
    """`query_hashes` of decoded pixels: full-resolution H x W x 3 RGB, or the fast route's
    64 x 64 grid together with its `plane` (the plane is computed from RGB pixels if absent)."""
    return _query(pixels, plane, options)[2]


class PDQWithQueriesSignal(PDQSignal):
    """The PDQ signal type whose computed `Signal` also carries, in `detail`, the query
    hashes to look up (`list[QueryHash]`, as `query_hashes`; empty when none is usable).
    Its value and quality are the plain hash's, identical to `PDQSignal.compute`: banks and
    records keep one hash per file, and only lookups use the variants."""

    def __init__(self, options: QueryOptions = DEFAULT_OPTIONS) -> None:
        self.options = options

    def compute(self, media: MediaFile, *, fast: bool) -> Signal:
        pixels, plane = load_pdq_pixels_and_luma(media.path, media.limits, fast=fast)
        value, quality, queries = _query(pixels, plane, self.options)
        return Signal(self.name, value, quality, detail=queries)


def _query(
    pixels: Pixels, plane: LumaPlane | None, options: QueryOptions
) -> tuple[str, int, list[QueryHash]]:
    """The plain hash and its quality (whatever the quality), and the usable query hashes."""
    if plane is None:
        plane = luma_plane(pixels)
    hashes = _Collector(options)
    value, quality = hashes.add("original", pixels, dihedral=options.dihedral)
    if options.trim:
        box = trim_box(plane.values)
        if box is not None:
            hashes.add("trimmed", _placed_grid(plane, box), dihedral=options.dihedral)
    # Extrapolating variants are computed in cells of about half PDQ's window: a quarter of
    # the work or less, and no change in recall measured (bilinear turning and guessed
    # margins blur more than that anyway).
    coarse = _coarse(plane) if options.derotate or options.uncrop else plane
    if options.derotate:
        rotation = detect_rotation(plane)
        derotated = _derotated_grid(coarse, rotation) if rotation else None
        if rotation is not None and derotated is not None:
            label = f"derotated:{rotation.degrees:+.1f}"
            hashes.add(label, derotated, dihedral=options.dihedral)
    if options.caption:
        band = detect_band(plane.values)
        if band is not None:
            hashes.add(
                f"caption:{band.side}", _uncaptioned_grid(plane, band), dihedral=options.dihedral
            )
    for fraction, grid in zip(
        options.uncrop, _uncropped_grids(coarse, options.uncrop), strict=True
    ):
        hashes.add(f"uncrop:{100 * fraction:g}", grid)
    return value, quality, hashes.result


class _Collector:
    """Hashes grids or pixels, keeping only new values of sufficient quality."""

    def __init__(self, options: QueryOptions) -> None:
        self.options = options
        self.result: list[QueryHash] = []
        self._seen: set[str] = set()

    def add(self, label: str, pixels: Pixels, *, dihedral: bool = False) -> tuple[str, int]:
        """Hash `pixels` (and their dihedral variants); returns the hash and its quality."""
        values, quality = dct_hashes(pixels, dihedral=dihedral)
        if quality >= self.options.min_quality:
            for index, value in enumerate(values):
                if value not in self._seen:
                    self._seen.add(value)
                    self.result.append(QueryHash(label, index, value, quality))
        return values[0], quality


_ODD = np.arange(16) % 2 == 1
_ALTERNATE = np.where(_ODD, 1.0, -1.0)
"""+1 on odd frequencies, -1 on even ones: the sign of a coefficient under a flip."""
_CHECKER = np.where((np.arange(16)[:, None] + np.arange(16)[None, :]) % 2 == 1, -1.0, 1.0)


def dct_hashes(pixels: Pixels, *, dihedral: bool) -> tuple[list[str], int]:
    """The PDQ hash of `pixels` (and, with `dihedral`, its 8 dihedral variants in the
    reference order) and the quality, from pdqhash's one DCT: bit-identical to
    `pdqhash.compute` / `compute_dihedral`, without their per-bit Python loop.

    The variants are the reference's `dct16OriginalTo*` sign flips and transposes of the
    16 x 16 coefficients; a bit is set where a coefficient exceeds the median (Torben's
    lower median of the 256)."""
    reversed_coefficients, quality = pdqhash.compute_float(pixels)
    coefficients = np.asarray(reversed_coefficients, dtype=np.float64)[::-1].reshape(16, 16)
    variants = [coefficients]
    if dihedral:
        rows = _ALTERNATE[:, None]
        cols = _ALTERNATE[None, :]
        variants += [
            (coefficients * cols).T,  # rotate 90
            coefficients * _CHECKER,  # rotate 180
            (coefficients * rows).T,  # rotate 270
            coefficients * rows,  # flip x
            coefficients * cols,  # flip y
            coefficients.T,  # flip +1
            (coefficients * _CHECKER).T,  # flip -1
        ]
    return _bits_hex(np.stack(variants).reshape(len(variants), 256)), int(quality)


def _bits_hex(coefficients: Floats) -> list[str]:
    """The hash of each row of coefficients (each a 16 x 16 block, flattened)."""
    medians = np.partition(coefficients, 127, axis=1)[:, 127:128]
    # Bit i * 16 + j is coefficient [i, j]; the hex form starts with bit 255.
    packed = np.packbits((coefficients > medians)[:, ::-1], axis=1)
    return [row.tobytes().hex() for row in packed]


# ----------------------------------------------------------------------------------------
# PDQ's samples of a variant, from the plane


@lru_cache(maxsize=512)
def axis_weights(
    canvas: int, offset: int, block: int, cells: int, extent: int
) -> NDArray[np.float32]:
    """Weights (64 x `cells`) of PDQ's 64 samples along an axis of a `canvas` pixels long
    image, on `cells` plane cells of `block` pixels placed from canvas pixel `offset` (cell
    `j` holds the mean of pixels `[offset + j * block, offset + min((j + 1) * block, extent))`).

    Mirrors the reference's `box1DFloat` (window w, output i averages the inputs
    [i - (w - h), i + h - 1] clipped to the axis, h = (w + 2) // 2), applied twice, and its
    `decimateFloat` (sample k at int((k + 0.5) * canvas / 64)). Canvas pixels on no cell get
    no weight: a row's sum is the share of that sample that the cells cover.
    """
    window = _window(canvas)
    half = (window + 2) // 2
    index = np.arange(canvas)
    first = np.maximum(index - (window - half), 0)
    count = np.minimum(index + half - 1, canvas - 1) - first + 1
    samples = ((np.arange(GRID) + 0.5) * canvas / GRID).astype(np.int64)
    # Second pass: sample k averages first-pass outputs t in [first[s], first[s] + count[s]);
    # first pass: output t averages pixels [first[t], first[t] + count[t]). So each pixel of
    # t's range weighs 1 / (count[s] * count[t]) in sample k.
    taps = first[samples][:, None] + np.arange(int(count[samples].max()))[None, :]
    valid = np.arange(taps.shape[1])[None, :] < count[samples][:, None]
    taps = np.where(valid, taps, 0)
    share = np.where(valid, 1.0 / (count[samples][:, None] * count[taps]), 0.0)
    tap_start = first[taps]
    tap_end = tap_start + count[taps]
    # The cells each sample reaches, as a band of `reach` cells from its first one.
    low = np.clip((tap_start[:, 0] - offset) // block, 0, max(cells - 1, 0))
    high = np.clip((tap_end.max(axis=1) - 1 - offset) // block, 0, max(cells - 1, 0))
    reach = int((high - low).max()) + 1
    cell = low[:, None] + np.arange(reach)[None, :]
    in_band = cell <= high[:, None]
    cell_start = np.clip(offset + cell * block, 0, canvas)
    cell_end = np.clip(offset + np.minimum((cell + 1) * block, extent), 0, canvas)
    overlap = np.minimum(tap_end[:, :, None], cell_end[:, None, :]) - np.maximum(
        tap_start[:, :, None], cell_start[:, None, :]
    )
    local = (share[:, :, None] * np.maximum(overlap, 0)).sum(axis=1)
    weights = np.zeros((GRID, cells), np.float32)
    row = np.broadcast_to(np.arange(GRID)[:, None], cell.shape)
    weights[row[in_band], cell[in_band]] = local[in_band]
    weights.flags.writeable = False
    return weights


@dataclass(frozen=True)
class Box:
    """A rectangle of plane cells, `[left, right) x [top, bottom)`."""

    left: int
    top: int
    right: int
    bottom: int


def _extent(plane: LumaPlane, box: Box) -> tuple[int, int]:
    """Full-resolution width and height of the pixels under `box`."""
    (bx, by), (width, height) = plane.block, plane.size
    return (
        min(box.right * bx, width) - box.left * bx,
        min(box.bottom * by, height) - box.top * by,
    )


def _placed_grid(
    plane: LumaPlane,
    box: Box,
    canvas: tuple[int, int] | None = None,
    offset: tuple[int, int] = (0, 0),
) -> Pixels:
    """PDQ's samples of a canvas (full-resolution size, default the box's own) holding the
    pixels under `box` at `offset`; any of the canvas they do not cover is extrapolated."""
    grid, coverage = _placed_samples(plane, box, canvas, offset)
    return _to_pixels(_complete(grid, coverage))


def _placed_samples(
    plane: LumaPlane,
    box: Box,
    canvas: tuple[int, int] | None = None,
    offset: tuple[int, int] = (0, 0),
) -> tuple[Floats, Floats]:
    """`_placed_grid`'s samples before extrapolation, and the share of each they cover."""
    extent = _extent(plane, box)
    width, height = canvas or extent
    (bx, by) = plane.block
    row_axis = (height, offset[1], by, box.bottom - box.top, extent[1])
    col_axis = (width, offset[0], bx, box.right - box.left, extent[0])
    rows, cols = axis_weights(*row_axis), axis_weights(*col_axis)
    covered = plane.values[box.top : box.bottom, box.left : box.right]
    grid = (rows @ covered @ cols.T).astype(np.float64)
    coverage = np.outer(_axis_coverage(*row_axis), _axis_coverage(*col_axis)).astype(np.float64)
    return grid, coverage


@lru_cache(maxsize=512)
def _axis_coverage(
    canvas: int, offset: int, block: int, cells: int, extent: int
) -> NDArray[np.float32]:
    """The share of each of PDQ's samples along an axis that the cells cover: the sums of
    `axis_weights`' rows."""
    share: NDArray[np.float32] = axis_weights(canvas, offset, block, cells, extent).sum(axis=1)
    share.flags.writeable = False
    return share


def _to_pixels(grid: Floats) -> Pixels:
    """The samples (a 64 x 64 grid, or a stack of them) as grey RGB pixels for pdqhash."""
    samples = np.clip(np.rint(grid), 0, 255).astype(np.uint8)
    return np.lib.stride_tricks.as_strided(
        samples, shape=(*samples.shape, 3), strides=(*samples.strides, 0), writeable=False
    )


_KNOWN = 0.5
"""Samples at least this much covered by real pixels seed the extrapolation."""
_COVERED = 0.999
"""Samples this much covered need no extrapolation."""
_FADE = 0.3
"""How far extrapolated samples fade to the mean, at the farthest point of the canvas."""


def _complete(grid: Floats, coverage: Floats) -> Floats:
    """Fill the uncovered share of each sample. Mostly covered samples extend their own
    mean; the others, ring by ring outwards, take the mean of their already known
    neighbours (8-connected: the extension blurs as it goes), fading towards the mean of
    the covered samples with the distance."""
    completed: Floats = _complete_many(grid[None], coverage[None])[0]
    return completed


_PADDED = GRID + 2
"""Side of a grid with a border of one zero sample all round."""
_NEIGHBOURS = np.array(
    [0, -_PADDED, _PADDED, -1, -1 - _PADDED, -1 + _PADDED, 1, 1 - _PADDED, 1 + _PADDED]
)
"""Flat offsets, in a padded grid, of a sample's 3 x 3 neighbours, in the order they are
added: each column (own, left, right) as (own row + above) + below, then the columns as
(own + left) + right."""


def _complete_many(grids: Floats, coverages: Floats) -> Floats:
    """`_complete` of each of a stack of grids (N x 64 x 64), at once.

    Each ring computes only the samples it fills: the 3 x 3 sum of the known values round
    the sample (unknown ones and those off the grid counting 0, added in `_NEIGHBOURS`'
    order) divided by how many of them are known; the same arithmetic whatever the stack,
    so every grid comes out as it would alone. The grids lie in a border of zeros (never
    filled), so that a sample's neighbours are at fixed offsets in the flattened stack."""
    active = [
        index
        for index, coverage in enumerate(coverages)
        if coverage.min() < _COVERED and (coverage >= _KNOWN).any()
    ]
    if not active:
        return grids.copy()
    count = len(active)
    if count == len(grids):
        grid, coverage = grids, coverages
    else:
        grid, coverage = grids[active], coverages[active]
    known = coverage >= _KNOWN
    mean_value = np.where(known, grid / np.maximum(coverage, 1e-9), 0.0)
    overall = np.array([mean_value[i][known[i]].mean() for i in range(count)])
    # Padded stacks: the values (0 where unknown), which are known, which are still to fill,
    # and the ring that filled each.
    shape = (count, _PADDED, _PADDED)
    padded = np.zeros(shape)
    fill = padded[:, 1:-1, 1:-1]
    fill[...] = mean_value
    is_known = np.zeros(shape, np.uint8)
    is_known[:, 1:-1, 1:-1] = known
    is_open = np.zeros(shape, bool)
    np.logical_not(known, out=is_open[:, 1:-1, 1:-1])
    distance = np.zeros(shape)
    flat_fill, flat_known = padded.reshape(-1), is_known.reshape(-1)
    flat_open, flat_distance = is_open.reshape(-1), distance.reshape(-1)
    size, row = flat_known.size, _PADDED
    ring = 0
    while True:
        # How many of each sample's 3 x 3 neighbours are known (at the flat index less
        # row + 1): the samples still to fill with one or more are the next ring.
        column = flat_known[: size - 2 * row] + flat_known[row : size - row]
        column += flat_known[2 * row :]
        neighbours = column[:-2] + column[1:-1]
        neighbours += column[2:]
        new = np.flatnonzero((neighbours != 0) & flat_open[row + 1 : size - row - 1])
        if len(new) == 0:
            break
        ring += 1
        at = new + (row + 1)
        around = flat_fill[at[None, :] + _NEIGHBOURS[:, None]]
        total = around[0] + around[1]
        total += around[2]
        left = around[3] + around[4]
        left += around[5]
        right = around[6] + around[7]
        right += around[8]
        total += left
        total += right
        flat_fill[at] = total / neighbours[new]
        flat_known[at] = 1
        flat_open[at] = False
        flat_distance[at] = ring
    fill = np.ascontiguousarray(fill)
    if ring:
        distance = np.ascontiguousarray(distance[:, 1:-1, 1:-1])
        rings = distance.reshape(count, -1).max(axis=1)
        faded = np.flatnonzero(rings)
        if len(faded) == count:
            fade = _FADE * distance / rings[:, None, None]
            fill = fill * (1 - fade) + overall[:, None, None] * fade
        else:
            for i in faded:
                fade = _FADE * distance[i] / rings[i]
                fill[i] = fill[i] * (1 - fade) + overall[i] * fade
    result = grid + (1 - np.minimum(coverage, 1.0)) * fill
    if count == len(grids):
        return result
    completed = grids.copy()
    completed[active] = result
    return completed


# ----------------------------------------------------------------------------------------
# Trimming uniform borders

_UNIFORM_TOLERANCE = 8.0
"""Grey levels a border cell may differ from the border's colour (JPEG noise)."""
_UNIFORM_SHARE = 0.98
"""Share of a row or column within the tolerance for it to count as border."""
_MIN_TRIM = 0.02
"""Trim only when some side loses at least this share of its axis."""
_MIN_CONTENT = 0.2
"""Keep at least this share of each axis."""


def trim_box(values: Plane) -> Box | None:
    """The box left after cutting uniform borders off each side (each side its own colour),
    or None when there is nothing worth cutting."""
    height, width = values.shape
    top = _uniform_run(values)
    bottom = _uniform_run(values[::-1])
    left = _uniform_run(values.T)
    right = _uniform_run(values.T[::-1])
    box = Box(left, top, width - right, height - bottom)
    if max(top / height, bottom / height, left / width, right / width) < _MIN_TRIM:
        return None
    if box.right - box.left < _MIN_CONTENT * width or box.bottom - box.top < _MIN_CONTENT * height:
        return None
    return box


def _uniform_run(values: Plane) -> int:
    """How many leading rows of `values` are of one uniform colour (the first row's)."""
    colour = float(np.median(values[0]))
    if (np.abs(values[0] - colour) <= _UNIFORM_TOLERANCE).mean() < _UNIFORM_SHARE:
        return 0
    close = np.abs(values - colour) <= _UNIFORM_TOLERANCE
    uniform = close.mean(axis=1) >= _UNIFORM_SHARE
    return int(np.argmin(uniform)) if not uniform.all() else len(uniform)


# ----------------------------------------------------------------------------------------
# Undoing a small rotation


@dataclass(frozen=True)
class Rotation:
    """A rotation by `degrees` counter-clockwise (Pillow's `rotate` sign) about the centre;
    `expanded`: the canvas was enlarged to hold the whole picture (`expand=True`)."""

    degrees: float
    expanded: bool


_MIN_DEGREES = 0.5
_MAX_DEGREES = 45.0
_ANGLE_AGREEMENT = 1.0
"""Degrees within which the corners' estimates must agree."""


def detect_rotation(plane: LumaPlane) -> Rotation | None:
    """Recognise a picture rotated on a uniform background: four corner triangles of the
    background colour, each bounded by one rotated edge (their long legs in a pinwheel:
    counter-clockwise, top-left along the top, top-right along the right...). Returns the
    rotation, or None when the corners do not all tell the same story."""
    values = plane.values
    height, width = values.shape
    if height < 16 or width < 16:
        return None
    bx, by = plane.block
    corners = [values[0, 0], values[0, -1], values[-1, -1], values[-1, 0]]
    colour = float(np.median(corners))
    if max(abs(float(c) - colour) for c in corners) > _UNIFORM_TOLERANCE:
        return None
    background = np.abs(values - colour) <= _UNIFORM_TOLERANCE
    # The four corners, each seen as the top-left corner of a view turned by a multiple of
    # 90 degrees (clockwise, so the pinwheel maps onto itself), with the full-resolution
    # size of a cell along the view's horizontal and vertical axes.
    views = [
        (background, bx, by),  # top-left
        (background[:, ::-1].T, by, bx),  # top-right: the right side becomes the top
        (background[::-1, ::-1], bx, by),  # bottom-right
        (background[::-1].T, by, bx),  # bottom-left: the left side becomes the top
    ]
    estimates = []
    for view, sx, sy in views:
        estimate = _corner_angle(view, sx, sy)
        if estimate is None:
            return None
        degrees, long_on_horizontal = estimate
        # Counter-clockwise: long legs on top (top-left), right (top-right), bottom
        # (bottom-right), left (bottom-left); in each view that is its horizontal side.
        estimates.append(degrees if long_on_horizontal else -degrees)
    angles = np.array(estimates)
    if np.sign(angles).min() != np.sign(angles).max():
        return None
    if angles.max() - angles.min() > _ANGLE_AGREEMENT:
        return None
    degrees = float(np.median(angles))
    if not _MIN_DEGREES <= abs(degrees) <= _MAX_DEGREES:
        return None
    # Turned on an enlarged canvas, the picture touches each side at one vertex only, and the
    # middle of every side is background; on a canvas of its own size it covers them.
    middles = [background[0, width // 2], background[-1, width // 2]]
    middles += [background[height // 2, 0], background[height // 2, -1]]
    return Rotation(degrees, expanded=all(middles))


def _corner_angle(background: NDArray[np.bool_], sx: int, sy: int) -> tuple[float, bool] | None:
    """The angle (degrees, 0-45) of the triangle of background in the top-left corner of
    `background` (cells of sx x sy full-resolution pixels) and whether its long leg lies
    along the horizontal side, or None when there is no such triangle."""
    if not background[0, 0]:
        return None
    height, width = background.shape
    view = background[: height // 2, : width // 2]
    cap = min(view.shape)
    # Along the long leg the depth of the background falls gently (slope tan(angle) <= 1);
    # along the short leg steeply, or not at all when the corner is not a triangle.
    candidates = []
    for along_horizontal, depths, step, scale in (
        (True, _run_lengths(view.T), sx, sy),  # depth below each column of the top side
        (False, _run_lengths(view), sy, sx),  # depth right of each row of the left side
    ):
        fit = _falling_line(depths[: _leading_positive(depths)], cap)
        if fit is not None:
            slope, support = fit
            slope *= scale / step
            if -1.0 <= slope < 0:
                candidates.append((support, math.degrees(math.atan(-slope)), along_horizontal))
    if not candidates:
        return None
    _, degrees, along_horizontal = max(candidates)
    return degrees, along_horizontal


def _falling_line(depths: NDArray[np.float64], cap: int) -> tuple[float, int] | None:
    """Slope (cells per cell) of a straight line through `depths` and how many points lie
    on it. The ends are left out (the outermost row or column can run on past a vertex of
    the picture), and so are depths at the cap of the view; one pass drops outliers."""
    end = max(2, len(depths) // 20)
    position = (np.arange(len(depths)) + 0.5)[end:-end]
    depth = depths[end:-end]
    keep = depth < cap
    if keep.sum() < 4:
        return None
    position, depth = position[keep], depth[keep]
    slope, intercept = np.polyfit(position, depth, 1)
    close = np.abs(depth - (slope * position + intercept)) <= 2
    if close.sum() < 4:
        return None
    return float(np.polyfit(position[close], depth[close], 1)[0]), int(close.sum())


def _run_lengths(mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """For each row of `mask`, the number of leading True values."""
    run = np.where(mask.all(axis=1), mask.shape[1], np.argmin(mask, axis=1))
    lengths: NDArray[np.float64] = run.astype(np.float64)
    return lengths


def _leading_positive(values: NDArray[np.float64]) -> int:
    positive = values > 0
    return int(np.argmin(positive)) if not positive.all() else len(positive)


def _derotated_grid(plane: LumaPlane, rotation: Rotation) -> Pixels | None:
    """PDQ's samples of the picture before `rotation`: the query turned back about its
    centre, on a canvas of the original's size; what the rotation cut off is extrapolated.
    None when the geometry does not add up (an enlarged canvas too small for the angle)."""
    width, height = plane.size
    values, (bx, by) = plane.values, plane.block
    theta = math.radians(rotation.degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    if rotation.expanded:  # width = w cos + h |sin|, height = w |sin| + h cos: solve for w, h
        denominator = cos * cos - sin * sin
        if denominator < 0.1:
            return None
        canvas_w = (width * cos - height * abs(sin)) / denominator
        canvas_h = (height * cos - width * abs(sin)) / denominator
    else:
        canvas_w, canvas_h = width, height
    cells = (round(canvas_w / bx), round(canvas_h / by))
    if min(cells) < 8:
        return None
    canvas = (cells[0] * bx, cells[1] * by)
    # Output cell coordinates (u, v) -> centred full-resolution p -> query point
    # q = (cos px + sin py, -sin px + cos py) -> query cell coordinates.
    data = (
        cos,
        sin * by / bx,
        (-cos * canvas[0] / 2 - sin * canvas[1] / 2 + width / 2) / bx,
        -sin * bx / by,
        cos,
        (sin * canvas[0] / 2 - cos * canvas[1] / 2 + height / 2) / by,
    )
    turned = Image.fromarray(values, "F").transform(
        cells, Image.Transform.AFFINE, data, Image.Resampling.BILINEAR
    )
    inside = Image.fromarray(np.ones(values.shape, np.float32), "F").transform(
        cells, Image.Transform.AFFINE, data, Image.Resampling.NEAREST
    )
    mask = np.asarray(inside, dtype=np.float32)
    return _masked_grid(np.asarray(turned, dtype=np.float32) * mask, mask, (bx, by), canvas)


def _window(length: int) -> int:
    return (length + WINDOW_DIVISOR - 1) // WINDOW_DIVISOR


def _coarse(plane: LumaPlane) -> LumaPlane:
    """The plane in cells of about half PDQ's window (of its short side), or itself."""
    window = _window(min(plane.size))
    factor = max(1, -(-window // (2 * max(plane.block))))
    if factor == 1:
        return plane
    reduced = np.asarray(Image.fromarray(plane.values, "F").reduce(factor), dtype=np.float32)
    return LumaPlane(reduced, (plane.block[0] * factor, plane.block[1] * factor), plane.size)


def _masked_grid(
    masked: Plane,
    mask: Plane,
    block: tuple[int, int],
    canvas: tuple[int, int],
) -> Pixels:
    """PDQ's samples of a canvas whose cells hold `masked` (values times `mask`, 0 where
    nothing is known); the unknown share of each sample is extrapolated."""
    rows = axis_weights(canvas[1], 0, block[1], mask.shape[0], canvas[1])
    cols = axis_weights(canvas[0], 0, block[0], mask.shape[1], canvas[0])
    grid = (rows @ masked @ cols.T).astype(np.float64)
    coverage = (rows @ mask @ cols.T).astype(np.float64)
    return _to_pixels(_complete(grid, coverage))


# ----------------------------------------------------------------------------------------
# Undoing a caption band


@dataclass(frozen=True)
class Band:
    """A band across the whole picture along one side (`top`, `bottom`, `left`, `right`),
    `cells` plane cells deep, where each pixel became `scale * original + offset`: a
    translucent overlay (black: offset 0; white: offset 255 (1 - scale)), or an opaque one
    (scale 0). Text drawn on it is not part of the model."""

    side: str
    cells: int
    scale: float
    offset: float
    mixed: int = 0
    """Rows at the band's edge that mix both sides (extrapolated, not restored)."""


_BAND_MIN = 0.05
_BAND_MAX = 0.45
"""A band covers this share of the axis, at least and at most."""
_BAND_STEP = 12.0
"""Mean grey-level change across the band's edge, at least."""
_BAND_MAX_SCALE = 0.8
_BAND_FIT = (0.25, 0.35)
"""Residual of the fit, as a share of the change, allowed on the edge's two innermost and
two next rows."""
_OPAQUE = 0.15
"""Below this scale the band hides the picture: it is extrapolated rather than restored."""


def detect_band(values: Plane) -> Band | None:
    """Find a caption band: a straight edge across the whole picture, parallel to and within
    45% of one side, beyond which the pixels are a fixed linear function of what they would
    continue (`Band`), fitted on the rows on either side of the edge. Where no edge falls
    between two rows of cells, one running through a row is sought (`Band.mixed`)."""
    # Averaging along the edges sought keeps them sharp and the work small.
    candidates = _band_candidates(_average_across(values), ("bottom", "top"))
    candidates |= _band_candidates(_average_across(values.T), ("right", "left"))
    for mixed in (0, 1):
        best: tuple[float, Band] | None = None
        for side in ("bottom", "top", "right", "left"):
            found = _band_edge(_side_view(values, side), candidates[side, mixed])
            if found is not None and (best is None or found[0] > best[0]):
                best = found
        if best is not None:
            return best[1]
    return None


@dataclass(frozen=True)
class _Edges:
    """The candidate edges of a band along one side (`side`, `mixed`), in the order of their
    row in the side's view (`_side_view`, `length` rows; the band starts at that row), with
    the mean grey-level step across each, the blend fitted there and its residual."""

    side: str
    mixed: int
    length: int
    rows: NDArray[np.int64]
    step: Floats
    scale: Floats
    offset: Floats
    residual: Floats


def _band_candidates(narrow: Floats, sides: tuple[str, str]) -> dict[tuple[str, int], _Edges]:
    """The candidate edges, for either `mixed`, along the two `sides` across which `narrow`
    runs (its rows averaged across; `sides`: the side at the end of its rows, then the one
    at their start): edges whose step (the mean absolute change between the rows either
    side) is enough, whose blend (`inside ~ scale * outside + offset` per row pair, by the
    geometric-mean regression, unbiased when both rows are noisy unlike least squares: scale
    sign(covariance) * sqrt(spread_in / spread_out)) is a darkening or lightening, and which
    the blend fits on these rows and the next ones out.

    All four sides and mixes are done at once, and each statistic only as far as needed:
    the steps between two rows once for both sides (|a - b| is |b - a|), each row's mean
    and spread once, the covariance only where the blend can pass, the residuals only
    where it does. Every statistic is computed row by row with the same operations whatever
    the rows around (each reduction over one row's contiguous values), so an edge's
    numbers do not depend on which other edges are computed with it."""
    narrow = np.ascontiguousarray(narrow)
    length, across = narrow.shape
    layout = _edge_layout(length)
    step = _row_changes(narrow)[layout.pair]
    kept = np.flatnonzero(step >= _BAND_STEP)
    step = step[kept]
    inside, outside = layout.inside[kept], layout.outside[kept]
    # Each row's mean and spread, once for all the rows the candidates use.
    position = np.zeros(length, np.int64)
    position[inside] = 1
    position[outside] = 1
    used = np.flatnonzero(position)
    position[used] = np.arange(len(used))
    at_inside, at_outside = position[inside], position[outside]
    values = narrow[used]
    mean = np.add.reduce(values, axis=1) / across
    centred = values - mean[:, None]
    spread = np.add.reduce(centred**2, axis=1) / across
    spread_ratio = np.sqrt(spread[at_inside] / np.maximum(spread[at_outside], 1e-6))
    # The scale is +-spread_ratio, or 0 where the rows do not covary, and then the residual
    # is the inside row's spread: edges failing both tests cannot pass.
    hopeful = np.flatnonzero(
        (spread_ratio <= _BAND_MAX_SCALE) | (np.sqrt(spread[at_inside]) <= _BAND_FIT[0] * step)
    )
    kept, step, spread_ratio = kept[hopeful], step[hopeful], spread_ratio[hopeful]
    at_inside, at_outside = at_inside[hopeful], at_outside[hopeful]
    covariance = np.add.reduce(centred[at_outside] * centred[at_inside], axis=1) / across
    scale = np.sign(covariance) * spread_ratio
    offset = mean[at_inside] - scale * mean[at_outside]
    passed = (scale >= 0) & (scale <= _BAND_MAX_SCALE)
    kept, step, scale, offset = kept[passed], step[passed], scale[passed], offset[passed]
    inside, outside = layout.inside[kept], layout.outside[kept]
    residual = _rms(narrow[inside] - (scale[:, None] * narrow[outside] + offset[:, None]))
    next_residual = _rms(
        narrow[layout.next_inside[kept]]
        - (scale[:, None] * narrow[layout.next_outside[kept]] + offset[:, None])
    )
    passed = (residual <= _BAND_FIT[0] * step) & (next_residual <= _BAND_FIT[1] * step)
    group = layout.group[kept]
    found = {}
    for index in range(4):
        mixed, end = divmod(index, 2)
        chosen = passed & (group == index)
        found[sides[end], mixed] = _Edges(
            sides[end],
            mixed,
            length,
            layout.row[kept[chosen]],
            step[chosen],
            scale[chosen],
            offset[chosen],
            residual[chosen],
        )
    return found


def _row_changes(narrow: Floats) -> Floats:
    """The mean absolute change from each row of `narrow` to the next (`length - 1` of them,
    for mixed 0), then from each row to the one after the next (mixed 1)."""
    length, across = narrow.shape
    if length < 3:
        return np.zeros(0)
    changes = np.empty(2 * length - 3)
    difference = np.empty((length - 1, across))
    for mixed, start in ((0, 0), (1, length - 1)):
        rows = length - 1 - mixed
        change = difference[:rows]
        np.subtract(narrow[1 + mixed :], narrow[:rows], out=change)
        np.abs(change, out=change)
        changes[start : start + rows] = np.add.reduce(change, axis=1) / across
    return changes


@dataclass(frozen=True)
class _EdgeLayout:
    """The edges a band could have across `length` rows, for the sides at either end of the
    rows, in groups by mixed and side (mixed 0 at the end of the rows, at their start, then
    mixed 1 likewise), each group in the order of the edge's `row` in the side's view.
    `inside`, `outside`, `next_inside`, `next_outside`: the rows either side of the edge
    and the next ones out, as rows of the unturned rows; `pair`: where the step between
    `inside` and `outside` is in `_row_changes`."""

    row: NDArray[np.int64]
    group: NDArray[np.int64]
    inside: NDArray[np.int64]
    outside: NDArray[np.int64]
    next_inside: NDArray[np.int64]
    next_outside: NDArray[np.int64]
    pair: NDArray[np.int64]


@lru_cache(maxsize=64)
def _edge_layout(length: int) -> _EdgeLayout:
    """The `_EdgeLayout` of `length` rows (read-only: it is shared)."""
    rows = np.arange(max(2, math.ceil((1 - _BAND_MAX) * length)), length - 2)
    rows = rows[length - rows >= max(3, _BAND_MIN * length)]
    columns: list[list[NDArray[np.int64]]] = [[] for _ in range(7)]
    for mixed in (0, 1):
        # Row r of the view of the side at the end is row r; of the other, length - 1 - r.
        for end, (base, sign) in enumerate(((0, 1), (length - 1, -1))):
            inside, outside = base + sign * (rows + mixed), base + sign * (rows - 1)
            pair = np.minimum(inside, outside) + mixed * (length - 1)
            group = np.full(len(rows), 2 * mixed + end)
            parts = (rows, group, inside, outside, inside + sign, outside - sign, pair)
            for column, part in zip(columns, parts, strict=True):
                column.append(part)
    arrays = [np.concatenate(column).astype(np.int64) for column in columns]
    for array in arrays:
        array.flags.writeable = False
    return _EdgeLayout(*arrays)


def _band_edge(view: Plane, edges: _Edges) -> tuple[float, Band] | None:
    """The best of the candidate band `edges` towards the bottom of `view`, with its
    score, or None."""
    best: tuple[float, Band] | None = None
    for i, row in enumerate(edges.rows):
        if _is_plain_border(view[row + edges.mixed :]):
            continue  # padding, not a caption: trimming's job
        score = float(edges.step[i] / (edges.residual[i] + 1))
        if best is None or score > best[0]:
            scale, offset = float(edges.scale[i]), float(edges.offset[i])
            best = (score, Band(edges.side, int(edges.length - row), scale, offset, edges.mixed))
    return best


_ACROSS = 4
"""Cells averaged along a candidate edge."""


def _average_across(view: Plane) -> Floats:
    """`view` with every `_ACROSS` columns averaged (all of them kept when they are few)."""
    across = view.shape[1]
    blocks = across // _ACROSS
    if blocks < 16:
        return view.astype(np.float64)
    total = view[:, 0 : blocks * _ACROSS : _ACROSS].astype(np.float64)
    for start in range(1, _ACROSS):
        total += view[:, start : blocks * _ACROSS : _ACROSS]
    return total / _ACROSS


def _is_plain_border(band: Plane) -> bool:
    colour = float(np.median(band))
    return bool((np.abs(band - colour) <= _UNIFORM_TOLERANCE).mean() >= _UNIFORM_SHARE)


def _rms(values: Floats) -> Floats:
    rms: Floats = np.sqrt((values**2).mean(axis=1))
    return rms


_TEXT_MARGIN = 8.0
"""Restored values this far outside 0-255 are text on the band, not picture."""


def _uncaptioned_grid(plane: LumaPlane, band: Band) -> Pixels:
    """PDQ's samples of the picture under the band: a translucent band's pixels mapped back
    (`(value - offset) / scale`), its text and an opaque band extrapolated."""
    view = _side_view(plane.values, band.side).astype(np.float32)
    mask = np.ones(view.shape, np.float32)
    covered = view[-band.cells :]
    if band.scale >= _OPAQUE:
        restored = (covered - band.offset) / band.scale
        text = (restored < -_TEXT_MARGIN) | (restored > 255 + _TEXT_MARGIN)
        grown = text.copy()  # and the glyphs' anti-aliased edges
        grown[1:] |= text[:-1]
        grown[:-1] |= text[1:]
        grown[:, 1:] |= text[:, :-1]
        grown[:, :-1] |= text[:, 1:]
        covered[:] = np.clip(restored, 0, 255)
        mask[-band.cells :][grown] = 0
        mask[len(mask) - band.cells : len(mask) - band.cells + band.mixed] = 0
    else:
        mask[-band.cells :] = 0
    restored_values = np.ascontiguousarray(_unside_view(view * mask, band.side))
    restored_mask = np.ascontiguousarray(_unside_view(mask, band.side))
    return _masked_grid(restored_values, restored_mask, plane.block, plane.size)


def _side_view(values: Plane, side: str) -> Plane:
    """`values` turned so that `side` is the bottom (rows run towards it)."""
    if side == "top":
        return values[::-1]
    if side == "right":
        return values.T
    if side == "left":
        return values.T[::-1]
    return values


def _unside_view(view: Plane, side: str) -> Plane:
    """The inverse of `_side_view`."""
    if side == "top":
        return view[::-1]
    if side == "right":
        return view.T
    if side == "left":
        return view[::-1].T
    return view


# ----------------------------------------------------------------------------------------
# Undoing a central crop


def _uncropped_grids(plane: LumaPlane, fractions: tuple[float, ...]) -> list[Pixels]:
    """PDQ's samples of the query as the centre of a canvas it would be a crop of, losing
    `fraction` of the canvas on each side, for each of `fractions`; the margin is
    extrapolated from the edges."""
    if not fractions:
        return []
    width, height = plane.size
    rows, cols = plane.values.shape
    samples = []
    for fraction in fractions:
        pad = fraction / (1 - 2 * fraction)
        margin = (round(pad * width), round(pad * height))
        canvas = (width + 2 * margin[0], height + 2 * margin[1])
        samples.append(_placed_samples(plane, Box(0, 0, cols, rows), canvas, margin))
    grids = _to_pixels(
        _complete_many(
            np.stack([grid for grid, _ in samples]),
            np.stack([coverage for _, coverage in samples]),
        )
    )
    return list(grids)
