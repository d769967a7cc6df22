"""The two certifications of a production package as PDFs (FRE 902(11) and 902(14)), from
the Jinja2 templates in `templates/`.

They use the PDF core fonts, which cover Latin-1 only: other characters in the text given
are transliterated where Unicode decomposes them and printed as "?" otherwise; the SHA-256
values identify every record regardless. Kept apart from `vigil.legal.package` because the
PDF library is slow to import: only building a package loads it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace
from fpdf.recorder import FPDFRecorder

from vigil.legal.package import (
    _TEMPLATES,
    Certification,
    ManifestEntry,
    PackageError,
    _one_line,
    _template_context,
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

# Item table: column headings, relative widths (the SHA-256 column holds a whole hash in
# 6 pt Courier, so that it prints, and extracts from the PDF, in one piece) and alignments.
_HEADINGS = ("Item No.", "File name", "SHA-256", "Size (bytes)", "Description")
_COLUMN_WIDTHS = (14, 40, 84, 17, 31)
_COLUMN_ALIGN = ("CENTER", "LEFT", "LEFT", "RIGHT", "LEFT")
_HASH_STYLE = FontFace(family="Courier", size_pt=6)


def certification_902_11_pdf(cert: Certification, manifest: Sequence[ManifestEntry]) -> bytes:
    """The custodian's certification of the records as business records (FRE 902(11))."""
    return _certification_pdf("certification_902_11.txt.j2", cert, manifest)


def certification_902_14_pdf(cert: Certification, manifest: Sequence[ManifestEntry]) -> bytes:
    """The certification of the files as copies authenticated by SHA-256 (FRE 902(14))."""
    return _certification_pdf("certification_902_14.txt.j2", cert, manifest)


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
