"""Query-side PDQ matching (`vigil.signals.pdq_query`) on benign synthetic images.

- the building blocks are exact: the DCT route gives pdqhash's own hashes and dihedral
  variants bit for bit, and PDQ's sampling weights equal the fast decode's;
- the plain hash comes first and equals `PDQSignal.compute`, on the exact and fast routes;
- each trick finds the copy it is meant for: a mirrored or rotated copy through the dihedral
  variant with the right index, a padded copy through its trimmed hash, a slightly rotated
  one through its derotated hash, a captioned one through the band's restoration, a central
  crop through an uncrop guess;
- the quality rule holds for every hash, uniform images give none, and distinct images do
  not match through the extra hashes;
- broken files are `MediaError`s with the decoder's codes;
- `PDQWithQueriesSignal` records the plain hash and carries the query hashes;
- on the natural photos of `../shared/data/photos` (skipped without them): the detectors
  rarely fire on unedited photos, and central crops are mostly found.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from vigil.config import MediaLimits
from vigil.demo import synthetic_image
from vigil.media import ErrorCode, MediaError, open_media
from vigil.media.images import (
    _pdq_weights,
    load_pdq_pixels,
    load_pdq_pixels_and_luma,
    luma_plane,
)
from vigil.signals import get_signal_type
from vigil.signals.pdq import Dihedral, bits_to_hex, hamming, pdq_from_pixels
from vigil.signals.pdq_query import (
    DEFAULT_OPTIONS,
    PLAIN,
    PDQWithQueriesSignal,
    QueryHash,
    QueryOptions,
    axis_weights,
    dct_hashes,
    detect_band,
    detect_rotation,
    query_hashes,
    query_hashes_from_pixels,
    trim_box,
)

LIMITS = MediaLimits()
PDQ = get_signal_type("pdq")
THRESHOLD = 31
# Distances between hashes of edited pictures are statistical: the examples are fixed
# (derandomized) so a run never flakes on an unlucky draw, and the bounds hold on all of them.
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
seeds = st.integers(0, 10_000)

# PIL transposes as the reference's variants (see tests/test_pdq_properties.py), and the
# variant that undoes each: rotations by 90 and 270 degrees undo each other, flips themselves.
TRANSPOSES: dict[Dihedral, Image.Transpose] = {
    Dihedral.ROTATE_90: Image.Transpose.ROTATE_90,
    Dihedral.ROTATE_180: Image.Transpose.ROTATE_180,
    Dihedral.ROTATE_270: Image.Transpose.ROTATE_270,
    Dihedral.FLIP_X: Image.Transpose.FLIP_TOP_BOTTOM,
    Dihedral.FLIP_Y: Image.Transpose.FLIP_LEFT_RIGHT,
    Dihedral.FLIP_PLUS_1: Image.Transpose.TRANSPOSE,
    Dihedral.FLIP_MINUS_1: Image.Transpose.TRANSVERSE,
}
INVERSE = {
    Dihedral.ROTATE_90: Dihedral.ROTATE_270,
    Dihedral.ROTATE_270: Dihedral.ROTATE_90,
}


def image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    return synthetic_image(*size, seed=seed)


def plain(picture: Image.Image) -> str:
    return pdq_from_pixels(np.asarray(picture.convert("RGB")))[0]


def hashes_of(picture: Image.Image, options: QueryOptions = DEFAULT_OPTIONS) -> list[QueryHash]:
    return query_hashes_from_pixels(np.asarray(picture.convert("RGB")), options=options)


def nearest(hashes: list[QueryHash], target: str) -> tuple[int, QueryHash]:
    return min(((hamming(h.pdq, target), h) for h in hashes), key=lambda pair: pair[0])


def with_label(hashes: list[QueryHash], prefix: str) -> list[QueryHash]:
    return [h for h in hashes if h.label.split(":")[0] == prefix]


# ----------------------------------------------------------------------------------------
# Exact building blocks


@SETTINGS
@given(seeds, st.integers(8, 200), st.integers(8, 200))
def test_dct_route_is_pdqhash_bit_for_bit(seed: int, width: int, height: int) -> None:
    pixels = np.asarray(image(seed, (width, height)))
    values, quality = dct_hashes(pixels, dihedral=True)
    vectors, reference_quality = pdqhash.compute_dihedral(pixels)
    assert values == [bits_to_hex(v) for v in vectors]
    assert quality == reference_quality
    assert dct_hashes(pixels, dihedral=False) == ([values[0]], quality)


@given(st.integers(1, 5000), st.sampled_from([1, 2, 3, 4, 6, 8, 16]))
def test_sampling_weights_equal_the_fast_decodes(length: int, block: int) -> None:
    cells = -(-length // block)
    ours = axis_weights(length, 0, block, cells, length)
    assert np.array_equal(ours, _pdq_weights(length, block, cells))
    assert np.allclose(ours.sum(axis=1), 1.0, atol=1e-5)


@given(st.integers(64, 3000), st.integers(0, 400), st.sampled_from([1, 2, 4]))
def test_sampling_weights_of_a_placed_picture_cover_their_share(
    length: int, margin: int, block: int
) -> None:
    """On a canvas wider than the picture, each sample's weights sum to the share of it the
    picture covers: 1 in the middle, less towards a margin, never more than 1."""
    cells = -(-length // block)
    weights = axis_weights(length + 2 * margin, margin, block, cells, length)
    share = weights.sum(axis=1)
    assert share.max() <= 1 + 1e-5
    assert share[len(share) // 2] == pytest.approx(1.0, abs=1e-5)
    if margin >= (length + 2 * margin) // 32:
        assert share[0] < 0.5 and share[-1] < 0.5


# ----------------------------------------------------------------------------------------
# The plain hash, the routes, the output


def write_jpeg(picture: Image.Image, path: Path, quality: int = 92) -> Path:
    picture.convert("RGB").save(path, "JPEG", quality=quality)
    return path


@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
@pytest.mark.parametrize("size", [(320, 240), (1600, 1000)], ids=["small", "fast-route-size"])
def test_plain_hash_first_and_equal_to_the_signal(
    tmp_path: Path, fast: bool, size: tuple[int, int]
) -> None:
    path = write_jpeg(image(3, size), tmp_path / "picture.jpg")
    signal = PDQ.compute(open_media(path, LIMITS), fast=fast)
    hashes = query_hashes(path, LIMITS, fast=fast)
    assert hashes[0] == QueryHash("original", 0, signal.value, signal.quality or 0)
    assert query_hashes(path, LIMITS, fast=fast, options=PLAIN) == hashes[:1]
    assert len({h.pdq for h in hashes}) == len(hashes)
    assert [h.dihedral for h in hashes if h.label == "original"] == list(range(8))
    assert all(0 <= h.dihedral < 8 and len(h.pdq) == 64 for h in hashes)


@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
def test_decoding_with_the_plane_keeps_the_pixels(tmp_path: Path, fast: bool) -> None:
    path = write_jpeg(image(4, (1400, 900)), tmp_path / "picture.jpg")
    pixels, plane = load_pdq_pixels_and_luma(path, LIMITS, fast=fast)
    assert np.array_equal(pixels, load_pdq_pixels(path, LIMITS, fast=fast))
    assert plane.size == (1400, 900)
    assert not plane.values.flags.writeable
    rows, cols = plane.values.shape
    assert (cols - 1) * plane.block[0] < 1400 <= cols * plane.block[0]
    assert (rows - 1) * plane.block[1] < 900 <= rows * plane.block[1]


def test_signal_with_queries_records_the_plain_hash(tmp_path: Path) -> None:
    padded = Image.new("RGB", (320, 340))
    padded.paste(image(6), (0, 50))
    path = write_jpeg(padded, tmp_path / "padded.jpg")
    media = open_media(path, LIMITS)
    signal = PDQWithQueriesSignal().compute(media, fast=True)
    plain_signal = PDQ.compute(media, fast=True)
    assert (signal.signal_type, signal.value, signal.quality) == (
        "pdq",
        plain_signal.value,
        plain_signal.quality,
    )
    assert signal.detail == query_hashes(path, LIMITS, fast=True)
    assert "trimmed" in {h.label for h in signal.detail}
    assert pickle.loads(pickle.dumps(signal)) == signal  # crosses worker processes
    low = write_jpeg(Image.new("RGB", (64, 64), (9, 9, 9)), tmp_path / "flat.jpg")
    flat = PDQWithQueriesSignal().compute(open_media(low, LIMITS), fast=True)
    assert flat.detail == [] and flat.value == PDQ.compute(open_media(low, LIMITS), fast=True).value


def test_from_pixels_without_a_plane_is_the_same(tmp_path: Path) -> None:
    path = write_jpeg(image(5), tmp_path / "picture.jpg")
    pixels = load_pdq_pixels(path, LIMITS, fast=False)
    assert query_hashes_from_pixels(pixels) == query_hashes(path, LIMITS, fast=False)


# ----------------------------------------------------------------------------------------
# The tricks


@pytest.mark.parametrize("variant", list(TRANSPOSES), ids=lambda v: v.name)
def test_rotated_or_mirrored_copy_found_by_the_undoing_variant(variant: Dihedral) -> None:
    original = image(11)
    distance, found = nearest(hashes_of(original.transpose(TRANSPOSES[variant])), plain(original))
    # Not 0: PDQ's box filter of an even window is off-centre by half a pixel, so turning
    # the pixels and turning the coefficients differ slightly.
    assert distance <= 16
    assert found.label == "original"
    assert found.dihedral == INVERSE.get(variant, variant)


@SETTINGS
@given(
    seeds,
    st.tuples(*[st.sampled_from([0.0, 0.05, 0.2]) for _ in range(4)]),
    st.sampled_from([(0, 0, 0), (255, 255, 255), (90, 130, 200)]),
)
def test_padded_copy_found_through_its_trimmed_hash(
    seed: int, sides: tuple[float, float, float, float], colour: tuple[int, int, int]
) -> None:
    original = image(seed)
    w, h = original.size
    left, top, right, bottom = (round(f * n) for f, n in zip(sides, (w, h, w, h), strict=True))
    canvas = Image.new("RGB", (w + left + right, h + top + bottom), colour)
    canvas.paste(original, (left, top))
    hashes = hashes_of(canvas)
    if max(sides) == 0:
        assert with_label(hashes, "trimmed") == []
        return
    trimmed = with_label(hashes, "trimmed")
    assert trimmed, "a padded copy has a trimmed hash"
    assert min(hamming(t.pdq, plain(original)) for t in trimmed if t.dihedral == 0) <= 8


def test_trim_leaves_unpadded_pictures_alone() -> None:
    for seed in range(10):
        assert trim_box(luma_plane(np.asarray(image(seed))).values) is None


@SETTINGS
@given(
    seeds,
    st.floats(1.5, 20).map(lambda d: round(d, 1)),
    st.booleans(),
    st.booleans(),
    st.sampled_from([(0, 0, 0), (255, 255, 255)]),
)
def test_slightly_rotated_copy_found_through_its_derotated_hash(
    seed: int, degrees: float, clockwise: bool, expand: bool, fill: tuple[int, int, int]
) -> None:
    """On a canvas of its own size a rotated picture loses its corners, which the synthetic
    pictures (gradients peaking in the corners) miss beyond ~3 degrees (photos: see
    benchmarks/robustness.py); on an enlarged canvas nothing is lost."""
    if not expand:
        degrees = min(degrees, 3.0)
    original = image(seed)
    angle = -degrees if clockwise else degrees
    rotated = original.rotate(
        angle, resample=Image.Resampling.BILINEAR, expand=expand, fillcolor=fill
    )
    rotation = detect_rotation(luma_plane(np.asarray(rotated)))
    assert rotation is not None
    assert rotation.degrees == pytest.approx(angle, abs=0.5)
    assert rotation.expanded == expand
    derotated = [h for h in with_label(hashes_of(rotated), "derotated") if h.dihedral == 0]
    assert len(derotated) == 1
    assert hamming(derotated[0].pdq, plain(original)) <= THRESHOLD


def test_rotation_not_seen_in_unrotated_pictures() -> None:
    for seed in range(10):
        assert detect_rotation(luma_plane(np.asarray(image(seed)))) is None
    # A letterbox has uniform corners too, but no triangles.
    letterbox = Image.new("RGB", (320, 320))
    letterbox.paste(image(1), (0, 40))
    assert detect_rotation(luma_plane(np.asarray(letterbox))) is None


def caption(picture: Image.Image, share: float, band: tuple[int, int, int, int]) -> Image.Image:
    """A band over the bottom `share` of the picture, with a line of text on it."""
    layer = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = picture.size
    depth = round(share * h)
    draw.rectangle((0, h - depth, w, h), fill=band)
    ink = (255, 255, 255, 255) if sum(band[:3]) < 384 else (0, 0, 0, 255)
    draw.text((depth // 2, h - depth + depth // 4), "caption text", fill=ink)
    return Image.alpha_composite(picture.convert("RGBA"), layer).convert("RGB")


# The band at the bottom, turned to each side (the synthetic pictures' own sides differ in
# contrast, and a band is only seen against some).
SIDES = {
    "bottom": None,
    "top": Image.Transpose.FLIP_TOP_BOTTOM,
    "left": Image.Transpose.ROTATE_270,
    "right": Image.Transpose.ROTATE_90,
}


def turned(picture: Image.Image, side: str) -> Image.Image:
    transpose = SIDES[side]
    return picture if transpose is None else picture.transpose(transpose)


@pytest.mark.parametrize("side", list(SIDES))
def test_captioned_copy_found_through_the_band(side: str) -> None:
    """Translucent black, white and coloured bands of 10-25%, each on 3 pictures: the band
    is found with its opacity (except where a detail of the picture happens to run along
    the band's edge, which hides it), and the restored hash matches the original."""
    cases = [
        (seed, share, band)
        for seed, share in enumerate([0.1, 0.15, 0.25])
        for band in [(0, 0, 0, 178), (255, 255, 255, 128), (40, 40, 160, 200)]
    ]
    found_count = 0
    for seed, share, band in cases:
        original = turned(image(seed + 40), side)
        captioned = turned(caption(image(seed + 40), share, band), side)
        found = detect_band(luma_plane(np.asarray(captioned)).values)
        if found is None:
            continue
        found_count += 1
        assert found.side == side
        assert found.scale == pytest.approx(1 - band[3] / 255, abs=0.12)
        restored = [h for h in with_label(hashes_of(captioned), "caption") if h.dihedral == 0]
        assert len(restored) == 1
        assert hamming(restored[0].pdq, plain(original)) <= THRESHOLD
    assert found_count >= 0.85 * len(cases)


@pytest.mark.parametrize("side", ["bottom", "left"])
def test_opaque_caption_bar_is_extrapolated(side: str) -> None:
    """An opaque bar hides what is under it: it is found, and filled in from around it."""
    original = turned(image(21), side)
    captioned = turned(caption(image(21), 0.1, (0, 0, 0, 255)), side)
    found = detect_band(luma_plane(np.asarray(captioned)).values)
    assert found is not None and found.side == side and found.scale < 0.15
    restored = [h for h in with_label(hashes_of(captioned), "caption") if h.dihedral == 0]
    assert hamming(restored[0].pdq, plain(original)) < hamming(plain(captioned), plain(original))


def test_padding_is_trimmed_not_taken_for_a_caption() -> None:
    padded = Image.new("RGB", (320, 340))
    padded.paste(image(2), (0, 50))
    assert detect_band(luma_plane(np.asarray(padded)).values) is None


def test_central_crop_comes_closer_through_the_uncrop_guess() -> None:
    """The margin a crop removed is only guessed (extrapolated): on these synthetic pictures,
    whose gradients peak at the edges, the guess halves the distance; natural photos are
    matched this way ~80% of the time (`test_central_crop_of_photos_found_by_uncrop`)."""
    for seed in range(4):
        original = image(seed, (400, 300))
        cropped = original.crop((20, 15, 380, 285))  # 5% off each side
        before = hamming(plain(cropped), plain(original))
        distance, found = nearest(with_label(hashes_of(cropped), "uncrop"), plain(original))
        assert distance < before / 2 + 8
        assert found.label == "uncrop:5" and found.dihedral == 0


@pytest.mark.parametrize(
    "edit",
    ["pad", "rotate", "caption", "mirror"],
)
def test_tricks_work_on_the_fast_routes_plane(tmp_path: Path, edit: str) -> None:
    """Large JPEGs are decoded at a reduced DCT scale (cells of several pixels): the variants
    are computed from that plane. (A small synthetic picture enlarged: at full size their
    rings are finer than photographs' detail, and hide a caption's edge between cells.)"""
    original = image(8, (450, 275)).resize((1800, 1100), Image.Resampling.BICUBIC)
    edited = {
        "pad": lambda: Image.new("RGB", (1800, 1500)),
        "rotate": lambda: original.rotate(3, resample=Image.Resampling.BILINEAR),
        "caption": lambda: caption(original, 0.15, (0, 0, 0, 178)),
        "mirror": lambda: original.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    }[edit]()
    if edit == "pad":
        edited.paste(original, (0, 200))
    source = write_jpeg(original, tmp_path / "original.jpg")
    copy = write_jpeg(edited, tmp_path / "copy.jpg")
    _, plane = load_pdq_pixels_and_luma(copy, LIMITS, fast=True)
    assert plane.block[0] > 1 and plane.block[1] > 1
    target = PDQ.compute(open_media(source, LIMITS), fast=True).value
    label = {"pad": "trimmed", "rotate": "derotated", "caption": "caption"}.get(edit, "original")
    distance, _ = nearest(with_label(query_hashes(copy, LIMITS, fast=True), label), target)
    assert distance <= THRESHOLD


def test_options_turn_tricks_off() -> None:
    padded = Image.new("RGB", (320, 340))
    padded.paste(image(3), (0, 50))
    options = QueryOptions(dihedral=False, trim=False, derotate=False, caption=False, uncrop=())
    assert [h.label for h in hashes_of(padded, options)] == ["original"]
    labels = {h.label for h in hashes_of(padded, QueryOptions(uncrop=(0.1,)))}
    assert labels == {"original", "trimmed", "uncrop:10"}


# ----------------------------------------------------------------------------------------
# Quality and precision


@SETTINGS
@given(seeds)
def test_every_hash_keeps_the_quality_rule(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Mostly flat pictures with a faint gradient: qualities around the threshold.
    y, x = np.mgrid[0:180, 0:240].astype(np.float32)
    pixels = 120 + rng.uniform(0, 3) * (x / 240) + rng.uniform(0, 3) * (y / 180)
    picture = np.repeat(np.clip(pixels, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    _, quality = dct_hashes(picture, dihedral=False)
    hashes = query_hashes_from_pixels(picture)
    assert all(h.quality >= 50 for h in hashes)
    assert bool(hashes) == (quality >= 50)
    assert all(h.quality == quality for h in hashes if h.label == "original")
    assert all(h.quality >= 50 for h in hashes_of(image(seed)))
    assert hashes_of(image(seed), QueryOptions(min_quality=101)) == []


@pytest.mark.parametrize("size", [(1, 1), (3, 2), (64, 64), (640, 480)])
@pytest.mark.parametrize("grey", [0, 128, 255])
def test_uniform_images_have_no_usable_hashes(size: tuple[int, int], grey: int) -> None:
    assert hashes_of(Image.new("RGB", size, (grey, grey, grey))) == []


def test_tiny_and_thin_images_do_not_break() -> None:
    for size in [(1, 200), (200, 1), (2, 2), (17, 9), (9, 17)]:
        for h in hashes_of(image(7, size)):
            assert h.quality >= 50


def test_distinct_pictures_do_not_match_through_extra_hashes() -> None:
    """Every extra hash of each of 24 pictures against the plain hash of every other: no
    pair comes near the threshold (the margin keeps precision at real-world scale)."""
    pictures = [image(seed) for seed in range(100, 124)]
    bank = [plain(p) for p in pictures]
    closest = 256
    for i, picture in enumerate(pictures):
        for h in hashes_of(picture):
            for j, value in enumerate(bank):
                if i != j:
                    closest = min(closest, hamming(h.pdq, value))
    assert closest > THRESHOLD + 16


# ----------------------------------------------------------------------------------------
# Errors


def _jpeg_bytes(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    image(9, size).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("fast", [False, True], ids=["exact", "fast"])
@pytest.mark.parametrize("size", [(400, 300), (1600, 1200)], ids=["small", "fast-route-size"])
def test_truncated_file_is_a_media_error(tmp_path: Path, fast: bool, size: tuple[int, int]) -> None:
    data = _jpeg_bytes(size)
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError) as caught:
        query_hashes(path, LIMITS, fast=fast)
    assert caught.value.code is ErrorCode.TRUNCATED


def test_other_bad_files_are_media_errors(tmp_path: Path) -> None:
    noise = tmp_path / "noise.jpg"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    text = tmp_path / "notes.png"
    text.write_text("not an image\n" * 20, encoding="utf-8")
    big = tmp_path / "big.png"
    image(1, (200, 100)).save(big)
    cases = [
        (noise, LIMITS, {ErrorCode.UNSUPPORTED_FORMAT}),
        (text, LIMITS, {ErrorCode.UNSUPPORTED_FORMAT}),
        (big, MediaLimits(max_image_pixels=19_999), {ErrorCode.TOO_MANY_PIXELS}),
        (tmp_path / "missing.jpg", LIMITS, set(ErrorCode)),
    ]
    for path, limits, codes in cases:
        with pytest.raises(MediaError) as caught:
            query_hashes(path, limits, fast=True)
        assert caught.value.code in codes, path.name


# ----------------------------------------------------------------------------------------
# Natural photos (../shared/data/photos): what the tricks see in unedited pictures


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    from shared_data import require_shared

    folder = require_shared("data", "photos")
    return [Image.open(path).convert("RGB") for path in sorted(folder.glob("*.jpg"))[::10]]


def test_unedited_photos_rarely_trigger_rotation_or_caption(photos: list[Image.Image]) -> None:
    """A false trigger costs only extra hashes (and a little precision): none for rotations,
    at most one photo in 30 for bands (a horizon under a white sky can look like one; 3 of
    all 300 photos do)."""
    bands = 0
    for photo in photos:
        plane = luma_plane(np.asarray(photo))
        assert detect_rotation(plane) is None
        bands += detect_band(plane.values) is not None
    assert bands <= len(photos) // 30


def test_central_crop_of_photos_found_by_uncrop(photos: list[Image.Image]) -> None:
    found = 0
    for photo in photos:
        w, h = photo.size
        cropped = photo.crop(
            (round(0.05 * w), round(0.05 * h), w - round(0.05 * w), h - round(0.05 * h))
        )
        distance, _ = nearest(with_label(hashes_of(cropped), "uncrop"), plain(photo))
        found += distance <= THRESHOLD
    assert found >= 0.6 * len(photos)
