"""CyberTipline XML: write, read and check `<report>` and `<fileDetails>` documents.

The reporting API is order-sensitive (an element out of place fails with 4100), so each
document is written from one table per element (`_Shape`) listing its children in the
documented order; the same tables read documents back. Writing: UTF-8 with an XML
declaration, booleans `true`/`false`, timestamps ISO 8601 with their offset
(`2026-11-20T09:00:00+00:00`), annotations as empty child elements
(`<fileAnnotations><viral/></fileAnnotations>`), absent values and empty lists left out.

Reading (`parse_*`, and `validate_*` which reads and discards) refuses, as `ReportInvalid`:

1. a document over `MAX_DOCUMENT_BYTES`, or one that declares a DTD or entities (first
   screened by defusedxml with DTDs forbidden, then parsed by lxml with entities left
   unresolved, no network, no DTD loading, comments and processing instructions dropped);
2. a document the schema under `schemas/` refuses (order, required elements, enumerations,
   lengths, timestamps without an offset...);
3. a document whose values the models refuse where XSD cannot say so (the exact IP address
   grammar, a local part of an email over 64 characters, a classified supplemental file...).

`ReportInvalid.field` is the XPath of the element at fault (`/report/incidentSummary/
incidentDateTime`; for a required element that is missing, the path it should have), and the
message begins with it.

`check_report`/`check_file_details` are what a sender calls before anything is sent: write,
read back and check, and compare the re-written document with the first.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any, Literal, TypeVar, cast

import defusedxml.ElementTree as DET  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException
from lxml import etree
from pydantic import BaseModel, ValidationError

from vigil.reporting.model import (
    DeviceId,
    FileAnnotation,
    FileDetails,
    FileHash,
    FileMetadata,
    IncidentSummary,
    IpCaptureEvent,
    NameValuePair,
    Person,
    PersonOrUserReported,
    Report,
    ReportAnnotation,
    Reporter,
)

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "ReportInvalid",
    "check_file_details",
    "check_report",
    "file_details_xml",
    "parse_file_details",
    "parse_report",
    "report_xml",
    "validate_file_details_xml",
    "validate_report_xml",
]

MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
"""Documents larger than this are refused unread."""

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


class ReportInvalid(ValueError):
    """A report or file-details document (or model) the clearinghouse would refuse.

    `field` is the XPath of the element at fault (None when the document as a whole is at
    fault: too large, not XML, a DTD); the message begins with it."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --- the documents' shapes -------------------------------------------------------------------

_Kind = Literal[
    "text",  # a child element holding the value as text (str or enum)
    "int",
    "bool",
    "datetime",
    "flags",  # a child element holding one empty element per item
    "child",  # a child element holding a model
    "children",  # one child element per item (models)
    "ints",  # one child element per item (integers)
    "attr",  # an attribute of this element
    "value",  # this element's own text
]
_ELEMENT_KINDS = frozenset(
    {"text", "int", "bool", "datetime", "flags", "child", "children", "ints"}
)


@dataclass(frozen=True)
class _Field:
    tag: str
    name: str
    kind: _Kind = "text"
    shape: _Shape | None = None
    flags: tuple[str, ...] = ()  # for "flags": the documented order of the flags


@dataclass(frozen=True)
class _Shape:
    model: type[BaseModel]
    fields: tuple[_Field, ...]

    def order(self) -> list[str]:
        return [field.tag for field in self.fields if field.kind in _ELEMENT_KINDS]


_IP_CAPTURE_EVENT = _Shape(
    IpCaptureEvent,
    (
        _Field("ipAddress", "ip_address"),
        _Field("eventName", "event_name"),
        _Field("dateTime", "date_time", "datetime"),
        _Field("possibleProxy", "possible_proxy", "bool"),
        _Field("port", "port", "int"),
    ),
)
_DEVICE_ID = _Shape(
    DeviceId,
    (
        _Field("idType", "id_type"),
        _Field("idValue", "id_value"),
        _Field("eventName", "event_name"),
        _Field("dateTime", "date_time", "datetime"),
    ),
)
_INCIDENT_SUMMARY = _Shape(
    IncidentSummary,
    (
        _Field("incidentType", "incident_type"),
        _Field("platform", "platform"),
        _Field("escalateToHighPriority", "escalate_to_high_priority"),
        _Field(
            "reportAnnotations",
            "report_annotations",
            "flags",
            flags=tuple(item.value for item in ReportAnnotation),
        ),
        _Field("incidentDateTime", "incident_date_time", "datetime"),
        _Field("incidentDateTimeDescription", "incident_date_time_description"),
    ),
)
_PERSON = _Shape(
    Person,
    (
        _Field("firstName", "first_name"),
        _Field("lastName", "last_name"),
        _Field("phone", "phone"),
        _Field("email", "email"),
    ),
)
_REPORTER = _Shape(
    Reporter,
    (
        _Field("reportingPerson", "reporting_person", "child", _PERSON),
        _Field("contactPerson", "contact_person", "child", _PERSON),
        _Field("companyTemplate", "company_template"),
        _Field("termsOfService", "terms_of_service"),
        _Field("legalURL", "legal_url"),
    ),
)
_PERSON_OR_USER_REPORTED = _Shape(
    PersonOrUserReported,
    (
        _Field("espIdentifier", "esp_identifier"),
        _Field("screenName", "screen_name"),
        _Field("displayName", "display_name"),
        _Field("profileUrl", "profile_url"),
        _Field("ipCaptureEvent", "ip_capture_events", "children", _IP_CAPTURE_EVENT),
        _Field("deviceId", "device_ids", "children", _DEVICE_ID),
        _Field("priorCTReports", "prior_ct_reports", "ints"),
        _Field("accountTemporarilyDisabled", "account_temporarily_disabled", "bool"),
        _Field("accountPermanentlyDisabled", "account_permanently_disabled", "bool"),
        _Field("additionalInfo", "additional_info"),
    ),
)
_REPORT = _Shape(
    Report,
    (
        _Field("incidentSummary", "incident_summary", "child", _INCIDENT_SUMMARY),
        _Field("reporter", "reporter", "child", _REPORTER),
        _Field(
            "personOrUserReported", "person_or_user_reported", "child", _PERSON_OR_USER_REPORTED
        ),
        _Field("additionalInfo", "additional_info"),
    ),
)
_FILE_HASH = _Shape(
    FileHash,
    (_Field("hashType", "hash_type", "attr"), _Field("", "value", "value")),
)
_NAME_VALUE_PAIR = _Shape(NameValuePair, (_Field("name", "name"), _Field("value", "value")))
_FILE_METADATA = _Shape(
    FileMetadata,
    (
        _Field("type", "metadata_type", "attr"),
        _Field("nameValuePair", "entries", "children", _NAME_VALUE_PAIR),
    ),
)
_FILE_DETAILS = _Shape(
    FileDetails,
    (
        _Field("reportId", "report_id", "int"),
        _Field("fileId", "file_id"),
        _Field("fileName", "file_name"),
        _Field("originalFileName", "original_file_name"),
        _Field("uploadedToEspTimestamp", "uploaded_to_esp_timestamp", "datetime"),
        _Field("locationOfFile", "location_of_file"),
        _Field("fileViewedByEsp", "file_viewed_by_esp", "bool"),
        _Field("exifViewedByEsp", "exif_viewed_by_esp", "bool"),
        _Field("publiclyAvailable", "publicly_available", "bool"),
        _Field("fileRelevance", "file_relevance"),
        _Field(
            "fileAnnotations",
            "file_annotations",
            "flags",
            flags=tuple(item.value for item in FileAnnotation),
        ),
        _Field("industryClassification", "industry_classification"),
        _Field("originalFileHash", "original_file_hashes", "children", _FILE_HASH),
        _Field("ipCaptureEvent", "ip_capture_event", "child", _IP_CAPTURE_EVENT),
        _Field("deviceId", "device_id", "child", _DEVICE_ID),
        _Field("details", "details", "children", _FILE_METADATA),
        _Field("additionalInfo", "additional_info"),
    ),
)


@dataclass(frozen=True)
class _Document:
    root: str
    shape: _Shape
    schema: str


_REPORT_DOCUMENT = _Document("report", _REPORT, "report.xsd")
_FILE_DETAILS_DOCUMENT = _Document("fileDetails", _FILE_DETAILS, "fileDetails.xsd")

# --- writing ---------------------------------------------------------------------------------


def report_xml(report: Report) -> bytes:
    """The `<report>` document of `report` (UTF-8, with an XML declaration)."""
    return _write(_REPORT_DOCUMENT, report)


def file_details_xml(details: FileDetails) -> bytes:
    """The `<fileDetails>` document of `details` (UTF-8, with an XML declaration)."""
    return _write(_FILE_DETAILS_DOCUMENT, details)


def _write(document: _Document, model: BaseModel) -> bytes:
    root = etree.Element(document.root)
    _fill(root, model, document.shape)
    return XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)


def _fill(element: etree._Element, model: BaseModel, shape: _Shape) -> None:
    for field in shape.fields:
        value = getattr(model, field.name)
        if value is None or value == ():
            continue
        if field.kind == "attr":
            element.set(field.tag, _lexical(value))
        elif field.kind == "value":
            element.text = _lexical(value)
        elif field.kind == "child":
            _fill(etree.SubElement(element, field.tag), value, _sub(field))
        elif field.kind == "children":
            for item in value:
                _fill(etree.SubElement(element, field.tag), item, _sub(field))
        elif field.kind == "flags":
            holder = etree.SubElement(element, field.tag)
            for item in value:
                etree.SubElement(holder, _lexical(item))
        elif field.kind == "ints":
            for item in value:
                etree.SubElement(element, field.tag).text = _lexical(item)
        else:
            etree.SubElement(element, field.tag).text = _lexical(value)


def _lexical(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()  # the models keep a fixed offset: +hh:mm, never naive
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _sub(field: _Field) -> _Shape:
    if field.shape is None:  # pragma: no cover - a table error
        raise AssertionError(f"{field.tag} has no shape")
    return field.shape


# --- reading ---------------------------------------------------------------------------------

_M = TypeVar("_M", bound=BaseModel)


def parse_report(data: bytes) -> Report:
    """Read a `<report>` document; raises `ReportInvalid` (see the module docstring)."""
    return _read_document(_REPORT_DOCUMENT, data, Report)


def parse_file_details(data: bytes) -> FileDetails:
    """Read a `<fileDetails>` document; raises `ReportInvalid` (see the module docstring)."""
    return _read_document(_FILE_DETAILS_DOCUMENT, data, FileDetails)


def validate_report_xml(data: bytes) -> None:
    """Raise `ReportInvalid`, naming the element, unless `data` is a valid `<report>`."""
    parse_report(data)


def validate_file_details_xml(data: bytes) -> None:
    """Raise `ReportInvalid`, naming the element, unless `data` is a valid `<fileDetails>`."""
    parse_file_details(data)


def check_report(report: Report) -> None:
    """Serialise `report` and check the document as the clearinghouse would; call it before
    anything is sent. Raises `ReportInvalid`."""
    _check(_REPORT_DOCUMENT, report, Report)


def check_file_details(details: FileDetails) -> None:
    """Serialise `details` and check the document; call it before it is sent."""
    _check(_FILE_DETAILS_DOCUMENT, details, FileDetails)


def _check(document: _Document, model: _M, model_type: type[_M]) -> None:
    data = _write(document, model)
    again = _write(document, _read_document(document, data, model_type))
    if again != data:  # pragma: no cover - a writer/reader mismatch: a bug, not bad input
        raise ReportInvalid(f"the <{document.root}> document does not read back as written")


def _read_document(document: _Document, data: bytes, model_type: type[_M]) -> _M:
    root = _safe_parse(data)
    _check_schema(root, document)
    model = _read(root, document.shape)
    if not isinstance(model, model_type):  # pragma: no cover - a table error
        raise AssertionError(f"{document.root} read as {type(model).__name__}")
    return model


def _safe_parse(data: bytes) -> etree._Element:
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ReportInvalid(
            f"the document is {len(data)} bytes; at most {MAX_DOCUMENT_BYTES} are read"
        )
    try:  # screen first: a DOCTYPE (so any entity declaration) is refused outright
        DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ReportInvalid("the document declares a DTD or entities, which is refused") from None
    except ET.ParseError as error:
        raise ReportInvalid(f"the document is not well-formed XML ({error})") from None
    except (LookupError, ValueError) as error:  # an unknown or unsupported encoding
        raise ReportInvalid(f"the document cannot be read ({error})") from None
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise ReportInvalid(f"the document is not well-formed XML ({error})") from None
    info = root.getroottree().docinfo
    if getattr(info, "doctype", "") or info.internalDTD is not None:  # doctype: not in stubs
        raise ReportInvalid("the document declares a DTD, which is refused")
    return root


_SCHEMA_LOCK = threading.Lock()


@cache
def _schema(name: str) -> etree.XMLSchema:
    text = resources.files("vigil.reporting").joinpath("schemas").joinpath(name).read_bytes()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.fromstring(text, parser))


def _check_schema(root: etree._Element, document: _Document) -> None:
    schema = _schema(document.schema)
    with _SCHEMA_LOCK:  # the schema's error log is shared state
        if schema.validate(root):
            return
        entries = list(cast(Iterable[Any], schema.error_log))
    first = entries[0]
    raise _schema_error(root, document, str(first.message), str(first.path or ""))


_EXPECTED = re.compile(r"Expected is (?:one of )?\( ([^)]*) \)")
_ATTRIBUTE = re.compile(r"attribute '([^']+)'")


def _schema_error(
    root: etree._Element, document: _Document, message: str, path: str
) -> ReportInvalid:
    """`ReportInvalid` for the schema's first complaint, with `field` the path of the element
    at fault. libxml2 lists what it expected next up to the next required element, so the
    last expected name is a required one."""
    if "No matching global declaration" in message:
        return ReportInvalid(
            f"/{root.tag}: the root element is <{root.tag}>, not <{document.root}>",
            f"/{root.tag}",
        )
    match = _EXPECTED.search(message)
    expected = [name.strip() for name in match.group(1).split(",")] if match else []
    field: str | None = path or None
    if "Missing child element" in message and expected:
        field = f"{path}/{expected[-1]}"
        message = f"<{expected[-1]}> is missing. {message}"
    elif "This element is not expected" in message:
        parent_path, _, step = path.rpartition("/")
        tag = step.split("[", 1)[0]
        wanted = expected[-1] if expected else ""
        order = _shape_at(document, parent_path) or []
        if tag not in order:
            message = f"<{tag}> has no place here. {message}"
        elif (
            wanted in order
            and order.index(wanted) < order.index(tag)
            and wanted not in _child_tags(root, parent_path)
        ):  # <tag> would fit if not for an absent element before it: a required one
            field = f"{parent_path}/{wanted}"
            message = f"<{wanted}> is missing. {message}"
        else:
            message = f"<{tag}> is out of order (or repeated). {message}"
    elif (attribute := _ATTRIBUTE.search(message)) is not None:
        field = f"{path}/@{attribute.group(1)}"
    return ReportInvalid(f"{field}: {message}" if field else message, field)


def _child_tags(root: etree._Element, path: str) -> list[str]:
    found = root.getroottree().xpath(path)
    if not isinstance(found, list) or not found or not isinstance(found[0], etree._Element):
        return []
    return [str(child.tag) for child in found[0]]


def _shape_at(document: _Document, path: str) -> list[str] | None:
    """The documented child order of the element at `path` (an XPath from libxml2)."""
    steps = [step.split("[", 1)[0] for step in path.split("/") if step]
    if not steps or steps[0] != document.root:
        return None
    shape = document.shape
    for index, step in enumerate(steps[1:], start=2):
        found = next((f for f in shape.fields if f.tag == step and f.kind in _ELEMENT_KINDS), None)
        if found is not None and found.kind == "flags" and index == len(steps):
            return list(found.flags)
        if found is None or found.shape is None:
            return None
        shape = found.shape
    return shape.order()


def _read(element: etree._Element, shape: _Shape) -> BaseModel:
    """The model of a schema-valid `element` (so: known children, in order, well-typed)."""
    tree = element.getroottree()
    data: dict[str, Any] = {}
    repeated: dict[str, list[Any]] = {}
    by_tag = {field.tag: field for field in shape.fields if field.kind in _ELEMENT_KINDS}
    for field in shape.fields:
        if field.kind == "attr" and (attribute := element.get(field.tag)) is not None:
            data[field.name] = attribute
        elif field.kind == "value":
            data[field.name] = element.text or ""
    for child in element:
        field = by_tag[str(child.tag)]
        text = child.text or ""
        if field.kind == "children":
            repeated.setdefault(field.name, []).append(_read(child, _sub(field)))
        elif field.kind == "ints":
            repeated.setdefault(field.name, []).append(int(text.strip()))
        elif field.kind == "child":
            data[field.name] = _read(child, _sub(field))
        elif field.kind == "flags":
            data[field.name] = tuple(str(flag.tag) for flag in child)
        elif field.kind == "bool":
            data[field.name] = text.strip() in ("true", "1")
        elif field.kind == "int":
            data[field.name] = int(text.strip())
        elif field.kind == "datetime":
            data[field.name] = _timestamp(text, tree.getpath(child))
        else:
            data[field.name] = text
    data.update((name, tuple(items)) for name, items in repeated.items())
    try:
        return shape.model(**data)
    except ValidationError as error:
        raise _model_error(error, shape, tree.getpath(element)) from None


def _timestamp(text: str, path: str) -> datetime:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise ReportInvalid(
            f"{path}: {text.strip()!r} is not a timestamp Vigil can read", path
        ) from None


def _model_error(error: ValidationError, shape: _Shape, path: str) -> ReportInvalid:
    first = error.errors()[0]
    location = first["loc"]
    fields = {field.name: field for field in shape.fields}
    field_path = path
    if location and isinstance(location[0], str) and location[0] in fields:
        field = fields[location[0]]
        if field.kind == "attr":
            field_path = f"{path}/@{field.tag}"
        elif field.kind != "value":
            field_path = f"{path}/{field.tag}"
            if field.kind in ("children", "ints") and len(location) > 1:
                field_path += f"[{int(location[1]) + 1}]"
    message = str(first["msg"]).removeprefix("Value error, ")
    return ReportInvalid(f"{field_path}: {message}", field_path)
