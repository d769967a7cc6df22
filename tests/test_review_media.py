"""vigil.vault.media and vigil.review.media: the sealed store of matched media and the
renderings reviewers see.

Every picture and video here is synthetic (`vigil.demo`): formulas, never real content.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vigil.config import MediaLimits, Settings
from vigil.demo import synthetic_frames, synthetic_image, write_video
from vigil.media import ErrorCode, MediaError, MediaType
from vigil.media.video import VideoFrame
from vigil.review.media import RENDER_SIDES, Rendering, _spread, render, render_image
from vigil.vault import FileBlobStore, LocalKeyProvider, SealError, seal
from vigil.vault.crypto import MAGIC
from vigil.vault.media import MediaStore, media_store

LIMITS = MediaLimits()


def png_bytes(width: int = 640, height: int = 400, seed: int = 3) -> bytes:
    out = io.BytesIO()
    synthetic_image(width, height, seed).save(out, "PNG")
    return out.getvalue()


def decoded(jpeg: bytes) -> Image.Image:
    assert jpeg.startswith(b"\xff\xd8\xff")
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    image.load()
    return image


def laplacian_variance(jpeg: bytes) -> float:
    grey = np.asarray(decoded(jpeg).convert("L"), dtype=np.float64)
    laplacian = (
        4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    )
    return float(laplacian.var())


# --- MediaStore ---------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return media_store(Settings(home=tmp_path / "home"))


def test_kept_media_round_trips_and_is_encrypted_on_disk(tmp_path: Path, store: MediaStore) -> None:
    data = png_bytes()
    path = tmp_path / "match.png"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()

    assert not store.exists(sha)
    assert store.keep(path, sha) is True
    assert store.exists(sha)
    assert store.read(sha) == data
    assert store.keep(path, sha) is False  # already kept: nothing happens

    home = tmp_path / "home"
    blob_path = home / "media" / sha[:2] / sha[2:4] / sha
    on_disk = blob_path.read_bytes()
    assert on_disk.startswith(MAGIC)
    middle = len(data) // 2
    for start in (0, 8, middle, len(data) - 64):  # distinctive 64-byte slices of the file
        assert data[start : start + 64] not in on_disk
    assert (home / "keys" / "vault.key").stat().st_mode & 0o777 == 0o600
    assert blob_path.stat().st_mode & 0o777 == 0o600


def test_keep_refuses_a_file_that_does_not_hash_to_the_sha(
    tmp_path: Path, store: MediaStore
) -> None:
    path = tmp_path / "match.png"
    path.write_bytes(png_bytes())
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(ValueError, match="not kept"):
        store.keep(path, wrong)
    assert not store.exists(wrong)
    media = tmp_path / "home" / "media"
    assert not media.exists() or [p for p in media.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("sha", ["", "abc", "A" * 64, "g" * 64, "0" * 63, "../" + "0" * 61])
def test_malformed_sha256_is_refused(tmp_path: Path, store: MediaStore, sha: str) -> None:
    path = tmp_path / "match.png"
    path.write_bytes(b"x")
    for operation in (lambda: store.keep(path, sha), lambda: store.read(sha)):
        with pytest.raises(ValueError, match="SHA-256"):
            operation()


def test_read_refuses_altered_or_substituted_blobs(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "media")
    keys = LocalKeyProvider(os.urandom(32))
    store = MediaStore(blobs, keys)
    data = png_bytes(64, 48)
    sha = hashlib.sha256(data).hexdigest()
    path = tmp_path / "match.png"
    path.write_bytes(data)
    store.keep(path, sha)

    missing = hashlib.sha256(b"never kept").hexdigest()
    with pytest.raises(KeyError):
        store.read(missing)

    blob = bytearray(blobs.get(sha))
    blob[-1] ^= 0x01
    blobs.put(sha, bytes(blob))
    with pytest.raises(SealError):
        store.read(sha)

    # Another file's blob moved under this key: its aad names the other hash.
    other = png_bytes(64, 48, seed=4)
    other_sha = hashlib.sha256(other).hexdigest()
    blobs.put(sha, seal(other, aad=b"vigil-media:" + other_sha.encode(), keys=keys))
    with pytest.raises(SealError):
        store.read(sha)

    # Sealed for this key but with other bytes (a bug or a forged aad): the hash re-check.
    blobs.put(sha, seal(other, aad=b"vigil-media:" + sha.encode(), keys=keys))
    with pytest.raises(SealError, match="does not hash"):
        store.read(sha)


def test_a_store_under_another_key_cannot_read(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "media")
    data = png_bytes(64, 48)
    sha = hashlib.sha256(data).hexdigest()
    path = tmp_path / "match.png"
    path.write_bytes(data)
    MediaStore(blobs, LocalKeyProvider(os.urandom(32))).keep(path, sha)
    with pytest.raises(SealError):
        MediaStore(blobs, LocalKeyProvider(os.urandom(32))).read(sha)


# --- Image renderings ---------------------------------------------------------------------


def still(data: bytes, **options: object) -> bytes:
    arguments: dict[str, object] = {
        "media_type": "image",
        "max_side": 200,
        "blur_radius": 0.0,
        "greyscale": False,
        "limits": LIMITS,
    }
    arguments.update(options)
    return render_image(data, **arguments)  # type: ignore[arg-type]


def test_image_is_reduced_to_max_side_and_never_enlarged() -> None:
    data = png_bytes(640, 400)
    small = decoded(still(data, max_side=200))
    assert small.size == (200, 125)
    assert small.mode == "RGB"
    channels = np.asarray(small, dtype=np.int16)
    assert np.abs(channels[..., 0] - channels[..., 1]).mean() > 10  # colour kept
    assert decoded(still(data, max_side=5000)).size == (640, 400)
    tall = decoded(still(png_bytes(90, 300), max_side=150))
    assert tall.size == (45, 150)


def test_greyscale_drops_colour() -> None:
    image = decoded(still(png_bytes(), greyscale=True))
    if image.mode != "L":
        pixels = np.asarray(image.convert("RGB"))
        assert (pixels[..., 0] == pixels[..., 1]).all()
        assert (pixels[..., 1] == pixels[..., 2]).all()
    assert image.mode == "L"


def test_blur_removes_detail() -> None:
    data = png_bytes()
    sharp = still(data, max_side=320)
    blurred = still(data, max_side=320, blur_radius=6.0)
    assert decoded(blurred).size == decoded(sharp).size
    assert laplacian_variance(blurred) < laplacian_variance(sharp) / 10


def test_exif_orientation_is_applied_and_metadata_dropped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    exif[0x010E] = "synthetic-marker-description"  # ImageDescription
    out = io.BytesIO()
    synthetic_image(300, 150, 5).save(out, "JPEG", exif=exif, comment=b"synthetic-comment")
    source = out.getvalue()
    assert b"synthetic-marker-description" in source

    rendered = still(source, max_side=150)
    image = decoded(rendered)
    assert image.size == (75, 150)  # displayed upright: 150 x 300, reduced to fit 150
    assert len(image.getexif()) == 0
    assert "exif" not in image.info and "icc_profile" not in image.info
    assert b"synthetic-marker" not in rendered and b"synthetic-comment" not in rendered


def test_renderings_set_the_size_and_scale_the_blur() -> None:
    data = png_bytes(1200, 800)
    sizes = {}
    for rendering in Rendering:
        image = decoded(
            render(
                data, rendering, media_type="image", blur_radius=0.0, greyscale=True, limits=LIMITS
            )
        )
        assert image.mode == "L"
        sizes[rendering] = image.size
        assert max(image.size) == min(RENDER_SIDES[rendering], 1200)  # never enlarged
    assert sizes[Rendering.THUMBNAIL] < sizes[Rendering.PREVIEW] < sizes[Rendering.FULL]
    clear = decoded(
        render(
            data,
            Rendering.PREVIEW,
            media_type=MediaType.IMAGE,
            blur_radius=0.0,
            greyscale=False,
            limits=LIMITS,
        )
    )
    assert clear.mode == "RGB"
    # The same blur setting obscures a thumbnail as much as the preview it stands for.
    thumbnail = render(
        data,
        Rendering.THUMBNAIL,
        media_type="image",
        blur_radius=8.0,
        greyscale=True,
        limits=LIMITS,
    )
    direct = render_image(
        data, media_type="image", max_side=240, blur_radius=4.0, greyscale=True, limits=LIMITS
    )
    assert thumbnail == direct


@pytest.mark.parametrize(
    "data",
    [
        b"this is not an image at all" * 10,
        b"\x89PNG\r\n\x1a\n" + b"\0" * 100,
        b"\xff\xd8\xff\xe0" + os.urandom(300),
    ],
)
@pytest.mark.parametrize("media_type", ["image", "video"])
def test_undecodable_bytes_raise_media_error(data: bytes, media_type: str) -> None:
    with pytest.raises(MediaError):
        still(data, media_type=media_type)


def test_truncated_image_raises_media_error() -> None:
    out = io.BytesIO()
    synthetic_image(320, 240, 6).save(out, "JPEG", quality=90)
    with pytest.raises(MediaError) as caught:
        still(out.getvalue()[:1500])
    assert caught.value.code in (ErrorCode.TRUNCATED, ErrorCode.CORRUPT)


def test_limits_are_applied_per_call() -> None:
    before = Image.MAX_IMAGE_PIXELS
    data = png_bytes(640, 400)
    with pytest.raises(MediaError) as caught:
        still(data, limits=MediaLimits(max_image_pixels=640 * 400 - 1))
    assert caught.value.code is ErrorCode.TOO_MANY_PIXELS
    assert before == Image.MAX_IMAGE_PIXELS
    assert decoded(still(data, limits=MediaLimits(max_image_pixels=640 * 400))).size == (200, 125)
    with pytest.raises(MediaError) as caught:
        still(data, limits=MediaLimits(max_file_bytes=len(data) - 1))
    assert caught.value.code is ErrorCode.TOO_LARGE
    with pytest.raises(MediaError) as caught:
        still(b"")
    assert caught.value.code is ErrorCode.EMPTY


def test_invalid_options_are_refused() -> None:
    data = png_bytes(64, 48)
    for options in ({"media_type": "audio"}, {"max_side": 2}, {"blur_radius": -1.0}):
        with pytest.raises(ValueError):
            still(data, **options)


@pytest.mark.skipif(sys.platform != "linux", reason="in-memory files are Linux only")
def test_decrypted_media_is_not_written_to_a_temporary_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("media written to a temporary file")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    assert decoded(still(png_bytes(64, 48))).size == (64, 48)


# --- Video keyframe grids -----------------------------------------------------------------


def video_bytes(tmp_path: Path, count: int) -> bytes:
    path = write_video(tmp_path / f"clip-{count}.mp4", synthetic_frames(96, 64, count), fps=10)
    return path.read_bytes()


def tiles(image: Image.Image, columns: int, rows: int) -> list[np.ndarray]:
    pixels = np.asarray(image.convert("L"), dtype=np.float64)
    height, width = pixels.shape[0] // rows, pixels.shape[1] // columns
    return [
        pixels[row * height : (row + 1) * height, column * width : (column + 1) * width]
        for row in range(rows)
        for column in range(columns)
    ]


def test_video_becomes_a_three_by_three_keyframe_grid(tmp_path: Path) -> None:
    data = video_bytes(tmp_path, 60)
    grid = decoded(still(data, media_type=MediaType.VIDEO, max_side=240))
    # 96 x 64 frames fit an 80 x 80 tile at 80 x 53; 3 x 3 of them.
    assert grid.size == (240, 159)
    assert grid.mode == "RGB"
    cells = tiles(grid, 3, 3)
    assert all(cell.std() > 5 for cell in cells)  # every cell holds a frame
    assert np.abs(cells[0] - cells[-1]).mean() > 5  # from different moments of the video


def test_short_video_gets_fewer_tiles(tmp_path: Path) -> None:
    data = video_bytes(tmp_path, 4)
    grid = decoded(still(data, media_type="video", max_side=240, greyscale=True))
    assert grid.size == (240, 106)  # 4 frames: 3 in the first row, 1 in the second
    assert grid.mode == "L"
    cells = tiles(grid, 3, 2)
    assert all(cell.std() > 5 for cell in cells[:4])
    assert all(cell.mean() < 8 for cell in cells[4:])  # empty cells stay black


def test_video_grid_blur_and_small_frames_are_not_enlarged(tmp_path: Path) -> None:
    data = video_bytes(tmp_path, 12)
    sharp = still(data, media_type="video", max_side=900)
    assert decoded(sharp).size == (3 * 96, 3 * 64)
    blurred = still(data, media_type="video", max_side=900, blur_radius=18.0)
    assert laplacian_variance(blurred) < laplacian_variance(sharp) / 5


def test_video_limits_apply(tmp_path: Path) -> None:
    data = video_bytes(tmp_path, 30)
    with pytest.raises(MediaError) as caught:
        still(data, media_type="video", limits=MediaLimits(max_video_frames=10))
    assert caught.value.code is ErrorCode.TOO_MANY_FRAMES
    with pytest.raises(MediaError) as caught:
        still(data, media_type="video", limits=MediaLimits(max_image_pixels=96 * 64 - 1))
    assert caught.value.code is ErrorCode.TOO_MANY_PIXELS


def fake_frames(count: int) -> list[VideoFrame]:
    pixels = np.zeros((1, 1, 3), dtype=np.uint8)
    return [VideoFrame(index, index / 10, pixels) for index in range(count)]


@pytest.mark.parametrize("count", [1, 2, 8, 9, 10, 17, 18, 19, 100, 1000, 4321])
def test_spread_picks_evenly_spaced_frames_in_one_pass(count: int) -> None:
    picked = [frame.index for frame in _spread(iter(fake_frames(count)), 9)]
    if count <= 9:
        assert picked == list(range(count))
        return
    assert len(picked) == 9
    assert picked[0] == 0
    assert picked == sorted(set(picked))
    assert picked[-1] >= count * 3 // 4  # reaches the end of the video
    gaps = np.diff(picked)
    assert gaps.max() <= 2 * gaps.min()
