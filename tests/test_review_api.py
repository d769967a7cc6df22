"""The review room through the HTTP API: `POST /v1/flags`, and `/v1/match` putting matches
before reviewers with their files kept (encrypted) for the console. Both databases."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from sqlalchemy import func, select

from api_helpers import Api
from test_api import count, hashed, make_bank, png_bytes, upload
from vigil.store import Content, ReviewItem, ReviewTask


def vault_files(home: Path) -> list[Path]:
    """Every file the media store holds (sealed blobs and any temporary file)."""
    return sorted(p for p in (home / "media").rglob("*") if p.is_file())


def test_a_flag_opens_a_task_and_keeps_the_file(api: Api) -> None:
    data = png_bytes(21)
    flag = {"source": "flag", "reporter": "classifier-x", "label": "csam-likely", "score": 0.93}
    response = upload(
        api, "/v1/flags", data, "match", uploader='{"account_id": "u-9"}', flag=json.dumps(flag)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["matches"] == []
    with api.database.session() as session:
        task = session.get(ReviewTask, body["task_id"])
        assert task is not None
        assert (task.source, task.queue, task.account_id) == ("flag", "main", "u-9")
        assert task.flag_details == {
            "reporter": "classifier-x",
            "label": "csam-likely",
            "score": 0.93,
        }
        [item] = task.items
        assert item.content_id == body["content_id"]
        assert item.upload_event_id == body["upload_id"]
    sha256 = hashlib.sha256(data).hexdigest()
    assert api.state.media.read(sha256) == data
    assert data not in b"".join(path.read_bytes() for path in vault_files(api.settings.home))


def test_imminent_danger_goes_first_and_needs_a_reason(api: Api) -> None:
    refused = upload(
        api,
        "/v1/flags",
        png_bytes(22),
        "match",
        flag='{"source": "escalation", "imminent_danger": true}',
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][:2] == ["body", "flag"]
    assert count(api.database, Content) == 0
    assert count(api.database, ReviewTask) == 0
    assert vault_files(api.settings.home) == []

    flag = {"source": "escalation", "imminent_danger": True, "reason": "A live stream, now."}
    accepted = upload(api, "/v1/flags", png_bytes(22), "match", flag=json.dumps(flag))
    assert accepted.status_code == 201, accepted.text
    with api.database.session() as session:
        task = session.get(ReviewTask, accepted.json()["task_id"])
        assert task is not None
        assert (task.queue, task.imminent_danger, task.escalation_reason) == (
            "escalated",
            True,
            "A live stream, now.",
        )


def test_bad_flags_are_422_with_the_field(api: Api) -> None:
    for flag, loc in (
        ("not json", ["body", "flag"]),
        ('{"source": "rumour"}', ["body", "flag", "source"]),
        ('{"score": 3}', ["body", "flag", "score"]),
        ('{"surprise": 1}', ["body", "flag", "surprise"]),
    ):
        response = upload(api, "/v1/flags", png_bytes(23), "match", flag=flag)
        assert response.status_code == 422, flag
        assert response.json()["detail"][0]["loc"] == loc, flag
    missing = upload(api, "/v1/flags", png_bytes(23), "match")
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "flag"]
    assert upload(api, "/v1/flags", png_bytes(23), "hash", flag="{}").status_code == 403
    assert count(api.database, Content) == 0


def test_matches_open_one_task_for_copies_and_keep_their_files(api: Api) -> None:
    data = png_bytes(24)
    record = hashed(api, data)
    make_bank(api, "known", [{"signal_type": "pdq", "value": record["pdq"]}])
    api.state.index.refresh()
    first = upload(api, "/v1/match", data, "match", uploader='{"account_id": "u-1"}')
    second = upload(api, "/v1/match", data, "match", uploader='{"account_id": "u-2"}')
    assert first.status_code == second.status_code == 200
    assert first.json()["matches"] and "task_id" not in first.json()
    with api.database.session() as session:
        [task] = session.scalars(select(ReviewTask)).all()
        assert task.source == "match"
        assert session.scalar(select(func.count()).select_from(ReviewItem)) == 2
    assert api.state.media.exists(hashlib.sha256(data).hexdigest())
    # A file that matches nothing is neither queued nor kept.
    other = png_bytes(25)
    assert upload(api, "/v1/match", other, "match").json()["matches"] == []
    assert not api.state.media.exists(hashlib.sha256(other).hexdigest())
    assert count(api.database, ReviewTask) == 1
