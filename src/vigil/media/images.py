"""Safe image decoding into the pixels PDQ hashes.

Two routes:
- exact: `Image.open(f).convert("RGB")` at full resolution, the route the reference hashes in
  `conformance/pdq/expected.csv` were made with, so the hash is bit-identical;
- fast (large JPEGs only): decode only the luma at the smallest DCT scale that keeps the short
  side >= the configured size, then downscale to that size. The reference's own tool also
  hashes at 512 px; the drift is measured by the conformance tests (docs/performance.md).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pillow_heif
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from vigil.config import MediaLimits
from vigil.media.errors import ErrorCode, MediaError

pillow_heif.register_heif_opener()

Pixels = NDArray[np.uint8]
"""An H x W x 3 uint8 array (possibly a read-only broadcast view of one luma plane)."""


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
    """Decode `path` into the pixels to hash with PDQ, by the exact or the fast route."""
    image = open_image(path, limits)
    try:
        with image:
            if fast and _wants_fast_route(image, limits.fast_decode_short_side):
                return _fast_luma(image, limits.fast_decode_short_side)
            return np.asarray(image.convert("RGB"))
    except MediaError:
        raise
    except MemoryError as exc:
        raise MediaError(ErrorCode.TOO_MANY_PIXELS, "not enough memory to decode") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise _decode_error(exc) from exc


def _wants_fast_route(image: Image.Image, short_side: int) -> bool:
    return image.format == "JPEG" and min(image.size) > short_side


def _fast_luma(image: Image.Image, short_side: int) -> Pixels:
    width, height = image.size
    scale = short_side / min(width, height)
    # draft() picks the smallest DCT scale (1/1, 1/2, 1/4, 1/8) at least this large.
    image.draft("L", (math.ceil(width * scale), math.ceil(height * scale)))
    luma = image.convert("L")
    if min(luma.size) > short_side:
        scale = short_side / min(luma.size)
        target = (max(1, round(luma.width * scale)), max(1, round(luma.height * scale)))
        luma = luma.resize(target, Image.Resampling.BILINEAR)
    plane = np.asarray(luma)
    # PDQ's luma of (g, g, g) is g: a zero-stride view hands it three channels for free.
    return np.lib.stride_tricks.as_strided(
        plane, shape=(*plane.shape, 3), strides=(*plane.strides, 0), writeable=False
    )


def _decode_error(exc: BaseException) -> MediaError:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return MediaError(ErrorCode.TRUNCATED, f"file ends before the image does: {text}")
    return MediaError(ErrorCode.CORRUPT, f"image data is corrupt: {text}")
