"""`vigil tokens ...` and `vigil users ...` end to end with typer's CliRunner, on the embedded
SQLite default and on PostgreSQL (VIGIL_DATABASE_URL)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil import auth
from vigil.cli import app
from vigil.config import get_settings
from vigil.store import open_database

runner = CliRunner()
SECRET_FORMAT = re.compile(r"vgl_[A-Za-z0-9_-]{43}")
PASSWORD = "a long enough passphrase"
STDIN_ADMIN = ["users", "create", "alice", "-r", "admin", "--password-stdin"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Path]:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def vigil(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def authenticate(secret: str) -> auth.TokenPrincipal:
    database = open_database(get_settings())
    try:
        with database.session() as session:
            return auth.authenticate_token(session, secret)
    finally:
        database.dispose()


def verify(username: str, password: str) -> str:
    database = open_database(get_settings())
    try:
        with database.session() as session:
            return auth.verify_password(session, username, password).username
    finally:
        database.dispose()


# --- tokens -----------------------------------------------------------------------------


def test_tokens_create_list_revoke(home: Path) -> None:
    code, out, err = vigil("tokens", "create", "platform", "-s", "match", "--scope", "curate",
                           "--rate-limit", "600", "--created-by", "ops")  # fmt: skip
    assert code == 0, err
    secret = out.strip()
    assert out == secret + "\n" and SECRET_FORMAT.fullmatch(secret)  # only the secret
    assert "shown once" in err and "store it now" in err and secret not in err

    principal = authenticate(secret)
    assert (principal.name, principal.scopes) == ("platform", frozenset({"match", "curate"}))
    assert principal.rate_limit_per_minute == 600

    code, out, _ = vigil("tokens", "create", "reader", "-s", "hash", "--expires", "90d")
    assert code == 0
    reader_secret = out.strip()

    code, table, _ = vigil("tokens", "list")
    assert code == 0
    assert "platform" in table and "reader" in table and secret[:12] in table
    code, listed_json, _ = vigil("tokens", "list", "--json")
    assert code == 0
    for text in (table, listed_json):
        for value in (secret, reader_secret, hashlib.sha256(secret.encode()).hexdigest()):
            assert value not in text
    listed = {token["name"]: token for token in json.loads(listed_json)}
    assert listed["platform"]["scopes"] == ["match", "curate"]
    assert listed["platform"]["created_by"] == "ops"
    assert listed["platform"]["prefix"] == secret[:12]
    assert listed["platform"]["last_used"] is not None
    assert listed["platform"]["expires"] is None and listed["platform"]["revoked"] is None
    expires = datetime.fromisoformat(listed["reader"]["expires"])
    created = datetime.fromisoformat(listed["reader"]["created"])
    assert abs(expires - created - timedelta(days=90)) < timedelta(minutes=1)

    code, _, err = vigil("tokens", "revoke", "platform")
    assert code == 0 and "revoked token platform" in err
    with pytest.raises(auth.AuthenticationError):
        authenticate(secret)
    assert authenticate(reader_secret).name == "reader"
    revoked = {t["name"]: t["revoked"] for t in json.loads(vigil("tokens", "list", "--json")[1])}
    assert revoked["platform"] is not None and revoked["reader"] is None
    assert vigil("tokens", "revoke", "platform")[0] == 0  # idempotent


def test_tokens_create_with_a_date(home: Path) -> None:
    code, out, _ = vigil("tokens", "create", "dated", "-s", "admin", "--expires", "2099-01-01")
    assert code == 0
    assert authenticate(out.strip()).expires == datetime(2099, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tokens", "create", "x"], "--scope"),
        (["tokens", "create", "x", "-s", "read"], "unknown scope 'read'"),
        (["tokens", "create", "x", "-s", "hash", "--expires", "soon"], "expiry"),
        (["tokens", "create", "x", "-s", "hash", "--expires", "2000-01-01"], "not in the future"),
        (["tokens", "create", "x", "-s", "hash", "--rate-limit", "0"], "rate limit"),
        (["tokens", "create", "", "-s", "hash"], "token name"),
        (["tokens", "revoke", "missing"], "no token named 'missing'"),
    ],
)
def test_tokens_usage_errors_exit_2(home: Path, args: list[str], message: str) -> None:
    code, out, err = vigil(*args)
    assert code == 2
    assert out == ""
    assert message in err
    assert json.loads(vigil("tokens", "list", "--json")[1]) == []


def test_tokens_duplicate_name_exit_2(home: Path) -> None:
    assert vigil("tokens", "create", "dup", "-s", "hash")[0] == 0
    code, out, err = vigil("tokens", "create", "dup", "-s", "admin")
    assert (code, out) == (2, "") and "already exists" in err
    listed = json.loads(vigil("tokens", "list", "--json")[1])
    assert [(t["name"], t["scopes"]) for t in listed] == [("dup", ["hash"])]


# --- users ------------------------------------------------------------------------------


def test_users_create_list_disable_enable(home: Path) -> None:
    code, _, err = vigil("users", "create", "alice", "-r", "reviewer", "--role", "auditor",
                         "--display-name", "Alice A.", "--email", "alice@example.org",
                         "--password-stdin", input=PASSWORD + "\n")  # fmt: skip
    assert code == 0, err
    assert verify("alice", PASSWORD) == "alice"

    code, _, err = vigil("users", "create", "bob", "-r", "admin", input=f"{PASSWORD}\n" * 2)
    assert code == 0, err
    assert verify("bob", PASSWORD) == "bob"

    code, table, _ = vigil("users", "list")
    assert code == 0 and "alice" in table and "bob" in table and "Alice A." in table
    code, listed_json, _ = vigil("users", "list", "--json")
    for text in (table, listed_json):
        assert PASSWORD not in text and "argon2" not in text
    listed = {user["username"]: user for user in json.loads(listed_json)}
    assert listed["alice"]["roles"] == ["reviewer", "auditor"]
    assert listed["alice"]["email"] == "alice@example.org"
    assert listed["bob"]["last_login"] is not None and listed["bob"]["disabled"] is None

    code, _, err = vigil("users", "disable", "bob")
    assert code == 0 and "disabled" in err
    with pytest.raises(auth.AuthenticationError):
        verify("bob", PASSWORD)
    assert json.loads(vigil("users", "list", "--json")[1])[1]["disabled"] is not None
    assert vigil("users", "enable", "bob")[0] == 0
    assert verify("bob", PASSWORD) == "bob"


def test_users_prompt_asks_again_on_mismatch(home: Path) -> None:
    answers = f"{PASSWORD}\nsomething else\n{PASSWORD}\n{PASSWORD}\n"
    code, _, err = vigil("users", "create", "carol", "-r", "legal", input=answers)
    assert code == 0, err
    assert verify("carol", PASSWORD) == "carol"


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["users", "create", "alice"], None, "--role"),
        (["users", "create", "alice", "-r", "root"], None, "unknown role 'root'"),
        (["users", "create", "Alice", "-r", "admin"], None, "username"),
        (STDIN_ADMIN, "short\n", "at least 12"),
        (STDIN_ADMIN, "", "nothing on stdin"),
        ([*STDIN_ADMIN, "--email", "nope"], PASSWORD + "\n", "email"),
        (["users", "disable", "nobody"], None, "no user named 'nobody'"),
        (["users", "enable", "nobody"], None, "no user named 'nobody'"),
    ],
)
def test_users_usage_errors_exit_2(
    home: Path, args: list[str], stdin: str | None, message: str
) -> None:
    code, out, err = vigil(*args, input=stdin)
    assert code == 2
    assert out == ""
    assert message in err
    assert json.loads(vigil("users", "list", "--json")[1]) == []


def test_users_duplicate_exit_2(home: Path) -> None:
    args = ("users", "create", "dave", "-r", "curator", "--password-stdin")
    assert vigil(*args, input=PASSWORD + "\n")[0] == 0
    code, _, err = vigil(*args, input=PASSWORD + "\n")
    assert code == 2 and "already exists" in err
