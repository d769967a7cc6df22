"""Classification of bank entries: Industry Classification System, UK grading, VICS, labels.

Three schemes are in use and Vigil keeps each as it was given, never converting one into
another (the categories do not line up: UK A covers penetrative activity of a child of any
age, Industry A covers any sex act with a prepubescent child):

- **Industry Classification System** (2022), `Industry`: A = prepubescent minor, B = pubescent
  minor; 1 = sex act, 2 = lascivious exhibition. Severity order A1 > A2 > B1 > B2
  (`severity_rank`).
- **UK grading** (the Child Abuse Image Database, CAID, and the Sentencing Council), `UKCategory`:
  A = penetrative sexual activity, sexual activity with an animal, or sadism; B = non-penetrative
  sexual activity; C = other indecent images.
- **VICS** (Project VIC's Video Image Classification Standard): a `Category` integer whose
  meaning differs between the regional VICS instances (US, Canada, UK/CAID, Australia...). Vigil
  stores the integer and the region as given (`vics_category`, `vics_region`) and maps nothing
  to the other schemes. Project VIC shares the category definitions only with law enforcement
  and vendors under agreement; the only public descriptions found are forensic tools' presets,
  which disagree with each other about categories 0 and 5. `VICS_CATEGORY_NAMES` therefore holds
  display names only, for the US codes 1-4 on which those sources agree, each marked
  `verified=False`; nothing in Vigil derives severity or routing from them.

Free **labels** (`generativeAi`, `viral`, `known-false-positive`...) carry everything else.

Text form (CSV `classification` column, `--classification` options, `default_classification`):
tokens separated by `;`, `,`, `|` or white space, in any order::

    A1                      Industry code (also `industry:A1`), case-insensitive
    uk:A                    UK category
    vics:us:1  or  vics:1   VICS category with its region (the import's region when omitted)
    generativeAi            anything else of 2-64 letters, digits, `.`, `_`, `-`: a label
                            (a letter and a digit, `A3`, is a bad Industry code, not a label)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache


class Industry(StrEnum):
    """Industry Classification System (2022): age group A/B, act 1/2."""

    A1 = "A1"
    A2 = "A2"
    B1 = "B1"
    B2 = "B2"


class UKCategory(StrEnum):
    """UK grading of indecent images of children (CAID, Sentencing Council)."""

    A = "A"
    B = "B"
    C = "C"


_SEVERITY = {Industry.A1: 4, Industry.A2: 3, Industry.B1: 2, Industry.B2: 1}


def severity_rank(industry: Industry | str | None) -> int:
    """Orders Industry codes by severity: A1 (4) > A2 (3) > B1 (2) > B2 (1) > none (0)."""
    if industry is None:
        return 0
    return _SEVERITY[Industry(industry)]


def most_severe(codes: Iterable[Industry | str | None]) -> Industry | None:
    """The most severe Industry code among `codes` (None when there is none)."""
    best: Industry | None = None
    for code in codes:
        if code is not None and severity_rank(code) > severity_rank(best):
            best = Industry(code)
    return best


@dataclass(frozen=True)
class VicsCategoryName:
    """A display name for a VICS category integer in one region, and how sure it is."""

    region: str
    code: int
    name: str
    verified: bool
    source: str


_VICS_US_SOURCE = (
    "forensic tools' Project VIC (US) presets; not confirmed by Project VIC, which shares its"
    " definitions only under agreement"
)
VICS_CATEGORY_NAMES: dict[tuple[str, int], VicsCategoryName] = {
    (entry.region, entry.code): entry
    for entry in (
        VicsCategoryName("us", 1, "Child abuse material", False, _VICS_US_SOURCE),
        VicsCategoryName("us", 2, "Child exploitative / age difficult", False, _VICS_US_SOURCE),
        VicsCategoryName("us", 3, "CGI / animation", False, _VICS_US_SOURCE),
        VicsCategoryName("us", 4, "Comparison images", False, _VICS_US_SOURCE),
    )
}
"""Display names only (see the module docstring). Codes 0 and 5 are left out on purpose:
public sources disagree on which means "uncategorized" and which "non-pertinent"."""

KNOWN_VICS_REGIONS = ("us", "ca", "uk", "au", "nz", "in")
"""Regions with a VICS instance that Vigil has heard of; any slug is accepted."""

DEFAULT_VICS_REGION = "us"

_REGION = re.compile(r"[a-z][a-z0-9_-]{0,15}")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,63}")
_SEPARATORS = re.compile(r"[;,|\s]+")
_INDUSTRY_LIKE = re.compile(r"[A-Za-z][0-9]")  # A1..B2, and typos such as A3: never labels
_RESERVED_PREFIXES = ("industry:", "uk:", "vics:")
VICS_CATEGORY_MAX = 1_000_000


def vics_category_name(region: str | None, code: int | None) -> VicsCategoryName | None:
    """The display name of a VICS category, where one is known (never authoritative)."""
    if region is None or code is None:
        return None
    return VICS_CATEGORY_NAMES.get((region, code))


def check_vics_region(region: str) -> str:
    """Validate and normalise a VICS region slug (`us`, `ca`, `uk`...)."""
    value = region.strip().lower()
    if not _REGION.fullmatch(value):
        raise ValueError(f"VICS region must be a short slug such as 'us', got {region[:40]!r}")
    return value


def check_label(label: str) -> str:
    """Validate a free label: 2-64 letters, digits, `.`, `_`, `-`, starting alphanumeric."""
    if not _LABEL.fullmatch(label) or label.lower().startswith(_RESERVED_PREFIXES):
        raise ValueError(
            f"label {label[:40]!r} must be 2-64 letters, digits, '.', '_' or '-'"
            " and not look like a classification code"
        )
    if _INDUSTRY_LIKE.fullmatch(label):
        raise ValueError(f"label {label!r} looks like a classification code, not a label")
    return label


def _industry(token: str) -> Industry | None:
    try:
        return Industry(token.upper())
    except ValueError:
        return None


@dataclass(frozen=True)
class Classification:
    """What an entry is known to show, in each scheme it was given in."""

    industry: Industry | None = None
    uk: UKCategory | None = None
    vics_category: int | None = None
    vics_region: str | None = None
    labels: tuple[str, ...] = field(default=())
    """Sorted, without duplicates."""

    def __post_init__(self) -> None:
        if self.industry is not None:
            object.__setattr__(self, "industry", Industry(self.industry))
        if self.uk is not None:
            object.__setattr__(self, "uk", UKCategory(self.uk))
        if (self.vics_category is None) != (self.vics_region is None):
            raise ValueError("a VICS category needs its region, and a region its category")
        if self.vics_category is not None and not 0 <= self.vics_category <= VICS_CATEGORY_MAX:
            raise ValueError(f"VICS category must be 0-{VICS_CATEGORY_MAX}")
        if self.vics_region is not None:
            object.__setattr__(self, "vics_region", check_vics_region(self.vics_region))
        object.__setattr__(
            self, "labels", tuple(sorted({check_label(label) for label in self.labels}))
        )

    @property
    def is_empty(self) -> bool:
        return self == EMPTY

    def merged_over(self, base: Classification) -> Classification:
        """This classification, with `base` filling the schemes it lacks; labels united."""
        return Classification(
            industry=self.industry if self.industry is not None else base.industry,
            uk=self.uk if self.uk is not None else base.uk,
            vics_category=(
                self.vics_category if self.vics_category is not None else base.vics_category
            ),
            vics_region=self.vics_region if self.vics_category is not None else base.vics_region,
            labels=tuple({*self.labels, *base.labels}),
        )

    def with_labels(self, labels: Iterable[str]) -> Classification:
        return replace(self, labels=tuple({*self.labels, *labels}))

    def to_text(self) -> str:
        """The canonical text form, which `parse_classification` reads back equal."""
        tokens: list[str] = []
        if self.industry is not None:
            tokens.append(self.industry.value)
        if self.uk is not None:
            tokens.append(f"uk:{self.uk.value}")
        if self.vics_category is not None:
            tokens.append(f"vics:{self.vics_region}:{self.vics_category}")
        tokens.extend(self.labels)
        return ";".join(tokens)

    def as_json(self) -> dict[str, object]:
        return {
            "industry": None if self.industry is None else self.industry.value,
            "uk": None if self.uk is None else self.uk.value,
            "vics_category": self.vics_category,
            "vics_region": self.vics_region,
            "labels": list(self.labels),
        }

    def __str__(self) -> str:
        return self.to_text()


EMPTY = Classification()


def parse_classification(text: str | None, *, vics_region: str | None = None) -> Classification:
    """Read the text form (see the module docstring); ValueError names the bad token.

    `vics_region` is the region of a bare `vics:N` token. Two different codes of one scheme
    (`A1;A2`) are an error; the same code twice is not.
    """
    if text is None or not text.strip():
        return EMPTY
    if len(text) <= _CACHED_TEXT:
        return _parse_cached(text, vics_region)
    return _parse(text, vics_region)


_CACHED_TEXT = 200


@lru_cache(maxsize=4096)
def _parse_cached(text: str, vics_region: str | None) -> Classification:
    # Hash lists repeat a handful of classifications millions of times; the result is
    # immutable, so it is shared. Errors are not cached (lru_cache does not keep them).
    return _parse(text, vics_region)


def _parse(text: str, vics_region: str | None) -> Classification:
    industry: Industry | None = None
    uk: UKCategory | None = None
    vics: tuple[int, str] | None = None
    labels: set[str] = set()
    for token in _SEPARATORS.split(text.strip()):
        if not token:
            continue
        lower = token.lower()
        if len(token) == 1 and lower in "abc":
            raise ValueError(f"write UK categories as uk:{token.upper()}, not {token!r}")
        if lower.startswith("industry:") or _INDUSTRY_LIKE.fullmatch(token):
            code = _industry(token.split(":", 1)[1] if ":" in token else token)
            if code is None:
                raise ValueError(f"unknown Industry classification {token[:40]!r} (A1/A2/B1/B2)")
            if industry is not None and industry != code:
                raise ValueError(f"two Industry classifications: {industry} and {code}")
            industry = code
        elif lower.startswith("uk:"):
            try:
                category = UKCategory(token[3:].upper())
            except ValueError:
                raise ValueError(f"unknown UK category {token[:40]!r} (uk:A, uk:B, uk:C)") from None
            if uk is not None and uk != category:
                raise ValueError(f"two UK categories: {uk} and {category}")
            uk = category
        elif lower.startswith("vics:"):
            parsed = _parse_vics(token, vics_region)
            if vics is not None and vics != parsed:
                raise ValueError("two VICS categories")
            vics = parsed
        else:
            labels.add(check_label(token))
    return Classification(
        industry=industry,
        uk=uk,
        vics_category=None if vics is None else vics[0],
        vics_region=None if vics is None else vics[1],
        labels=tuple(labels),
    )


def _parse_vics(token: str, default_region: str | None) -> tuple[int, str]:
    parts = token.split(":")
    if len(parts) == 2:
        region, code = default_region or DEFAULT_VICS_REGION, parts[1]
    elif len(parts) == 3:
        region, code = parts[1], parts[2]
    else:
        raise ValueError(f"VICS category must be vics:REGION:N or vics:N, got {token[:40]!r}")
    if not code.isascii() or not code.isdigit() or int(code) > VICS_CATEGORY_MAX:
        raise ValueError(f"VICS category must be a number 0-{VICS_CATEGORY_MAX}, got {code[:20]!r}")
    return int(code), check_vics_region(region)
