"""vigil.legal.package: encrypted production packages with FRE 902(11)/902(14) certifications."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pypdf
import pytest
import pyzipper  # type: ignore[import-untyped]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.legal.certification import certification_902_11_pdf, certification_902_14_pdf
from vigil.legal.package import (
    BuiltPackage,
    Certification,
    ManifestEntry,
    PackageError,
    PackageFile,
    build_package,
    manifest_entries,
    new_password,
    open_package,
)

PASSWORD = "correct-horse-battery"
MARKER = b"BENIGN-PLAINTEXT-MARKER-7c1f"
CERT = Certification(
    custodian_name="Jane Q. Custodian",
    custodian_title="Legal Operations Manager",
    organisation="Example Platform, Inc.",
    request_reference="LR-000012",
    legal_process="Subpoena",
    agency="Example County Sheriff's Office",
    case_number="2025-CR-0042",
    certified_at=datetime(2025, 3, 4, 14, 5, 8, tzinfo=UTC),
)
FILES = (
    PackageFile(
        "data/subscriber.csv",
        b"account_id,created_at\n1001,2024-01-02T03:04:05Z\n" + MARKER * 20,
        "Basic subscriber information (CSV)",
    ),
    PackageFile("data/logins.csv", b"at,ip\n2024-05-06T07:08:09Z,192.0.2.1\n", "Login IP log"),
    PackageFile("content/0001-example.txt", b"hello\n", "Example content item"),
)
OWN_FILES = (
    "certification-902-11.pdf",
    "certification-902-14.pdf",
    "MANIFEST.sha256",
    "README.txt",
)


def pdf_text(data: bytes) -> list[str]:
    """Each page's extracted text, with every run of whitespace as one space."""
    return [
        " ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(data)).pages
    ]


def repack(members: dict[str, bytes], password: str = PASSWORD, *, encrypt: bool = True) -> bytes:
    """A zip of `members`, as someone else (holding the password or not) might make it."""
    buffer = io.BytesIO()
    if encrypt:
        with pyzipper.AESZipFile(
            buffer, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
        ) as archive:
            archive.setpassword(password.encode())
            for name, data in members.items():
                archive.writestr(name, data)
    else:
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    return buffer.getvalue()


def manifest_lines(text: str) -> dict[str, str]:
    lines = [line.split("  ", 1) for line in text.splitlines()]
    return {name: digest for digest, name in lines}


@pytest.fixture(scope="module")
def package() -> BuiltPackage:
    return build_package(FILES, CERT, PASSWORD)


# --- Building and opening --------------------------------------------------------------------


def test_round_trip_with_the_password(package: BuiltPackage) -> None:
    members = open_package(package.data, PASSWORD)

    assert package.file_names == (*(file.name for file in FILES), *OWN_FILES)
    assert tuple(members) == package.file_names
    for file in FILES:
        assert members[file.name] == file.data
    assert package.sha256 == hashlib.sha256(package.data).hexdigest()
    assert package.manifest == manifest_entries(FILES)
    readme = members["README.txt"].decode()
    assert "sha256sum -c MANIFEST.sha256" in readme
    assert "LR-000012" in readme
    assert "Subpoena from Example County Sheriff's Office, case number 2025-CR-0042" in readme


def test_wrong_password_is_refused(package: BuiltPackage) -> None:
    with pytest.raises(PackageError, match="wrong password"):
        open_package(package.data, "not-the-password")


def test_every_member_is_aes_256_encrypted(package: BuiltPackage) -> None:
    assert MARKER not in package.data
    assert b"account_id" not in package.data
    infos = zipfile.ZipFile(io.BytesIO(package.data)).infolist()
    assert [info.filename for info in infos] == list(package.file_names)
    for info in infos:
        assert info.flag_bits & 0x1, info.filename  # encrypted
        assert info.compress_type == 99, info.filename  # WinZip AES
        assert info.date_time == (2025, 3, 4, 14, 5, 8)  # certified_at, in UTC
    with pyzipper.AESZipFile(io.BytesIO(package.data)) as archive:
        assert {info.wz_aes_strength for info in archive.infolist()} == {3}  # 3: 256-bit key


def test_member_timestamps_are_certified_at_in_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    cert = Certification(
        **{**vars(CERT), "certified_at": datetime(2025, 3, 4, 9, 5, 8, tzinfo=eastern)}
    )
    built = build_package(FILES, cert, PASSWORD)
    infos = zipfile.ZipFile(io.BytesIO(built.data)).infolist()
    assert {info.date_time for info in infos} == {(2025, 3, 4, 14, 5, 8)}


def test_manifest_lists_every_other_member_with_its_sha256(package: BuiltPackage) -> None:
    members = open_package(package.data, PASSWORD)
    listed = manifest_lines(members["MANIFEST.sha256"].decode())

    assert list(listed) == [name for name in package.file_names if name != "MANIFEST.sha256"]
    for name, digest in listed.items():
        assert digest == hashlib.sha256(members[name]).hexdigest()
    assert [(entry.item, entry.name, entry.sha256, entry.size) for entry in package.manifest] == [
        (number, file.name, hashlib.sha256(file.data).hexdigest(), len(file.data))
        for number, file in enumerate(FILES, start=1)
    ]


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs sha256sum")
def test_extracted_package_verifies_with_sha256sum(package: BuiltPackage, tmp_path: Path) -> None:
    with pyzipper.AESZipFile(io.BytesIO(package.data)) as archive:
        archive.setpassword(PASSWORD.encode())
        archive.extractall(tmp_path)
    result = subprocess.run(
        ["sha256sum", "--strict", "-c", "MANIFEST.sha256"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == len(package.file_names) - 1


# --- Refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "../outside.csv",
        "data/../../outside.csv",
        "data//subscriber.csv",
        "data/",
        "./subscriber.csv",
        "data\\subscriber.csv",
        "C:subscriber.csv",
        "data/sub\nscriber.csv",
        "data/\x00.csv",
        "x" * 201,
    ],
)
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(PackageError):
        PackageFile(name, b"data", "Description")


def test_longest_name_is_accepted() -> None:
    assert PackageFile("x" * 200, b"", "Empty file").name == "x" * 200


@pytest.mark.parametrize("description", ["", "   ", "two\nlines", "tab\there", "x" * 301])
def test_bad_descriptions_are_refused(description: str) -> None:
    with pytest.raises(PackageError):
        PackageFile("data/a.csv", b"data", description)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("data/a.csv", "data/a.csv"),
        ("data/a.csv", "DATA/A.csv"),
        ("data/caf\u00e9.csv", "data/cafe\u0301.csv"),  # NFC and NFD spellings
        ("data", "data/a.csv"),  # a file where another needs a folder
        ("Data/a.csv", "data"),
    ],
)
def test_clashing_names_are_refused(first: str, second: str) -> None:
    files = [PackageFile(first, b"1", "One"), PackageFile(second, b"2", "Two")]
    with pytest.raises(PackageError, match="clashes"):
        build_package(files, CERT, PASSWORD)


@pytest.mark.parametrize("name", [*OWN_FILES, "readme.txt"])
def test_names_of_the_package_own_files_are_refused(name: str) -> None:
    with pytest.raises(PackageError, match="package's own files"):
        build_package([PackageFile(name, b"data", "Description")], CERT, PASSWORD)


def test_nothing_to_produce_is_refused() -> None:
    with pytest.raises(PackageError, match="nothing to produce"):
        build_package([], CERT, PASSWORD)
    with pytest.raises(PackageError, match="nothing to certify"):
        certification_902_11_pdf(CERT, [])


def test_short_password_is_refused() -> None:
    with pytest.raises(PackageError, match="at least 12"):
        build_package(FILES, CERT, "elevenchars")


def test_certification_needs_an_aware_time_and_its_fields() -> None:
    with pytest.raises(PackageError, match="timezone-aware"):
        Certification(**{**vars(CERT), "certified_at": datetime(2025, 3, 4, 14, 5)})
    with pytest.raises(PackageError, match="every field"):
        Certification(**{**vars(CERT), "custodian_name": " "})
    assert Certification(**{**vars(CERT), "case_number": None}).case_number is None


def test_certified_at_before_zip_time_began_is_refused() -> None:
    cert = Certification(**{**vars(CERT), "certified_at": datetime(1979, 12, 31, tzinfo=UTC)})
    with pytest.raises(PackageError, match="1980"):
        build_package(FILES, cert, PASSWORD)


# --- Tampering -------------------------------------------------------------------------------


def test_a_flipped_byte_in_an_encrypted_member_is_detected(package: BuiltPackage) -> None:
    info = zipfile.ZipFile(io.BytesIO(package.data)).infolist()[0]
    offset = info.header_offset
    name_length = int.from_bytes(package.data[offset + 26 : offset + 28], "little")
    extra_length = int.from_bytes(package.data[offset + 28 : offset + 30], "little")
    data_start = offset + 30 + name_length + extra_length + 16 + 2  # after salt and verifier
    damaged = bytearray(package.data)
    damaged[data_start + 5] ^= 0x01
    with pytest.raises(PackageError):
        open_package(bytes(damaged), PASSWORD)


def test_a_member_changed_by_a_password_holder_fails_the_manifest(package: BuiltPackage) -> None:
    members = open_package(package.data, PASSWORD)
    members["data/logins.csv"] = b"at,ip\n2024-05-06T07:08:09Z,192.0.2.99\n"
    with pytest.raises(PackageError, match=r"'data/logins\.csv' does not match"):
        open_package(repack(members), PASSWORD)


def test_a_member_added_or_removed_fails_the_manifest(package: BuiltPackage) -> None:
    members = open_package(package.data, PASSWORD)
    with pytest.raises(PackageError, match="does not list"):
        open_package(repack({**members, "data/extra.csv": b"extra"}), PASSWORD)
    del members["data/logins.csv"]
    with pytest.raises(PackageError, match="does not list"):
        open_package(repack(members), PASSWORD)


def test_a_package_without_its_manifest_is_refused(package: BuiltPackage) -> None:
    members = open_package(package.data, PASSWORD)
    del members["MANIFEST.sha256"]
    with pytest.raises(PackageError, match="no MANIFEST"):
        open_package(repack(members), PASSWORD)


def test_an_unencrypted_package_is_refused_even_with_a_consistent_manifest(
    package: BuiltPackage,
) -> None:
    members = open_package(package.data, PASSWORD)
    with pytest.raises(PackageError, match="not encrypted"):
        open_package(repack(members, encrypt=False), PASSWORD)


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04" + b"\x00" * 40])
def test_what_is_not_a_package_is_refused(data: bytes) -> None:
    with pytest.raises(PackageError):
        open_package(data, PASSWORD)


def test_a_truncated_package_is_refused(package: BuiltPackage) -> None:
    with pytest.raises(PackageError):
        open_package(package.data[: len(package.data) // 2], PASSWORD)


# --- Certifications --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "phrases"),
    [
        (
            "certification-902-11.pdf",
            [
                "FRE 902(11) certification",
                "Federal Rules of Evidence 803(6) and 902(11)",
                "made at or near the time of the occurrence of the matters set forth by, or "
                "from information transmitted by, a person with knowledge of those matters",
                "kept in the course of the regularly conducted activity",
                "made by the regularly conducted activity as a regular practice",
            ],
        ),
        (
            "certification-902-14.pdf",
            [
                "FRE 902(14) certification",
                "Federal Rules of Evidence 902(11) and 902(14)",
                "copied from Example Platform, Inc.'s systems by a process of digital "
                "identification",
                "the copies listed have the same hash values",
            ],
        ),
    ],
)
def test_certification_declares_lists_and_numbers(
    package: BuiltPackage, name: str, phrases: list[str]
) -> None:
    data = open_package(package.data, PASSWORD)[name]
    pages = pdf_text(data)
    text = " ".join(pages)
    count = len(pages)

    assert (
        "I, Jane Q. Custodian, declare under penalty of perjury under the laws of the United "
        "States of America" in text
    )
    assert "I am employed by Example Platform, Inc. as Legal Operations Manager" in text
    assert "custodian of records" in text
    assert (
        "Subpoena received from Example County Sheriff's Office in case number 2025-CR-0042" in text
    )
    for phrase in phrases:
        assert phrase in text
    for entry in package.manifest:
        assert f"{entry.item} {entry.name} {entry.sha256} {entry.size:,}" in text
        assert entry.description in text
    for number, page in enumerate(pages, start=1):
        assert "LR-000012 - " in page
        assert f"Page {number} of {count}" in page
        assert "Example Platform, Inc. - Subpoena - LR-000012" in page  # running header
    assert "Executed on 2025-03-04 at 14:05:08 UTC" in pages[-1]
    assert "Name: Jane Q. Custodian" in pages[-1]
    assert "Date: 2025-03-04" in pages[-1]

    info = pypdf.PdfReader(io.BytesIO(data)).metadata
    assert info is not None
    assert info.author == "Example Platform, Inc."
    assert info.title and info.title.startswith("CERTIFICATE OF AUTHENTICITY")
    assert info.creation_date == CERT.certified_at


def test_many_items_make_a_numbered_multi_page_certification() -> None:
    files = [
        PackageFile(f"content/{number:04d}-item.txt", f"item {number}\n".encode(), f"Item {number}")
        for number in range(1, 121)
    ]
    manifest = manifest_entries(files)
    for certification in (certification_902_11_pdf, certification_902_14_pdf):
        pages = pdf_text(certification(CERT, manifest))
        count = len(pages)
        assert count > 2
        assert all(f"Page {number} of {count}" in page for number, page in enumerate(pages, 1))
        assert f"Page {count} of {count}" in pages[-1]
        assert all(
            "Item No. File name SHA-256 Size (bytes) Description" in page for page in pages[1:-1]
        )
        text = " ".join(pages)
        for entry in manifest:
            assert f"{entry.item} {entry.name} {entry.sha256}" in text
        assert "Signature:" in pages[-1]
        assert "Items 1 through 120" in pages[0]


def test_text_outside_latin_1_is_printed_safely() -> None:
    cert = Certification(
        **{
            **vars(CERT),
            "custodian_name": "Zo\u00eb \u201cJo\u201d M\u00fcller\u2013\u6771",
            "organisation": "Beispiel \u00b7 Plattform \U0001f600",
        }
    )
    files = [PackageFile("data/\u6771\u4eac-{nb}.csv", b"x", "caf\u00e9 \ufb01le \u2014 \u2460")]
    pages = pdf_text(certification_902_11_pdf(cert, manifest_entries(files)))
    text = " ".join(pages)

    assert 'I, Zo\u00eb "Jo" M\u00fcller-?, declare' in text
    assert "Beispiel \u00b7 Plattform ?" in text
    assert "data/??-{nb}.csv" in text  # the page-count alias is not substituted into names
    assert "caf\u00e9 file - 1" in text
    assert f"Page 1 of {len(pages)}" in pages[0]


# --- Passwords -------------------------------------------------------------------------------


def test_new_password_is_grouped_unambiguous_and_fresh() -> None:
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50
    for password in passwords:
        assert re.fullmatch(r"[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){5}", password), password
    password = passwords.pop()
    assert open_package(build_package(FILES, CERT, password).data, password)


# --- Properties ------------------------------------------------------------------------------

# Characters that str.isprintable() accepts (space included), so may appear in names and
# descriptions; arbitrary text (control characters, line breaks) for the certification.
PRINTABLE = st.characters(
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"), include_characters=" "
)
SEGMENT = st.text(
    alphabet=st.characters(
        exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"),
        exclude_characters="/\\:",
        include_characters=" ",
    ),
    min_size=1,
    max_size=12,
).filter(lambda segment: segment.isprintable() and segment not in (".", ".."))
DESCRIPTION = st.text(alphabet=PRINTABLE, min_size=1, max_size=80).filter(
    lambda text: text.isprintable() and bool(text.strip())
)
FIELD = st.text(min_size=1, max_size=60).filter(lambda text: bool(text.strip()))


@st.composite
def package_files(draw: st.DrawFn) -> list[PackageFile]:
    count = draw(st.integers(min_value=1, max_value=4))
    files = []
    for number in range(count):
        segments = draw(st.lists(SEGMENT, min_size=1, max_size=3))
        name = f"{number:02d}-" + "/".join(segments)  # the prefix keeps names apart
        files.append(PackageFile(name, draw(st.binary(max_size=64)), draw(DESCRIPTION)))
    return files


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=package_files(),
    fields=st.fixed_dictionaries(
        {
            "custodian_name": FIELD,
            "custodian_title": FIELD,
            "organisation": FIELD,
            "request_reference": FIELD,
            "legal_process": FIELD,
            "agency": FIELD,
            "case_number": st.none() | FIELD,
        }
    ),
)
def test_any_unicode_builds_certifications_and_round_trips(
    files: list[PackageFile], fields: dict[str, str | None]
) -> None:
    cert = Certification(**fields, certified_at=CERT.certified_at)  # type: ignore[arg-type]
    built = build_package(files, cert, PASSWORD)
    members = open_package(built.data, PASSWORD)

    assert [(name, members[name]) for name in built.file_names[: len(files)]] == [
        (file.name, file.data) for file in files
    ]
    for name in ("certification-902-11.pdf", "certification-902-14.pdf"):
        pages = pdf_text(members[name])
        assert f"Page {len(pages)} of {len(pages)}" in pages[-1]
        text = " ".join(pages)
        for entry in built.manifest:
            assert entry.sha256 in text
    assert built.manifest == tuple(
        ManifestEntry(
            number,
            file.name,
            hashlib.sha256(file.data).hexdigest(),
            len(file.data),
            file.description,
        )
        for number, file in enumerate(files, start=1)
    )
