"""The Hasher-Matcher-Actioner (HMA 2) compatible routes, on SQLite and PostgreSQL.

`tests/hma_recorded/*.json` are request/response pairs taken from HMA's own tests, docs and
source (each names the file and commit it was read from); every one is replayed against
Vigil in the same starting state:

- `TEST_BANK`, enabled, holding one photo (a synthetic image): its PDQ is `{pdq}`, its bank
  content id `{content_id}`;
- that image served over HTTP on 127.0.0.1 at `{image_url}` (loopback fetching allowed);
- `{future_ts}`: a unix time a year ahead.

In a request, `{name}` is replaced by that value, and a form value `@photo.png` is a file
upload of the image. In a response, `{name}` must equal the value, `<int>`, `<float>`,
`<str>`, `<bool>`, `<hex64>` and `<any>` match any value of that kind, and `<prefix:text>`
any string starting with `text`. Objects must have exactly the keys recorded.

Every image is synthetic (`vigil.demo`), every other hash random hex.
"""

from __future__ import annotations

import io
import json
import random
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api_helpers import Api, make_api, serve_bytes
from vigil import banks
from vigil.demo import synthetic_image
from vigil.store import Database

RECORDED = Path(__file__).parent / "hma_recorded"
RECORDINGS = sorted(RECORDED.glob("*.json"))
SCOPE_OF_PREFIX = {"/h/": "hash", "/m/": "match", "/c/": "curate"}
_HEX64 = re.compile(r"[0-9a-f]{64}")


def png_bytes(seed: int = 11, size: int = 256) -> bytes:
    buffer = io.BytesIO()
    synthetic_image(size, size, seed).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE = png_bytes()
OTHER_IMAGE = png_bytes(seed=12)


def rand_hex(rng: random.Random, chars: int) -> str:
    return f"{rng.getrandbits(chars * 4):0{chars}x}"


@pytest.fixture(scope="module")
def image_url() -> Iterator[str]:
    """The synthetic image, served over HTTP on 127.0.0.1 (other paths: 404)."""
    routes = {"/image.png": (IMAGE, "image/png"), "/other.png": (OTHER_IMAGE, "image/png")}
    with serve_bytes(routes) as base_url:
        yield f"{base_url}/image.png"


@pytest.fixture
def hma(db: Database, tmp_path: Path) -> Iterator[Api]:
    """The API (as `api`), allowed to fetch from loopback for the URL routes."""
    yield from make_api(db, tmp_path / "api-home", fetch_allowed_networks=["127.0.0.0/8"])


def call(
    api: Api,
    method: str,
    path: str,
    *,
    scope: str | None = "auto",
    **kwargs: Any,
) -> Response:
    """A request with the token of the scope its route needs (`/h` hash, `/m` match, `/c`
    curate), or none (`scope=None`)."""
    if scope == "auto":
        scope = next((s for prefix, s in SCOPE_OF_PREFIX.items() if path.startswith(prefix)), None)
    headers = api.auth(scope) if scope else {}
    client: TestClient = api.client
    response: Response = client.request(method, path, headers=headers, **kwargs)
    return response


def make_world(api: Api, image_url: str) -> dict[str, Any]:
    """`TEST_BANK` holding the image, added through the HMA routes themselves."""
    created = call(api, "POST", "/c/banks", json={"name": "TEST_BANK"})
    assert created.status_code == 201, created.text
    added = call(
        api,
        "POST",
        "/c/bank/TEST_BANK/content",
        files={"photo": ("photo.png", IMAGE, "image/png")},
    )
    assert added.status_code == 200, added.text
    return {
        "pdq": added.json()["signals"]["pdq"],
        "content_id": added.json()["id"],
        "image_url": image_url,
        "future_ts": int(time.time()) + 365 * 24 * 3600,
    }


def fill(value: Any, world: dict[str, Any]) -> Any:
    """`value` with `{name}` placeholders replaced (keeping the type of a whole-value one)."""
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole and whole.group(1) in world:
            return world[whole.group(1)]
        return re.sub(r"\{(\w+)\}", lambda m: str(world.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {key: fill(item, world) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, world) for item in value]
    return value


def same_shape(expected: Any, actual: Any, world: dict[str, Any], where: str = "$") -> None:
    """Assert `actual` is what `expected` records (placeholders as in the module doc)."""
    if isinstance(expected, str) and expected.startswith("<") and expected.endswith(">"):
        kind = expected[1:-1]
        checks: dict[str, Callable[[Any], bool]] = {
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, float),
            "str": lambda v: isinstance(v, str),
            "bool": lambda v: isinstance(v, bool),
            "hex64": lambda v: isinstance(v, str) and _HEX64.fullmatch(v) is not None,
            "any": lambda v: True,
        }
        if kind.startswith("prefix:"):
            prefix = kind.removeprefix("prefix:")
            assert isinstance(actual, str) and actual.startswith(prefix), (where, actual)
        else:
            assert checks[kind](actual), (where, expected, actual)
        return
    expected = fill(expected, world)
    if isinstance(expected, dict):
        assert isinstance(actual, dict), (where, actual)
        assert set(actual) == set(expected), (where, sorted(actual), sorted(expected))
        for key, item in expected.items():
            same_shape(item, actual[key], world, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (where, actual)
        for position, (item, got) in enumerate(zip(expected, actual, strict=True)):
            same_shape(item, got, world, f"{where}[{position}]")
    else:
        numbers = (int, float)
        assert type(actual) is type(expected) or (
            type(expected) in numbers and type(actual) in numbers
        ), (where, expected, actual)
        assert actual == expected, (where, expected, actual)


def replay(api: Api, request: dict[str, Any], world: dict[str, Any]) -> Response:
    kwargs: dict[str, Any] = {"params": fill(request.get("query", {}), world)}
    if "json" in request:
        kwargs["json"] = fill(request["json"], world)
    if "form" in request:
        files = {}
        data = {}
        for key, value in request["form"].items():
            if value == "@photo.png":
                files[key] = ("photo.png", IMAGE, "image/png")
            else:
                data[key] = fill(value, world)
        kwargs["files"] = files
        kwargs["data"] = data
    return call(api, request["method"], fill(request["path"], world), **kwargs)


def test_every_recorded_file_is_well_formed() -> None:
    assert len(RECORDINGS) >= 40
    for path in RECORDINGS:
        recorded = json.loads(path.read_text())
        assert set(recorded) <= {"source", "note", "request", "response"}, path.name
        assert re.fullmatch(r"hasher-matcher-actioner/\S+@[0-9a-f]{40}", recorded["source"])
        assert set(recorded["request"]) <= {"method", "path", "query", "json", "form"}
        assert {"status"} < set(recorded["response"]) <= {"status", "json", "text"}


@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda p: p.stem)
def test_recorded_exchange(hma: Api, image_url: str, recording: Path) -> None:
    recorded = json.loads(recording.read_text())
    world = make_world(hma, image_url)
    response = replay(hma, recorded["request"], world)
    expected = recorded["response"]
    assert response.status_code == expected["status"], response.text
    if "text" in expected:
        assert response.text == expected["text"]
    else:
        same_shape(expected["json"], response.json(), world)


# --- Authentication and health ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/h/hash?url=http://127.0.0.1/x.png"),
        ("POST", "/h/hash"),
        ("GET", "/m/raw_lookup?signal_type=pdq&signal=00"),
        ("GET", "/m/lookup?signal_type=pdq&signal=00"),
        ("POST", "/m/compare"),
        ("GET", "/m/index/status"),
        ("GET", "/c/banks"),
        ("POST", "/c/banks"),
        ("GET", "/c/bank/TEST_BANK"),
        ("DELETE", "/c/bank/TEST_BANK"),
        ("GET", "/c/signal_type"),
        ("GET", "/c/content_type"),
    ],
)
def test_hma_routes_need_a_token_and_answer_in_hma_shape(api: Api, method: str, path: str) -> None:
    response = call(api, method, path, scope=None)
    assert response.status_code == 401
    assert response.json() == {"message": "an API token is required"}
    assert response.headers["www-authenticate"] == "Bearer"
    bad = api.client.request(method, path, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and set(bad.json()) == {"message"}


def test_each_room_needs_its_scope(api: Api) -> None:
    assert call(api, "GET", "/c/banks", scope="match").status_code == 403
    assert call(api, "GET", "/c/banks", scope="match").json() == {
        "message": "this token lacks the 'curate' scope"
    }
    query = {"signal_type": "pdq", "signal": "0" * 64}
    assert call(api, "GET", "/m/raw_lookup", scope="hash", params=query).status_code == 403
    assert call(api, "GET", "/m/raw_lookup", scope="match", params=query).status_code == 200
    files = {"photo": ("photo.png", IMAGE, "image/png")}
    assert call(api, "POST", "/h/hash", scope="curate", files=files).status_code == 403
    assert call(api, "POST", "/h/hash", scope="hash", files=files).status_code == 200


def test_status_needs_no_token_and_reports_a_stale_index(api: Api) -> None:
    fresh = api.client.get("/status")
    assert (fresh.status_code, fresh.text) == (200, "I-AM-ALIVE")
    api.state.index.last_error = "OperationalError: gone"
    stale = api.client.get("/status")
    assert (stale.status_code, stale.text) == (503, "INDEX-STALE")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/c/exchanges"),
        ("POST", "/c/exchanges"),
        ("GET", "/c/exchanges/apis"),
        ("POST", "/c/exchanges/api/fb_threatexchange"),
        ("GET", "/c/exchange/SAMPLE/status"),
        ("PUT", "/c/exchange/SAMPLE"),
        ("DELETE", "/c/exchange/SAMPLE"),
        ("GET", "/ui/"),
        ("GET", "/ui/banks"),
        ("POST", "/dev/seed_banks"),
    ],
)
def test_exchange_ui_and_dev_routes_answer_501(api: Api, method: str, path: str) -> None:
    response = api.client.request(method, path)
    assert response.status_code == 501
    message = response.json()["message"]
    assert set(response.json()) == {"message"}
    assert "vigil bank import" in message and "/v1/banks/{name}/imports" in message


# --- Banks: names and the enabled ratio ------------------------------------------------------


def test_bank_names_map_between_upper_and_lower_case(api: Api) -> None:
    assert call(api, "POST", "/c/banks", json={"name": "MY_BANK"}).status_code == 201
    with api.database.session() as session:
        assert banks.get_bank(session, "my_bank").enabled is True
        banks.create_bank(session, "own-confirmed")  # no HMA form: not listed
        banks.create_bank(session, "second_bank", enabled=False)
    listed = call(api, "GET", "/c/banks").json()
    assert listed == [
        {"name": "MY_BANK", "matching_enabled_ratio": 1.0},
        {"name": "SECOND_BANK", "matching_enabled_ratio": 0.0},
    ]
    assert call(api, "GET", "/c/bank/my_bank").status_code == 404  # HMA names are upper case
    assert call(api, "GET", "/c/bank/OWN-CONFIRMED").status_code == 404
    renamed = call(api, "PUT", "/c/bank/MY_BANK", json={"name": "SECOND_BANK"})
    assert renamed.status_code == 403 and renamed.json() == {"message": "Bank name already exists"}


def test_partial_enabled_ratios_are_refused(api: Api) -> None:
    half = call(api, "POST", "/c/banks", json={"name": "HALF", "enabled_ratio": 0.5})
    assert half.status_code == 400
    assert "no partial, coin-flip enabling" in half.json()["message"]
    assert call(api, "GET", "/c/bank/HALF").status_code == 404
    assert call(api, "POST", "/c/banks", json={"name": "HALF"}).status_code == 201
    update = call(api, "PUT", "/c/bank/HALF", json={"enabled_ratio": 0.25})
    assert update.status_code == 400 and "coin-flip" in update.json()["message"]
    off = call(api, "PUT", "/c/bank/HALF", json={"enabled_ratio": 0.0})
    assert off.json() == {"name": "HALF", "matching_enabled_ratio": 0.0}
    on = call(api, "PUT", "/c/bank/HALF", json={"enabled": True})
    assert on.json() == {"name": "HALF", "matching_enabled_ratio": 1.0}


# --- Matching sees bank changes at once ------------------------------------------------------


def lookup(api: Api, signal_type: str, signal: str, **query: str) -> Any:
    response = call(
        api, "GET", "/m/lookup", params={"signal_type": signal_type, "signal": signal, **query}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_bank_changes_reach_lookups_immediately(hma: Api, image_url: str) -> None:
    world = make_world(hma, image_url)
    pdq, content_id = world["pdq"], world["content_id"]
    hit = {"TEST_BANK": [{"bank_content_id": content_id, "distance": "0"}]}
    assert lookup(hma, "pdq", pdq) == hit

    call(hma, "PUT", "/c/bank/TEST_BANK", json={"enabled": False})
    assert lookup(hma, "pdq", pdq) == {}
    call(hma, "PUT", "/c/bank/TEST_BANK", json={"enabled_ratio": 1.0})
    assert lookup(hma, "pdq", pdq) == hit

    path = f"/c/bank/TEST_BANK/content/{content_id}"
    assert call(hma, "PUT", path, json={"disable_until_ts": 0}).json()["disable_until_ts"] == 0
    assert lookup(hma, "pdq", pdq) == {}
    raw = call(hma, "GET", "/m/raw_lookup", params={"signal_type": "pdq", "signal": pdq})
    assert raw.json() == {"matches": []}
    assert call(hma, "PUT", path, json={"disable_until_ts": 1}).json()["disable_until_ts"] == 1
    assert lookup(hma, "pdq", pdq) == hit
    future = world["future_ts"]
    assert (
        call(hma, "PUT", path, json={"disable_until_ts": str(future)}).json()["disable_until_ts"]
        == future
    )
    assert lookup(hma, "pdq", pdq) == {}
    past = int(time.time()) - 60
    assert call(hma, "PUT", path, json={"disable_until_ts": past}).json()["disable_until_ts"] == 1
    assert lookup(hma, "pdq", pdq) == hit
    bad = call(hma, "PUT", path, json={"disable_until_ts": "soon"})
    assert bad.status_code == 400 and bad.json() == {"message": "Invalid int: 'soon'"}

    renamed = call(hma, "PUT", "/c/bank/TEST_BANK", json={"name": "RENAMED_BANK"})
    assert renamed.json() == {"name": "RENAMED_BANK", "matching_enabled_ratio": 1.0}
    assert lookup(hma, "pdq", pdq) == {
        "RENAMED_BANK": [{"bank_content_id": content_id, "distance": "0"}]
    }
    deleted = call(hma, "DELETE", f"/c/bank/RENAMED_BANK/content/{content_id}")
    assert deleted.json() == {"deleted": 1}
    assert lookup(hma, "pdq", pdq) == {}
    again = call(hma, "DELETE", f"/c/bank/RENAMED_BANK/content/{content_id}")
    assert again.json() == {"deleted": 0}


def test_near_matches_use_each_banks_threshold_and_suppression(hma: Api, image_url: str) -> None:
    world = make_world(hma, image_url)
    pdq = world["pdq"]
    near = f"{int(pdq, 16) ^ 0b1111:064x}"  # 4 bits away
    assert lookup(hma, "pdq", near) == {
        "TEST_BANK": [{"bank_content_id": world["content_id"], "distance": "4"}]
    }
    with hma.database.session() as session:
        banks.update_bank(session, "test_bank", pdq_threshold=2)
    hma.state.index.refresh()
    assert lookup(hma, "pdq", near) == {}
    assert lookup(hma, "pdq", pdq)["TEST_BANK"][0]["distance"] == "0"
    with hma.database.session() as session:
        banks.create_bank(session, "allow_list", kind="suppress")
        banks.add_entries(session, "allow_list", [banks.NewEntry("pdq", pdq)])
    hma.state.index.refresh()
    assert lookup(hma, "pdq", pdq) == {}  # a suppression bank cancels the match


def test_lookup_filters_banks_and_keeps_other_banks_visible(hma: Api, image_url: str) -> None:
    world = make_world(hma, image_url)
    pdq = world["pdq"]
    second = call(hma, "POST", "/c/banks", json={"name": "BANK_B"})
    assert second.status_code == 201
    added = call(hma, "POST", "/c/bank/BANK_B/signal", json={"pdq": pdq, "note": "again"})
    assert added.status_code == 200
    with hma.database.session() as session:
        banks.create_bank(session, "vigil-only")
        banks.add_entries(session, "vigil-only", [banks.NewEntry("pdq", pdq)])
    hma.state.index.refresh()
    found = lookup(hma, "pdq", pdq)
    assert set(found) == {"TEST_BANK", "BANK_B", "vigil-only"}
    assert set(lookup(hma, "pdq", pdq, banks="BANK_B,TEST_BANK")) == {"BANK_B", "TEST_BANK"}
    raw = call(
        hma, "GET", "/m/raw_lookup", params={"signal_type": "pdq", "signal": pdq, "banks": "BANK_B"}
    )
    assert raw.json() == {"matches": [added.json()["id"]]}


# --- Content: metadata, notes, other signal types --------------------------------------------


def test_content_metadata_and_note_round_trip(hma: Api, image_url: str) -> None:
    make_world(hma, image_url)
    other = image_url.replace("image.png", "other.png")
    added = call(
        hma,
        "POST",
        "/c/bank/TEST_BANK/content",
        params={"url": other},
        json={"metadata": {"content_id": "case-17", "collab": {"X": ["1"]}}, "note": "seen"},
    )
    assert added.status_code == 200, added.text
    content_id = added.json()["id"]
    shown = call(hma, "GET", f"/c/bank/TEST_BANK/content/{content_id}").json()
    assert shown["metadata"] == {
        "content_id": "case-17",
        "content_uri": None,
        "json": None,
        "collab": None,
    }
    assert shown["note"] == "seen"
    hidden = call(
        hma,
        "GET",
        f"/c/bank/TEST_BANK/content/{content_id}",
        params={"include_metadata": "false"},
    ).json()
    assert "metadata" not in hidden
    updated = call(hma, "PUT", f"/c/bank/TEST_BANK/content/{content_id}", json={"note": "reviewed"})
    assert updated.json()["note"] == "reviewed"
    assert updated.json()["user_metadata"] == {"content_id": "case-17"}
    long_note = {"pdq": "f" * 64, "note": "x" * 256}
    too_long = call(hma, "POST", "/c/bank/TEST_BANK/signal", json=long_note)
    assert too_long.json() == {"message": "note must be at most 255 characters"}
    form = call(
        hma,
        "POST",
        "/c/bank/TEST_BANK/content",
        files={"photo": ("photo.png", IMAGE, "image/png")},
        data={"metadata": "{not json"},
    )
    assert form.json() == {"message": "metadata form field must be valid JSON"}


def test_video_md5_and_vpdq_signals(hma: Api) -> None:
    rng = random.Random(5)
    md5 = rand_hex(rng, 32)
    assert call(hma, "POST", "/c/banks", json={"name": "VIDEOS"}).status_code == 201
    added = call(hma, "POST", "/c/bank/VIDEOS/signal", json={"video_md5": md5.upper()})
    assert added.json() == {"id": added.json()["id"], "signals": {"video_md5": md5}}
    raw = call(
        hma,
        "GET",
        "/m/raw_lookup",
        params={"signal_type": "video_md5", "signal": md5, "include_distance": "true"},
    )
    assert raw.json() == {"matches": [{"bank_content_id": added.json()["id"], "distance": "-"}]}
    with hma.database.session() as session:
        entry = banks.get_entry(session, added.json()["id"])
        assert (entry.signal_type, entry.value) == ("md5", md5)

    frames = [rand_hex(rng, 64) for _ in range(3)]
    hma_vpdq = json.dumps([f"{pdq},100,{i:.3f}" for i, pdq in enumerate(frames)])
    vpdq = call(hma, "POST", "/c/bank/VIDEOS/signal", json={"vpdq": hma_vpdq})
    assert vpdq.status_code == 200, vpdq.text
    assert json.loads(vpdq.json()["signals"]["vpdq"]) == json.loads(hma_vpdq)
    shown = call(
        hma,
        "GET",
        f"/c/bank/VIDEOS/content/{vpdq.json()['id']}",
        params={"include_signals": "true"},
    )
    assert json.loads(shown.json()["signals"]["vpdq"]) == json.loads(hma_vpdq)
    found = lookup(hma, "vpdq", hma_vpdq)
    assert found == {"VIDEOS": [{"bank_content_id": vpdq.json()["id"], "distance": "0"}]}

    compared = call(hma, "POST", "/m/compare", json={"video_md5": [md5, md5.upper()]})
    assert compared.json() == {"video_md5": [True, {}]}
    different = call(hma, "POST", "/m/compare", json={"video_md5": [md5, rand_hex(rng, 32)]})
    assert different.json() == {"video_md5": [False, {}]}
    kinds = call(hma, "GET", "/c/signal_type/index").json()
    assert kinds["video_md5"]["db_size"] == 1 and kinds["vpdq"]["index_size"] == 1
    assert set(kinds["pdq"]) == {
        "db_size",
        "index_size",
        "index_out_of_date",
        "newest_db_item",
        "index_built_to",
    }


def test_photo_hashes_agree_with_v1_and_types_narrow_them(hma: Api, image_url: str) -> None:
    files = {"photo": ("photo.png", IMAGE, "image/png")}
    v1 = hma.client.post(
        "/v1/hash", files={"file": ("photo.png", IMAGE, "image/png")}, headers=hma.auth("hash")
    )
    assert call(hma, "POST", "/h/hash", files=files).json() == {"pdq": v1.json()["pdq"]}
    assert call(hma, "GET", "/h/hash", params={"url": image_url, "types": "pdq"}).json() == {
        "pdq": v1.json()["pdq"]
    }
    wrong = call(hma, "GET", "/h/hash", params={"url": image_url, "content_type": "video"})
    assert wrong.status_code == 400
    assert wrong.json() == {"message": "content_type is 'video', but the content is a photo"}
    no_kind = call(hma, "GET", "/h/hash", params={"url": image_url, "content_type": "gif"})
    assert no_kind.json() == {"message": "no such content_type: 'gif'"}
    video_types = call(hma, "GET", "/h/hash", params={"url": image_url, "types": "video_md5"})
    assert video_types.json() == {"message": "signal type 'video_md5' doesn't exist or is disabled"}
    two = call(
        hma,
        "POST",
        "/h/hash",
        files=[
            ("photo", ("a.png", IMAGE, "image/png")),
            ("photo", ("b.png", OTHER_IMAGE, "image/png")),
        ],
    )
    assert two.json() == {"message": "Only one file allowed per request"}
    junk = {"photo": ("x.png", b"not an image", "image/png")}
    not_media = call(hma, "POST", "/h/hash", files=junk)
    assert not_media.status_code == 400 and set(not_media.json()) == {"message"}


def test_urls_go_through_the_fetch_guard(api: Api, image_url: str) -> None:
    refused = call(api, "GET", "/h/hash", params={"url": image_url})  # loopback not allowed
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Invalid or unsafe URL provided")
    scheme = call(api, "GET", "/m/lookup", params={"url": "file:///etc/passwd"})
    assert scheme.status_code == 400
    assert scheme.json()["message"].startswith("Invalid or unsafe URL provided")


def test_missing_url_is_a_fetch_failure(hma: Api, image_url: str) -> None:
    gone = call(hma, "GET", "/h/hash", params={"url": image_url.replace("image.png", "gone.png")})
    assert gone.status_code == 400
    assert gone.json()["message"].startswith("Failed to fetch URL")


def test_signal_types_are_always_on(api: Api) -> None:
    on = call(api, "PUT", "/c/signal_type/pdq", json={"enabled_ratio": 1.0})
    assert on.status_code == 204
    off = call(api, "PUT", "/c/signal_type/pdq", json={"enabled_ratio": 0})
    assert off.status_code == 501 and set(off.json()) == {"message"}
    missing = call(api, "PUT", "/c/signal_type/pdq", json={})
    assert missing.json() == {"message": "enabled_ratio is required"}
    unknown = call(api, "PUT", "/c/signal_type/tmk", json={"enabled_ratio": 1.0})
    assert unknown.status_code == 400
