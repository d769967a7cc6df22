"""The HTTP API (`/v1`, health, metrics), on SQLite and PostgreSQL.

Every image is synthetic (`vigil.demo`); every hash in a bank is one computed here or random.
"""

from __future__ import annotations

import hashlib
import io
import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api_helpers import Api, make_api, serve_bytes
from bank_helpers import rand_hex
from vigil.auth import create_token, revoke_token
from vigil.demo import synthetic_image
from vigil.store import ActionDelivery, Content, Database, UploadEvent


def png_bytes(seed: int = 3, size: int = 256) -> bytes:
    buffer = io.BytesIO()
    synthetic_image(size, size, seed).save(buffer, format="PNG")
    return buffer.getvalue()


def count(db: Database, model: Any) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def upload(api: Api, path: str, data: bytes, scope: str, **fields: str) -> Any:
    return api.client.post(
        path, files={"file": ("photo.png", data, "image/png")}, data=fields, headers=api.auth(scope)
    )


def hashed(api: Api, data: bytes) -> dict[str, Any]:
    response = upload(api, "/v1/hash", data, "hash")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def make_bank(api: Api, name: str, entries: list[dict[str, str]], **settings: Any) -> None:
    created = api.client.post(
        "/v1/banks", json={"name": name, **settings}, headers=api.auth("curate")
    )
    assert created.status_code == 201, created.text
    added = api.client.post(
        f"/v1/banks/{name}/entries", json={"entries": entries}, headers=api.auth("curate")
    )
    assert added.status_code == 200, added.text


# --- health and authentication -----------------------------------------------------------


def test_health_needs_no_token_and_readiness_checks_database_and_index(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok" and ready.json()["index"] == "ok"
    api.state.index.last_error = "OperationalError: gone"
    not_ready = api.client.get("/readyz")
    assert not_ready.status_code == 503 and "gone" in not_ready.json()["index"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/v1/hash"),
        ("post", "/v1/match"),
        ("get", "/v1/lookup?signal_type=md5&value=" + "0" * 32),
        ("post", "/v1/compare"),
        ("get", "/v1/banks"),
        ("get", "/v1/jobs/x"),
        ("get", "/v1/actions/rules"),
        ("get", "/metrics"),
    ],
)
def test_every_route_but_health_requires_a_token(api: Api, method: str, path: str) -> None:
    response = getattr(api.client, method)(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    bad = getattr(api.client, method)(path, headers={"Authorization": "Bearer vgl_nonsense"})
    assert bad.status_code == 401


def test_openapi_lists_the_routes_with_bearer_security(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    assert {"/v1/hash", "/v1/match", "/v1/lookup", "/v1/compare", "/v1/banks"} <= set(
        document["paths"]
    )
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["paths"]["/v1/lookup"]["get"]["security"] == [{"bearer": []}]


def test_scopes_are_enforced(api: Api) -> None:
    data = png_bytes()
    assert upload(api, "/v1/match", data, "hash").status_code == 403
    assert api.client.get("/v1/banks", headers=api.auth("match")).status_code == 403
    assert api.client.get("/v1/actions/rules", headers=api.auth("curate")).status_code == 403
    assert api.client.get("/v1/banks", headers=api.auth("admin")).status_code == 200
    assert upload(api, "/v1/hash", data, "match").status_code == 200  # match implies hash


def test_revoked_and_expired_tokens_are_refused(db: Database, tmp_path: Path) -> None:
    for api in make_api(db, tmp_path / "home", api_token_cache_seconds=0):
        headers = api.auth("curate")
        assert api.client.get("/v1/banks", headers=headers).status_code == 200
        with db.session() as session:
            revoke_token(session, "home-curate")
        assert api.client.get("/v1/banks", headers=headers).status_code == 401


def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    with api.database.session() as session:
        _, secret = create_token(
            session, "slow", ["curate"], created_by="tests", rate_limit_per_minute=6
        )
    headers = {"Authorization": f"Bearer {secret}"}
    answers = [api.client.get("/v1/banks", headers=headers) for _ in range(3)]
    assert answers[0].status_code == 200
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert int(limited[0].headers["retry-after"]) >= 1
    # Another token is not affected.
    assert api.client.get("/v1/banks", headers=api.auth("curate")).status_code == 200


# --- hashing and matching -------------------------------------------------------------


def test_hash_returns_the_cli_record_and_stores_nothing(api: Api) -> None:
    data = png_bytes()
    record = hashed(api, data)
    assert record["md5"] == hashlib.md5(data).hexdigest()
    assert record["sha256"] == hashlib.sha256(data).hexdigest()
    assert len(record["pdq"]) == 64 and record["pdq_quality"] > 50
    assert record["path"] == "photo.png" and record["media_type"] == "image"
    assert record["error"] is None
    assert count(api.database, Content) == 0


def test_match_records_upload_metadata_and_matches(api: Api) -> None:
    data = png_bytes(5)
    record = hashed(api, data)
    make_bank(
        api, "known", [{"signal_type": "pdq", "value": record["pdq"], "classification": "A1"}]
    )
    uploader = (
        '{"account_id": "u-17", "screen_name": "sam", "ip_address": "203.0.113.9",'
        ' "event_time": "2026-11-20T10:00:00+01:00"}'
    )
    first = upload(api, "/v1/match", data, "match", content_ref="post-1", uploader=uploader)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [
        (m["bank"], m["signal_type"], m["distance"], m["classification"]) for m in body["matches"]
    ] == [("known", "pdq", 0, "A1")]
    second = upload(api, "/v1/match", data, "match", content_ref="post-2")
    assert second.json()["content_id"] == body["content_id"]
    assert second.json()["upload_id"] != body["upload_id"]
    with api.database.session() as session:
        events = list(session.scalars(select(UploadEvent).order_by(UploadEvent.id)))
        assert [e.content_ref for e in events] == ["post-1", "post-2"]
        assert (events[0].account_id, events[0].screen_name, events[0].ip_address) == (
            "u-17",
            "sam",
            "203.0.113.9",
        )
        assert events[0].event_time is not None and events[0].event_time.hour == 9  # UTC
        assert session.scalar(select(func.count()).select_from(Content)) == 1


def test_match_with_json_uploader(api: Api) -> None:
    bad = api.client.post(
        "/v1/match",
        files={"file": ("a.png", png_bytes(), "image/png")},
        data={"uploader": '{"ip_address": "not-an-ip"}'},
        headers=api.auth("match"),
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "uploader", "ip_address"]
    assert count(api.database, Content) == 0


@pytest.mark.parametrize("path", ["/v1/hash", "/v1/match"])
def test_unsupported_media_is_415_and_nothing_is_stored(api: Api, path: str) -> None:
    response = api.client.post(
        path,
        files={"file": ("notes.txt", b"just some text, not an image", "text/plain")},
        headers=api.auth("match"),
    )
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_format"
    assert count(api.database, Content) == 0 and count(api.database, UploadEvent) == 0


def test_truncated_image_is_422(api: Api) -> None:
    data = png_bytes(size=512)
    response = upload(api, "/v1/match", data[: len(data) // 2], "match")
    assert response.status_code == 422
    assert response.json()["code"] in {"truncated", "corrupt"}
    assert count(api.database, Content) == 0


def test_too_large_upload_is_413_and_nothing_is_stored(db: Database, tmp_path: Path) -> None:
    data = png_bytes(size=512)
    for api in make_api(db, tmp_path / "home", max_file_bytes=len(data) // 2):
        response = upload(api, "/v1/match", data, "match")
        assert response.status_code == 413
        assert count(db, Content) == 0
    for api in make_api(db, tmp_path / "home2", max_image_pixels=100 * 100):
        response = upload(api, "/v1/match", png_bytes(size=256), "match")
        assert response.status_code == 413
        assert response.json()["code"] == "too_many_pixels"
        assert count(db, Content) == 0


def test_neither_file_nor_url_is_a_clear_error(api: Api) -> None:
    headers = api.auth("match")
    assert api.client.post("/v1/match", json={}, headers=headers).json()["detail"][0]["loc"] == [
        "body",
        "url",
    ]
    assert api.client.post("/v1/match", content=b"x", headers=headers).status_code == 415


# --- lookups -------------------------------------------------------------------------


def test_lookup_validates_hashes_with_field_and_reason(api: Api) -> None:
    headers = api.auth("match")
    bad = api.client.get(
        "/v1/lookup", params={"signal_type": "pdq", "value": "xyz"}, headers=headers
    )
    assert bad.status_code == 422
    (error,) = bad.json()["detail"]
    assert error["loc"] == ["query", "value"]
    assert "64 hexadecimal" in error["msg"]
    unknown = api.client.get(
        "/v1/lookup", params={"signal_type": "photodna", "value": "00"}, headers=headers
    )
    assert unknown.json()["detail"][0]["loc"] == ["query", "signal_type"]
    rng = random.Random(1)
    hashes = [{"signal_type": "md5", "value": rand_hex(rng, "md5")} for _ in range(5)]
    hashes[3]["value"] = "g" * 32
    batch = api.client.post("/v1/lookup", json={"hashes": hashes}, headers=headers)
    assert batch.json()["detail"][0]["loc"] == ["body", "hashes", 3, "value"]
    too_many = [{"signal_type": "md5", "value": rand_hex(rng, "md5")} for _ in range(1001)]
    assert (
        api.client.post("/v1/lookup", json={"hashes": too_many}, headers=headers).status_code == 422
    )


def test_lookup_one_and_batch(api: Api) -> None:
    rng = random.Random(2)
    pdq = rand_hex(rng, "pdq")
    near = f"{int(pdq, 16) ^ 0b111:064x}"
    md5 = rand_hex(rng, "md5")
    make_bank(
        api, "list", [{"signal_type": "pdq", "value": pdq}, {"signal_type": "md5", "value": md5}]
    )
    headers = api.auth("match")
    one = api.client.get(
        "/v1/lookup", params={"signal_type": "PDQ", "value": near.upper()}, headers=headers
    ).json()
    assert one["value"] == near
    assert [(m["bank"], m["distance"]) for m in one["matches"]] == [("list", 3)]
    batch = api.client.post(
        "/v1/lookup",
        json={
            "hashes": [
                {"signal_type": "md5", "value": rand_hex(rng, "md5")},
                {"signal_type": "md5", "value": md5},
                {"signal_type": "pdq", "value": pdq},
            ]
        },
        headers=headers,
    ).json()
    assert [len(r["matches"]) for r in batch["results"]] == [0, 1, 1]


def test_compare(api: Api) -> None:
    rng = random.Random(3)
    a = rand_hex(rng, "pdq")
    b = f"{int(a, 16) ^ ((1 << 40) - 1):064x}"
    headers = api.auth("match")
    far = api.client.post(
        "/v1/compare", json={"signal_type": "pdq", "a": a, "b": b}, headers=headers
    )
    assert far.json() == {"signal_type": "pdq", "distance": 40, "threshold": 31, "match": False}
    near = api.client.post(
        "/v1/compare", json={"signal_type": "pdq", "a": a, "b": b, "threshold": 40}, headers=headers
    )
    assert near.json()["match"] is True
    bad = api.client.post(
        "/v1/compare", json={"signal_type": "pdq", "a": a, "b": "zz"}, headers=headers
    )
    assert bad.json()["detail"][0]["loc"] == ["body", "b"]


# --- banks ----------------------------------------------------------------------------


def test_bank_crud_and_entries(api: Api) -> None:
    headers = api.auth("curate")
    rng = random.Random(4)
    values = [rand_hex(rng, "md5") for _ in range(3)]
    make_bank(api, "crud", [{"signal_type": "md5", "value": v} for v in values], trust="verified")
    assert api.client.post("/v1/banks", json={"name": "crud"}, headers=headers).status_code == 409
    bad = api.client.patch("/v1/banks/crud", json={"pdq_threshold": 500}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "pdq_threshold"]
    bank = api.client.get("/v1/banks/crud", headers=headers).json()
    assert (bank["trust"], bank["entries"]) == ("verified", 3)

    page = api.client.get("/v1/banks/crud/entries", params={"limit": 2}, headers=headers).json()
    assert len(page["entries"]) == 2 and page["next_after"] == page["entries"][1]["id"]
    rest = api.client.get(
        "/v1/banks/crud/entries", params={"after": page["next_after"]}, headers=headers
    ).json()
    assert [e["value"] for e in page["entries"] + rest["entries"]] == values

    entry = page["entries"][0]
    look = {"signal_type": "md5", "value": values[0]}
    match_headers = api.auth("match")
    assert api.client.get("/v1/lookup", params=look, headers=match_headers).json()["matches"]
    disabled = api.client.post(
        f"/v1/banks/crud/entries/{entry['id']}/disable", json={}, headers=headers
    )
    assert disabled.json()["disabled_until"] is not None
    assert api.client.get("/v1/lookup", params=look, headers=match_headers).json()["matches"] == []
    api.client.post(f"/v1/banks/crud/entries/{entry['id']}/enable", headers=headers)
    assert api.client.get("/v1/lookup", params=look, headers=match_headers).json()["matches"]
    assert (
        api.client.delete(f"/v1/banks/crud/entries/{entry['id']}", headers=headers).status_code
        == 204
    )
    assert api.client.get("/v1/lookup", params=look, headers=match_headers).json()["matches"] == []
    bad_entry = api.client.post(
        "/v1/banks/crud/entries",
        json={
            "entries": [
                {"signal_type": "md5", "value": values[1]},
                {"signal_type": "md5", "value": "q"},
            ]
        },
        headers=headers,
    )
    assert bad_entry.json()["detail"][0]["loc"] == ["body", "entries", 1, "value"]

    assert api.client.delete("/v1/banks/crud", headers=headers).status_code == 204
    assert api.client.get("/v1/banks/crud", headers=headers).status_code == 404
    assert (
        api.client.get(
            "/v1/lookup", params={"signal_type": "md5", "value": values[1]}, headers=match_headers
        ).json()["matches"]
        == []
    )


def test_import_runs_as_a_job_and_export_streams(api: Api) -> None:
    headers = api.auth("curate")
    make_bank(api, "imported", [{"signal_type": "md5", "value": "0" * 32}])
    rng = random.Random(5)
    values = [rand_hex(rng, "md5") for _ in range(50)]
    csv_text = "signal_type,value,classification\n" + "".join(f"md5,{v},B2\n" for v in values)
    started = api.client.post(
        "/v1/banks/imported/imports",
        files={"file": ("list.csv", csv_text.encode(), "text/csv")},
        headers=headers,
    )
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    job = started.json()
    assert location == f"/v1/jobs/{job['id']}"
    deadline = time.monotonic() + 30
    while job["status"] in {"queued", "running"} and time.monotonic() < deadline:
        time.sleep(0.05)
        job = api.client.get(location, headers=headers).json()
    assert job["status"] == "finished", job
    assert job["result"]["added"] == 50
    assert api.client.get(location, headers=api.auth("admin")).status_code == 200
    found = api.client.get(
        "/v1/lookup", params={"signal_type": "md5", "value": values[7]}, headers=api.auth("match")
    ).json()
    assert [m["classification"] for m in found["matches"]] == ["B2"]
    assert list((api.settings.upload_dir).iterdir()) == []  # the upload is removed

    exported = api.client.get("/v1/banks/imported/export", headers=headers)
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    lines = exported.text.splitlines()
    assert lines[0].startswith("signal_type,value,classification")
    assert {line.split(",")[1] for line in lines[1:]} == {*values, "0" * 32}
    plain = api.client.get("/v1/banks/imported/export", params={"format": "plain"}, headers=headers)
    assert plain.status_code == 422  # plain needs a signal type


def test_import_of_a_bad_file_fails_the_job_with_the_reason(api: Api) -> None:
    headers = api.auth("curate")
    make_bank(api, "strict", [{"signal_type": "md5", "value": "1" * 32}])
    started = api.client.post(
        "/v1/banks/strict/imports",
        files={"file": ("list.csv", b"\xff\xfe\x00garbage", "text/csv")},
        headers=headers,
    )
    location = started.headers["location"]
    job = started.json()
    deadline = time.monotonic() + 30
    while job["status"] in {"queued", "running"} and time.monotonic() < deadline:
        time.sleep(0.05)
        job = api.client.get(location, headers=headers).json()
    assert job["status"] == "failed" and job["error"]
    missing = api.client.post(
        "/v1/banks/nowhere/imports", files={"file": ("a.csv", b"x", "text/csv")}, headers=headers
    )
    assert missing.status_code == 404


# --- URLs ---------------------------------------------------------------------------


@pytest.fixture
def image_server() -> Iterator[str]:
    with serve_bytes({"/image.png": (png_bytes(9), "image/png")}) as base_url:
        yield f"{base_url}/image.png"


def test_url_fetching_refuses_loopback_unless_allowed(
    db: Database, tmp_path: Path, image_server: str
) -> None:
    for api in make_api(db, tmp_path / "closed"):
        refused = api.client.post("/v1/hash", json={"url": image_server}, headers=api.auth("hash"))
        assert refused.status_code == 422
        assert refused.json()["code"] == "url_forbidden"
    for api in make_api(db, tmp_path / "open", fetch_allowed_networks=["127.0.0.0/8"]):
        fetched = api.client.post(
            "/v1/match", json={"url": image_server, "content_ref": "c1"}, headers=api.auth("match")
        )
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["md5"] == hashlib.md5(png_bytes(9)).hexdigest()
        assert fetched.json()["path"] == image_server


# --- actions, metrics, logs --------------------------------------------------------------


def test_a_match_queues_its_action_in_the_same_transaction(api: Api) -> None:
    data = png_bytes(11)
    record = hashed(api, data)
    make_bank(api, "act", [{"signal_type": "md5", "value": record["md5"]}])
    rule = api.client.post(
        "/v1/actions/rules",
        json={
            "name": "remove",
            "bank": "act",
            "action": "remove_content",
            "url": "https://platform.example/hook",
        },
        headers=api.auth("admin"),
    )
    assert rule.status_code == 201, rule.text
    notify = api.client.post(
        "/v1/actions/rules",
        json={
            "name": "tell",
            "bank": "act",
            "action": "notify_user",
            "url": "https://platform.example/hook",
        },
        headers=api.auth("admin"),
    )
    assert notify.status_code == 422
    assert upload(api, "/v1/match", data, "match", content_ref="p-9").status_code == 200
    assert count(api.database, ActionDelivery) == 1
    listed = api.client.get("/v1/actions/deliveries", headers=api.auth("admin")).json()
    assert listed["depth"]["pending"] == 1
    assert listed["deliveries"][0]["rule"] == "remove"


def test_metrics_and_request_ids(api: Api) -> None:
    upload(api, "/v1/hash", png_bytes(), "hash")
    response = api.client.get("/metrics", headers={**api.auth("admin"), "X-Request-ID": "abc-123"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "abc-123"
    text = response.text
    assert 'vigil_http_requests_total{method="POST",route="/v1/hash",status="200"}' in text
    assert 'vigil_hashes_total{signal_type="pdq"}' in text
    assert 'vigil_index_entries{signal_type="pdq"}' in text
    assert 'vigil_outbox_depth{status="dead"}' in text
    assert "vigil_http_request_duration_seconds_bucket" in text
    assert "vigil_webhook_failed_attempts 0.0" in text
    fresh = api.client.get("/healthz")
    assert len(fresh.headers["x-request-id"]) == 32


def test_access_log_names_routes_never_tokens_or_queries(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    secret_value = rand_hex(random.Random(6), "md5")
    with caplog.at_level(logging.INFO, logger="vigil.access"):
        api.client.get(
            "/v1/lookup",
            params={"signal_type": "md5", "value": secret_value},
            headers=api.auth("match"),
        )
    records = [r for r in caplog.records if r.name == "vigil.access"]
    assert records and records[-1].route == "/v1/lookup"  # type: ignore[attr-defined]
    assert records[-1].token == "api-home-match"  # type: ignore[attr-defined]
    dumped = " ".join(str(r.__dict__) for r in records)
    assert api.tokens["match"] not in dumped
    assert secret_value not in dumped
