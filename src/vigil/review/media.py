"""What a reviewer sees of matched media: never the file itself but a rendering made from
it (kept sealed by `vigil.vault.media`): decoded within the media limits, re-encoded as a
plain JPEG without metadata, and as small, grey and blurred as the console asks (reviewer
wellbeing: reveal detail only step by step).
"""

from __future__ import annotations

import io
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from PIL import Image, ImageFilter, ImageOps

from vigil.config import MediaLimits
from vigil.media.errors import ErrorCode, MediaError
from vigil.media.images import open_image
from vigil.media.video import MIN_HASHABLE_SIDE, VideoFrame, iter_frames

MediaKind = Literal["image", "video"]
"""What the bytes are (`vigil.media.MediaType` values are accepted as they are)."""

JPEG_QUALITY = 85
GRID_COLUMNS = 3
GRID_TILES = GRID_COLUMNS * GRID_COLUMNS
"""A video is shown as up to 9 frames evenly spaced over its length, 3 to a row."""

# --- Renderings ---------------------------------------------------------------------------


class Rendering(StrEnum):
    """The sizes the review console asks for: a thumbnail first, more only on request."""

    THUMBNAIL = "thumbnail"
    PREVIEW = "preview"
    FULL = "full"


RENDER_SIDES: Mapping[Rendering, int] = MappingProxyType(
    {Rendering.THUMBNAIL: 240, Rendering.PREVIEW: 480, Rendering.FULL: 1280}
)
"""The bound on the longer side of each rendering, in pixels."""

BLUR_REFERENCE_SIDE = 480
"""`render` takes blur radii in pixels of a picture this long (`Wellbeing.blur_radius`)."""


def render(
    data: bytes,
    rendering: Rendering,
    *,
    media_type: str,
    blur_radius: float,
    greyscale: bool,
    limits: MediaLimits,
) -> bytes:
    """`render_image` at the size of `rendering`, the blur scaled with it: `blur_radius` is
    in pixels of a 480-pixel picture, so a thumbnail and a full view look equally blurred."""
    max_side = RENDER_SIDES[rendering]
    return render_image(
        data,
        media_type=media_type,
        max_side=max_side,
        blur_radius=blur_radius * max_side / BLUR_REFERENCE_SIDE,
        greyscale=greyscale,
        limits=limits,
    )


def render_image(
    data: bytes,
    *,
    media_type: str,
    max_side: int,
    blur_radius: float,
    greyscale: bool,
    limits: MediaLimits,
) -> bytes:
    """A JPEG (quality 85, no metadata) of an image or of a video's keyframe grid.

    An image is decoded within `limits`, turned upright by its EXIF orientation, reduced
    (never enlarged) to fit `max_side`, optionally made grey (mode L) and Gaussian-blurred
    by `blur_radius` pixels. A video becomes up to 9 frames evenly spaced over its length,
    tiled 3 to a row (fewer tiles for fewer frames), each tile within `max_side / 3` and
    blurred by a third of `blur_radius`, so the grid is as obscured as a still.
    Undecodable or over-limit input raises `MediaError`.
    """
    if media_type not in ("image", "video"):
        raise ValueError(f"media_type is 'image' or 'video', not {media_type!r}")
    if max_side < GRID_COLUMNS:
        raise ValueError(f"max_side must be at least {GRID_COLUMNS}")
    if not (math.isfinite(blur_radius) and blur_radius >= 0):
        raise ValueError("blur_radius must be a finite number >= 0")
    if not data:
        raise MediaError(ErrorCode.EMPTY, "the media is empty")
    if len(data) > limits.max_file_bytes:
        raise MediaError(
            ErrorCode.TOO_LARGE,
            f"{len(data)} bytes exceeds the limit of {limits.max_file_bytes}"
            " (VIGIL_MAX_FILE_BYTES)",
        )
    with _as_file(data) as path:
        if media_type == "image":
            picture = _still(path, max_side, blur_radius, greyscale, limits)
        else:
            picture = _grid(path, max_side, blur_radius, greyscale, limits)
    return _jpeg(picture)


def _still(
    path: Path, max_side: int, blur_radius: float, greyscale: bool, limits: MediaLimits
) -> Image.Image:
    image = open_image(path, limits)  # refuses too many pixels before decoding
    try:
        with image:
            image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale
            upright = ImageOps.exif_transpose(image)
            fitted = _fit(upright.convert("RGB"), (max_side, max_side))
            return _finish(fitted, blur_radius, greyscale)
    except MediaError:
        raise
    except MemoryError as exc:
        raise MediaError(ErrorCode.TOO_MANY_PIXELS, "not enough memory to decode") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, EOFError) or "truncated" in text.lower():
            raise MediaError(ErrorCode.TRUNCATED, f"the image is cut short: {text}") from exc
        raise MediaError(ErrorCode.CORRUPT, f"image data is corrupt: {text}") from exc


def _grid(
    path: Path, max_side: int, blur_radius: float, greyscale: bool, limits: MediaLimits
) -> Image.Image:
    box = max_side // GRID_COLUMNS
    # The frame size, from the first frame alone, so all others are decoded at tile size.
    probe = iter_frames(path, limits, seconds_per_hash=0)
    try:
        first = next(probe, None)
    finally:
        close = getattr(probe, "close", None)
        if close is not None:
            close()
    if first is None:
        raise MediaError(ErrorCode.CORRUPT, "no video frame could be decoded")
    height, width = first.rgb.shape[:2]
    del first
    tile_size = _fitted((width, height), (box, box))
    decode_size: tuple[int | None, int | None] = (None, None)
    if tile_size != (width, height):
        decode_size = (max(tile_size[0], MIN_HASHABLE_SIDE), max(tile_size[1], MIN_HASHABLE_SIDE))
    frames = iter_frames(
        path, limits, seconds_per_hash=0, width=decode_size[0], height=decode_size[1]
    )
    picked = _spread(frames, GRID_TILES)
    tiles = [
        _finish(
            _fit(Image.fromarray(frame.rgb, "RGB"), tile_size),
            blur_radius / GRID_COLUMNS,
            greyscale,
        )
        for frame in picked
    ]
    columns = min(GRID_COLUMNS, len(tiles))
    rows = -(-len(tiles) // GRID_COLUMNS)
    grid = Image.new(tiles[0].mode, (columns * tile_size[0], rows * tile_size[1]))
    for number, tile in enumerate(tiles):
        row, column = divmod(number, GRID_COLUMNS)
        grid.paste(tile, (column * tile_size[0], row * tile_size[1]))
    return grid


def _spread(frames: Iterable[VideoFrame], count: int) -> list[VideoFrame]:
    """`count` frames evenly spaced over all of `frames` (all when fewer), in one pass
    without knowing the length: keep every `stride`-th frame and, whenever 2 x `count` are
    kept, drop every other one and double the stride. Holds at most 2 x `count` frames."""
    kept: list[VideoFrame] = []
    stride = 1
    for frame in frames:
        if frame.index % stride == 0:
            kept.append(frame)
            if len(kept) == 2 * count:
                kept = kept[::2]
                stride *= 2
    if len(kept) <= count:
        return kept
    last = len(kept) - 1
    return [kept[round(number * last / (count - 1))] for number in range(count)]


def _fitted(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled down (never up), keeping its proportions, to fit in `box`."""
    scale = min(1.0, box[0] / size[0], box[1] / size[1])
    if scale == 1.0:
        return size
    return (
        max(1, min(box[0], round(size[0] * scale))),
        max(1, min(box[1], round(size[1] * scale))),
    )


def _fit(image: Image.Image, box: tuple[int, int]) -> Image.Image:
    size = _fitted(image.size, box)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _finish(image: Image.Image, blur_radius: float, greyscale: bool) -> Image.Image:
    if greyscale:
        image = image.convert("L")
    if blur_radius > 0:
        image = image.filter(ImageFilter.GaussianBlur(blur_radius))
    return image


def _jpeg(image: Image.Image) -> bytes:
    """Encode the pixels alone: a fresh image carries no EXIF, ICC profile or comment."""
    clean = Image.frombytes(image.mode, image.size, image.tobytes())
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


@contextmanager
def _as_file(data: bytes) -> Iterator[Path]:
    """`data` at a path, for the decoders that open files by name.

    On Linux an anonymous in-memory file (`memfd_create`): decrypted media never touches a
    disk. Elsewhere a private temporary file (0o600), removed on exit.
    """
    if sys.platform == "linux" and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("vigil-review", os.MFD_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            yield Path(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
    else:
        with tempfile.NamedTemporaryFile(prefix="vigil-review-") as stream:
            stream.write(data)
            stream.flush()
            yield Path(stream.name)
