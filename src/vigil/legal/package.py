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
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from fpdf.recorder import FPDFRecorder
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

# fpdf2 substitutes the page count for this alias in all text on the page; it holds characters
# `_latin1` never returns, so text given (a file named "{nb}") is printed as it is.
_TOTAL_PAGES = "\x00nb\x00"

# Punctuation that Unicode does not decompose to Latin-1.
_PUNCTUATION = str.maketrans(
    {
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
        "\u2212": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": ",",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2022": "*",
    }
)

_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  (.+)")

# Item table: column headings, relative widths (the SHA-256 column holds a whole hash in
# 6 pt Courier, so that it prints, and extracts from the PDF, in one piece) and alignments.
_HEADINGS = ("Item No.", "File name", "SHA-256", "Size (bytes)", "Description")
_COLUMN_WIDTHS = (14, 40, 84, 17, 31)
_COLUMN_ALIGN = ("CENTER", "LEFT", "LEFT", "RIGHT", "LEFT")
_HASH_STYLE = FontFace(family="Courier", size_pt=6)


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


def certification_902_11_pdf(cert: Certification, manifest: Sequence[ManifestEntry]) -> bytes:
    """The custodian's certification of the records as business records (FRE 902(11))."""
    return _certification_pdf("certification_902_11.txt.j2", cert, manifest)


def certification_902_14_pdf(cert: Certification, manifest: Sequence[ManifestEntry]) -> bytes:
    """The certification of the files as copies authenticated by SHA-256 (FRE 902(14))."""
    return _certification_pdf("certification_902_14.txt.j2", cert, manifest)


def build_package(files: Sequence[PackageFile], cert: Certification, password: str) -> BuiltPackage:
    """The encrypted package of `files` with both certifications, a manifest and a README."""
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


def _latin1(text: str) -> str:
    """`text` on one line in the printable Latin-1 characters that the PDF core fonts have."""
    printed = []
    for char in _one_line(text).translate(_PUNCTUATION):
        if _is_printable_latin1(char):
            printed.append(char)
        else:
            decomposed = unicodedata.normalize("NFKD", char)
            printed.append("".join(c for c in decomposed if _is_printable_latin1(c)) or "?")
    return "".join(printed)


def _is_printable_latin1(char: str) -> bool:
    return ord(char) < 0x100 and char.isprintable()


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


class _CertificationPDF(FPDF):
    """A US Letter page with the running header and the numbered footer of a certification."""

    def __init__(self, running_head: str, reference: str, short_title: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="letter")
        self.running_head = running_head
        self.reference = reference
        self.short_title = short_title
        self.set_margins(left=15, top=22, right=15)
        self.set_auto_page_break(auto=True, margin=20)
        self.alias_nb_pages(_TOTAL_PAGES)

    def header(self) -> None:
        self.set_y(10)
        self.set_font("Helvetica", size=8)
        self.set_text_color(80)
        self.cell(0, 5, _fit(self, self.running_head, self.epw), align="L")
        self.line(self.l_margin, 16, self.w - self.r_margin, 16)
        self.set_text_color(0)
        self.set_y(self.t_margin)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Helvetica", size=8)
        self.set_text_color(80)
        reference = _fit(self, self.reference, self.epw / 2)
        self.cell(
            0,
            5,
            f"{reference} - {self.short_title} - Page {self.page_no()} of {_TOTAL_PAGES}",
            align="C",
        )
        self.set_text_color(0)


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """`text`, shortened with "..." where it is wider than `width` in the current font."""
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(f"{text}...") > width:
        text = text[:-1]
    return f"{text}..."


def _certification_pdf(
    template_name: str, cert: Certification, manifest: Sequence[ManifestEntry]
) -> bytes:
    """Lay out a certification template's blocks with the item table between them."""
    if not manifest:
        raise PackageError("nothing to certify")
    template = _TEMPLATES.get_template(template_name)
    context = template.new_context(_template_context(cert, manifest, _latin1))
    text = {name: "".join(block(context)).strip() for name, block in template.blocks.items()}

    running_head = f"{cert.organisation} - {cert.legal_process} - {cert.request_reference}"
    pdf = _CertificationPDF(
        running_head=_latin1(running_head),
        reference=_latin1(cert.request_reference),
        short_title=text["short_title"],
    )
    pdf.set_title(text["title"])
    pdf.set_subject(_one_line(f"{text['short_title']}, {cert.request_reference}"))
    pdf.set_author(_one_line(cert.organisation))
    pdf.set_creator("Vigil")
    pdf.set_creation_date(cert.certified_at)
    pdf.add_page()

    pdf.set_font("Helvetica", style="B", size=12)
    pdf.multi_cell(0, 6, text["title"], align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 6, text["subtitle"], align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    _paragraphs(pdf, text["declaration"])
    pdf.ln(2)
    _item_table(pdf, manifest)
    pdf.ln(6)
    pdf.set_font("Helvetica", size=10)
    with pdf.unbreakable() as block:  # the closing and the signature stay on one page
        _paragraphs(block, f"{text['closing']}\n\n{text['signature']}")
    return bytes(pdf.output())


def _paragraphs(pdf: FPDF | FPDFRecorder, text: str) -> None:
    """Every non-blank line of `text` as a paragraph; blank lines as space between them."""
    for line in text.split("\n"):
        if line.strip():
            pdf.multi_cell(0, 5, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        else:
            pdf.ln(2.5)


def _item_table(pdf: FPDF, manifest: Sequence[ManifestEntry]) -> None:
    """The numbered items, their hashes, sizes and descriptions, headings on every page."""
    pdf.set_font("Helvetica", size=7.5)
    with pdf.table(
        col_widths=_COLUMN_WIDTHS,
        width=pdf.epw,
        text_align=_COLUMN_ALIGN,
        line_height=3.5,
        headings_style=FontFace(emphasis="BOLD", fill_color=230),
    ) as table:
        headings = table.row()
        for heading in _HEADINGS:
            headings.cell(heading)
        for entry in manifest:
            row = table.row()
            row.cell(str(entry.item))
            row.cell(_latin1(entry.name))
            row.cell(entry.sha256, style=_HASH_STYLE)
            row.cell(f"{entry.size:,}")
            row.cell(_latin1(entry.description))
