"""PDQ conformance against `../shared/conformance/pdq/expected.csv`, fast decode off.

For every row (one test each, named by the row's path): the file's mode and size as Pillow
opens it, MD5, SHA-256, PDQ hash and quality, and all 8 dihedral hashes are identical to the
reference (pdqhash on `Image.open(path).convert("RGB")`, full resolution, no EXIF transpose);
where the reference's own C++ pipeline hash (`reference_cpp_pdq`, another decoder and resizer)
is given and the quality is >= 80, the distance to it is <= 10 bits.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from vigil.config import MediaLimits
from vigil.media import MediaType, open_media
from vigil.media.images import load_pdq_pixels, open_image
from vigil.signals import get_signal_type
from vigil.signals.pdq import dihedral_from_pixels, hamming

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT.parent / "shared"
PDQ_DIR = SHARED / "conformance" / "pdq"
EXPECTED = PDQ_DIR / "expected.csv"
CROSS_DECODER_BITS = 10
CROSS_DECODER_MIN_QUALITY = 80

if not EXPECTED.is_file():
    pytest.skip(
        f"PDQ conformance material not found at {EXPECTED} (expected `../shared` beside the "
        f"repository root {REPO_ROOT}); these tests run only where it is present",
        allow_module_level=True,
    )

with EXPECTED.open(newline="", encoding="utf-8") as _stream:
    ROWS: list[dict[str, str]] = list(csv.DictReader(_stream))

LIMITS = MediaLimits(fast_decode=False)

pytestmark = pytest.mark.shared


def test_expected_csv_covers_every_image() -> None:
    on_disk = {
        path.relative_to(PDQ_DIR).as_posix()
        for path in PDQ_DIR.rglob("*")
        if path.is_file() and path.suffix.lower() not in {".csv", ".md"}
    }
    assert on_disk == {row["path"] for row in ROWS}
    assert len(ROWS) >= 40


@pytest.mark.parametrize("row", ROWS, ids=[row["path"] for row in ROWS])
def test_pdq_conformance(row: dict[str, str]) -> None:
    path = PDQ_DIR / row["path"]

    with open_image(path, LIMITS) as image:
        assert (image.mode, image.width, image.height) == (
            row["mode"],
            int(row["width"]),
            int(row["height"]),
        )

    media = open_media(path, LIMITS)
    assert media.media_type is MediaType.IMAGE
    assert get_signal_type("md5").compute(media, fast=False).value == row["md5"]
    assert get_signal_type("sha256").compute(media, fast=False).value == row["sha256"]

    pdq = get_signal_type("pdq").compute(media, fast=False)
    assert (pdq.value, pdq.quality) == (row["pdq"], int(row["quality"]))

    dihedral, quality = dihedral_from_pixels(load_pdq_pixels(path, LIMITS, fast=False))
    assert dihedral == row["dihedral"].split()
    assert dihedral[0] == row["pdq"]
    assert quality == int(row["quality"])

    reference_cpp = row["reference_cpp_pdq"]
    if reference_cpp and int(row["quality"]) >= CROSS_DECODER_MIN_QUALITY:
        distance = hamming(pdq.value, reference_cpp)
        assert distance <= CROSS_DECODER_BITS, (
            f"{row['path']}: {distance} bits from the reference C++ pipeline's hash"
        )
