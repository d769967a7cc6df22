"""Matching quality: recall and false matches of plain PDQ and of Vigil's query-side matching.

Run with `make bench` (or `python benchmarks/robustness.py`). For every photo of
`../shared/data/photos` (300 natural photographs, 481 x 321), altered copies are written to a
temporary folder (JPEG for the JPEG alterations, lossless PNG for the others):

  jpeg q30, jpeg q95   Pillow JPEG at that quality
  resize 0.5           half size, bicubic
  blur                 Gaussian, sigma 2 px
  gamma                gamma 2 (darker mid-tones)
  noise                additive Gaussian luma noise, sigma 0.2 x 255, clipped
  watermark            "TEST", 20% of the width, black at 78% opacity, bottom left
  crop 5%              5% of the width and height cut off each side (90% x 90% kept)
  pad 20%              black bars of 20% of the height above and below
  rotate 4             4 degrees counter-clockwise, same size, black corners, bilinear
  rotate 90            90 degrees counter-clockwise
  mirror               left-right
  greyscale            Pillow's L
  caption              a black band at 70% opacity over the bottom 15%, white text on it

(crop, pad, rotate, blur, gamma, noise and the watermark follow the public Thorn
`perception` benchmark's `crop0.05`, `pad0.2`, `rotate4`, `blur2`, `gamma2`, `noise0.2` and
`watermark`.) The bank is the 300 originals' plain PDQ hashes, one per original. Every copy
is a query:

  (a) plain PDQ   the copy's single hash (`PDQSignal.compute`);
  (b) Vigil       `vigil.signals.pdq_query.query_hashes`: the plain hash, its dihedral
                  variants, and the variants that undo padding, rotation, captions and
                  cropping (see that module).

A query matches an original when any of its hashes is within 31 bits of the original's hash,
both of quality >= 50 (the configured PDQ rule). Recall: the share of copies that match their
own original. False matches: (copy, other original) pairs that match, among the 299 others
of each copy (14 x 300 x 299 = 1,255,800 pairs). Precision = true / (true + false) pairs. The
margin column gives the smallest distance from any of a copy's hashes to any other original.

A second table checks alterations *not* in the goal, to show how the tricks generalise (crops
between the guessed amounts and a one-sided crop, other rotations, a white frame with a
mirror, other captions); they are not counted in the totals.

Timing: the process is pinned to one CPU before numpy is imported; (a) and (b) hash the same
files in alternating order, 3 passes after a warm-up, median reported.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pdqhash
import PIL
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from _bench import cpu_description  # first: pins this process to one CPU
from vigil.config import MediaLimits
from vigil.media.images import load_pdq_pixels
from vigil.signals.pdq import PDQSignal, pdq_from_pixels
from vigil.signals.pdq_query import QueryHash, query_hashes

REPO_ROOT = Path(__file__).resolve().parents[1]
PHOTOS_DIR = REPO_ROOT.parent / "shared" / "data" / "photos"
PDQ_DIR = REPO_ROOT.parent / "shared" / "conformance" / "pdq"
LIMITS = MediaLimits()
THRESHOLD = PDQSignal.default_threshold
MIN_QUALITY = PDQSignal.min_quality

Alteration = Callable[[Image.Image, int], Image.Image]


# ----------------------------------------------------------------------------------------
# Alterations (benign natural photos only)


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def watermark(image: Image.Image) -> Image.Image:
    """Thorn's `watermark`: "TEST" 20% of the width wide, black at alpha 200, bottom left."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    left, top, right, bottom = draw.textbbox((0, 0), "TEST", font=font(100))
    face = font(int(100 * 0.2 * image.width / (right - left)))
    left, top, right, bottom = draw.textbbox((0, 0), "TEST", font=face)
    height = bottom - top
    draw.text((height, image.height - 2 * height - top), "TEST", font=face, fill=(0, 0, 0, 200))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def caption(
    image: Image.Image,
    *,
    share: float = 0.15,
    top: bool = False,
    band: tuple[int, int, int, int] = (0, 0, 0, 178),
    ink: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """A subtitle-style caption: a band across the picture (default black at 70% opacity
    over the bottom 15%) with a line of text centred on it."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    depth = round(share * image.height)
    y0 = 0 if top else image.height - depth
    draw.rectangle((0, y0, image.width, y0 + depth), fill=band)
    text = "when the weekend finally arrives"
    size = int(depth * 0.6)
    while True:
        face = font(size)
        left, top_, right, bottom = draw.textbbox((0, 0), text, font=face)
        if right - left <= 0.9 * image.width or size <= 8:
            break
        size -= 1
    origin = ((image.width - (right - left)) / 2 - left, y0 + (depth - (bottom - top_)) / 2 - top_)
    draw.text(origin, text, font=face, fill=(*ink, 255))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def noise(image: Image.Image, seed: int) -> Image.Image:
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    grain = np.random.default_rng(seed).normal(0, 0.2 * 255, pixels.shape[:2])[..., None]
    return Image.fromarray(np.clip(np.rint(pixels + grain), 0, 255).astype(np.uint8))


def gamma(image: Image.Image, value: float = 2.0) -> Image.Image:
    table = [round(255 * (level / 255) ** value) for level in range(256)]
    return image.convert("RGB").point(table * 3)


def crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = image.size
    return image.crop(
        (round(left * w), round(top * h), w - round(right * w), h - round(bottom * h))
    )


def pad(
    image: Image.Image, vertical: float, horizontal: float, colour: tuple[int, int, int]
) -> Image.Image:
    w, h = image.size
    dy, dx = round(vertical * h), round(horizontal * w)
    canvas = Image.new("RGB", (w + 2 * dx, h + 2 * dy), colour)
    canvas.paste(image.convert("RGB"), (dx, dy))
    return canvas


BILINEAR = Image.Resampling.BILINEAR

ALTERATIONS: dict[str, Alteration] = {
    "jpeg q30": lambda im, _: im.convert("RGB"),  # encoded at quality 30 when written
    "jpeg q95": lambda im, _: im.convert("RGB"),
    "resize 0.5": lambda im, _: im.resize(
        (im.width // 2, im.height // 2), Image.Resampling.BICUBIC
    ),
    "blur": lambda im, _: im.filter(ImageFilter.GaussianBlur(2)),
    "gamma": lambda im, _: gamma(im),
    "noise": noise,
    "watermark": lambda im, _: watermark(im),
    "crop 5%": lambda im, _: crop(im, 0.05, 0.05, 0.05, 0.05),
    "pad 20%": lambda im, _: pad(im, 0.2, 0.0, (0, 0, 0)),
    "rotate 4": lambda im, _: im.rotate(4, resample=BILINEAR),
    "rotate 90": lambda im, _: im.transpose(Image.Transpose.ROTATE_90),
    "mirror": lambda im, _: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "greyscale": lambda im, _: im.convert("L"),
    "caption": lambda im, _: caption(im),
}

EXTRA_ALTERATIONS: dict[str, Alteration] = {
    "crop 3.75% (between guesses)": lambda im, _: crop(im, 0.0375, 0.0375, 0.0375, 0.0375),
    "crop 6% (between guesses)": lambda im, _: crop(im, 0.06, 0.06, 0.06, 0.06),
    "crop 10% left only": lambda im, _: crop(im, 0.1, 0.0, 0.0, 0.0),
    "rotate -10, expanded, white": lambda im, _: im.rotate(
        -10, resample=BILINEAR, expand=True, fillcolor=(255, 255, 255)
    ),
    "rotate 2": lambda im, _: im.rotate(2, resample=BILINEAR),
    "white frame 10% + mirror": lambda im, _: pad(
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 0.1, 0.1, (255, 255, 255)
    ),
    "caption: white 50% band, top 10%": lambda im, _: caption(
        im, share=0.1, top=True, band=(255, 255, 255, 128), ink=(0, 0, 0)
    ),
    "caption: opaque black bar, bottom 12%": lambda im, _: caption(
        im, share=0.12, band=(0, 0, 0, 255)
    ),
}

JPEG_QUALITY = {"jpeg q30": 30, "jpeg q95": 95}
"""Copies written as JPEG at this quality; all others as lossless PNG."""


def write_copy(image: Image.Image, folder: Path, stem: str, name: str) -> Path:
    if name in JPEG_QUALITY:
        path = folder / f"{stem}.jpg"
        image.save(path, "JPEG", quality=JPEG_QUALITY[name])
    else:
        path = folder / f"{stem}.png"
        image.save(path, "PNG", compress_level=1)
    return path


# ----------------------------------------------------------------------------------------
# Matching


def hex_bytes(values: list[str]) -> NDArray[np.uint8]:
    if not values:
        return np.zeros((0, 32), np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), np.uint8).reshape(len(values), 32)


POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def distances(queries: NDArray[np.uint8], bank: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Hamming distances, queries x bank."""
    xor = queries[:, None, :] ^ bank[None, :, :]
    return POPCOUNT[xor].sum(axis=2, dtype=np.int64)


@dataclass
class Row:
    name: str
    copies: int = 0
    found_a: int = 0
    found_b: int = 0
    false_a: int = 0
    false_b: int = 0
    margin_a: int = 256
    margin_b: int = 256
    hashes_b: int = 0
    found_by: Counter[str] = field(default_factory=Counter)


def plain_hash(path: Path) -> QueryHash | None:
    value, quality = pdq_from_pixels(load_pdq_pixels(path, LIMITS, fast=LIMITS.fast_decode))
    return QueryHash("original", 0, value, quality) if quality >= MIN_QUALITY else None


def full_hashes(path: Path) -> list[QueryHash]:
    return query_hashes(path, LIMITS, fast=LIMITS.fast_decode)


def evaluate(
    name: str,
    alteration: Alteration,
    originals: list[Path],
    bank: NDArray[np.uint8],
    usable: NDArray[np.bool_],
    folder: Path,
) -> tuple[Row, list[Path]]:
    row = Row(name)
    written = []
    others = np.ones(len(originals), bool)
    for index, original in enumerate(originals):
        with Image.open(original) as image:
            image.load()
            copy = alteration(image, index)
        path = write_copy(copy, folder, f"{index:03d}-{name.replace(' ', '_')}", name)
        written.append(path)
        plain = plain_hash(path)
        full = full_hashes(path)
        row.copies += 1
        row.hashes_b += len(full)
        others[:] = usable
        others[index] = False
        for method, hashes in (("a", [plain] if plain else []), ("b", full)):
            if not hashes:
                continue
            d = distances(hex_bytes([h.pdq for h in hashes]), bank)
            hit = (d <= THRESHOLD) & usable[None, :]
            found = bool(usable[index] and hit[:, index].any())
            false = int(hit[:, others].any(axis=0).sum())
            margin = int(d[:, others].min()) if others.any() else 256
            if method == "a":
                row.found_a += found
                row.false_a += false
                row.margin_a = min(row.margin_a, margin)
            else:
                row.found_b += found
                row.false_b += false
                row.margin_b = min(row.margin_b, margin)
                if found and not (plain and hamming_ok(plain, bank[index])):
                    matched = hashes[int(np.argmax(hit[:, index]))]
                    row.found_by[_family(matched)] += 1
    return row, written


def hamming_ok(query: QueryHash, original: NDArray[np.uint8]) -> bool:
    return int(distances(hex_bytes([query.pdq]), original[None, :])[0, 0]) <= THRESHOLD


def _family(query: QueryHash) -> str:
    label = query.label.split(":")[0]
    return f"{label}, dihedral {query.dihedral}" if query.dihedral else label


# ----------------------------------------------------------------------------------------
# Timing


def large_jpegs() -> dict[str, list[Path]]:
    """The conformance set's 1.6 MP and 12 MP RGB JPEGs (fast decode route), if present."""
    sets: dict[str, list[Path]] = {}
    for name, sizes in (
        ("1.6 MP JPEG, fast route", {(1600, 1004), (1004, 1600)}),
        ("12 MP JPEG, fast route", {(4032, 3024), (3024, 4032)}),
    ):
        found = []
        for path in sorted(PDQ_DIR.rglob("*.jpg")) if PDQ_DIR.is_dir() else []:
            with Image.open(path) as image:
                if image.size in sizes and image.mode == "RGB":
                    found.append(path)
        if found:
            sets[name] = found
    return sets


def time_methods(paths: list[Path], repeats: int) -> dict[str, float]:
    """ms per image of (a) and (b): the median pass; small sets get more passes (>= 60
    images hashed per method and pass set)."""
    repeats = max(repeats, -(-60 // len(paths)))
    methods: dict[str, Callable[[Path], object]] = {"a": plain_hash, "b": full_hashes}
    for method in methods.values():  # warm-up
        for path in paths:
            method(path)
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for repeat in range(repeats):
        for name in names[repeat % 2 :] + names[: repeat % 2]:
            started = time.perf_counter()
            for path in paths:
                methods[name](path)
            seconds[name].append(time.perf_counter() - started)
    return {name: 1000 * statistics.median(s) / len(paths) for name, s in seconds.items()}


# ----------------------------------------------------------------------------------------
# Output


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def table(rows: list[Row], others: int, totals: bool) -> str:
    lines = [
        "| alteration | copies | recall (a) plain | recall (b) Vigil | false matches (a) "
        "| false matches (b) | margin (a) / (b) | hashes per query (b) "
        "| (b) found, (a) missed, by |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        by = ", ".join(f"{label} {count}" for label, count in r.found_by.most_common()) or "-"
        lines.append(
            f"| {r.name} | {r.copies} | {percent(r.found_a, r.copies)} | "
            f"{percent(r.found_b, r.copies)} | {r.false_a} | {r.false_b} | "
            f"{r.margin_a} / {r.margin_b} | {r.hashes_b / r.copies:.1f} | {by} |"
        )
    if totals:
        copies = sum(r.copies for r in rows)
        found_a, found_b = sum(r.found_a for r in rows), sum(r.found_b for r in rows)
        false_a, false_b = sum(r.false_a for r in rows), sum(r.false_b for r in rows)
        lines.append(
            f"| **all** | {copies} | **{percent(found_a, copies)}** | "
            f"**{percent(found_b, copies)}** | {false_a} | {false_b} | "
            f"{min(r.margin_a for r in rows)} / {min(r.margin_b for r in rows)} | "
            f"{sum(r.hashes_b for r in rows) / copies:.1f} | |"
        )
        pairs = copies * others
        lines.append("")
        lines.append(
            f"Non-matching pairs: {pairs:,}. Precision (a): "
            f"{precision(found_a, false_a)}; (b): {precision(found_b, false_b)}."
        )
    return "\n".join(lines)


def precision(true: int, false: int) -> str:
    return f"{100 * true / (true + false):.3f}%" if true + false else "-"


def machine() -> str:
    return (
        f"{cpu_description()}, "
        f"Pillow {PIL.__version__}, numpy {np.__version__}, "
        f"pdqhash {pdqhash.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos")
    parser.add_argument("--repeats", type=int, default=3, help="timing passes (3)")
    parser.add_argument("--no-extra", action="store_true", help="skip the generalisation table")
    parser.add_argument(
        "--timing-only", action="store_true", help="only the timing (photos and large JPEGs)"
    )
    args = parser.parse_args(argv)
    if not PHOTOS_DIR.is_dir():
        print(
            f"benchmarks/robustness.py needs the photos at {PHOTOS_DIR} (`../shared/data/photos` "
            "beside the repository root); it is not there, so there is nothing to measure.",
            file=sys.stderr,
        )
        return 2
    originals = sorted(PHOTOS_DIR.glob("*.jpg"))
    if args.limit:
        originals = originals[: args.limit]
    print(f"Machine: {machine()}", flush=True)
    entries = [
        pdq_from_pixels(load_pdq_pixels(path, LIMITS, fast=LIMITS.fast_decode))
        for path in originals
    ]
    bank = hex_bytes([value for value, _ in entries])
    usable = np.array([quality >= MIN_QUALITY for _, quality in entries])
    print(
        f"Bank: {len(originals)} originals, {int(usable.sum())} of quality >= {MIN_QUALITY}",
        flush=True,
    )
    rows: list[Row] = []
    extra: list[Row] = []
    timing_sets: dict[str, list[Path]] = {"photos (481x321)": originals}
    with tempfile.TemporaryDirectory(prefix="vigil-robustness-") as tmp:
        folder = Path(tmp)
        groups = [(ALTERATIONS, rows), ({} if args.no_extra else EXTRA_ALTERATIONS, extra)]
        for group, target in [] if args.timing_only else groups:
            for name, alteration in group.items():
                print(f"... {name}", flush=True)
                row, written = evaluate(name, alteration, originals, bank, usable, folder)
                target.append(row)
                if name in ("pad 20%", "rotate 4"):
                    timing_sets[f"{name} copies"] = written
        timing_sets.update(large_jpegs())
        print("... timing", flush=True)
        timings = {name: time_methods(paths, args.repeats) for name, paths in timing_sets.items()}
    others = len(originals) - 1
    if rows:
        print()
        print(table(rows, others, totals=True))
    if extra:
        print()
        print("Generalisation (not in the goal, not in the totals):")
        print()
        print(table(extra, others, totals=False))
    print()
    print("Hashing time per image, one core (ms; median of passes):")
    print()
    print("| files | count | (a) plain PDQ | (b) Vigil query hashes | extra |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, t in timings.items():
        count = len(timing_sets[name])
        print(f"| {name} | {count} | {t['a']:.2f} | {t['b']:.2f} | +{t['b'] - t['a']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
