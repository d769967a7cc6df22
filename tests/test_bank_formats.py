"""Hash-list parsers (no database): CSV/TSV, plain, VICS JSON, hash-sharing XML.

Every value is synthetic random hex. Properties: valid rows written in a format parse back
equal; arbitrary junk never raises anything but `ImportFileError`.
"""

from __future__ import annotations

import csv
import io
import random
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bank_helpers import (
    LENGTHS,
    ncmec_deleted,
    ncmec_entry,
    ncmec_xml,
    rand_hex,
    rand_vpdq,
    vics_json,
)
from vigil.banks.classification import Classification, Industry, UKCategory
from vigil.banks.formats import (
    Deletion,
    Entry,
    ImportFileError,
    ImportFormat,
    ImportLimits,
    ParseOptions,
    Record,
    Rejected,
    Row,
    Skipped,
    detect_format,
    parser_for,
)
from vigil.banks.formats.base import open_guarded
from vigil.banks.formats.delimited import COLUMNS

RNG = random.Random(20261124)
MD5 = rand_hex(RNG, "md5")
MD5_B = rand_hex(RNG, "md5")
SHA1 = rand_hex(RNG, "sha1")
SHA256 = rand_hex(RNG, "sha256")
PDQ = rand_hex(RNG, "pdq")


def parse(fmt: ImportFormat | str, data: bytes, **options: Any) -> list[Record]:
    """Parse bytes as a format, reading through the same guarded stream as an import."""
    limits = options.pop("limits", ImportLimits())
    parser, opts = parser_for(ImportFormat(fmt), ParseOptions(limits=limits, **options))
    guard, stream = open_guarded(io.BytesIO(data), limits.max_bytes)
    records = list(parser(stream, opts))
    guard.drain()
    assert guard.bytes_read == len(data)
    return records


def rows(records: list[Record]) -> list[Row]:
    out: list[Row] = []
    for record in records:
        if isinstance(record, Row):
            out.append(record)
        elif isinstance(record, Entry):
            out.extend(record.rows)
    return out


def rejected(records: list[Record]) -> list[tuple[int, str]]:
    return [(r.position, r.reason) for r in records if isinstance(r, Rejected)]


# --- format detection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("list.csv", ImportFormat.CSV),
        ("LIST.TSV", ImportFormat.TSV),
        ("x.tab", ImportFormat.TSV),
        ("hashset.json", ImportFormat.VICS),
        ("entries.xml", ImportFormat.NCMEC),
        ("hashes.txt", ImportFormat.PLAIN),
    ],
)
def test_format_by_extension(name: str, fmt: ImportFormat) -> None:
    assert detect_format(name) is fmt


def test_unknown_extension_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="extension"):
        detect_format("hashes.bin")


# --- CSV / TSV ----------------------------------------------------------------------------


def test_csv_rows_with_classification_and_external_ids() -> None:
    data = (
        "signal_type,value,classification,external_id,note\n"
        f"md5,{MD5.upper()},A1;uk:A;viral,ext-1,first\n"
        f"SHA1,{SHA1},vics:ca:2,,\n"
        f"pdq,{PDQ},,,\n"
    ).encode()
    parsed = parse("csv", data, file_name="x.csv")
    assert parsed == [
        Row(
            2,
            "md5",
            MD5,
            Classification(industry=Industry.A1, uk=UKCategory.A, labels=("viral",)),
            external_id="ext-1",
            note="first",
        ),
        Row(3, "sha1", SHA1, Classification(vics_category=2, vics_region="ca")),
        Row(4, "pdq", PDQ),
    ]


def test_csv_bad_rows_are_rejected_with_their_line_numbers() -> None:
    data = (
        "signal_type,value,classification\n"
        f"md5,{MD5},A1\n"
        "md5,not-hex-at-all,\n"
        "\n"
        f'pdq,"{PDQ[:-1]}",\n'
        f"sha3,{SHA256},\n"
        f"md5,{MD5_B},A9\n"
        f"md5,{MD5_B}\n"
        f"sha256,{SHA256},B2\n"
    ).encode()
    parsed = parse("csv", data, file_name="x.csv")
    assert [r.position for r in rows(parsed)] == [2, 9]
    lines = [line for line, _ in rejected(parsed)]
    assert lines == [3, 5, 6, 7, 8]
    reasons = dict(rejected(parsed))
    assert "hexadecimal" in reasons[3]
    assert "unknown signal type" in reasons[6]
    assert "unknown Industry classification 'A9'" in reasons[7]
    assert "2 fields" in reasons[8]


def test_csv_line_numbers_count_physical_lines_of_multiline_values() -> None:
    vpdq = rand_vpdq(RNG, frames=4)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["signal_type", "value"])
    writer.writerow(["vpdq", vpdq])
    writer.writerow(["md5", "bad"])
    parsed = parse("csv", buffer.getvalue().encode(), file_name="x.csv")
    assert rows(parsed) == [Row(2, "vpdq", vpdq)]
    assert [line for line, _ in rejected(parsed)] == [2 + vpdq.count("\n") + 1]


def test_csv_with_bom_and_crlf_and_any_column_order() -> None:
    data = f"\ufeffValue,Signal_Type\r\n{MD5},md5\r\n".encode()
    assert rows(parse("csv", data, file_name="x.csv")) == [Row(2, "md5", MD5)]


@pytest.mark.parametrize(
    ("fmt", "name", "delimiter"),
    [("tsv", "x.txt", "\t"), ("csv", "x.tsv", "\t"), ("csv", "x.dat", "\t"), ("csv", "x", ",")],
)
def test_tsv_by_format_extension_or_header(fmt: str, name: str, delimiter: str) -> None:
    data = f"signal_type{delimiter}value\nmd5{delimiter}{MD5}\n".encode()
    assert rows(parse(fmt, data, file_name=name)) == [Row(2, "md5", MD5)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"type,hash\nmd5,x\n", "unknown column"),
        (b"signal_type,value,value\n", "named twice"),
        (b"signal_type,classification\n", "missing column 'value'"),
        (b'signal_type,value\nmd5,"unterminated\n', "line 2"),
        (b"signal_type,value\nmd5,\xff\xfe\n", "line 2: not UTF-8"),
        (b"\xff\xfes\x00i\x00", "UTF-16"),
    ],
)
def test_csv_malformed_files(data: bytes, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse("csv", data, file_name="x.csv")


def test_bad_utf8_is_blamed_on_its_own_line() -> None:
    good = "".join(f"md5,{rand_hex(RNG, 'md5')}\n" for _ in range(2000))
    data = ("signal_type,value\n" + good).encode() + b"md5,\xc3\x28\n"
    with pytest.raises(ImportFileError, match="line 2002: not UTF-8"):
        parse("csv", data, file_name="x.csv")


def test_lines_longer_than_the_limit_stop_the_file() -> None:
    limits = ImportLimits(max_line_chars=100)
    data = ("signal_type,value\n" + f"md5,{MD5}," + "x" * 200 + "\n").encode()
    with pytest.raises(ImportFileError, match="line 2 is longer than 100"):
        parse("csv", data, file_name="x.csv", limits=limits)
    ok = ("signal_type,value\n" + f"md5,{MD5}\n").encode()
    assert len(rows(parse("csv", ok, file_name="x.csv", limits=limits))) == 1


def test_files_larger_than_the_limit_stop() -> None:
    data = ("signal_type,value\n" + f"md5,{MD5}\n" * 50).encode()
    with pytest.raises(ImportFileError, match="larger than 1000 bytes"):
        parse("csv", data, file_name="x.csv", limits=ImportLimits(max_bytes=1000))


def test_values_longer_than_the_limit_are_rejected() -> None:
    vpdq = rand_vpdq(RNG, frames=20)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([["signal_type", "value"], ["vpdq", vpdq]])
    parsed = parse(
        "csv",
        buffer.getvalue().encode(),
        file_name="x.csv",
        limits=ImportLimits(max_value_chars=500),
    )
    assert "longer than 500" in rejected(parsed)[0][1]


# --- plain ------------------------------------------------------------------------------


def test_plain_list_skips_blanks_and_comments() -> None:
    data = f"# synthetic list\n\n{MD5.upper()}\n  {MD5_B}  # trailing comment\nnope\n".encode()
    parsed = parse("plain", data, signal_type="md5")
    assert rows(parsed) == [Row(3, "md5", MD5), Row(4, "md5", MD5_B)]
    assert [line for line, _ in rejected(parsed)] == [5]


@pytest.mark.parametrize(("signal_type", "message"), [(None, "signal type"), ("vpdq", "CSV")])
def test_plain_list_needs_a_single_line_signal_type(signal_type: str | None, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse("plain", MD5.encode(), signal_type=signal_type)


# --- VICS JSON --------------------------------------------------------------------------


def _media(media_id: int, **fields: Any) -> dict[str, Any]:
    return {"MediaID": media_id, "IsPrecategorized": "false", **fields}


@pytest.mark.parametrize("case", [False, True])
@pytest.mark.parametrize("bom", [False, True])
def test_vics_hash_set_and_case_file(case: bool, bom: bool) -> None:
    data = vics_json(
        [
            _media(
                1,
                Category=1,
                MD5=MD5.upper(),
                SHA1=SHA1,
                AlternativeHashes=[
                    {"HashName": "PDQ", "HashValue": PDQ},
                    {"HashName": "PhotoDNA", "HashValue": "c3ludGhldGlj"},
                ],
            ),
            _media(2, Category="3", MD5=MD5_B, SHA1=""),
        ],
        case=case,
        bom=bom,
    )
    parsed = parse("vics", data, vics_region="us")
    us1 = Classification(vics_category=1, vics_region="us")
    us3 = Classification(vics_category=3, vics_region="us")
    assert [r for r in parsed if isinstance(r, Entry)] == [
        Entry(
            1,
            "1",
            (
                Row(1, "md5", MD5, us1, external_id="1"),
                Row(1, "sha1", SHA1, us1, external_id="1"),
                Row(1, "pdq", PDQ, us1, external_id="1"),
            ),
        ),
        Entry(2, "2", (Row(2, "md5", MD5_B, us3, external_id="2"),)),
    ]
    assert [r for r in parsed if isinstance(r, Skipped)] == [
        Skipped(1, "alternative hash 'PhotoDNA' not supported")
    ]


def test_vics_region_and_category_filter() -> None:
    data = vics_json([_media(1, Category=1, MD5=MD5), _media(2, Category=0, MD5=MD5_B)])
    parsed = parse("vics", data, vics_region="UK", vics_categories=frozenset({1}))
    assert rows(parsed) == [
        Row(1, "md5", MD5, Classification(vics_category=1, vics_region="uk"), external_id="1")
    ]
    assert [r.reason for r in parsed if isinstance(r, Skipped)] == ["VICS category 0 not selected"]


def test_vics_bad_records_are_rejected_by_record_index() -> None:
    data = vics_json(
        [
            _media(1, Category=1, MD5="zz"),
            _media(2, Category="one", MD5=MD5),
            _media(3, Category=1),
            "not a record",  # type: ignore[list-item]
            _media(5, Category=1, MD5=MD5, SHA1="short"),
            _media(6, Category=-1, MD5=MD5),
        ]
    )
    parsed = parse("vics", data)
    assert [line for line, _ in rejected(parsed)] == [1, 2, 3, 4, 5, 6]
    # Record 5's good MD5 is kept, but its entry is not authoritative (a bad value must not
    # make an update remove what the bank already holds).
    (entry,) = [r for r in parsed if isinstance(r, Entry)]
    assert (entry.position, entry.authoritative) == (5, False)


def test_vics_record_without_media_id_gives_plain_rows() -> None:
    data = vics_json([{"Category": 2, "SHA1": SHA1}])
    assert parse("vics", data) == [
        Row(1, "sha1", SHA1, Classification(vics_category=2, vics_region="us"))
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "malformed JSON|ends too early"),
        (b"[1, 2]", "object with a 'value' array"),
        (b'{"odata.metadata": "x"}', "no top-level 'value'"),
        (b'{"value": [{"MD5": "' + MD5.encode() + b'"}]} trailing', "malformed JSON"),
        (b'{"value": [{"MD5": "' + MD5.encode() + b'"}, {"MD5": }]}', "after record 1"),
        (b"\xfe\xff\x00{", "UTF-16"),
        (b'{"value": ["\xff"]}', "malformed JSON"),
    ],
)
def test_vics_malformed_files(data: bytes, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse("vics", data)


def test_vics_hostile_numbers_do_not_hang_or_crash() -> None:
    huge_exponent = b'{"value": [{"MediaID": 1e999999999, "Category": 1e999999999, "MD5": "'
    parsed = parse("vics", huge_exponent + MD5.encode() + b'"}]}')
    assert [type(r) for r in parsed] == [Rejected]
    for number in (b"9" * 5000, b"1e99999999999999999999", b"1." + b"5" * 1200):
        data = b'{"value": [{"MediaID": ' + number + b', "MD5": "' + MD5.encode() + b'"}]}'
        with pytest.raises(ImportFileError, match=r"malformed JSON|longer than 1000 digits"):
            parse("vics", data)


def test_vics_oversized_record_is_malformed() -> None:
    data = b'{"value": [{"MD5": "' + MD5.encode() + b'", "Exifs": [' + b"0," * 200_000 + b"0]}]}"
    with pytest.raises(ImportFileError, match="JSON tokens"):
        parse("vics", data)


# --- hash-sharing XML ---------------------------------------------------------------------


def test_ncmec_entries_deletions_and_skipped_fingerprints() -> None:
    data = ncmec_xml(
        images=[
            ncmec_entry("img-1", [("md5", MD5.upper()), ("sha1", SHA1), ("pdna", "c3ludA==")]),
            ncmec_deleted("img-0"),
            ncmec_entry("img-2", [("pdq", PDQ)], classification="B2"),
        ],
        videos=[
            ncmec_entry("vid-1", [("md5", MD5_B), ("tmk-pdqf", "")], kind="video"),
            ncmec_deleted("vid-0", kind="video"),
        ],
    )
    parsed = parse("ncmec", data)
    a1 = Classification(industry=Industry.A1)
    member = "Synthetic Member"
    assert [r for r in parsed if not isinstance(r, Skipped)] == [
        Entry(
            1,
            "img-1",
            (
                Row(1, "md5", MD5, a1, external_id="img-1", member=member),
                Row(1, "sha1", SHA1, a1, external_id="img-1", member=member),
            ),
        ),
        Deletion(2, "img-0"),
        Entry(
            3,
            "img-2",
            (
                Row(
                    3,
                    "pdq",
                    PDQ,
                    Classification(industry=Industry.B2),
                    external_id="img-2",
                    member=member,
                ),
            ),
        ),
        Entry(4, "vid-1", (Row(4, "md5", MD5_B, a1, external_id="vid-1", member=member),)),
        Deletion(5, "vid-0"),
    ]
    skipped = [(r.position, r.reason) for r in parsed if isinstance(r, Skipped)]
    assert [position for position, _ in skipped] == [1, 4]
    assert "PhotoDNA" in skipped[0][1]
    assert "tmk-pdqf" in skipped[1][1]


def test_ncmec_entry_with_only_unsupported_fingerprints_empties_the_entry() -> None:
    parsed = parse("ncmec", ncmec_xml(images=[ncmec_entry("img-1", [("pdna", "c3ludA==")])]))
    assert [r for r in parsed if isinstance(r, Entry)] == [Entry(1, "img-1", ())]


def test_ncmec_bad_entries_are_rejected_by_index() -> None:
    data = ncmec_xml(
        images=[
            ncmec_entry("img-1", [("md5", "xyz")]),
            ncmec_entry("", [("md5", MD5)]),
            ncmec_entry("img-3", [("md5", MD5)], classification="A1;B1"),
            ncmec_entry("img-4", []),
            ncmec_entry("img-5", [("md5", MD5)]),
        ]
    )
    parsed = parse("ncmec", data)
    assert [line for line, _ in rejected(parsed)] == [1, 2, 3, 4]
    assert [r.external_id for r in parsed if isinstance(r, Entry)] == ["img-5"]


def test_ncmec_without_namespace_is_read_too() -> None:
    data = ncmec_xml(images=[ncmec_entry("img-1", [("md5", MD5)])]).replace(
        b' xmlns="https://hashsharing.ncmec.org/hashsharing/v2"', b""
    )
    assert [r.value for r in rows(parse("ncmec", data))] == [MD5]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<queryResult><images><image><id>&lol2;</id></image></images></queryResult>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE queryResult [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<queryResult><images><image><id>&xxe;</id></image></images></queryResult>"""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (BILLION_LAUGHS, "DTD"),
        (EXTERNAL_ENTITY, "DTD"),
        (b'<?xml version="1.0"?><!DOCTYPE queryResult><queryResult/>', "DTD"),
        (b"<report><images/></report>", "root element is <report>"),
        (b"<queryResult><images><image><id>x</id></images></queryResult>", "malformed XML"),
        (b"", "malformed XML"),
        (b"not xml at all", "malformed XML"),
    ],
)
def test_ncmec_malformed_and_hostile_files(data: bytes, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        parse("ncmec", data)


def test_ncmec_memory_is_released_entry_by_entry() -> None:
    # Many entries: the parser must not keep them in the tree (checked by the parser's
    # own behaviour: each entry element is removed from its parent once read).
    entries = [ncmec_entry(f"img-{i}", [("md5", rand_hex(RNG, "md5"))]) for i in range(3000)]
    parsed = parse("ncmec", ncmec_xml(images=entries))
    assert len(rows(parsed)) == 3000


# --- Properties ----------------------------------------------------------------------------

SIGNAL_TYPES = st.sampled_from(["md5", "sha1", "sha256", "pdq"])
SAFE_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00\u2028\u2029\x85"
    ),
    max_size=40,
).map(str.strip)
ID_TEXT = (
    st.text(
        alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_.:/ "),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
LABELS = st.lists(st.from_regex(r"[a-z][a-z0-9_-]{1,10}", fullmatch=True), max_size=3).filter(
    lambda labels: not any(re.fullmatch(r"[a-z][0-9]", label) for label in labels)
)
CLASSIFICATIONS = st.builds(
    lambda industry, uk, vics, labels: Classification(
        industry=industry,
        uk=uk,
        vics_category=None if vics is None else vics[0],
        vics_region=None if vics is None else vics[1],
        labels=tuple(labels),
    ),
    st.none() | st.sampled_from(list(Industry)),
    st.none() | st.sampled_from(list(UKCategory)),
    st.none() | st.tuples(st.integers(0, 99), st.sampled_from(["us", "ca", "uk"])),
    LABELS,
)


@st.composite
def hex_values(draw: st.DrawFn, signal_type: str) -> str:
    length = LENGTHS[signal_type]
    value = draw(st.text("0123456789abcdef", min_size=length, max_size=length))
    return value.upper() if draw(st.booleans()) else value


@st.composite
def csv_rows(draw: st.DrawFn) -> tuple[str, str, Classification, str, str]:
    signal_type = draw(SIGNAL_TYPES | st.just("vpdq"))
    if signal_type == "vpdq":
        value = rand_vpdq(random.Random(draw(st.integers(0, 2**32))), draw(st.integers(1, 4)))
    else:
        value = draw(hex_values(signal_type))
    return signal_type, value, draw(CLASSIFICATIONS), draw(SAFE_TEXT), draw(SAFE_TEXT)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(csv_rows(), max_size=12), st.sampled_from([",", "\t"]), st.booleans())
def test_property_csv_rows_parse_back_equal(
    items: list[tuple[str, str, Classification, str, str]], delimiter: str, bom: bool
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(COLUMNS[:5])
    for signal_type, value, classification, external_id, note in items:
        writer.writerow([signal_type, value, classification.to_text(), external_id, note])
    data = ("\ufeff" if bom else "").encode() + buffer.getvalue().encode()
    parsed = parse("tsv" if delimiter == "\t" else "csv", data, file_name="x")
    assert not rejected(parsed)
    assert [
        (r.signal_type, r.value, r.classification, r.external_id, r.note) for r in rows(parsed)
    ] == [(t, v.lower(), c, e or None, n or None) for t, v, c, e, n in items]


@given(st.lists(hex_values("sha1"), max_size=20), st.sampled_from(["\n", "\r\n"]))
def test_property_plain_values_parse_back_equal(values: list[str], newline: str) -> None:
    data = ("# synthetic" + newline + newline.join(values) + newline).encode()
    parsed = parse("plain", data, signal_type="sha1")
    assert [r.value for r in rows(parsed)] == [v.lower() for v in values]


@st.composite
def vics_records(draw: st.DrawFn) -> dict[str, Any]:
    record: dict[str, Any] = {"MediaID": draw(st.integers(1, 10**9))}
    if draw(st.booleans()):
        record["Category"] = draw(st.integers(0, 9))
    record["MD5"] = draw(hex_values("md5"))
    if draw(st.booleans()):
        record["SHA1"] = draw(hex_values("sha1"))
    if draw(st.booleans()):
        record["AlternativeHashes"] = [{"HashName": "PDQ", "HashValue": draw(hex_values("pdq"))}]
    return record


@given(st.lists(vics_records(), max_size=10), st.booleans(), st.booleans())
def test_property_vics_records_parse_back_equal(
    records: list[dict[str, Any]], case: bool, bom: bool
) -> None:
    parsed = parse("vics", vics_json(records, case=case, bom=bom), vics_region="ca")
    expected = []
    for index, record in enumerate(records, start=1):
        c = (
            Classification(vics_category=record["Category"], vics_region="ca")
            if "Category" in record
            else Classification()
        )
        values = [("md5", record["MD5"]), ("sha1", record.get("SHA1"))]
        values += [("pdq", h["HashValue"]) for h in record.get("AlternativeHashes", [])]
        found: dict[tuple[str, str], Row] = {}
        for signal_type, value in values:
            if value:
                key = (signal_type, value.lower())
                found.setdefault(
                    key, Row(index, signal_type, value.lower(), c, str(record["MediaID"]))
                )
        expected.append(Entry(index, str(record["MediaID"]), tuple(found.values())))
    assert parsed == expected


@st.composite
def ncmec_entries(draw: st.DrawFn) -> tuple[str, str | None, list[tuple[str, str]], bool]:
    entry_id = draw(st.from_regex(r"[A-Za-z0-9-]{1,20}", fullmatch=True))
    classification = draw(st.none() | st.sampled_from(["A1", "A2", "B1", "B2"]))
    fingerprint = SIGNAL_TYPES.flatmap(lambda t: st.tuples(st.just(t), hex_values(t)))
    prints = draw(st.lists(fingerprint, min_size=1, max_size=3))
    return entry_id, classification, prints, draw(st.booleans())


@given(st.lists(ncmec_entries(), max_size=8))
def test_property_ncmec_entries_parse_back_equal(
    entries: list[tuple[str, str | None, list[tuple[str, str]], bool]],
) -> None:
    xml = ncmec_xml(
        images=[
            ncmec_deleted(i) if deleted else ncmec_entry(i, p, classification=c)
            for i, c, p, deleted in entries
        ]
    )
    expected: list[Record] = []
    for index, (entry_id, classification, prints, deleted) in enumerate(entries, start=1):
        if deleted:
            expected.append(Deletion(index, entry_id))
            continue
        c = Classification(industry=None if classification is None else Industry(classification))
        found: dict[tuple[str, str], Row] = {}
        for signal_type, value in prints:
            found.setdefault(
                (signal_type, value.lower()),
                Row(index, signal_type, value.lower(), c, entry_id, member="Synthetic Member"),
            )
        expected.append(Entry(index, entry_id, tuple(found.values())))
    assert parse("ncmec", xml) == expected


FORMATS = ["csv", "tsv", "plain", "vics", "ncmec"]
_SEEDS = {
    "csv": b"signal_type,value,classification\nmd5," + MD5.encode() + b",A1\n",
    "tsv": b"signal_type\tvalue\nsha1\t" + SHA1.encode() + b"\n",
    "plain": MD5.encode() + b"\n# c\n",
    "vics": vics_json([{"MediaID": 1, "Category": 1, "MD5": MD5}]),
    "ncmec": ncmec_xml(images=[ncmec_entry("x", [("md5", MD5)]), ncmec_deleted("y")]),
}


def _only_documented_error(fmt: str, data: bytes) -> None:
    try:
        parsed = parse(fmt, data, signal_type="md5", file_name="x")
    except ImportFileError:
        return
    for record in parsed:
        assert isinstance(record, Row | Entry | Deletion | Rejected | Skipped)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=150)
@given(data=st.binary(max_size=400))
@example(data=b"\xef\xbb\xbf")
@example(data=b"{}")
@example(data=b'{"value": {}}')
@example(data=b'{"value": [[[[[]]]], {"Media": 5}, {"Media": [1, {"MD5": 5}]}]}')
@example(data=b"<queryResult><images><image/></images></queryResult>")
@example(data=b"signal_type,value\n\x00,\x00\n")
@example(data=b'<?xml version="1.0" encoding="U-TF-8"?><queryResult/>')
@example(data=b'<?xml version="1.0" encoding="UTF-16"?><queryResult/>')
def test_property_junk_raises_only_the_documented_error(fmt: str, data: bytes) -> None:
    _only_documented_error(fmt, data)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=150)
@given(data=st.data())
def test_property_damaged_files_raise_only_the_documented_error(
    fmt: str, data: st.DataObject
) -> None:
    seed = bytearray(_SEEDS[fmt])
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        position = data.draw(st.integers(0, max(len(seed) - 1, 0)))
        if action == "flip" and seed:
            seed[position] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del seed[position:]
        else:
            seed[position:position] = data.draw(st.binary(min_size=1, max_size=8))
    _only_documented_error(fmt, bytes(seed))


@given(st.text(max_size=200))
def test_property_junk_text_in_a_valid_csv_is_rejected_never_raised(junk: str) -> None:
    buffer = io.StringIO()
    # "\r\n" makes the writer quote a field holding either character.
    csv.writer(buffer, lineterminator="\r\n").writerows(
        [["signal_type", "value", "classification", "note"], [junk, junk, junk, junk]]
    )
    try:
        parsed = parse("csv", buffer.getvalue().encode("utf-8", "surrogatepass"), file_name="x")
    except ImportFileError:
        return  # e.g. NUL or lone surrogates: not a readable CSV
    assert len(parsed) <= 1
