"""Properties of PDQ values and of image decoding for PDQ.

- hex <-> bits round trips, `parse` normalisation and rejection, Hamming distance axioms;
- dihedral consistency: the hash of a rotated or flipped image equals the matching dihedral
  variant of the original's hash (the PIL transposes that are the reference's variants are
  checked on `../shared/conformance/pdq/reg-test-input/dih`, which holds exactly those
  transforms of one photograph);
- every Pillow mode is hashed from `convert("RGB")`, as `expected.csv` was made;
- every supported format decodes (HEIF, GIF first frame, BMP, TIFF, WebP), and every broken
  or hostile file becomes a `MediaError` with the right code.
"""

from __future__ import annotations

import csv
import hashlib
import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pdqhash
import pillow_heif
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image

from shared_data import require_shared
from vigil.config import MediaLimits
from vigil.media import ErrorCode, MediaError, MediaType, open_media
from vigil.media.images import load_pdq_pixels
from vigil.signals import get_signal_type
from vigil.signals.pdq import (
    PDQ_HEX_LENGTH,
    Dihedral,
    bits_to_hex,
    dihedral_from_pixels,
    hamming,
    hex_to_bits,
    pdq_from_pixels,
)

LIMITS = MediaLimits()
ALL_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F")
HEX_DIGITS = "0123456789abcdefABCDEF"
PDQ = get_signal_type("pdq")

hex_pdq = st.binary(min_size=32, max_size=32).map(bytes.hex)
bit_vectors = st.lists(st.integers(0, 1), min_size=256, max_size=256)

# The reference's variant order (`Dihedral`) as PIL transposes: ROTATE_90 is counter-clockwise
# like the reference's rotate 90; flip x swaps top and bottom; flip y mirrors left and right;
# flip +1 keeps the main diagonal (transpose); flip -1 keeps the anti-diagonal (transverse).
TRANSPOSES: dict[Dihedral, Image.Transpose] = {
    Dihedral.ROTATE_90: Image.Transpose.ROTATE_90,
    Dihedral.ROTATE_180: Image.Transpose.ROTATE_180,
    Dihedral.ROTATE_270: Image.Transpose.ROTATE_270,
    Dihedral.FLIP_X: Image.Transpose.FLIP_TOP_BOTTOM,
    Dihedral.FLIP_Y: Image.Transpose.FLIP_LEFT_RIGHT,
    Dihedral.FLIP_PLUS_1: Image.Transpose.TRANSPOSE,
    Dihedral.FLIP_MINUS_1: Image.Transpose.TRANSVERSE,
}
DIH_FILES: dict[Dihedral, str] = {
    Dihedral.ORIGINAL: "bridge-1-original.jpg",
    Dihedral.ROTATE_90: "bridge-2-rotate-90.jpg",
    Dihedral.ROTATE_180: "bridge-3-rotate-180.jpg",
    Dihedral.ROTATE_270: "bridge-4-rotate-270.jpg",
    Dihedral.FLIP_X: "bridge-5-flipx.jpg",
    Dihedral.FLIP_Y: "bridge-6-flipy.jpg",
    Dihedral.FLIP_PLUS_1: "bridge-7-flip-plus-1.jpg",
    Dihedral.FLIP_MINUS_1: "bridge-8-flip-minus-1.jpg",
}


def reference_pdq(image: Image.Image) -> tuple[str, int]:
    """How `expected.csv` was made: pdqhash on `convert("RGB")`, full resolution."""
    bits, quality = pdqhash.compute(np.asarray(image.convert("RGB")))
    return bits_to_hex(bits), int(quality)


def vigil_pdq(path: Path, limits: MediaLimits = LIMITS, *, fast: bool = False) -> tuple[str, int]:
    """Vigil's own path for a file: open_media, then the registered PDQ signal type."""
    media = open_media(path, limits)
    assert media.media_type is MediaType.IMAGE
    signal = PDQ.compute(media, fast=fast)
    assert signal.quality is not None
    return signal.value, signal.quality


def scene(width: int, height: int, seed: int) -> NDArray[np.uint8]:
    """Benign synthetic RGB content: gradients, sharp rectangles and ellipses, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    pixels = np.empty((height, width, 3), np.float32)
    for channel in range(3):
        a, b = rng.uniform(-1, 1, 2)
        pixels[..., channel] = 128 + 60 * (a * (x / width - 0.5) + b * (y / height - 0.5))
    for _ in range(int(rng.integers(12, 24))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.03, 0.25) * width, rng.uniform(0.03, 0.25) * height
        if rng.random() < 0.5:
            inside = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1
        else:
            inside = (np.abs(x - cx) <= rx) & (np.abs(y - cy) <= ry)
        pixels[inside] = rng.uniform(0, 255, 3)
    pixels += rng.normal(0, 5, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------
# Values: hex, bits, parse, distance


@given(bit_vectors)
def test_bits_hex_round_trip(bits: list[int]) -> None:
    text = bits_to_hex(np.array(bits))
    assert len(text) == PDQ_HEX_LENGTH
    assert text == text.lower()
    assert hex_to_bits(text).tolist() == bits


@given(hex_pdq, st.booleans())
def test_hex_bits_round_trip(value: str, upper: bool) -> None:
    text = value.upper() if upper else value
    assert bits_to_hex(hex_to_bits(text)) == value


@given(bit_vectors)
def test_first_hex_digit_holds_the_first_bits(bits: list[int]) -> None:
    # Reference bit order: the first bit of the vector is the most significant of the text.
    assert int(bits_to_hex(np.array(bits)), 16) == int("".join(map(str, bits)), 2)


@pytest.mark.parametrize("name", ["pdq", "md5", "sha256"])
@given(data=st.data())
def test_parse_normalises_valid_values(name: str, data: st.DataObject) -> None:
    signal_type = get_signal_type(name)
    length = {"pdq": 64, "md5": 32, "sha256": 64}[name]
    value = data.draw(st.text(HEX_DIGITS, min_size=length, max_size=length))
    padding = data.draw(st.sampled_from(["", " ", "\t", "\n", "  \r\n"]))
    assert signal_type.parse(padding + value + padding) == value.lower()


@pytest.mark.parametrize("name", ["pdq", "md5", "sha256"])
@given(data=st.data())
def test_parse_rejects_wrong_lengths(name: str, data: st.DataObject) -> None:
    signal_type = get_signal_type(name)
    length = {"pdq": 64, "md5": 32, "sha256": 64}[name]
    size = data.draw(st.integers(0, 2 * length + 2).filter(lambda n: n != length))
    with pytest.raises(ValueError, match="hexadecimal"):
        signal_type.parse(data.draw(st.text(HEX_DIGITS, min_size=size, max_size=size)))


@pytest.mark.parametrize("name", ["pdq", "md5", "sha256"])
@given(data=st.data())
def test_parse_rejects_non_hex_characters(name: str, data: st.DataObject) -> None:
    signal_type = get_signal_type(name)
    length = {"pdq": 64, "md5": 32, "sha256": 64}[name]
    value = list(data.draw(st.text(HEX_DIGITS, min_size=length, max_size=length)))
    bad = data.draw(
        st.characters(
            blacklist_characters=HEX_DIGITS, blacklist_categories=("Zs", "Cc", "Zl", "Zp")
        )
    )
    value[data.draw(st.integers(0, length - 1))] = bad
    with pytest.raises(ValueError, match="hexadecimal"):
        signal_type.parse("".join(value))


@pytest.mark.parametrize(
    "name",
    ["pdq", "md5", "sha256"],
)
def test_parse_rejects_inner_whitespace(name: str) -> None:
    length = {"pdq": 64, "md5": 32, "sha256": 64}[name]
    with pytest.raises(ValueError, match="hexadecimal"):
        get_signal_type(name).parse("00 " + "a" * (length - 6) + " 00")


@given(hex_pdq, hex_pdq)
def test_hamming_symmetric_and_bounded(a: str, b: str) -> None:
    distance = hamming(a, b)
    assert distance == hamming(b, a) == PDQ.distance(a, b)
    assert 0 <= distance <= 256
    assert distance == int(np.count_nonzero(hex_to_bits(a) != hex_to_bits(b)))


@given(hex_pdq, hex_pdq)
def test_hamming_zero_iff_equal(a: str, b: str) -> None:
    assert hamming(a, a) == 0
    assert hamming(a.upper(), a) == 0
    assert (hamming(a, b) == 0) == (a == b)


@given(hex_pdq)
def test_hamming_complement_is_256(a: str) -> None:
    complement = bits_to_hex(1 - hex_to_bits(a))
    assert hamming(a, complement) == 256


@given(hex_pdq, hex_pdq, hex_pdq)
def test_hamming_triangle_inequality(a: str, b: str, c: str) -> None:
    assert hamming(a, c) <= hamming(a, b) + hamming(b, c)


@given(hex_pdq, hex_pdq, st.integers(0, 256))
def test_matches_is_distance_within_threshold(a: str, b: str, threshold: int) -> None:
    assert PDQ.matches(a, b, threshold) == (hamming(a, b) <= threshold)
    assert PDQ.matches(a, a)


# ----------------------------------------------------------------------------------------
# Dihedral consistency

# PDQ is exactly symmetric under flips where its box filter is centred (odd window,
# ceil(n / 128)) and its sampling grid is symmetric (n not a multiple of 128); elsewhere an
# even window shifts the blur by one pixel, which on small images moves many bits (measured:
# up to 60 on 129-256 px). Sizes are drawn where the symmetry holds; the photograph below
# covers the general case at a realistic size.
symmetric_sides = st.one_of(st.integers(48, 127), st.integers(257, 383))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=symmetric_sides, height=symmetric_sides, seed=st.integers(0, 2**32 - 1))
def test_dihedral_variants_match_transposed_images(width: int, height: int, seed: int) -> None:
    pixels = scene(width, height, seed)
    variants, quality = dihedral_from_pixels(pixels)
    assume(quality >= 50)
    assert variants[Dihedral.ORIGINAL] == pdq_from_pixels(pixels)[0]
    image = Image.fromarray(pixels)
    for variant, transpose in TRANSPOSES.items():
        rotated, rotated_quality = pdq_from_pixels(np.asarray(image.transpose(transpose)))
        assert hamming(rotated, variants[variant]) <= 2, variant.name
        assert abs(rotated_quality - quality) <= 1


def test_dihedral_order_matches_reference_files() -> None:
    """The `dih` files are the 8 transforms of one photograph: each file's hash is nearest
    its own variant of the original's (within the 10-bit cross-decoder rule), and far from
    the other 7; the same holds for PIL's transposes of the original's pixels."""
    dih = require_shared("conformance", "pdq", "reg-test-input", "dih")
    original = np.asarray(Image.open(dih / DIH_FILES[Dihedral.ORIGINAL]).convert("RGB"))
    variants, quality = dihedral_from_pixels(original)
    assert quality >= 80
    for variant, name in DIH_FILES.items():
        value, _ = vigil_pdq(dih / name)
        distances = [hamming(value, v) for v in variants]
        assert distances[variant] <= 10, (name, distances)
        assert min(d for i, d in enumerate(distances) if i != variant) > 64, (name, distances)
    image = Image.fromarray(original)
    for variant, transpose in TRANSPOSES.items():
        value, _ = pdq_from_pixels(np.asarray(image.transpose(transpose)))
        assert hamming(value, variants[variant]) <= 10, variant.name


def test_dihedral_csv_column_matches_reference_order() -> None:
    pdq_dir = require_shared("conformance", "pdq")
    with (pdq_dir / "expected.csv").open(newline="", encoding="utf-8") as stream:
        rows = {row["path"]: row for row in csv.DictReader(stream)}
    original = rows["reg-test-input/dih/" + DIH_FILES[Dihedral.ORIGINAL]]["dihedral"].split()
    for variant, name in DIH_FILES.items():
        assert hamming(rows["reg-test-input/dih/" + name]["pdq"], original[variant]) <= 10


# ----------------------------------------------------------------------------------------
# Pillow modes: hashed from convert("RGB"), like expected.csv

# Each mode in a format that keeps it (reopened in that mode), and every mode once more
# through lossless WebP (stored as RGB/RGBA: HSV, which no format stores, only this way).
MODE_FILES = [
    ("1", "PNG", "1"),
    ("L", "PNG", "L"),
    ("LA", "PNG", "LA"),
    ("P", "PNG", "P"),
    ("PA", "TIFF", "PA"),
    ("RGB", "PNG", "RGB"),
    ("RGBA", "PNG", "RGBA"),
    ("CMYK", "TIFF", "CMYK"),
    ("YCbCr", "TIFF", "YCbCr"),
    ("LAB", "TIFF", "LAB"),
    ("I", "TIFF", "I"),
    ("F", "TIFF", "F"),
    ("1", "TIFF", "1"),
    ("L", "TIFF", "L"),
    ("LA", "TIFF", "LA"),
    ("P", "TIFF", "P"),
    ("RGBA", "TIFF", "RGBA"),
    *[(mode, "WEBP", None) for mode in ALL_MODES],
]


def in_mode(mode: str, seed: int = 7) -> Image.Image:
    rgb = Image.fromarray(scene(160, 120, seed))
    if mode == "PA":
        rgba = rgb.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
        return rgba.convert("PA")
    if mode == "LA":
        la = rgb.convert("LA")
        la.putalpha(Image.linear_gradient("L").resize(rgb.size))
        return la
    if mode == "RGBA":
        rgba = rgb.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))
        return rgba
    return rgb.convert(mode)


@pytest.mark.parametrize(
    ("mode", "file_format", "reopened"),
    MODE_FILES,
    ids=[f"{mode}-{fmt.lower()}" for mode, fmt, _ in MODE_FILES],
)
def test_every_mode_hashes_like_convert_rgb(
    tmp_path: Path, mode: str, file_format: str, reopened: str | None
) -> None:
    image = in_mode(mode)
    assert image.mode == mode
    path = tmp_path / f"image.{file_format.lower()}"
    options = {"lossless": True} if file_format == "WEBP" else {}
    image.save(path, file_format, **options)
    with Image.open(path) as stored:
        if reopened is not None:
            assert stored.mode == reopened
        assert stored.format == file_format
    expected = reference_pdq(image)
    assert vigil_pdq(path) == expected
    assert vigil_pdq(path, fast=True) == expected


def test_conformance_mode_files_hash_as_their_original() -> None:
    modes = require_shared("conformance", "pdq", "misc-images", "modes")
    original, _ = vigil_pdq(modes / "original.jpg")
    for path in sorted(modes.glob("*.*")):
        if path.suffix == ".md":
            continue
        value, quality = vigil_pdq(path)
        assert (value, quality) == reference_pdq(Image.open(path)), path.name
        assert hamming(value, original) <= 31, path.name


# ----------------------------------------------------------------------------------------
# Formats


def test_heif_decodes_and_hashes(tmp_path: Path) -> None:
    image = Image.fromarray(scene(320, 240, 11))
    path = tmp_path / "image.heic"
    pillow_heif.from_pillow(image).save(path, quality=90)
    assert path.read_bytes()[4:12] == b"ftypheic"
    value, quality = vigil_pdq(path)
    with Image.open(path) as decoded:
        assert decoded.size == (320, 240)
        assert (value, quality) == reference_pdq(decoded)
    assert quality >= 50
    assert hamming(value, reference_pdq(image)[0]) <= 16  # lossy, but the same picture


def test_gif_hashes_its_first_frame(tmp_path: Path) -> None:
    first = Image.fromarray(scene(200, 150, 21))
    second = Image.fromarray(scene(200, 150, 22))
    path = tmp_path / "animation.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(path) as animation:
        assert animation.n_frames == 2
        first_frame = reference_pdq(animation)
        animation.seek(1)
        second_frame = reference_pdq(animation)
    value, quality = vigil_pdq(path)
    assert (value, quality) == first_frame
    assert hamming(value, second_frame[0]) > 31
    assert hamming(value, reference_pdq(first)[0]) <= 16  # palette quantised


@pytest.mark.parametrize(
    ("suffix", "file_format", "options"),
    [
        ("bmp", "BMP", {}),
        ("tif", "TIFF", {}),
        ("tif", "TIFF", {"compression": "tiff_lzw"}),
        ("webp", "WEBP", {"lossless": True}),
        ("png", "PNG", {}),
    ],
    ids=["bmp", "tiff", "tiff-lzw", "webp", "png"],
)
def test_lossless_formats_hash_exactly(
    tmp_path: Path, suffix: str, file_format: str, options: dict[str, object]
) -> None:
    image = Image.fromarray(scene(300, 200, 31))
    path = tmp_path / f"image.{suffix}"
    image.save(path, file_format, **options)
    assert vigil_pdq(path) == reference_pdq(image)


def test_lossy_webp_and_jpeg_hash_their_decoded_pixels(tmp_path: Path) -> None:
    image = Image.fromarray(scene(300, 200, 41))
    for path, options in [
        (tmp_path / "image.webp", {"quality": 80}),
        (tmp_path / "image.jpg", {"quality": 85}),
    ]:
        image.save(path, **options)
        with Image.open(path) as decoded:
            assert vigil_pdq(path) == reference_pdq(decoded)


# ----------------------------------------------------------------------------------------
# Broken and hostile files


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixel data at all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def _jpeg_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(scene(width, height, 51)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _error_code(path: Path, limits: MediaLimits = LIMITS, *, fast: bool = True) -> ErrorCode:
    """The code with which Vigil's path (open_media, then the PDQ signal) refuses `path`."""
    with pytest.raises(MediaError) as caught:
        PDQ.compute(open_media(path, limits), fast=fast)
    error = caught.value
    assert error.message
    assert error.as_dict() == {"code": error.code.value, "message": error.message}
    return error.code


def _decode_error_code(path: Path, limits: MediaLimits = LIMITS, *, fast: bool = True) -> ErrorCode:
    """The code with which the decoder alone (`load_pdq_pixels`) refuses `path`."""
    with pytest.raises(MediaError) as caught:
        load_pdq_pixels(path, limits, fast=fast)
    return caught.value.code


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert _error_code(path) is ErrorCode.EMPTY


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError) as caught:
        open_media(tmp_path / "nowhere.jpg", LIMITS)
    assert caught.value.code is ErrorCode.NOT_FOUND


@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
@pytest.mark.parametrize("size", [(400, 300), (1600, 1200)], ids=["small", "fast-route-size"])
def test_truncated_jpeg(tmp_path: Path, size: tuple[int, int], fast: bool) -> None:
    data = _jpeg_bytes(*size)
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert _error_code(path, fast=fast) is ErrorCode.TRUNCATED
    assert _decode_error_code(path, fast=fast) is ErrorCode.TRUNCATED


def test_jpeg_without_image_data(tmp_path: Path) -> None:
    path = tmp_path / "header-only.jpg"
    path.write_bytes(_jpeg_bytes(64, 48)[:200])
    assert _error_code(path) in {ErrorCode.TRUNCATED, ErrorCode.CORRUPT}


@pytest.mark.parametrize("seed", range(3))
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(seed).bytes(4096))
    assert open_media(path, LIMITS).media_type is None
    assert _error_code(path) is ErrorCode.UNSUPPORTED_FORMAT
    assert _decode_error_code(path) is ErrorCode.UNSUPPORTED_FORMAT


def test_random_bytes_behind_a_jpeg_signature(tmp_path: Path) -> None:
    path = tmp_path / "fake.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + np.random.default_rng(9).bytes(4096))
    assert open_media(path, LIMITS).media_type is MediaType.IMAGE
    assert _error_code(path) in {
        ErrorCode.CORRUPT,
        ErrorCode.TRUNCATED,
        ErrorCode.UNSUPPORTED_FORMAT,
    }


def test_decompression_bomb_header(tmp_path: Path) -> None:
    """100000 x 100000 declared in 57 bytes: refused from the header, nothing decoded."""
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(100_000, 100_000))
    assert path.stat().st_size < 100
    started = time.perf_counter()
    assert _error_code(path) is ErrorCode.TOO_MANY_PIXELS
    assert _decode_error_code(path, fast=False) is ErrorCode.TOO_MANY_PIXELS
    assert time.perf_counter() - started < 1.0


def test_over_vigils_own_pixel_limit(tmp_path: Path) -> None:
    """Over VIGIL_MAX_IMAGE_PIXELS but under Pillow's own bomb error: Vigil's header check
    refuses it (a decode of this header-only file would say truncated or corrupt instead)."""
    path = tmp_path / "big.png"
    path.write_bytes(_png_header(12_000, 9_000))  # 108 MP > the 100 MP default
    assert _error_code(path) is ErrorCode.TOO_MANY_PIXELS
    assert _decode_error_code(path, fast=False) is ErrorCode.TOO_MANY_PIXELS
    real = tmp_path / "real.png"
    Image.fromarray(scene(200, 100, 61)).save(real)
    assert _error_code(real, MediaLimits(max_image_pixels=19_999)) is ErrorCode.TOO_MANY_PIXELS
    assert vigil_pdq(real, MediaLimits(max_image_pixels=20_000))[1] >= 0


def test_over_max_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    Image.fromarray(scene(200, 100, 71)).save(path)
    size = path.stat().st_size
    assert _error_code(path, MediaLimits(max_file_bytes=size - 1)) is ErrorCode.TOO_LARGE
    assert vigil_pdq(path, MediaLimits(max_file_bytes=size))[1] >= 0


def test_text_file_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("not an image, whatever the name says\n" * 10, encoding="utf-8")
    media = open_media(path, LIMITS)
    assert media.media_type is None
    assert media.digest("sha256") == hashlib.sha256(path.read_bytes()).hexdigest()
    assert _error_code(path) is ErrorCode.UNSUPPORTED_FORMAT
    assert _decode_error_code(path) is ErrorCode.UNSUPPORTED_FORMAT
