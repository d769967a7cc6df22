"""Benign synthetic media for the demo and the tests: gradients, shapes and a moving pattern.

Nothing here is, or resembles, real content: every pixel comes from a formula, so the demo
and the test-suite need nothing from outside the repository.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw


def synthetic_image(width: int, height: int, seed: int) -> Image.Image:
    """A structured RGB picture (gradient, rings, rectangles) that PDQ hashes at high quality."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0.2, 0.8, 2) * (width, height)
    rings = np.sin(np.hypot(x - cx, y - cy) / rng.uniform(6, 20) * max(width, height) / 256)
    base = np.stack(
        [
            127 + 100 * rings,
            255 * x / max(width - 1, 1),
            255 * y / max(height - 1, 1),
        ],
        axis=-1,
    )
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.rectangle((x0, y0, x1 + 1, y1 + 1), fill=colour)
    return image


def synthetic_frames(width: int, height: int, count: int) -> list[NDArray[np.uint8]]:
    """Frames of a pattern that drifts slowly: consecutive frames hash alike, distant ones not."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for index in range(count):
        phase = index / 8.0
        red = 127 + 120 * np.sin(x / 17.0 + phase) * np.cos(y / 23.0 - phase / 2)
        green = 127 + 120 * np.sin((x + y) / 31.0 - phase)
        blue = 255 * ((x + index * 3) % width) / width
        frames.append(np.clip(np.stack([red, green, blue], axis=-1), 0, 255).astype(np.uint8))
    return frames


def write_video(
    path: Path, frames: list[NDArray[np.uint8]], *, fps: int = 10, codec: str = "mpeg4"
) -> Path:
    """Encode frames with PyAV into the container named by the file extension."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        assert isinstance(stream, av.VideoStream)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def make_demo_media(folder: Path) -> list[Path]:
    """Write the demo set: a few images in several formats, a near-copy, a rotated copy,
    a broken file, and a short video."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    original = synthetic_image(1600, 1000, seed=1)
    for name, image, quality in (
        ("landscape.jpg", original, 90),
        ("landscape-small.png", original.resize((640, 400)), None),
        ("landscape-rotated.webp", original.transpose(Image.Transpose.ROTATE_90), 85),
        ("pattern.jpg", synthetic_image(800, 800, seed=2), 92),
        ("pattern.gif", synthetic_image(320, 240, seed=3).convert("P"), None),
    ):
        if quality:
            image.save(folder / name, quality=quality)
        else:
            image.save(folder / name)
        written.append(folder / name)
    broken = folder / "broken.jpg"
    broken.write_bytes((folder / "landscape.jpg").read_bytes()[:4000])
    written.append(broken)
    written.append(write_video(folder / "drift.mp4", synthetic_frames(320, 240, 30)))
    return written
