"""`vigil bank ...` end to end with typer's CliRunner, on the embedded SQLite default and on
PostgreSQL (VIGIL_DATABASE_URL). All values are synthetic random hex."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bank_helpers import ncmec_deleted, ncmec_entry, ncmec_xml, rand_hex, vics_json
from vigil.cli import app
from vigil.config import get_settings

RNG = random.Random(3)
runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[Path]:
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VIGIL_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def bank(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["bank", *args])
    return result.exit_code, result.stdout, result.stderr


def test_create_list_show_enable_disable_delete(home: Path) -> None:
    assert bank("create", "industry", "--source", "exchange", "--source-name", "ncmec",
                "--trust", "verified", "--classification", "A1")[0] == 0  # fmt: skip
    assert bank("create", "fp", "--kind", "suppress", "--pdq-threshold", "10")[0] == 0
    code, out, _ = bank("list", "--json")
    assert code == 0
    listed = {b["name"]: b for b in json.loads(out)}
    assert set(listed) == {"industry", "fp"}
    assert (listed["industry"]["trust"], listed["industry"]["default_classification"]) == (
        "verified",
        "A1",
    )
    assert (listed["fp"]["kind"], listed["fp"]["pdq_threshold"]) == ("suppress", 10)

    code, out, _ = bank("list")
    assert code == 0 and "industry" in out and "suppress" in out

    assert bank("disable", "industry")[0] == 0
    assert json.loads(bank("show", "industry", "--json")[1])["enabled"] is False
    assert bank("enable", "industry")[0] == 0
    code, out, _ = bank("show", "industry")
    assert code == 0 and "pdq_threshold" in out

    assert bank("update", "industry", "--pdq-threshold", "20", "--description", "x")[0] == 0
    shown = json.loads(bank("show", "industry", "--json")[1])
    assert (shown["pdq_threshold"], shown["description"]) == (20, "x")

    assert bank("delete", "fp", "--yes")[0] == 0
    assert [b["name"] for b in json.loads(bank("list", "--json")[1])] == ["industry"]


@pytest.mark.parametrize(
    "args",
    [
        ["create", "Bad Name"],
        ["create", "x", "--pdq-threshold", "65"],
        ["create", "x", "--kind", "block"],
        ["show", "missing"],
        ["import", "missing", "whatever.csv"],
        ["update", "missing", "--pdq-threshold", "3"],
    ],
)
def test_usage_errors_exit_2(home: Path, args: list[str]) -> None:
    code, _, err = bank(*args)
    assert code == 2, err


def test_duplicate_bank_and_bad_values_exit_2(home: Path) -> None:
    assert bank("create", "b")[0] == 0
    assert bank("create", "b")[0] == 2
    assert bank("add", "b", "md5", "xyz")[0] == 2
    assert bank("add", "b", "crc32", "00")[0] == 2
    assert bank("update", "b")[0] == 2
    assert bank("update", "b", "--vpdq-compared-share", "120")[0] == 2
    assert bank("remove", "b")[0] == 2


def test_add_remove_export(home: Path, tmp_path: Path) -> None:
    md5, sha1 = rand_hex(RNG, "md5"), rand_hex(RNG, "sha1")
    assert bank("create", "b")[0] == 0
    code, _, err = bank("add", "b", "md5", md5.upper(), "--classification", "A1;uk:B",
                        "--external-id", "e1", "--note", "n")  # fmt: skip
    assert code == 0 and "added" in err
    code, _, err = bank("add", "b", "md5", md5)
    assert code == 0 and "already there" in err
    assert bank("add", "b", "sha1", sha1)[0] == 0

    code, out, _ = bank("export", "b")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[1] == ["md5", md5, "A1;uk:B", "e1", "n", "", ""]
    code, out, _ = bank("export", "b", "--format", "plain", "--signal-type", "sha1")
    assert (code, out) == (0, sha1 + "\n")
    assert bank("export", "b", "--format", "plain")[0] == 2

    target = tmp_path / "out" / "b.csv"
    target.parent.mkdir()
    assert bank("export", "b", "--output", str(target))[0] == 0
    assert target.read_text().startswith("signal_type,value,")
    assert not target.with_name("b.csv.partial").exists()

    assert bank("remove", "b", "md5", md5)[0] == 0
    assert bank("remove", "b", "md5", md5)[0] == 2
    assert json.loads(bank("show", "b", "--json")[1])["entries"] == 1


def test_import_exit_codes_and_report(home: Path, tmp_path: Path) -> None:
    assert bank("create", "b")[0] == 0
    good = tmp_path / "good.csv"
    good.write_text("signal_type,value\n" + f"md5,{rand_hex(RNG, 'md5')}\n")
    code, out, _ = bank("import", "b", str(good), "--json", "--actor", "alice")
    report = json.loads(out)
    assert code == 0
    assert (report["added"], report["actor"], report["status"]) == (1, "alice", "finished")
    code, out, _ = bank("import", "b", str(good), "--json")
    assert code == 0 and json.loads(out)["unchanged"] == 1

    mixed = tmp_path / "mixed.txt"
    mixed.write_text(f"{rand_hex(RNG, 'sha1')}\nnope\n")
    code, out, _ = bank("import", "b", str(mixed), "--signal-type", "sha1")
    assert code == 1
    assert "rejected" in out and "sha1 must be 40 hexadecimal characters" in out

    assert bank("import", "b", str(mixed))[0] == 2  # a plain list needs --signal-type
    assert bank("import", "b", str(tmp_path / "missing.csv"))[0] == 2
    assert bank("import", "b", str(good), "--format", "xlsx")[0] == 2

    hostile = tmp_path / "entries.xml"
    hostile.write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><queryResult/>')
    code, _, err = bank("import", "b", str(hostile))
    assert code == 1 and "import failed" in err and "nothing was imported" in err

    show = json.loads(bank("show", "b", "--json")[1])
    assert [i["status"] for i in show["imports"]] == ["failed", "finished", "finished", "finished"]


def test_import_vics_and_ncmec(home: Path, tmp_path: Path) -> None:
    assert bank("create", "vics", "--source", "imported", "--source-name", "vics-us")[0] == 0
    md5 = rand_hex(RNG, "md5")
    hashset = tmp_path / "set.json"
    hashset.write_bytes(
        vics_json(
            [{"MediaID": 1, "Category": 1, "MD5": md5}, {"MediaID": 2, "Category": 0, "MD5": md5}],
            bom=True,
        )
    )
    code, out, _ = bank("import", "vics", str(hashset), "--vics-region", "ca",
                        "--vics-category", "1", "--json")  # fmt: skip
    assert code == 0
    assert (json.loads(out)["added"], json.loads(out)["skipped"]) == (1, 1)

    assert bank("create", "hs")[0] == 0
    entries = tmp_path / "page.xml"
    entries.write_bytes(
        ncmec_xml(
            images=[ncmec_entry("a", [("md5", md5), ("pdna", "c3ludA==")]), ncmec_deleted("b")]
        )
    )
    code, out, _ = bank("import", "hs", str(entries))
    assert code == 0
    assert "PhotoDNA" in out
