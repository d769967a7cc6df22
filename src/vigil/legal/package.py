"""Production packages: the records a platform hands over in answer to legal process.

A package is a zip encrypted with AES-256 (WinZip AE format, which 7-Zip and WinZip open; the
password travels separately) that is self-authenticating under the US Federal Rules of
Evidence. Its members, in order:

    the records, as given
    certification-902-11.pdf   custodian's certification of business records, FRE 902(11)
    certification-902-14.pdf   certification of data authenticated by hash value, FRE 902(14)
    MANIFEST.sha256            `sha256sum -c` lines for every other member
    README.txt                 what the package is and how to verify it

Both certifications list every record with its SHA-256, so the signed pages are tied to the
bytes produced. Zip encryption hides contents, not member names or sizes: names must carry
nothing sensitive.

The certifications use the PDF core fonts, which cover Latin-1 only: other characters in the
text given are transliterated where Unicode decomposes them and printed as "?" otherwise; the
SHA-256 values identify every record regardless.
"""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyzipper  # type: ignore[import-untyped]
from jinja2 import Environment, FileSystemLoader, StrictUndefined

CERTIFICATION_902_11 = "certification-902-11.pdf"
CERTIFICATION_902_14 = "certification-902-14.pdf"
MANIFEST = "MANIFEST.sha256"
README = "README.txt"

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 300
MIN_PASSWORD_LENGTH = 12

# Lower case and digits without 0/o, 1/l/i: unambiguous when read out over the phone.
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_PASSWORD_GROUPS = 6
_PASSWORD_GROUP_LENGTH = 4

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=False,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (.+)")


class PackageError(ValueError):
    """A package that cannot be built from what was given, or does not open and verify."""


@dataclass(frozen=True)
class PackageFile:
    """One record to produce, under the name it will have in the archive."""

    name: str
    data: bytes
    description: str

    def __post_init__(self) -> None:
        _check_name(self.name)
        if (
            not self.description.strip()
            or not self.description.isprintable()
            or len(self.description) > MAX_DESCRIPTION_LENGTH
        ):
            raise PackageError(
                f"the description of {self.name!r} must be one printable line of at most "
                f"{MAX_DESCRIPTION_LENGTH} characters"
            )


@dataclass(frozen=True)
class Certification:
    """Who certifies the production, for whom and when: the facts both certifications state."""

    custodian_name: str
    custodian_title: str
    organisation: str
    request_reference: str
    legal_process: str
    agency: str
    case_number: str | None
    certified_at: datetime

    def __post_init__(self) -> None:
        required = (
            self.custodian_name,
            self.custodian_title,
            self.organisation,
            self.request_reference,
            self.legal_process,
            self.agency,
        )
        if not all(value.strip() for value in required):
            raise PackageError("a certification needs every field but the case number")
        if self.certified_at.utcoffset() is None:
            raise PackageError("certified_at must be timezone-aware")


@dataclass(frozen=True)
class ManifestEntry:
    """One record as the certifications list it."""

    item: int
    name: str
    sha256: str
    size: int
    description: str


@dataclass(frozen=True)
class BuiltPackage:
    """An encrypted package, with what the disclosure log records about it."""

    data: bytes
    sha256: str
    manifest: tuple[ManifestEntry, ...]
    file_names: tuple[str, ...]


def manifest_entries(files: Sequence[PackageFile]) -> tuple[ManifestEntry, ...]:
    """The records numbered in the order given, with their hashes; refuses clashing names.

    Names clash when they differ only by case or Unicode normalisation, or when one is the
    folder of another: they would overwrite each other, or fail, when extracted.
    """
    if not files:
        raise PackageError("nothing to produce")
    own = {
        _name_key(name) for name in (CERTIFICATION_902_11, CERTIFICATION_902_14, MANIFEST, README)
    }
    keys = [_name_key(file.name) for file in files]
    folders = {key[:end] for key in keys for end, char in enumerate(key) if char == "/"}
    seen: set[str] = set()
    for file, key in zip(files, keys, strict=True):
        if key in own:
            raise PackageError(f"{file.name!r} is the name of one of the package's own files")
        if key in seen or key in folders:
            raise PackageError(f"{file.name!r} clashes with the name of another file")
        seen.add(key)
    return tuple(
        ManifestEntry(
            item=number,
            name=file.name,
            sha256=hashlib.sha256(file.data).hexdigest(),
            size=len(file.data),
            description=file.description,
        )
        for number, file in enumerate(files, start=1)
    )


def build_package(files: Sequence[PackageFile], cert: Certification, password: str) -> BuiltPackage:
    """The encrypted package of `files` with both certifications, a manifest and a README."""
    # Imported here: the PDF library takes a second and a half to import, and only
    # productions need it (not every process that imports the legal desk).
    from vigil.legal.certification import certification_902_11_pdf, certification_902_14_pdf

    if len(password) < MIN_PASSWORD_LENGTH:
        raise PackageError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    certified_at = cert.certified_at.astimezone(UTC)
    if not 1980 <= certified_at.year <= 2107:
        raise PackageError("certified_at is outside the years a zip timestamp holds (1980-2107)")
    manifest = manifest_entries(files)
    readme = _TEMPLATES.get_template("README.txt.j2").render(
        _template_context(cert, manifest, _one_line)
    )
    listed = [
        *((file.name, file.data) for file in files),
        (CERTIFICATION_902_11, certification_902_11_pdf(cert, manifest)),
        (CERTIFICATION_902_14, certification_902_14_pdf(cert, manifest)),
        (README, readme.encode()),
    ]
    manifest_file = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in listed
    ).encode()
    members = [*listed[:-1], (MANIFEST, manifest_file), listed[-1]]

    buffer = io.BytesIO()
    with pyzipper.AESZipFile(
        buffer, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    ) as archive:
        archive.setpassword(password.encode())
        archive.setencryption(pyzipper.WZ_AES, nbits=256)
        for name, data in members:
            info = archive.zipinfo_cls(name, date_time=certified_at.timetuple()[:6])
            info.compress_type = pyzipper.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever builds it, so the permissions below apply
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    data = buffer.getvalue()
    return BuiltPackage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        manifest=manifest,
        file_names=tuple(name for name, _ in members),
    )


def open_package(data: bytes, password: str) -> dict[str, bytes]:
    """Every member of a package by name, once all are encrypted and match the manifest.

    Requiring encryption of every member means that only a holder of the password could
    have made the manifest and the files it vouches for.
    """
    try:
        with pyzipper.AESZipFile(io.BytesIO(data)) as archive:
            archive.setpassword(password.encode())
            infos = archive.infolist()
            members = {info.filename: archive.read(info) for info in infos}
    except Exception as error:  # the zip reader fails on damaged input in many different ways
        raise PackageError(
            f"the package does not open (wrong password or damaged archive): {error!r}"
        ) from error
    plain = [info.filename for info in infos if not _aes_encrypted(info)]
    if plain:
        raise PackageError(f"members not encrypted with AES: {plain}")
    if len(members) != len(infos):
        raise PackageError("the package holds two members of the same name")
    _verify_manifest(members)
    return members


def new_password() -> str:
    """A fresh package password, about 119 bits, in groups easy to read out over the phone."""
    characters = "".join(
        secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_GROUPS * _PASSWORD_GROUP_LENGTH)
    )
    return "-".join(
        characters[start : start + _PASSWORD_GROUP_LENGTH]
        for start in range(0, len(characters), _PASSWORD_GROUP_LENGTH)
    )


def _check_name(name: str) -> None:
    """Refuse a name that could land outside the extraction folder or not extract at all."""
    if not 0 < len(name) <= MAX_NAME_LENGTH:
        raise PackageError(f"a file name must have 1 to {MAX_NAME_LENGTH} characters")
    if not name.isprintable() or "\\" in name or ":" in name:
        raise PackageError(f"{name!r}: a file name must be printable, without '\\' or ':'")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise PackageError(f"{name!r}: a file name must be a relative path without '.' or '..'")


def _name_key(name: str) -> str:
    """What a name is once case and Unicode normalisation are ignored."""
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def _aes_encrypted(info: Any) -> bool:
    """Whether a member read by pyzipper is encrypted with WinZip AES."""
    return bool(info.flag_bits & 0x1) and getattr(info, "wz_aes_version", None) is not None


def _verify_manifest(members: dict[str, bytes]) -> None:
    """Check that MANIFEST.sha256 lists every other member, each with its SHA-256."""
    if MANIFEST not in members:
        raise PackageError(f"the package has no {MANIFEST}")
    try:
        text = members[MANIFEST].decode()
    except UnicodeDecodeError as error:
        raise PackageError(f"{MANIFEST} is not UTF-8 text") from error
    listed: dict[str, str] = {}
    for line in text.removesuffix("\n").split("\n"):
        match = _MANIFEST_LINE.fullmatch(line)
        if match is None or match[2] in listed:
            raise PackageError(f"{MANIFEST} has a malformed or repeated line: {line!r}")
        listed[match[2]] = match[1]
    others = set(members) - {MANIFEST}
    if set(listed) != others:
        raise PackageError(
            f"{MANIFEST} does not list the package's members: missing "
            f"{sorted(others - set(listed))}, not in the package {sorted(set(listed) - others)}"
        )
    for name, digest in listed.items():
        if hashlib.sha256(members[name]).hexdigest() != digest:
            raise PackageError(f"{name!r} does not match its SHA-256 in {MANIFEST}")


def _one_line(text: str) -> str:
    """`text` with every run of whitespace, line breaks included, as one space."""
    return " ".join(text.split())


def _template_context(
    cert: Certification, manifest: Sequence[ManifestEntry], text: Callable[[str], str]
) -> dict[str, object]:
    """The certification's facts for the templates, each passed through `text`."""
    certified_at = cert.certified_at.astimezone(UTC)
    return {
        "custodian_name": text(cert.custodian_name),
        "custodian_title": text(cert.custodian_title),
        "organisation": text(cert.organisation),
        "request_reference": text(cert.request_reference),
        "legal_process": text(cert.legal_process),
        "agency": text(cert.agency),
        "case_number": text(cert.case_number) if cert.case_number else None,
        "certified_date": f"{certified_at:%Y-%m-%d}",
        "certified_time": f"{certified_at:%H:%M:%S} UTC",
        "item_count": len(manifest),
    }
