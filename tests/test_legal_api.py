"""`/v1/legal`: filing legal process from a legal team's own tools (`legal` scope), its
validation, and the requests, dashboard and answer times read back. Both databases.

The document is a benign PDF stub; every account and agency is made up."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from api_helpers import Api
from legal_helpers import PDF
from vigil.legal.intake import MAX_DOCUMENT_BYTES
from vigil.store import LegalRequest, VaultItem, utcnow
from vigil.vault import open_vault
from vigil.vault.items import open_item

pytestmark = pytest.mark.usefixtures("cheap_passwords")

ACCOUNT = "acct-api-1"
ROUTES = [
    ("post", "/v1/legal/requests"),
    ("get", "/v1/legal/requests"),
    ("get", "/v1/legal/requests/LR-000001"),
    ("get", "/v1/legal/dashboard"),
    ("get", "/v1/legal/stats"),
]


def body(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "subpoena",
        "requester_name": "Sgt. Example",
        "requester_email": "sgt@police.example.gov",
        "agency": "Example County Police",
        "case_number": "CASE-1",
        "records_from": "2026-01-01T00:00:00Z",
        "records_to": "2026-06-30T23:59:59Z",
        "targets": [{"kind": "account", "value": ACCOUNT}],
        **fields,
    }


def post(api: Api, payload: dict[str, Any], scope: str = "legal") -> Any:
    return api.client.post("/v1/legal/requests", json=payload, headers=api.auth(scope))


def filed(api: Api, **fields: Any) -> dict[str, Any]:
    response = post(api, body(**fields))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_the_routes_need_a_legal_token(api: Api, method: str, path: str) -> None:
    kwargs: dict[str, Any] = {"json": body()} if method == "post" else {}
    response = getattr(api.client, method)(path, **kwargs)
    assert response.status_code == 401
    for scope in ("match", "curate", "hash"):
        refused = getattr(api.client, method)(path, headers=api.auth(scope), **kwargs)
        assert refused.status_code == 403
        assert refused.json()["detail"] == "this token lacks the 'legal' scope"
    admin = getattr(api.client, method)(path, headers=api.auth("admin"), **kwargs)
    assert admin.status_code in (200, 201, 404)


def test_filing_with_a_pdf_seals_the_document_and_links_the_targets(api: Api) -> None:
    encoded = base64.b64encode(PDF).decode("ascii")
    result = filed(
        api,
        document_pdf_base64=encoded,
        targets=[{"kind": "account", "value": ACCOUNT}, {"kind": "hash", "value": "ab" * 32}],
        return_date="2099-01-01T00:00:00+02:00",
    )
    assert result["number"] == "LR-000001"
    assert (result["kind"], result["status"], result["channel"]) == ("subpoena", "received", "api")
    assert result["created_by"] == f"token:{api.settings.home.name}-legal"
    assert datetime.fromisoformat(result["due_at"]) > utcnow()
    assert {"unlisted_domain", "first_request", "unresolved"} <= set(result["signals"])
    assert [(t["kind"], t["account_id"], t["linked"]) for t in result["targets"]] == [
        ("account", ACCOUNT, {"uploads": 0, "reports": [], "vault_items": 0}),
        ("hash", None, {}),
    ]
    assert result["missing"] == ["identity", "document", "jurisdiction", "dates"]
    assert result["productions"] == []
    with api.database.session() as session:
        request = session.get(LegalRequest, result["id"])
        assert request is not None and request.document_item_id == result["document_item_id"]
        item = session.get(VaultItem, request.document_item_id)
        assert item is not None
        assert (item.kind, item.media_type) == ("document", "application/pdf")
        assert open_item(open_vault(api.settings), item) == PDF
        assert request.return_date == datetime(2098, 12, 31, 22, 0, tzinfo=UTC)


def test_a_nondisclosure_order_names_its_parent(api: Api) -> None:
    parent = filed(api)
    order = filed(
        api,
        kind="nondisclosure",
        targets=[],
        parent=parent["number"],
        nondisclosure_until="2099-01-01T00:00:00Z",
    )
    assert order["parent"] == parent["number"]
    assert [t["account_id"] for t in order["targets"]] == [ACCOUNT]
    by_id = filed(api, kind="nondisclosure", targets=[], parent=parent["id"])
    assert by_id["parent"] == parent["number"]


def _detail(response: Any) -> str:
    detail = response.json()["detail"]
    return detail if isinstance(detail, str) else " ".join(d["msg"] for d in detail)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "parking_ticket"}, "Input should be"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"targets": [{"kind": "phone", "value": "x"}]}, "Input should be"),
        ({"targets": [{"kind": "account", "value": "x" * 257}]}, "at most 256 characters"),
        (
            {"targets": [{"kind": "account", "value": f"a-{n}"} for n in range(501)]},
            "at most 500 items",
        ),
        ({"records_from": "2026-01-01T00:00:00"}, "timezone"),
        ({"country": "Freedonia"}, "should match pattern"),
        ({"document_pdf_base64": base64.b64encode(b"GIF89a...").decode()}, "must be a PDF"),
        ({"document_pdf_base64": "%%% not base64 %%%"}, "not valid base64"),
        ({"parent": "twelve", "kind": "nondisclosure"}, "is not a request number"),
        ({"records_from": "2026-07-01T00:00:00Z"}, "the records period ends before it starts"),
        ({"requester_email": "not an address"}, "is not an email address"),
        ({"targets": []}, "name at least one account"),
        ({"kind": "emergency"}, "must describe the danger"),
        ({"kind": "nondisclosure", "parent": "LR-000999"}, "no legal request LR-000999"),
        ({"parent": "LR-000999"}, "no legal request LR-000999"),
    ],
)
def test_bad_filings_are_refused_with_422(api: Api, fields: dict[str, Any], message: str) -> None:
    response = post(api, body(**fields))
    assert response.status_code == 422, response.text
    assert message in _detail(response)
    if isinstance(response.json()["detail"], str):  # the desk's refusals: the API's shape
        assert response.json()["code"] == "invalid_value"
    with api.database.session() as session:
        assert session.scalars(select(LegalRequest)).first() is None


def test_an_oversized_document_is_refused(api: Api) -> None:
    data = b"%PDF-" + bytes(MAX_DOCUMENT_BYTES - 4)
    response = post(api, body(document_pdf_base64=base64.b64encode(data).decode("ascii")))
    assert response.status_code == 422
    assert "larger than 25 MiB" in _detail(response)
    assert len(response.content) < 1000  # the document is not echoed back
    longer = "A" * (len(base64.b64encode(data)) + 4)
    response = post(api, body(document_pdf_base64=longer))
    assert response.status_code == 422 and len(response.content) < 1000


def test_requests_dashboard_and_answer_times_read_back(api: Api) -> None:
    past = (utcnow() - timedelta(days=1)).isoformat()
    overdue = filed(api, return_date=past)  # due at receipt: overdue at once
    running = filed(api, kind="warrant", targets=[{"kind": "account", "value": "acct-other"}])
    answered = filed(api)
    with api.database.session() as session:
        request = session.get(LegalRequest, answered["id"])
        assert request is not None
        request.status, request.answered_at = "produced", request.received_at + timedelta(hours=3)
    auth = api.auth("legal")

    listed = api.client.get("/v1/legal/requests", headers=auth).json()["requests"]
    assert [r["number"] for r in listed] == [
        answered["number"],
        running["number"],
        overdue["number"],
    ]
    assert {r["number"]: r["clock"] for r in listed} == {
        overdue["number"]: "overdue",
        running["number"]: "running",
        answered["number"]: "answered",
    }
    only = api.client.get("/v1/legal/requests?kind=warrant", headers=auth).json()["requests"]
    assert [r["number"] for r in only] == [running["number"]]
    mine = api.client.get(f"/v1/legal/requests?account={ACCOUNT}&limit=1", headers=auth).json()
    assert [r["number"] for r in mine["requests"]] == [answered["number"]]
    produced = api.client.get("/v1/legal/requests?status=produced", headers=auth).json()
    assert [r["number"] for r in produced["requests"]] == [answered["number"]]
    assert api.client.get("/v1/legal/requests?status=lost", headers=auth).status_code == 422
    assert api.client.get("/v1/legal/requests?limit=0", headers=auth).status_code == 422

    one = api.client.get(f"/v1/legal/requests/{running['number'].lower()}", headers=auth)
    assert one.status_code == 200 and one.json()["kind"] == "warrant"
    assert one.json()["checklist"][0] == {
        "item": "identity",
        "label": "Requester's identity confirmed out of band",
        "done": False,
        "done_by": None,
        "done_at": None,
        "details": None,
    }
    missing = api.client.get("/v1/legal/requests/LR-000999", headers=auth)
    assert missing.status_code == 404 and missing.json() == {
        "detail": "no legal request LR-000999",
        "code": "not_found",
    }
    assert api.client.get("/v1/legal/requests/twelve", headers=auth).status_code == 422

    board = api.client.get("/v1/legal/dashboard", headers=auth).json()
    assert board["counts"] == {
        "overdue": 1,
        "due_soon": 0,
        "running": 1,
        "expiring_preservations": 0,
    }
    assert (board["overdue"], board["running"]) == ([overdue["number"]], [running["number"]])

    stats = api.client.get("/v1/legal/stats", headers=auth).json()
    assert "every emergency answered within 1 hour" in stats["goal"]
    kinds = {k["kind"]: k for k in stats["kinds"]}
    assert kinds["subpoena"] == {
        "kind": "subpoena",
        "answered": 1,
        "median_seconds": 3 * 3600.0,
        "p90_seconds": 3 * 3600.0,
        "within_goal": 1,
        "within_goal_share": 1.0,
        "open": 1,
    }
    assert (kinds["warrant"]["answered"], kinds["warrant"]["open"]) == (0, 1)
    assert kinds["warrant"]["median_seconds"] is None


def test_openapi_offers_filing_and_reading_but_no_production(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    legal = {path: set(ops) for path, ops in paths.items() if path.startswith("/v1/legal")}
    assert legal == {
        "/v1/legal/requests": {"get", "post"},
        "/v1/legal/requests/{number}": {"get"},
        "/v1/legal/dashboard": {"get"},
        "/v1/legal/stats": {"get"},
    }
    assert "a person verifies each" in paths["/v1/legal/requests"]["post"]["description"]
