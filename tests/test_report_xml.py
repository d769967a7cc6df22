"""CyberTipline report XML (`vigil.reporting.model`, `vigil.reporting.xml`): the documented
element order, round trips of any valid model, and refusals (missing, misplaced, too long,
naive, unknown, hostile).

All data is invented: example.com names, 192.0.2.x / 2001:db8:: addresses, random text.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import ValidationError

from vigil.reporting.model import (
    DeviceId,
    FileAnnotation,
    FileDetails,
    FileHash,
    FileMetadata,
    IncidentSummary,
    IncidentType,
    IpCaptureEvent,
    IpEventName,
    NameValuePair,
    Person,
    PersonOrUserReported,
    Report,
    ReportAnnotation,
    Reporter,
)
from vigil.reporting.xml import (
    MAX_DOCUMENT_BYTES,
    ReportInvalid,
    check_file_details,
    check_report,
    file_details_xml,
    parse_file_details,
    parse_report,
    report_xml,
    validate_file_details_xml,
    validate_report_xml,
)

# The documented orders (DOMAIN.md, "Reporting ... CyberTipline reporting API").
REPORT_ORDER = [
    "incidentSummary",
    "internetDetails",
    "lawEnforcement",
    "reporter",
    "personOrUserReported",
    "intendedRecipient",
    "victim",
    "additionalInfo",
]
INCIDENT_SUMMARY_ORDER = [
    "incidentType",
    "platform",
    "escalateToHighPriority",
    "reportAnnotations",
    "incidentDateTime",
    "incidentDateTimeDescription",
]
REPORT_ANNOTATIONS_ORDER = ["sextortion", "csamSolicitation", "minorToMinorInteraction", "spam"]
REPORTER_ORDER = [
    "reportingPerson",
    "contactPerson",
    "companyTemplate",
    "termsOfService",
    "legalURL",
]
PERSON_OR_USER_REPORTED_ORDER = [
    "espIdentifier",
    "screenName",
    "displayName",
    "profileUrl",
    "ipCaptureEvent",
    "deviceId",
    "priorCTReports",
    "accountTemporarilyDisabled",
    "accountPermanentlyDisabled",
    "additionalInfo",
]
IP_CAPTURE_EVENT_ORDER = ["ipAddress", "eventName", "dateTime", "possibleProxy", "port"]
FILE_DETAILS_ORDER = [
    "reportId",
    "fileId",
    "fileName",
    "originalFileName",
    "uploadedToEspTimestamp",
    "locationOfFile",
    "fileViewedByEsp",
    "exifViewedByEsp",
    "publiclyAvailable",
    "fileRelevance",
    "fileAnnotations",
    "industryClassification",
    "originalFileHash",
    "ipCaptureEvent",
    "deviceId",
    "details",
    "additionalInfo",
]
FILE_ANNOTATIONS_ORDER = [
    "animeDrawingVirtualHentai",
    "potentialMeme",
    "viral",
    "possibleSelfProduction",
    "physicalHarm",
    "violenceGore",
    "bestiality",
    "liveStreaming",
    "infant",
    "generativeAi",
]

EST = timezone(timedelta(hours=-5))
IST = timezone(timedelta(hours=5, minutes=30))


def full_report() -> Report:
    return Report(
        incident_summary=IncidentSummary(
            incident_type=IncidentType.CHILD_PORNOGRAPHY,
            platform="Example Photos",
            escalate_to_high_priority="Reviewer believes a child is in imminent danger.",
            report_annotations=(ReportAnnotation.SPAM, ReportAnnotation.SEXTORTION),
            incident_date_time=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
            incident_date_time_description="Time of the upload.",
        ),
        reporter=Reporter(
            reporting_person=Person(
                first_name="Alex",
                last_name="Example",
                email="safety@example.com",
                phone="+1 555 0100",
            ),
            contact_person=Person(first_name="Sam", last_name="Example", email="le@example.com"),
            company_template="Serve legal process at legal@example.com; data kept 1 year.",
            terms_of_service="Section 4.2 of https://example.com/terms",
            legal_url="https://example.com/legal",
        ),
        person_or_user_reported=PersonOrUserReported(
            esp_identifier="u-1001",
            screen_name="user1001",
            display_name="User 1001",
            profile_url="https://example.com/u/1001",
            ip_capture_events=(
                IpCaptureEvent(
                    ip_address="192.0.2.10",
                    event_name=IpEventName.UPLOAD,
                    date_time=datetime(2026, 11, 20, 3, 59, tzinfo=EST),
                    possible_proxy=False,
                    port=443,
                ),
                IpCaptureEvent(
                    ip_address="2001:db8::1",
                    event_name=IpEventName.LOGIN,
                    date_time=datetime(2026, 11, 19, 22, 0, tzinfo=UTC),
                ),
            ),
            device_ids=(DeviceId(id_type="IDFA", id_value="0f3c9a7e-aaaa-4bbb-8ccc-000000000000"),),
            prior_ct_reports=(1111111, 2222222),
            account_temporarily_disabled=False,
            account_permanently_disabled=True,
            additional_info="Account created 2026-10-01.",
        ),
        additional_info="Found by hash match; confirmed by a reviewer.",
    )


def full_file_details() -> FileDetails:
    return FileDetails(
        report_id=1234567,
        file_id="a1b2c3d4",
        file_name="upload-0001.jpg",
        original_file_name="IMG_0001.jpg",
        uploaded_to_esp_timestamp=datetime(2026, 11, 20, 14, 29, tzinfo=IST),
        location_of_file="https://example.com/m/0001",
        file_viewed_by_esp=True,
        exif_viewed_by_esp=False,
        publicly_available=False,
        file_relevance="Reported",
        file_annotations=(FileAnnotation.VIRAL, FileAnnotation.ANIME_DRAWING_VIRTUAL_HENTAI),
        industry_classification="B2",
        original_file_hashes=(
            FileHash(hash_type="MD5", value="0123456789abcdef0123456789abcdef"),
            FileHash(hash_type="PDQ", value="ab" * 32),
        ),
        ip_capture_event=IpCaptureEvent(
            ip_address="192.0.2.10",
            event_name=IpEventName.UPLOAD,
            date_time=datetime(2026, 11, 20, 8, 59, tzinfo=UTC),
            port=50123,
        ),
        device_id=DeviceId(id_type="IMEI", id_value="000000000000000", event_name="Upload"),
        details=(
            FileMetadata(
                metadata_type="EXIF",
                entries=(
                    NameValuePair(name="Make", value="ExampleCam"),
                    NameValuePair(name="Model", value="X1"),
                ),
            ),
        ),
        additional_info="Posted to a public album.",
    )


def child_tags(element: etree._Element | None) -> list[str]:
    assert element is not None
    return [str(child.tag) for child in element]


def node(root: etree._Element, xpath: str) -> etree._Element:
    found = root.xpath(xpath)
    assert isinstance(found, list) and len(found) == 1
    assert isinstance(found[0], etree._Element)
    return found[0]


def child(parent: etree._Element, tag: str) -> etree._Element:
    found = parent.find(tag)
    assert found is not None
    return found


def in_documented_order(tags: list[str], order: list[str]) -> bool:
    """`tags` follow `order` (restricted to the tags present, repeats kept together)."""
    positions = [order.index(tag) for tag in tags]
    return positions == sorted(positions)


# --- golden: the documented order ------------------------------------------------------------


def test_full_report_is_in_the_documented_order() -> None:
    root = etree.fromstring(report_xml(full_report()))
    assert root.tag == "report"
    present = {"incidentSummary", "reporter", "personOrUserReported", "additionalInfo"}
    assert child_tags(root) == [tag for tag in REPORT_ORDER if tag in present]
    summary, reporter, account = root[0], root[1], root[2]
    assert child_tags(summary) == INCIDENT_SUMMARY_ORDER
    assert child_tags(summary.find("reportAnnotations")) == ["sextortion", "spam"]
    assert child_tags(reporter) == REPORTER_ORDER
    assert child_tags(reporter.find("reportingPerson")) == [
        "firstName",
        "lastName",
        "phone",
        "email",
    ]
    assert child_tags(account) == [
        "espIdentifier",
        "screenName",
        "displayName",
        "profileUrl",
        "ipCaptureEvent",
        "ipCaptureEvent",
        "deviceId",
        "priorCTReports",
        "priorCTReports",
        "accountTemporarilyDisabled",
        "accountPermanentlyDisabled",
        "additionalInfo",
    ]
    assert in_documented_order(child_tags(account), PERSON_OR_USER_REPORTED_ORDER)
    assert child_tags(account[4]) == IP_CAPTURE_EVENT_ORDER


def test_full_file_details_are_in_the_documented_order() -> None:
    root = etree.fromstring(file_details_xml(full_file_details()))
    assert root.tag == "fileDetails"
    tags = child_tags(root)
    assert in_documented_order(tags, FILE_DETAILS_ORDER)
    assert [tag for tag in FILE_DETAILS_ORDER if tag in tags] == FILE_DETAILS_ORDER
    assert tags.count("originalFileHash") == 2
    assert child_tags(root.find("fileAnnotations")) == ["animeDrawingVirtualHentai", "viral"]
    assert [h.get("hashType") for h in root.iter("originalFileHash")] == ["MD5", "PDQ"]
    details = root.find("details")
    assert details is not None and details.get("type") == "EXIF"
    assert child_tags(details[0]) == ["name", "value"]


def test_minimal_report_bytes() -> None:
    report = Report(
        incident_summary=IncidentSummary(
            incident_type="Online Enticement of Children for Sexual Acts",
            incident_date_time=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        ),
        reporter=Reporter(reporting_person=Person(email="safety@example.com")),
    )
    assert report_xml(report) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<report><incidentSummary>"
        b"<incidentType>Online Enticement of Children for Sexual Acts</incidentType>"
        b"<incidentDateTime>2026-11-20T09:00:00+00:00</incidentDateTime>"
        b"</incidentSummary><reporter><reportingPerson><email>safety@example.com</email>"
        b"</reportingPerson></reporter></report>"
    )


def test_file_details_format_booleans_timestamps_and_annotations() -> None:
    details = FileDetails(
        report_id=42,
        file_id="f1",
        uploaded_to_esp_timestamp=datetime(2026, 11, 20, 14, 30, tzinfo=IST),
        file_viewed_by_esp=False,
        exif_viewed_by_esp=True,
        file_relevance="Supplemental Reported",
        file_annotations=(FileAnnotation.VIRAL,),
    )
    assert file_details_xml(details) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<fileDetails><reportId>42</reportId><fileId>f1</fileId>"
        b"<uploadedToEspTimestamp>2026-11-20T14:30:00+05:30</uploadedToEspTimestamp>"
        b"<fileViewedByEsp>false</fileViewedByEsp><exifViewedByEsp>true</exifViewedByEsp>"
        b"<fileRelevance>Supplemental Reported</fileRelevance>"
        b"<fileAnnotations><viral/></fileAnnotations></fileDetails>"
    )


def test_enumerations_are_the_documented_ones() -> None:
    assert [a.value for a in FileAnnotation] == FILE_ANNOTATIONS_ORDER
    assert [a.value for a in ReportAnnotation][:4] == REPORT_ANNOTATIONS_ORDER
    assert {
        "Child Pornography (possession, manufacture, and distribution)",
        "Child Sex Trafficking",
        "Online Enticement of Children for Sexual Acts",
    } <= {t.value for t in IncidentType}
    assert [e.value for e in IpEventName] == [
        "Login",
        "Registration",
        "Purchase",
        "Upload",
        "Other",
        "Unknown",
    ]


def test_file_annotations_match_the_review_room() -> None:
    from vigil.review.decisions import FILE_ANNOTATIONS

    assert tuple(a.value for a in FileAnnotation) == FILE_ANNOTATIONS


def test_annotations_are_a_set_in_the_documented_order() -> None:
    summary = IncidentSummary(**_summary(report_annotations=("spam", "sextortion", "spam")))
    assert summary.report_annotations == (ReportAnnotation.SEXTORTION, ReportAnnotation.SPAM)
    details = FileDetails(**_file(file_annotations=("infant", "viral", "infant")))
    assert details.file_annotations == (FileAnnotation.VIRAL, FileAnnotation.INFANT)


def test_schemas_ship_inside_the_package() -> None:
    schemas = resources.files("vigil.reporting").joinpath("schemas")
    assert schemas.joinpath("report.xsd").is_file()
    assert schemas.joinpath("fileDetails.xsd").is_file()


def test_full_documents_check_and_round_trip() -> None:
    report, details = full_report(), full_file_details()
    check_report(report)
    check_file_details(details)
    assert parse_report(report_xml(report)) == report
    assert parse_file_details(file_details_xml(details)) == details


def test_a_given_offset_is_kept() -> None:
    report = full_report()
    data = report_xml(report)
    assert b"<dateTime>2026-11-20T03:59:00-05:00</dateTime>" in data
    parsed = parse_report(data)
    account = parsed.person_or_user_reported
    assert account is not None
    assert account.ip_capture_events[0].date_time.utcoffset() == timedelta(hours=-5)


def test_reading_accepts_other_lexical_forms() -> None:
    data = file_details_xml(full_file_details())
    data = data.replace(b"<fileViewedByEsp>true<", b"<fileViewedByEsp>1<")
    data = data.replace(b"<exifViewedByEsp>false<", b"<exifViewedByEsp>0<")
    data = data.replace(b"2026-11-20T08:59:00+00:00", b"2026-11-20T08:59:00Z")
    parsed = parse_file_details(data)
    assert parsed.file_viewed_by_esp is True and parsed.exif_viewed_by_esp is False
    assert parsed == full_file_details()


# --- property: any valid model round-trips ---------------------------------------------------

_NOT_XML = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r") + "\ufffe\uffff"
_XML_CHARS = st.characters(codec="utf-8", exclude_characters=_NOT_XML)


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(_XML_CHARS, min_size=1, max_size=max_size).filter(
        lambda s: any(c not in " \t\r\n" for c in s)
    )


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def tuples(strategy: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[Any]:
    return st.lists(strategy, max_size=max_size).map(tuple)


offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)
emails = st.emails(domains=st.sampled_from(["example.com", "mail.example.com"]))
phones = st.from_regex(r"\+?[0-9]{1,3}[ 0-9()./-]{0,20}", fullmatch=True)
ips = st.ip_addresses().map(str)
ids = st.integers(1, 2**63 - 1)
event_names = st.sampled_from(IpEventName)

ip_events = st.builds(
    IpCaptureEvent,
    ip_address=ips,
    event_name=event_names,
    date_time=timestamps,
    possible_proxy=optional(st.booleans()),
    port=optional(st.integers(0, 65535)),
)
device_ids = st.builds(
    DeviceId,
    id_type=optional(texts()),
    id_value=texts(),
    event_name=optional(event_names),
    date_time=optional(timestamps),
)
summaries = st.builds(
    IncidentSummary,
    incident_type=st.sampled_from(IncidentType),
    platform=optional(texts()),
    escalate_to_high_priority=optional(texts()),
    report_annotations=tuples(st.sampled_from(ReportAnnotation), max_size=6),
    incident_date_time=timestamps,
    incident_date_time_description=optional(texts()),
)


def people(email: st.SearchStrategy[Any]) -> st.SearchStrategy[Person]:
    return st.builds(
        Person,
        first_name=optional(texts()),
        last_name=optional(texts()),
        email=email,
        phone=optional(phones),
    )


reporters = st.builds(
    Reporter,
    reporting_person=people(emails),
    contact_person=optional(people(optional(emails))),
    company_template=optional(texts()),
    terms_of_service=optional(texts()),
    legal_url=optional(texts()),
)
accounts = st.builds(
    PersonOrUserReported,
    esp_identifier=optional(texts()),
    screen_name=optional(texts()),
    display_name=optional(texts()),
    profile_url=optional(texts()),
    ip_capture_events=tuples(ip_events),
    device_ids=tuples(device_ids),
    prior_ct_reports=tuples(ids),
    account_temporarily_disabled=optional(st.booleans()),
    account_permanently_disabled=optional(st.booleans()),
    additional_info=optional(texts()),
)
reports = st.builds(
    Report,
    incident_summary=summaries,
    reporter=reporters,
    person_or_user_reported=optional(accounts),
    additional_info=optional(texts()),
)

hashes = st.builds(
    FileHash,
    hash_type=st.sampled_from(["MD5", "SHA1", "SHA256", "PDQ"])
    | st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    value=st.text(string.hexdigits, min_size=1, max_size=128),
)
metadata = st.builds(
    FileMetadata,
    metadata_type=optional(st.sampled_from(["EXIF", "HASH"])),
    entries=st.lists(
        st.builds(NameValuePair, name=texts(), value=texts()), min_size=1, max_size=3
    ).map(tuple),
)


@st.composite
def file_details(draw: st.DrawFn) -> FileDetails:
    relevance = draw(st.sampled_from(["Reported", "Supplemental Reported"]))
    annotations = draw(tuples(st.sampled_from(FileAnnotation), max_size=10))
    classification = draw(optional(st.sampled_from(["A1", "A2", "B1", "B2"])))
    if relevance == "Supplemental Reported":  # only a reported file is classified
        annotations = tuple(a for a in annotations if a != FileAnnotation.POTENTIAL_MEME)
        classification = None
    return FileDetails(
        report_id=draw(ids),
        file_id=draw(texts()),
        file_name=draw(optional(texts())),
        original_file_name=draw(optional(texts())),
        uploaded_to_esp_timestamp=draw(optional(timestamps)),
        location_of_file=draw(optional(texts())),
        file_viewed_by_esp=draw(st.booleans()),
        exif_viewed_by_esp=draw(st.booleans()),
        publicly_available=draw(optional(st.booleans())),
        file_relevance=relevance,
        file_annotations=annotations,
        industry_classification=classification,
        original_file_hashes=draw(tuples(hashes)),
        ip_capture_event=draw(optional(ip_events)),
        device_id=draw(optional(device_ids)),
        details=draw(tuples(metadata, max_size=2)),
        additional_info=draw(optional(texts())),
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports)
def test_any_report_round_trips(report: Report) -> None:
    data = report_xml(report)
    validate_report_xml(data)
    assert parse_report(data) == report
    check_report(report)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file_details())
def test_any_file_details_round_trip(details: FileDetails) -> None:
    data = file_details_xml(details)
    validate_file_details_xml(data)
    assert parse_file_details(data) == details
    check_file_details(details)


@settings(max_examples=50, deadline=None)
@given(st.text(_XML_CHARS, min_size=2990, max_size=3000).filter(lambda s: s.strip(" \t\r\n")))
def test_free_text_up_to_the_limit_round_trips(text: str) -> None:
    report = Report(
        incident_summary=IncidentSummary(**_summary(escalate_to_high_priority=text)),
        reporter=full_report().reporter,
        additional_info=text,
    )
    assert parse_report(report_xml(report)) == report


# --- refusals: models ------------------------------------------------------------------------


def _summary(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "incident_type": IncidentType.CHILD_SEX_TRAFFICKING,
        "incident_date_time": datetime(2026, 11, 20, 9, tzinfo=UTC),
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


def _file(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "report_id": 1,
        "file_id": "f1",
        "file_viewed_by_esp": True,
        "exif_viewed_by_esp": False,
        "file_relevance": "Reported",
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


def _event(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ip_address": "192.0.2.1",
        "event_name": "Login",
        "date_time": datetime(2026, 11, 20, 9, tzinfo=UTC),
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not ...}


def _named(error: ValidationError) -> set[str]:
    return {str(part) for item in error.errors() for part in item["loc"]}


@pytest.mark.parametrize(
    ("model", "fields", "missing"),
    [
        (IncidentSummary, _summary(incident_type=...), "incident_type"),
        (IncidentSummary, _summary(incident_date_time=...), "incident_date_time"),
        (FileDetails, _file(report_id=...), "report_id"),
        (FileDetails, _file(file_id=...), "file_id"),
        (FileDetails, _file(file_viewed_by_esp=...), "file_viewed_by_esp"),
        (FileDetails, _file(exif_viewed_by_esp=...), "exif_viewed_by_esp"),
        (FileDetails, _file(file_relevance=...), "file_relevance"),
        (IpCaptureEvent, _event(ip_address=...), "ip_address"),
        (IpCaptureEvent, _event(event_name=...), "event_name"),
        (IpCaptureEvent, _event(date_time=...), "date_time"),
        (DeviceId, {"id_type": "IMEI"}, "id_value"),
        (FileHash, {"value": "00"}, "hash_type"),
        (Report, {"incident_summary": IncidentSummary(**_summary())}, "reporter"),
        (Reporter, {}, "reporting_person"),
    ],
)
def test_a_missing_required_field_is_named(
    model: type[Any], fields: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model(**fields)
    assert missing in _named(caught.value)


def test_the_reporting_person_needs_an_email() -> None:
    with pytest.raises(ValidationError, match="email"):
        Reporter(reporting_person=Person(first_name="Alex"))
    Reporter(reporting_person=Person(email="safety@example.com"), contact_person=Person())


def test_escalation_is_at_most_3000_characters() -> None:
    IncidentSummary(**_summary(escalate_to_high_priority="x" * 3000))
    with pytest.raises(ValidationError) as caught:
        IncidentSummary(**_summary(escalate_to_high_priority="x" * 3001))
    assert "escalate_to_high_priority" in _named(caught.value)


@pytest.mark.parametrize("text", ["", " \t\r\n", "bell\x07", "nul\x00"])
def test_blank_or_unxml_text_is_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="platform"):
        IncidentSummary(**_summary(platform=text))


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        IncidentSummary(**_summary(incident_date_time=datetime(2026, 11, 20, 9)))
    assert "incident_date_time" in _named(caught.value)
    with pytest.raises(ValidationError):
        IpCaptureEvent(**_event(date_time=datetime(2026, 11, 20, 9)))
    with pytest.raises(ValidationError):
        FileDetails(**_file(uploaded_to_esp_timestamp=datetime(2026, 11, 20, 9)))


def test_an_offset_xml_cannot_write_is_refused() -> None:
    odd = timezone(timedelta(hours=1, seconds=30))
    with pytest.raises(ValidationError, match="offset"):
        IncidentSummary(**_summary(incident_date_time=datetime(2026, 11, 20, 9, tzinfo=odd)))


@pytest.mark.parametrize(
    ("model", "fields", "field"),
    [
        (IncidentSummary, _summary(incident_type="Child Abuse"), "incident_type"),
        (IncidentSummary, _summary(report_annotations=("urgent",)), "report_annotations"),
        (IpCaptureEvent, _event(event_name="Logout"), "event_name"),
        (FileDetails, _file(file_relevance="Maybe"), "file_relevance"),
        (FileDetails, _file(industry_classification="C1"), "industry_classification"),
        (FileDetails, _file(file_annotations=("cute",)), "file_annotations"),
        (FileMetadata, {"metadata_type": "XMP", "entries": ()}, "metadata_type"),
    ],
)
def test_an_unknown_enumeration_value_is_refused(
    model: type[Any], fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        model(**fields)
    assert field in _named(caught.value)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (_event(ip_address="192.0.2.256"), "ip_address"),
        (_event(ip_address="fe80::1%eth0"), "ip_address"),
        (_event(ip_address="example.com"), "ip_address"),
        (_event(port=65536), "port"),
        (_event(port=-1), "port"),
    ],
)
def test_bad_addresses_and_ports_are_refused(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        IpCaptureEvent(**fields)
    assert field in _named(caught.value)


def test_addresses_are_kept_compressed() -> None:
    event = IpCaptureEvent(**_event(ip_address="2001:DB8:0:0:0:0:0:0001"))
    assert event.ip_address == "2001:db8::1"


@pytest.mark.parametrize(
    "email", ["safety", "safety@", "@example.com", "a b@example.com", "a@example", "a@-x.com"]
)
def test_bad_emails_are_refused(email: str) -> None:
    with pytest.raises(ValidationError, match="email"):
        Person(email=email)


@pytest.mark.parametrize(("kind", "value"), [("MD5", "xyz"), ("MD 5", "00"), ("MD5", "")])
def test_bad_hashes_are_refused(kind: str, value: str) -> None:
    with pytest.raises(ValidationError):
        FileHash(hash_type=kind, value=value)


def test_a_supplemental_file_is_not_classified() -> None:
    FileDetails(**_file(industry_classification="A1"))
    with pytest.raises(ValidationError, match="industryClassification"):
        FileDetails(**_file(file_relevance="Supplemental Reported", industry_classification="A1"))
    with pytest.raises(ValidationError, match="potentialMeme"):
        FileDetails(
            **_file(file_relevance="Supplemental Reported", file_annotations=("potentialMeme",))
        )


def test_models_are_frozen_and_closed() -> None:
    report = full_report()
    with pytest.raises(ValidationError):
        report.additional_info = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        Person(email="safety@example.com", middle_name="X")  # type: ignore[call-arg]


# --- refusals: documents ---------------------------------------------------------------------


def _without(data: bytes, xpath: str, attribute: str | None = None) -> bytes:
    root = etree.fromstring(data)
    target = node(root, xpath)
    parent = target.getparent()
    assert parent is not None
    if attribute is not None:
        del target.attrib[attribute]
    else:
        parent.remove(target)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


REPORT_REQUIRED = [
    ("/report/incidentSummary/incidentType", "/report/incidentSummary/incidentType"),
    ("/report/incidentSummary/incidentDateTime", "/report/incidentSummary/incidentDateTime"),
    ("/report/incidentSummary", "/report/incidentSummary"),
    ("/report/reporter", "/report/reporter"),
    ("/report/reporter/reportingPerson", "/report/reporter/reportingPerson"),
    ("/report/reporter/reportingPerson/email", "/report/reporter/reportingPerson/email"),
    (
        "/report/personOrUserReported/ipCaptureEvent[1]/ipAddress",
        "/report/personOrUserReported/ipCaptureEvent[1]/ipAddress",
    ),
    (
        "/report/personOrUserReported/ipCaptureEvent[2]/eventName",
        "/report/personOrUserReported/ipCaptureEvent[2]/eventName",
    ),
    (
        "/report/personOrUserReported/ipCaptureEvent[2]/dateTime",
        "/report/personOrUserReported/ipCaptureEvent[2]/dateTime",
    ),
    (
        "/report/personOrUserReported/deviceId/idValue",
        "/report/personOrUserReported/deviceId/idValue",
    ),
]


@pytest.mark.parametrize(("xpath", "field"), REPORT_REQUIRED)
def test_a_report_missing_a_required_element_is_refused(xpath: str, field: str) -> None:
    data = _without(report_xml(full_report()), xpath)
    with pytest.raises(ReportInvalid) as caught:
        validate_report_xml(data)
    assert caught.value.field == field
    assert field.rsplit("/", 1)[-1].split("[")[0] in str(caught.value)
    with pytest.raises(ReportInvalid):
        parse_report(data)


FILE_REQUIRED = [
    "reportId",
    "fileId",
    "fileViewedByEsp",
    "exifViewedByEsp",
    "fileRelevance",
    "ipCaptureEvent/ipAddress",
    "deviceId/idValue",
    "details/nameValuePair[1]/name",
    "details/nameValuePair[2]/value",
]


@pytest.mark.parametrize("element", FILE_REQUIRED)
def test_file_details_missing_a_required_element_are_refused(element: str) -> None:
    data = _without(file_details_xml(full_file_details()), f"/fileDetails/{element}")
    with pytest.raises(ReportInvalid) as caught:
        validate_file_details_xml(data)
    assert caught.value.field == f"/fileDetails/{element}"
    assert element.rsplit("/", 1)[-1].split("[")[0] in str(caught.value)


def test_a_hash_without_its_type_is_refused() -> None:
    data = _without(
        file_details_xml(full_file_details()), "/fileDetails/originalFileHash[2]", "hashType"
    )
    with pytest.raises(ReportInvalid, match="hashType") as caught:
        validate_file_details_xml(data)
    assert caught.value.field == "/fileDetails/originalFileHash[2]/@hashType"


def _swap(data: bytes, parent: str, first: str, second: str) -> bytes:
    root = etree.fromstring(data)
    holder = node(root, parent)
    a, b = child(holder, first), child(holder, second)
    ia, ib = holder.index(a), holder.index(b)
    holder.remove(b)
    holder.insert(ia, b)
    assert holder.index(a) == ia + 1 and ib > ia
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.mark.parametrize(
    ("parent", "first", "second", "field"),
    [
        ("/report", "incidentSummary", "reporter", "/report/reporter"),
        (
            "/report/incidentSummary",
            "incidentType",
            "platform",
            "/report/incidentSummary/platform",
        ),
        (
            "/report/incidentSummary",
            "reportAnnotations",
            "incidentDateTime",
            "/report/incidentSummary/reportAnnotations",
        ),
        (
            "/report/reporter/reportingPerson",
            "phone",
            "email",
            "/report/reporter/reportingPerson/phone",
        ),
        (
            "/report/personOrUserReported",
            "espIdentifier",
            "screenName",
            "/report/personOrUserReported/espIdentifier",
        ),
        (
            "/report/personOrUserReported",
            "deviceId",
            "priorCTReports",
            "/report/personOrUserReported/deviceId",
        ),
    ],
)
def test_a_report_out_of_order_is_refused(parent: str, first: str, second: str, field: str) -> None:
    data = _swap(report_xml(full_report()), parent, first, second)
    with pytest.raises(ReportInvalid) as caught:
        validate_report_xml(data)
    assert caught.value.field == field
    assert "order" in str(caught.value)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("fileViewedByEsp", "exifViewedByEsp"),
        ("reportId", "fileId"),
        ("fileAnnotations", "industryClassification"),
        ("details", "additionalInfo"),
    ],
)
def test_file_details_out_of_order_are_refused(first: str, second: str) -> None:
    data = _swap(file_details_xml(full_file_details()), "/fileDetails", first, second)
    with pytest.raises(ReportInvalid) as caught:
        validate_file_details_xml(data)
    assert caught.value.field is not None
    assert caught.value.field.rsplit("/", 1)[-1] in (first, second)


def test_annotations_out_of_order_are_refused() -> None:
    data = report_xml(full_report()).replace(
        b"<reportAnnotations><sextortion/><spam/>", b"<reportAnnotations><spam/><sextortion/>"
    )
    with pytest.raises(ReportInvalid, match="out of order") as caught:
        validate_report_xml(data)
    assert caught.value.field == "/report/incidentSummary/reportAnnotations/sextortion"


PLATFORM = b"<platform>Example Photos</platform>"
DESCRIPTION = b"<incidentDateTimeDescription>"


@pytest.mark.parametrize(
    ("edits", "field"),
    [
        (  # an optional element moved later
            [(PLATFORM, b""), (DESCRIPTION, PLATFORM + DESCRIPTION)],
            "/report/incidentSummary/platform",
        ),
        ([(PLATFORM, PLATFORM + PLATFORM)], "/report/incidentSummary/platform[2]"),  # repeated
        (  # moved to the end
            [(PLATFORM, b""), (b"</incidentSummary>", PLATFORM + b"</incidentSummary>")],
            "/report/incidentSummary/platform",
        ),
    ],
)
def test_misplaced_optional_elements_are_named(
    edits: list[tuple[bytes, bytes]], field: str
) -> None:
    data = report_xml(full_report())
    for old, new in edits:
        assert old in data
        data = data.replace(old, new, 1)
    with pytest.raises(ReportInvalid, match="out of order") as caught:
        validate_report_xml(data)
    assert caught.value.field == field


def test_an_escalation_of_3001_characters_is_refused_in_a_document() -> None:
    data = report_xml(full_report()).replace(
        b"Reviewer believes a child is in imminent danger.", b"x" * 3001
    )
    with pytest.raises(ReportInvalid, match="escalateToHighPriority") as caught:
        validate_report_xml(data)
    assert caught.value.field == "/report/incidentSummary/escalateToHighPriority"
    validate_report_xml(data.replace(b"x" * 3001, b"x" * 3000))


@pytest.mark.parametrize(
    "naive", [b"2026-11-20T09:00:00", b"2026-11-20T09:00:00.5", b"2026-11-20 09:00:00+00:00"]
)
def test_a_timestamp_without_an_offset_is_refused_in_a_document(naive: bytes) -> None:
    data = report_xml(full_report()).replace(b"2026-11-20T09:00:00+00:00", naive)
    with pytest.raises(ReportInvalid) as caught:
        validate_report_xml(data)
    assert caught.value.field == "/report/incidentSummary/incidentDateTime"


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (
            b"Child Pornography (possession, manufacture, and distribution)",
            b"Child Abuse",
            "/report/incidentSummary/incidentType",
        ),
        (
            b"<eventName>Upload</eventName>",
            b"<eventName>Logout</eventName>",
            "/report/personOrUserReported/ipCaptureEvent[1]/eventName",
        ),
        (
            b"<spam/>",
            b"<urgent/>",
            "/report/incidentSummary/reportAnnotations/urgent",
        ),
        (
            b"<accountPermanentlyDisabled>true<",
            b"<accountPermanentlyDisabled>yes<",
            "/report/personOrUserReported/accountPermanentlyDisabled",
        ),
        (
            b"<port>443</port>",
            b"<port>70000</port>",
            "/report/personOrUserReported/ipCaptureEvent[1]/port",
        ),
        (
            b"<ipAddress>192.0.2.10</ipAddress>",
            b"<ipAddress>192.0.2.300</ipAddress>",
            "/report/personOrUserReported/ipCaptureEvent[1]/ipAddress",
        ),
        (
            b"<email>safety@example.com</email>",
            b"<email>safety at example.com</email>",
            "/report/reporter/reportingPerson/email",
        ),
        (b"<platform>Example Photos<", b"<platform>  <", "/report/incidentSummary/platform"),
        (b"<internetDetails/>", b"", "/report/internetDetails"),
    ],
)
def test_bad_values_in_a_report_are_refused(old: bytes, new: bytes, field: str) -> None:
    data = report_xml(full_report())
    if old == b"<internetDetails/>":  # an element Vigil's schema has no place for
        data = data.replace(b"<reporter>", b"<internetDetails/><reporter>")
    else:
        assert old in data
        data = data.replace(old, new, 1)
    with pytest.raises(ReportInvalid) as caught:
        validate_report_xml(data)
    assert caught.value.field == field
    assert field.rsplit("/", 1)[-1].split("[")[0] in str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        (b"<fileRelevance>Reported<", b"<fileRelevance>Maybe<", "/fileDetails/fileRelevance"),
        (
            b"<industryClassification>B2<",
            b"<industryClassification>C1<",
            "/fileDetails/industryClassification",
        ),
        (b"<viral/>", b"<viral>true</viral>", "/fileDetails/fileAnnotations/viral"),
        (b'hashType="PDQ">abab', b'hashType="PDQ">zzab', "/fileDetails/originalFileHash[2]"),
        (b'<details type="EXIF">', b'<details type="XMP">', "/fileDetails/details/@type"),
        (
            b"<fileRelevance>Reported<",
            b"<fileRelevance>Supplemental Reported<",
            "/fileDetails",
        ),
        (b"<reportId>1234567<", b"<reportId>0<", "/fileDetails/reportId"),
    ],
)
def test_bad_values_in_file_details_are_refused(old: bytes, new: bytes, field: str) -> None:
    data = file_details_xml(full_file_details())
    assert old in data
    with pytest.raises(ReportInvalid) as caught:
        validate_file_details_xml(data.replace(old, new, 1))
    assert caught.value.field == field


def test_a_document_of_the_other_kind_is_refused() -> None:
    with pytest.raises(ReportInvalid, match="fileDetails") as caught:
        validate_report_xml(file_details_xml(full_file_details()))
    assert caught.value.field == "/fileDetails"
    with pytest.raises(ReportInvalid, match="report"):
        parse_file_details(report_xml(full_report()))


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE report [
  <!ENTITY a "aaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<report><additionalInfo>&d;</additionalInfo></report>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE report [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<report><additionalInfo>&x;</additionalInfo></report>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE report SYSTEM "http://example.com/report.dtd">
<report/>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE fileDetails [<!ENTITY % p SYSTEM "http://example.com/p.dtd"> %p;]>
<fileDetails/>"""


@pytest.mark.parametrize(
    "document", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, PARAMETER_ENTITY]
)
@pytest.mark.parametrize(
    "reader", [parse_report, parse_file_details, validate_report_xml, validate_file_details_xml]
)
def test_hostile_documents_are_refused(document: bytes, reader: Any) -> None:
    with pytest.raises(ReportInvalid, match="DTD") as caught:
        reader(document)
    assert caught.value.field is None


@pytest.mark.parametrize(
    "document",
    [b"", b"not xml", b"<report>", b"<report></reporter>", b"\xff\xfe<\x00r\x00"],
)
def test_malformed_documents_are_refused(document: bytes) -> None:
    with pytest.raises(ReportInvalid):
        parse_report(document)


def test_an_oversized_document_is_refused_unread() -> None:
    data = b"<report>" + b" " * MAX_DOCUMENT_BYTES + b"</report>"
    with pytest.raises(ReportInvalid, match="bytes"):
        parse_report(data)


def test_comments_and_processing_instructions_are_ignored() -> None:
    data = report_xml(full_report()).replace(
        b"<platform>Example Photos</platform>",
        b"<platform>Example<!-- a note --> Photos</platform><?pi data?>",
    )
    assert parse_report(data) == full_report()
