"""The CyberTipline report and its file details, as frozen models.

Two documents go to the clearinghouse: a `<report>` (`POST submit`, answered with a report
id) and, for each uploaded file, a `<fileDetails>` (`POST fileinfo`). `Report` and
`FileDetails` are those documents; `vigil.reporting.xml` writes and reads them. Each field's
docstring names the XML element it becomes; the fields are declared in the document's order.

Where the documents come from: element names, their order, the enumerations and most length
limits follow the public documentation of the reporting API and the public clients written
against its schema. Where that record is silent, Vigil chose, and says so beside the field:

* Free text is limited to 3,000 characters unless documented otherwise (the documented limit
  of `escalateToHighPriority` and `additionalInfo`), must contain a character other than
  white space, and may hold only characters XML 1.0 can carry.
* Timestamps must carry an offset from UTC (a naive time is refused) that is a whole number of
  minutes within +-14:00 (what `xs:dateTime` can write). The offset given is kept, as a fixed
  offset: a named zone is reduced to the offset in force at that instant.
* IP addresses are IPv4 or IPv6 without a zone (`%eth0`), kept in their compressed form.
* Email addresses: an ASCII dot-atom local part of at most 64 characters and a host name of
  two or more labels, 254 characters in all (internationalised addresses are refused).
* Phone numbers: up to 50 of `0-9 + ( ) . / -` and space, with at least one digit.
* File hashes: `hashType` is a name such as MD5, SHA1, SHA256 or PDQ (letters, digits, `_`,
  `-`; up to 64), the value hex digits (up to 1,024). Opaque non-hex hashes are not sent.
* Annotations are sets: duplicates are dropped and they are kept in the documented order.

Left out of the models (Vigil does not send them): `batchedReport`, `internetDetails`,
`lawEnforcement`, `intendedRecipient` and `victim` in a report, and the finer parts of people
and accounts (addresses, several phones or emails, profile bio, estimated location,
associated accounts, the dates on `accountTemporarilyDisabled`...). Adding one means adding
it here, in `xml.py` and in the schemas under `schemas/`, in the documented order.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

__all__ = [
    "MAX_FREE_TEXT",
    "DeviceId",
    "FileAnnotation",
    "FileDetails",
    "FileHash",
    "FileMetadata",
    "FileRelevance",
    "IncidentSummary",
    "IncidentType",
    "IndustryClassification",
    "IpCaptureEvent",
    "IpEventName",
    "MetadataType",
    "NameValuePair",
    "Person",
    "PersonOrUserReported",
    "Report",
    "ReportAnnotation",
    "Reporter",
]

MAX_FREE_TEXT = 3000
"""Documented limit of `escalateToHighPriority` and `additionalInfo`; Vigil's limit of other
free text with no documented one."""

_MAX_OFFSET = timedelta(hours=14)
_XML_WHITESPACE = frozenset(" \t\r\n")
# Characters XML 1.0 cannot carry: C0 controls other than tab, LF and CR; lone surrogates;
# U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(
    rf"(?P<local>{_ATEXT}+(?:\.{_ATEXT}+)*)@(?:{_LABEL}\.)+[A-Za-z](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?"
)
_PHONE = re.compile(r"[0-9+()./ -]*[0-9][0-9+()./ -]*")


# --- value types -----------------------------------------------------------------------------


def _xml_text(value: str) -> str:
    bad = _NOT_XML.search(value)
    if bad:
        raise ValueError(f"holds U+{ord(bad.group()):04X}, a character XML cannot carry")
    if all(char in _XML_WHITESPACE for char in value):
        raise ValueError("is blank")
    return value


def _fixed_offset(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is None:  # pragma: no cover - AwareDatetime has refused it already
        raise ValueError("has no offset from UTC")
    if offset % timedelta(minutes=1) or abs(offset) > _MAX_OFFSET:
        raise ValueError(
            f"has the offset {offset}; XML needs a whole number of minutes within +-14:00"
        )
    zone = UTC if not offset else timezone(offset)
    return value.replace(tzinfo=zone, fold=0)


def _ip_address(value: str) -> str:
    if "%" in value:
        raise ValueError("is an IP address with a zone; give the address alone")
    try:
        return ipaddress.ip_address(value.strip()).compressed
    except ValueError:
        raise ValueError("is not an IPv4 or IPv6 address") from None


def _email(value: str) -> str:
    match = _EMAIL.fullmatch(value)
    if match is None or len(value) > 254 or len(match.group("local")) > 64:
        raise ValueError("is not an email address (ASCII, user@host.example)")
    return value


def _phone(value: str) -> str:
    if len(value) > 50 or _PHONE.fullmatch(value) is None:
        raise ValueError("is not a phone number (up to 50 of 0-9 + ( ) . / - and space)")
    return value


Text64 = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_xml_text)]
Text100 = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_xml_text)]
Text255 = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_xml_text)]
Text256 = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_xml_text)]
Text2056 = Annotated[str, Field(min_length=1, max_length=2056), AfterValidator(_xml_text)]
Text2083 = Annotated[str, Field(min_length=1, max_length=2083), AfterValidator(_xml_text)]
FreeText = Annotated[str, Field(min_length=1, max_length=MAX_FREE_TEXT), AfterValidator(_xml_text)]
Timestamp = Annotated[AwareDatetime, AfterValidator(_fixed_offset)]
IpAddressText = Annotated[str, AfterValidator(_ip_address)]
EmailAddress = Annotated[str, AfterValidator(_email)]
PhoneNumber = Annotated[str, AfterValidator(_phone)]
ClearinghouseId = Annotated[int, Field(ge=1, le=2**63 - 1)]
"""A report id (`xs:long`, positive)."""
Port = Annotated[int, Field(ge=0, le=65535)]
HashTypeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
HexDigits = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[0-9A-Fa-f]+$")]

FileRelevance = Literal["Reported", "Supplemental Reported"]
"""`fileRelevance`: the file is what is reported, or supplements what is reported."""
IndustryClassification = Literal["A1", "A2", "B1", "B2"]
"""`industryClassification`, the Industry Classification System: A = prepubescent minor,
B = pubescent minor; 1 = sex act, 2 = lascivious exhibition."""
MetadataType = Literal["EXIF", "HASH"]
"""The `type` attribute of `details`."""


class IncidentType(StrEnum):
    """`incidentType`: every value the reporting API documents, spelled exactly."""

    CHILD_PORNOGRAPHY = "Child Pornography (possession, manufacture, and distribution)"
    CHILD_SEX_TRAFFICKING = "Child Sex Trafficking"
    CHILD_SEX_TOURISM = "Child Sex Tourism"
    CHILD_SEXUAL_MOLESTATION = "Child Sexual Molestation"
    MISLEADING_DOMAIN_NAME = "Misleading Domain Name"
    MISLEADING_WORDS_OR_IMAGES = "Misleading Words or Digital Images on the Internet"
    ONLINE_ENTICEMENT = "Online Enticement of Children for Sexual Acts"
    UNSOLICITED_OBSCENE_MATERIAL = "Unsolicited Obscene Material Sent to a Child"


class ReportAnnotation(StrEnum):
    """The children of `reportAnnotations` (empty elements), in the documented order."""

    SEXTORTION = "sextortion"
    CSAM_SOLICITATION = "csamSolicitation"
    MINOR_TO_MINOR_INTERACTION = "minorToMinorInteraction"
    SPAM = "spam"
    SADISTIC_ONLINE_EXPLOITATION = "sadisticOnlineExploitation"
    """Documented after the first four; Vigil emits it like them."""


class FileAnnotation(StrEnum):
    """The children of `fileAnnotations` (empty elements), in the documented order (the same
    as `vigil.review.decisions.FILE_ANNOTATIONS`)."""

    ANIME_DRAWING_VIRTUAL_HENTAI = "animeDrawingVirtualHentai"
    POTENTIAL_MEME = "potentialMeme"
    VIRAL = "viral"
    POSSIBLE_SELF_PRODUCTION = "possibleSelfProduction"
    PHYSICAL_HARM = "physicalHarm"
    VIOLENCE_GORE = "violenceGore"
    BESTIALITY = "bestiality"
    LIVE_STREAMING = "liveStreaming"
    INFANT = "infant"
    GENERATIVE_AI = "generativeAi"


class IpEventName(StrEnum):
    """`eventName`: what the user was doing when the address (or device id) was recorded."""

    LOGIN = "Login"
    REGISTRATION = "Registration"
    PURCHASE = "Purchase"
    UPLOAD = "Upload"
    OTHER = "Other"
    UNKNOWN = "Unknown"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


# --- shared parts ----------------------------------------------------------------------------


class IpCaptureEvent(_Model):
    """`<ipCaptureEvent>`: an address the user acted from, what they did, and when."""

    ip_address: IpAddressText
    """`ipAddress`: IPv4 or IPv6, stored compressed (`2001:db8::1`)."""
    event_name: IpEventName
    """`eventName`."""
    date_time: Timestamp
    """`dateTime`: when the address was recorded."""
    possible_proxy: bool | None = None
    """`possibleProxy`: the provider has reason to believe the address is a proxy."""
    port: Port | None = None
    """`port`: the source port (0-65535); with carrier-grade NAT an address alone may not
    identify a subscriber."""


class DeviceId(_Model):
    """`<deviceId>`: an identifier of a device the user used."""

    id_type: Text255 | None = None
    """`idType`: e.g. IMEI, ICCID, SSID, an advertising id."""
    id_value: Text2083
    """`idValue`."""
    event_name: IpEventName | None = None
    """`eventName`: what the user was doing when the id was recorded."""
    date_time: Timestamp | None = None
    """`dateTime`: when the id was recorded."""


_E = TypeVar("_E", bound=StrEnum)


def _in_order(values: tuple[_E, ...], order: type[_E]) -> tuple[_E, ...]:
    given = set(values)
    return tuple(item for item in order if item in given)


# --- the report ------------------------------------------------------------------------------


class IncidentSummary(_Model):
    """`<incidentSummary>`: what happened and when."""

    incident_type: IncidentType
    """`incidentType`."""
    platform: Text256 | None = None
    """`platform`: the application or service where the content was found (up to 256)."""
    escalate_to_high_priority: FreeText | None = None
    """`escalateToHighPriority`: the reason the report needs urgent attention (e.g. a child in
    imminent danger), 1-3,000 characters. Free text, not a boolean: any text escalates."""
    report_annotations: tuple[ReportAnnotation, ...] = ()
    """`reportAnnotations`: one empty child element each, in the documented order."""
    incident_date_time: Timestamp
    """`incidentDateTime`."""
    incident_date_time_description: FreeText | None = None
    """`incidentDateTimeDescription`: what the time is (e.g. the upload time)."""

    @field_validator("report_annotations", mode="after")
    @classmethod
    def _annotations_in_order(
        cls, value: tuple[ReportAnnotation, ...]
    ) -> tuple[ReportAnnotation, ...]:
        return _in_order(value, ReportAnnotation)


class Person(_Model):
    """`<reportingPerson>` or `<contactPerson>`: the clearinghouse's person, reduced to a name,
    one phone and one email. XML order: firstName, lastName, phone, email."""

    first_name: Text100 | None = None
    """`firstName` (up to 100)."""
    last_name: Text100 | None = None
    """`lastName` (up to 100)."""
    email: EmailAddress | None = None
    """`email`: required for the reporting person."""
    phone: PhoneNumber | None = None
    """`phone` (written before `email`)."""


class Reporter(_Model):
    """`<reporter>`: who reports, and how law enforcement reaches the provider."""

    reporting_person: Person
    """`reportingPerson`: the person submitting; must have an email."""
    contact_person: Person | None = None
    """`contactPerson`: whom law enforcement should contact, if not the reporting person."""
    company_template: FreeText | None = None
    """`companyTemplate`: text the provider puts in every report: how to serve legal
    process, how long data is kept, a 24-hour emergency contact (Vigil's limit: 3,000)."""
    terms_of_service: FreeText | None = None
    """`termsOfService`: the terms relevant to the incident (Vigil's limit: 3,000)."""
    legal_url: Text2083 | None = None
    """`legalURL`: a page with more about the provider's legal process (up to 2,083)."""

    @field_validator("reporting_person", mode="after")
    @classmethod
    def _reporting_person_has_email(cls, value: Person) -> Person:
        if value.email is None:
            raise ValueError("the reporting person needs an email (reportingPerson/email)")
        return value


class PersonOrUserReported(_Model):
    """`<personOrUserReported>`: the account the report is about."""

    esp_identifier: Text255 | None = None
    """`espIdentifier`: the account's id at the provider (up to 255)."""
    screen_name: Text256 | None = None
    """`screenName` (up to 256)."""
    display_name: Text256 | None = None
    """`displayName` (up to 256; the clearinghouse allows several, Vigil sends one)."""
    profile_url: Text2083 | None = None
    """`profileUrl` (up to 2,083; the clearinghouse allows several, Vigil sends one)."""
    ip_capture_events: tuple[IpCaptureEvent, ...] = ()
    """`ipCaptureEvent`, one element each."""
    device_ids: tuple[DeviceId, ...] = ()
    """`deviceId`, one element each."""
    prior_ct_reports: tuple[ClearinghouseId, ...] = ()
    """`priorCTReports`, one element each: earlier CyberTipline report ids on this account."""
    account_temporarily_disabled: bool | None = None
    """`accountTemporarilyDisabled` (its date attributes are not sent)."""
    account_permanently_disabled: bool | None = None
    """`accountPermanentlyDisabled` (its date attributes are not sent)."""
    additional_info: FreeText | None = None
    """`additionalInfo` about the account."""


class Report(_Model):
    """`<report>`, the document of `POST submit`. XML order: incidentSummary, reporter,
    personOrUserReported, additionalInfo (the documented internetDetails and lawEnforcement
    would come before reporter, intendedRecipient and victim before additionalInfo)."""

    incident_summary: IncidentSummary
    """`incidentSummary`."""
    reporter: Reporter
    """`reporter`."""
    person_or_user_reported: PersonOrUserReported | None = None
    """`personOrUserReported`."""
    additional_info: FreeText | None = None
    """`additionalInfo`: anything the other elements do not hold (up to 3,000)."""


# --- file details ----------------------------------------------------------------------------


class FileHash(_Model):
    """`<originalFileHash hashType="...">value</originalFileHash>`: a hash of the file as the
    user uploaded it, before the provider changed it."""

    hash_type: HashTypeName
    """The `hashType` attribute: MD5, SHA1, SHA256, PDQ..."""
    value: HexDigits
    """The element's text: hex digits, as given (case is kept)."""


class NameValuePair(_Model):
    """`<nameValuePair>`: one item of file metadata."""

    name: Text64
    """`name` (Vigil's limit: 64)."""
    value: FreeText
    """`value` (Vigil's limit: 3,000)."""


class FileMetadata(_Model):
    """`<details type="EXIF">`: a group of file metadata (e.g. the EXIF fields read).

    The public record places the EXIF/HASH `type` on `details`; Vigil writes it there and
    leaves it out when not given."""

    metadata_type: MetadataType | None = None
    """The `type` attribute."""
    entries: tuple[NameValuePair, ...] = Field(min_length=1)
    """`nameValuePair`, one element each (at least one)."""


class FileDetails(_Model):
    """`<fileDetails>`, the document of `POST fileinfo` for one uploaded file."""

    report_id: ClearinghouseId
    """`reportId`: from `POST submit`."""
    file_id: Text255
    """`fileId`: from `POST upload`."""
    file_name: Text2056 | None = None
    """`fileName`: the name the file is sent under (up to 2,056)."""
    original_file_name: Text2056 | None = None
    """`originalFileName`: the name the user uploaded it under (up to 2,056)."""
    uploaded_to_esp_timestamp: Timestamp | None = None
    """`uploadedToEspTimestamp`: when the user uploaded it."""
    location_of_file: Text2083 | None = None
    """`locationOfFile`: where the file was (a URL; up to 2,083)."""
    file_viewed_by_esp: bool
    """`fileViewedByEsp`: a person at the provider viewed the whole file. Legally decisive:
    when false, an officer who opens the file without a warrant may exceed the private
    search. Required here (the clearinghouse makes it optional)."""
    exif_viewed_by_esp: bool
    """`exifViewedByEsp`: a person at the provider viewed the file's EXIF data. Required
    here."""
    publicly_available: bool | None = None
    """`publiclyAvailable`: the file was accessible to the public."""
    file_relevance: FileRelevance
    """`fileRelevance`. Required here (the clearinghouse defaults it to "Reported")."""
    file_annotations: tuple[FileAnnotation, ...] = ()
    """`fileAnnotations`: one empty child element each, in the documented order."""
    industry_classification: IndustryClassification | None = None
    """`industryClassification`: only for a "Reported" file."""
    original_file_hashes: tuple[FileHash, ...] = ()
    """`originalFileHash`, one element each."""
    ip_capture_event: IpCaptureEvent | None = None
    """`ipCaptureEvent`: the upload's address."""
    device_id: DeviceId | None = None
    """`deviceId`: the device the file was uploaded from (the clearinghouse allows several)."""
    details: tuple[FileMetadata, ...] = ()
    """`details`, one element each: file metadata as name/value pairs. (Structured, not a
    string: the public record gives `details` element content.)"""
    additional_info: FreeText | None = None
    """`additionalInfo` about the file (the clearinghouse allows several; Vigil sends one)."""

    @field_validator("file_annotations", mode="after")
    @classmethod
    def _annotations_in_order(cls, value: tuple[FileAnnotation, ...]) -> tuple[FileAnnotation, ...]:
        return _in_order(value, FileAnnotation)

    @model_validator(mode="after")
    def _supplemental_files_are_not_classified(self) -> FileDetails:
        # Documented by public clients of the API: the clearinghouse refuses these on a
        # supplemental file when the report is finished.
        if self.file_relevance == "Supplemental Reported":
            if self.industry_classification is not None:
                raise ValueError(
                    "industry_classification (industryClassification) is only for a"
                    ' "Reported" file, not a "Supplemental Reported" one'
                )
            if FileAnnotation.POTENTIAL_MEME in self.file_annotations:
                raise ValueError(
                    "the potentialMeme annotation is only for a"
                    ' "Reported" file, not a "Supplemental Reported" one'
                )
        return self
