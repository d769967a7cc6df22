"""The banks service on SQLite and PostgreSQL: banks, entries, the index's view, the schema.

All values are synthetic random hex.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bank_helpers import rand_hex, rand_vpdq
from vigil import banks
from vigil.banks import Classification, Industry, NewEntry, UKCategory
from vigil.store import (
    Bank,
    BankEntry,
    BankImport,
    Database,
    current_revision,
    downgrade,
    make_engine,
    migrate,
    record_hashes,
    utcnow,
    value_digest,
)

RNG = random.Random(7)
MD5 = rand_hex(RNG, "md5")
SHA1 = rand_hex(RNG, "sha1")
PDQ = rand_hex(RNG, "pdq")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def count(session: Session, model: type[object]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# --- Schema -------------------------------------------------------------------------------


def test_migration_0002_upgrades_a_0001_database_and_downgrades_cleanly(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    try:
        migrate(engine, "0001")
        with Session(engine) as session:
            record_hashes(session, sha256="a" * 64, md5=None, size=1, media_type="image")
            session.commit()
        migrate(engine, "0002")
        assert {"bank", "bank_entry", "bank_import"} <= set(inspect(engine).get_table_names())
        # Written in SQL: today's models have columns later revisions added.
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO bank (name, description, kind, source, trust, enabled,"
                    " pdq_threshold, vpdq_frame_threshold, vpdq_compared_share,"
                    " vpdq_query_share, created, updated) VALUES ('after-upgrade', '', 'match',"
                    " 'own', 'unverified', true, 31, 31, 80, 0, :now, :now)"
                ),
                {"now": utcnow()},
            )
            bank_id = connection.execute(text("SELECT id FROM bank")).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO bank_entry (bank_id, signal_type, value, value_digest, labels,"
                    " added_at, false_positive_count) VALUES (:bank, 'md5', :value, :digest,"
                    " '[]', :now, 0)"
                ),
                {"bank": bank_id, "value": MD5, "digest": value_digest(MD5), "now": utcnow()},
            )
        downgrade(engine, "0001")
        assert current_revision(engine) == "0001"
        assert not {"bank", "bank_entry", "bank_import"} & set(inspect(engine).get_table_names())
        assert "content" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_constraints_hold_in_the_database(session: Session) -> None:
    bank = banks.create_bank(session, "checked")
    session.commit()
    for bad in ({"kind": "other"}, {"pdq_threshold": 65}, {"vpdq_compared_share": 100.5}):
        with pytest.raises(IntegrityError), session.begin_nested():
            session.add(Bank(name=f"x{len(bad)}{next(iter(bad))}", **bad))
    entry = BankEntry(bank_id=bank.id, signal_type="md5", value=MD5, industry="C3")
    session.add(entry)
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


# --- Banks --------------------------------------------------------------------------------


def test_create_get_list_update_delete(session: Session) -> None:
    bank = banks.create_bank(
        session,
        "ncmec-industry",
        source="exchange",
        source_name="NCMEC industry",
        trust="verified",
        default_classification="a1",
        now=T0,
    )
    banks.create_bank(session, "fp", kind="suppress")
    session.commit()
    assert (bank.kind, bank.enabled, bank.pdq_threshold, bank.vpdq_frame_threshold) == (
        "match",
        True,
        31,
        31,
    )
    assert (bank.vpdq_compared_share, bank.vpdq_query_share) == (80.0, 0.0)
    assert bank.default_classification == "A1"
    assert banks.get_bank(session, "ncmec-industry") is bank
    assert banks.get_bank(session, bank.id) is bank
    assert [s.bank.name for s in banks.list_banks(session)] == ["fp", "ncmec-industry"]

    banks.update_bank(session, bank, pdq_threshold=20, vpdq_query_share=50, description=" x ")
    session.commit()
    assert (bank.pdq_threshold, bank.vpdq_query_share, bank.description) == (20, 50.0, "x")
    assert bank.updated > T0
    banks.set_enabled(session, "ncmec-industry", False)
    assert banks.get_bank(session, "ncmec-industry").enabled is False

    banks.add_entry(session, bank, "md5", MD5)
    session.commit()
    banks.delete_bank(session, bank)
    session.commit()
    assert [s.bank.name for s in banks.list_banks(session)] == ["fp"]
    assert count(session, BankEntry) == 0
    with pytest.raises(banks.BankNotFound):
        banks.get_bank(session, "ncmec-industry")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": "Has Spaces"}, "bank name"),
        ({"name": "-leading"}, "bank name"),
        ({"name": "x" * 65}, "bank name"),
        ({"kind": "block"}, "kind"),
        ({"source": "web"}, "source"),
        ({"trust": "maybe"}, "trust"),
        ({"pdq_threshold": 65}, "0-64"),
        ({"pdq_threshold": -1}, "0-64"),
        ({"vpdq_frame_threshold": 100}, "0-64"),
        ({"vpdq_compared_share": 101.0}, "0-100"),
        ({"vpdq_query_share": -0.5}, "0-100"),
        ({"default_classification": "A7"}, "Industry"),
    ],
)
def test_bad_bank_settings_are_refused(
    session: Session, arguments: dict[str, object], message: str
) -> None:
    settings = dict(arguments)
    name = str(settings.pop("name", "ok"))
    with pytest.raises(ValueError, match=message):
        banks.create_bank(session, name, **settings)  # type: ignore[arg-type]
    assert count(session, Bank) == 0


def test_update_validates_everything_before_changing_anything(session: Session) -> None:
    bank = banks.create_bank(session, "b")
    with pytest.raises(ValueError, match="0-64"):
        banks.update_bank(session, bank, description="changed", pdq_threshold=99)
    assert (bank.description, bank.pdq_threshold) == ("", 31)


def test_bank_names_are_unique(session: Session) -> None:
    banks.create_bank(session, "one")
    session.commit()
    with pytest.raises(banks.BankExists):
        banks.create_bank(session, "one")


# --- Entries ------------------------------------------------------------------------------


def test_same_value_twice_is_one_entry_and_merges_classification(session: Session) -> None:
    bank = banks.create_bank(session, "b")
    entry, new = banks.add_entry(session, bank, "md5", MD5.upper(), classification="A2;viral")
    again, new_again = banks.add_entry(session, bank, "MD5", f"  {MD5}  ", classification="uk:B")
    session.commit()
    assert (new, new_again) == (True, False)
    assert again.id == entry.id
    session.refresh(entry)
    assert entry.value == MD5
    assert banks.entry_classification(entry) == Classification(
        industry=Industry.A2, uk=UKCategory.B, labels=("viral",)
    )
    assert banks.entry_counts(session, bank) == {"md5": 1}


def test_add_entries_counts_and_refuses_bad_values_all_or_nothing(session: Session) -> None:
    bank = banks.create_bank(session, "b")
    counts = banks.add_entries(
        session,
        bank,
        [NewEntry("md5", MD5), NewEntry("sha1", SHA1), NewEntry("pdq", PDQ, "B1", "ext-9")],
    )
    assert (counts.added, counts.updated, counts.unchanged) == (3, 0, 0)
    counts = banks.add_entries(session, bank, [NewEntry("md5", MD5), NewEntry("sha1", SHA1, "A1")])
    assert (counts.added, counts.updated, counts.unchanged) == (0, 1, 1)
    with pytest.raises(ValueError, match="hexadecimal"):
        banks.add_entries(
            session, bank, [NewEntry("md5", rand_hex(RNG, "md5")), NewEntry("md5", "x")]
        )
    with pytest.raises(ValueError, match="unknown signal type"):
        banks.add_entry(session, bank, "photodna", "abc")
    session.commit()
    assert banks.entry_counts(session, bank) == {"md5": 1, "pdq": 1, "sha1": 1}


def test_same_value_in_two_banks_is_two_entries(session: Session) -> None:
    one, two = banks.create_bank(session, "one"), banks.create_bank(session, "two")
    banks.add_entry(session, one, "md5", MD5)
    banks.add_entry(session, two, "md5", MD5)
    session.commit()
    assert count(session, BankEntry) == 2


def test_long_vpdq_values_are_entries_too(session: Session) -> None:
    bank = banks.create_bank(session, "videos")
    value = rand_vpdq(RNG, frames=3000)
    assert len(value) > 100_000
    banks.add_entry(session, bank, "vpdq", value)
    _, new = banks.add_entry(session, bank, "vpdq", value)
    session.commit()
    assert new is False
    found = banks.find_entry(session, bank, "vpdq", value)
    assert found is not None and found.value == value


def test_remove_by_value_or_id(session: Session) -> None:
    bank = banks.create_bank(session, "b")
    entry, _ = banks.add_entry(session, bank, "md5", MD5)
    other, _ = banks.add_entry(session, bank, "sha1", SHA1)
    session.commit()
    assert banks.remove_entry(session, bank, signal_type="md5", value=MD5.upper()) is True
    assert banks.remove_entry(session, bank, signal_type="md5", value=MD5) is False
    assert banks.remove_entry(session, bank, entry_id=other.id) is True
    with pytest.raises(ValueError, match="either"):
        banks.remove_entry(session, bank)
    session.commit()
    assert count(session, BankEntry) == 0
    assert entry.id != other.id


def test_removing_by_id_only_touches_that_bank(session: Session) -> None:
    one, two = banks.create_bank(session, "one"), banks.create_bank(session, "two")
    entry, _ = banks.add_entry(session, one, "md5", MD5)
    session.commit()
    assert banks.remove_entry(session, two, entry_id=entry.id) is False
    assert count(session, BankEntry) == 1


def test_false_positive_counter(db: Database) -> None:
    with db.session() as session:
        bank = banks.create_bank(session, "b")
        entry, _ = banks.add_entry(session, bank, "pdq", PDQ)
        entry_id = entry.id
    with db.session() as session:
        assert banks.record_false_positive(session, entry_id) == 1
        assert banks.record_false_positive(session, entry_id) == 2
        with pytest.raises(banks.EntryNotFound):
            banks.record_false_positive(session, 10**9)

    def report() -> None:
        with db.session(immediate=True) as session:
            banks.record_false_positive(session, entry_id)

    threads = [threading.Thread(target=report) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with db.session() as session:
        assert banks.get_entry(session, entry_id).false_positive_count == 6


def test_iter_entries_streams_in_id_order(session: Session) -> None:
    bank = banks.create_bank(session, "b")
    values = [rand_hex(RNG, "md5") for _ in range(25)]
    banks.add_entries(session, bank, [NewEntry("md5", v) for v in values])
    banks.add_entry(session, bank, "sha1", SHA1)
    session.commit()
    assert [e.value for e in banks.iter_entries(session, bank, "md5", batch=7)] == values
    assert len(list(banks.iter_entries(session, bank))) == 26


# --- What the index is built from --------------------------------------------------------


def test_iter_index_entries_active_entries_of_enabled_banks(session: Session) -> None:
    match = banks.create_bank(session, "match", default_classification="A2;uk:C;default-label")
    fp = banks.create_bank(session, "fp", kind="suppress")
    off = banks.create_bank(session, "off", enabled=False)
    kept, _ = banks.add_entry(session, match, "md5", MD5, classification="A1;own")
    later, _ = banks.add_entry(session, match, "pdq", PDQ)
    expired, _ = banks.add_entry(session, match, "sha1", SHA1)
    suppressed, _ = banks.add_entry(session, fp, "pdq", rand_hex(RNG, "pdq"))
    banks.add_entry(session, off, "md5", rand_hex(RNG, "md5"))
    banks.disable_entry(session, later.id, until=T0 + timedelta(days=1))
    banks.disable_entry(session, expired.id, until=T0 - timedelta(days=1))
    session.commit()

    found = {e.entry_id: e for e in banks.iter_index_entries(session, now=T0)}
    assert set(found) == {kept.id, expired.id, suppressed.id}
    first = found[kept.id]
    assert (first.bank_name, first.bank_kind, first.signal_type, first.value) == (
        "match",
        "match",
        "md5",
        MD5,
    )
    # The entry's own Industry code wins; the bank default fills the UK grade; labels unite.
    assert first.classification == Classification(
        industry=Industry.A1, uk=UKCategory.C, labels=("default-label", "own")
    )
    assert found[suppressed.id].bank_kind == "suppress"
    assert {e.entry_id for e in banks.iter_index_entries(session, now=T0 + timedelta(days=2))} == {
        kept.id,
        later.id,
        expired.id,
        suppressed.id,
    }
    assert [
        e.entry_id for e in banks.iter_index_entries(session, signal_types=["pdq"], now=T0)
    ] == [suppressed.id]

    banks.disable_entry(session, kept.id)  # no end: until enabled again
    session.commit()
    assert kept.id not in {e.entry_id for e in banks.iter_index_entries(session)}
    banks.enable_entry(session, kept.id)
    banks.set_enabled(session, off, True)
    session.commit()
    assert len(list(banks.iter_index_entries(session, now=T0 + timedelta(days=2)))) == 5


def test_disable_needs_an_aware_time(session: Session) -> None:
    bank = banks.create_bank(session, "b")
    entry, _ = banks.add_entry(session, bank, "md5", MD5)
    with pytest.raises(ValueError, match="timezone-aware"):
        banks.disable_entry(session, entry.id, until=datetime(2030, 1, 1))


def test_bank_updated_moves_on_entry_changes(session: Session) -> None:
    bank = banks.create_bank(session, "b", now=T0)
    session.commit()
    banks.add_entry(session, bank, "md5", MD5)
    session.commit()
    session.refresh(bank)
    assert bank.updated > T0


def test_concurrent_writers_adding_the_same_values(db: Database) -> None:
    with db.session() as session:
        banks.create_bank(session, "shared")
    values = [rand_hex(RNG, "md5") for _ in range(200)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            barrier.wait(timeout=30)
            with db.session(immediate=True) as session:
                banks.add_entries(session, "shared", [NewEntry("md5", v) for v in values])
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with db.session() as session:
        assert banks.entry_counts(session, "shared") == {"md5": 200}
        assert count(session, BankImport) == 0
