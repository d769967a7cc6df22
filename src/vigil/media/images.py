"""Safe image decoding into the pixels PDQ hashes.

Two routes:
- exact: `Image.open(f).convert("RGB")` at full resolution, the route the reference hashes in
  `conformance/pdq/expected.csv` were made with, so the hash is bit-identical;
- fast (large JPEGs only): decode only the luma, at the smallest DCT scale that keeps the
  short side >= the configured size, and compute from it the 64 x 64 grid that PDQ itself
  would sample from its blurred full-resolution luma. PDQ (the reference C++) then hashes
  that grid: its own blur of a 64 x 64 input is the identity, so everything after the
  downsample (DCT, median, bits, quality) is the reference's. The drift to the exact route
  is measured by the conformance tests (docs/performance.md).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np
import pillow_heif
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from vigil.config import MediaLimits
from vigil.media.errors import ErrorCode, MediaError

pillow_heif.register_heif_opener()

Pixels = NDArray[np.uint8]
"""An H x W x 3 uint8 array: the decoded RGB image, or on the fast route a read-only
64 x 64 x 3 broadcast view of PDQ's luma samples (which pdqhash hashes as they are)."""

_FAST_FORMATS = frozenset({"JPEG", "MPO"})
"""Formats whose decoder can scale in the DCT domain and hand out the luma alone."""

_PDQ_GRID = 64
"""PDQ samples its blurred luma at 64 x 64 points."""

_PDQ_WINDOW_DIVISOR = 128
"""PDQ's box-filter window along an axis of n pixels is ceil(n / 128) (two passes)."""

_BLOCKS_PER_WINDOW = 4
"""Pre-average blocks no wider than a quarter of PDQ's window (drift <= 4 bits measured)."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class LumaPlane:
    """An image's luma (PDQ's 0.299/0.587/0.114, to the grey level) as the means of blocks of
    full-resolution pixels, fine enough to compute PDQ's 64 x 64 samples from (blocks no wider
    than a quarter of PDQ's window): the input of the query-side matching tricks
    (`vigil.signals.pdq_query`).

    `values[j, i]` is the mean of the full-resolution pixels `[i * bx, (i + 1) * bx)` x
    `[j * by, (j + 1) * by)`, `(bx, by) = block`, clipped to `size` (the last row and column
    of blocks may cover fewer pixels). Read-only.
    """

    values: NDArray[np.float32]
    block: tuple[int, int]
    size: tuple[int, int]


def open_image(path: Path, limits: MediaLimits) -> Image.Image:
    """Open lazily (header only) and refuse images over the pixel limit before decoding."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise MediaError(ErrorCode.TOO_MANY_PIXELS, str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise MediaError(ErrorCode.UNSUPPORTED_FORMAT, "not an image format Vigil decodes") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(exc) from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise MediaError(ErrorCode.CORRUPT, f"image reports size {width}x{height}")
    if width * height > limits.max_image_pixels:
        image.close()
        raise MediaError(
            ErrorCode.TOO_MANY_PIXELS,
            f"{width}x{height} = {width * height} pixels exceeds the limit of "
            f"{limits.max_image_pixels} (VIGIL_MAX_IMAGE_PIXELS)",
        )
    return image


def load_pdq_pixels(path: Path, limits: MediaLimits, *, fast: bool) -> Pixels:
    """Decode `path` into the pixels to hash with PDQ, by the exact or the fast route.

    `fast` takes the fast route for large JPEGs only (see the module's docstring); every other
    image, and every image when `fast` is false, is decoded exactly.
    """

    def decode(image: Image.Image) -> Pixels:
        if fast and _wants_fast_route(image, limits.fast_decode_short_side):
            return _fast_luma(image, limits.fast_decode_short_side)
        # convert("RGB") of an RGB image is a copy of the same pixels: skip it.
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))

    return _decode(path, limits, decode)


def load_pdq_pixels_and_luma(
    path: Path, limits: MediaLimits, *, fast: bool
) -> tuple[Pixels, LumaPlane]:
    """`load_pdq_pixels(path, limits, fast=fast)` (the same pixels, so the same hash) and the
    image's `LumaPlane`, from one decode.

    On the fast route the plane is the reduced-scale luma decode the 64 x 64 samples are
    computed from; on the exact route, the luma of the decoded RGB, averaged in blocks of at
    most a quarter of PDQ's window (none along an axis of up to 896 px).
    """

    def decode(image: Image.Image) -> tuple[Pixels, LumaPlane]:
        if fast and _wants_fast_route(image, limits.fast_decode_short_side):
            plane = _fast_plane(image, limits.fast_decode_short_side)
            return _grid_from_plane(plane), plane
        pixels: Pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        return pixels, luma_plane(pixels)

    return _decode(path, limits, decode)


def luma_plane(pixels: Pixels) -> LumaPlane:
    """The `LumaPlane` of decoded H x W x 3 RGB pixels (at full resolution)."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ValueError(f"expected H x W x 3 RGB pixels, got shape {pixels.shape}")
    height, width = pixels.shape[:2]
    luma = Image.fromarray(np.ascontiguousarray(pixels), "RGB").convert("L")
    factors = tuple(max(1, _pdq_window(length) // _BLOCKS_PER_WINDOW) for length in (width, height))
    reduced = luma.reduce((factors[0], factors[1])) if factors != (1, 1) else luma
    values = np.asarray(reduced, dtype=np.float32)
    values.flags.writeable = False
    return LumaPlane(values, (factors[0], factors[1]), (width, height))


def _decode(path: Path, limits: MediaLimits, decode: Callable[[Image.Image], _T]) -> _T:
    """Open `path` within `limits` and decode it with `decode`, every failure a MediaError."""
    image = open_image(path, limits)
    try:
        with image:
            return decode(image)
    except MediaError:
        raise
    except MemoryError as exc:
        raise MediaError(ErrorCode.TOO_MANY_PIXELS, "not enough memory to decode") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(exc) from exc


def _wants_fast_route(image: Image.Image, short_side: int) -> bool:
    return image.format in _FAST_FORMATS and min(image.size) > short_side


def _fast_luma(image: Image.Image, short_side: int) -> Pixels:
    """PDQ's 64 x 64 downsample of the full-resolution luma, from a reduced-scale decode.

    PDQ blurs the luma with two passes of a box of ceil(n / 128) pixels along each axis and
    keeps the 64 x 64 samples at floor((k + 0.5) * n / 64). Each sample is therefore a fixed
    weighted sum of the pixels; we evaluate those sums on the decoded luma, first averaged
    (Pillow's `reduce`) in blocks of at most a quarter window so the work is small.
    """
    return _grid_from_plane(_fast_plane(image, short_side))


def _fast_plane(image: Image.Image, short_side: int) -> LumaPlane:
    """The luma decoded at a reduced DCT scale, averaged in blocks of at most a quarter of
    PDQ's window (see `_fast_luma`)."""
    full = image.size
    scale = short_side / min(full)
    # draft() picks the smallest DCT scale (1/1, 1/2, 1/4, 1/8) that keeps at least this size,
    # and for YCbCr JPEGs makes libjpeg output the Y channel alone (PDQ's luma coefficients).
    image.draft("L", (math.ceil(full[0] * scale), math.ceil(full[1] * scale)))
    if image.mode == "L":
        image.load()
        luma = image
    else:  # CMYK and other JPEGs: Pillow's own conversion, as the exact route's RGB
        luma = image.convert("L")
    dct_scale = _dct_scale(full, luma.size)
    factors = tuple(
        max(1, _pdq_window(length) // (_BLOCKS_PER_WINDOW * dct_scale)) for length in full
    )
    reduced = luma.reduce((factors[0], factors[1])) if factors != (1, 1) else luma
    plane = np.asarray(reduced, dtype=np.float32)
    plane.flags.writeable = False
    return LumaPlane(plane, (dct_scale * factors[0], dct_scale * factors[1]), full)


def _grid_from_plane(plane: LumaPlane) -> Pixels:
    """PDQ's 64 x 64 samples of the full-resolution image, from its block means."""
    full = plane.size
    rows = _pdq_weights(full[1], plane.block[1], plane.values.shape[0])
    cols = _pdq_weights(full[0], plane.block[0], plane.values.shape[1])
    grid = rows @ (plane.values @ cols.T)
    samples = np.clip(np.rint(grid), 0, 255).astype(np.uint8)
    # PDQ's luma of (g, g, g) is g: a zero-stride view hands it three channels for free.
    return np.lib.stride_tricks.as_strided(
        samples, shape=(*samples.shape, 3), strides=(*samples.strides, 0), writeable=False
    )


def _pdq_window(length: int) -> int:
    return (length + _PDQ_WINDOW_DIVISOR - 1) // _PDQ_WINDOW_DIVISOR


def _dct_scale(full: tuple[int, int], decoded: tuple[int, int]) -> int:
    """The JPEG decoder's DCT scale denominator: decoded = ceil(full / scale)."""
    for scale in (1, 2, 4, 8):
        if all(-(-length // scale) == size for length, size in zip(full, decoded, strict=True)):
            return scale
    return max(1, round(max(full) / max(decoded)))


@lru_cache(maxsize=128)
def _pdq_weights(length: int, block: int, blocks: int) -> NDArray[np.float32]:
    """Weights (64 x `blocks`) giving PDQ's 64 blurred samples along an axis of `length`
    pixels from the means of consecutive blocks of `block` pixels.

    Mirrors the reference's `box1DFloat` (window w, output i averages the inputs
    [i - (w - h), i + h - 1] clipped to the axis, h = (w + 2) // 2), applied twice, and its
    `decimateFloat` (sample k at int((k + 0.5) * length / 64)). A block's weight is the sum of
    its pixels' weights, exact wherever the luma is flat within a block.
    """
    window = _pdq_window(length)
    half = (window + 2) // 2
    index = np.arange(length)
    first = np.maximum(index - (window - half), 0)
    count = np.minimum(index + half - 1, length - 1) - first + 1
    weights = np.zeros((_PDQ_GRID, blocks))
    for k in range(_PDQ_GRID):
        sample = int(((k + 0.5) * length) / _PDQ_GRID)
        taps = np.arange(first[sample], first[sample] + count[sample])  # first-pass outputs
        share = 1.0 / (count[sample] * count[taps])
        lo = int(first[taps[0]]) // block
        hi = min(int(first[taps[-1]] + count[taps[-1]] - 1) // block, blocks - 1)
        edges = np.minimum(np.arange(lo, hi + 2) * block, length)
        # Weight of the pixels left of each block edge, then per block by difference.
        covered = np.clip(edges[None, :] - first[taps][:, None], 0, count[taps][:, None])
        weights[k, lo : hi + 1] = np.diff(share @ covered)
    result = weights.astype(np.float32)
    result.flags.writeable = False
    return result


def _decode_error(exc: BaseException) -> MediaError:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return MediaError(ErrorCode.TRUNCATED, f"file ends before the image does: {text}")
    return MediaError(ErrorCode.CORRUPT, f"image data is corrupt: {text}")
