"""A long-lived BankMatcher (an API worker's) follows bank changes incrementally."""

from __future__ import annotations

import random
from datetime import timedelta

from bank_helpers import rand_hex
from vigil import banks
from vigil.banks import NewEntry
from vigil.pipeline.matching import BankMatcher
from vigil.store import Database, utcnow


def _bank_with(db: Database, name: str, values: list[str], signal_type: str = "md5") -> None:
    with db.session() as session:
        banks.create_bank(session, name)
        banks.add_entries(session, name, [NewEntry(signal_type, v) for v in values])


def _matched(matcher: BankMatcher, signal_type: str, value: str) -> list[str]:
    (outcome,) = matcher.lookup(signal_type, [value])
    return [m.bank for m in outcome.matches]


def test_refresh_follows_additions_removals_and_bank_switches(db: Database) -> None:
    rng = random.Random(7)
    first, second, later = (rand_hex(rng, "md5") for _ in range(3))
    _bank_with(db, "one", [first, second])
    matcher = BankMatcher.from_database(db)
    assert matcher.refresh() == set()
    assert _matched(matcher, "md5", first) == ["one"]

    with db.session() as session:
        banks.add_entries(session, "one", [NewEntry("md5", later)])
        assert banks.remove_entry(session, "one", signal_type="md5", value=first)
    assert _matched(matcher, "md5", later) == []  # not yet: the worker has not looked
    changed = matcher.refresh()
    assert len(changed) == 1
    assert _matched(matcher, "md5", later) == ["one"]
    assert _matched(matcher, "md5", first) == []
    assert _matched(matcher, "md5", second) == ["one"]
    assert len(matcher) == 2

    with db.session() as session:
        banks.set_enabled(session, "one", False)
    matcher.refresh()
    assert _matched(matcher, "md5", second) == []
    assert len(matcher) == 0
    with db.session() as session:
        banks.set_enabled(session, "one", True)
    matcher.refresh()
    assert _matched(matcher, "md5", second) == ["one"]

    with db.session() as session:
        banks.delete_bank(session, "one")
    matcher.refresh()
    assert len(matcher) == 0 and matcher.index.counts()["md5"] == 0


def test_refresh_applies_threshold_changes_and_ended_disables(db: Database) -> None:
    rng = random.Random(8)
    pdq = rand_hex(rng, "pdq")
    near = f"{int(pdq, 16) ^ ((1 << 20) - 1):064x}"  # 20 bits away
    _bank_with(db, "photos", [pdq], "pdq")
    matcher = BankMatcher.from_database(db)
    assert _matched(matcher, "pdq", near) == ["photos"]
    with db.session() as session:
        banks.update_bank(session, "photos", pdq_threshold=10)
    matcher.refresh()
    assert _matched(matcher, "pdq", near) == []

    with db.session() as session:
        entry = banks.find_entry(session, "photos", "pdq", pdq)
        assert entry is not None
        banks.disable_entry(session, entry.id, until=utcnow() + timedelta(milliseconds=300))
    matcher.refresh()
    assert _matched(matcher, "pdq", pdq) == []
    # The disabled period ends with no write to the bank: the refresh still notices.
    matcher._state = type(matcher._state)(matcher._state.banks, utcnow())
    with db.session() as session:
        entry = banks.find_entry(session, "photos", "pdq", pdq)
        assert entry is not None
        entry.disabled_until = utcnow() - timedelta(microseconds=1)
        # Writing the entry directly does not touch the bank: only the expiry check can see it.
    assert _matched(matcher, "pdq", pdq) == []
    matcher._state = type(matcher._state)(matcher._state.banks, utcnow() - timedelta(seconds=5))
    assert len(matcher.refresh()) == 1
    assert _matched(matcher, "pdq", pdq) == ["photos"]


def test_lookup_by_value_matches_vpdq_and_exact(db: Database) -> None:
    rng = random.Random(9)
    sha = rand_hex(rng, "sha256")
    _bank_with(db, "exact", [sha], "sha256")
    matcher = BankMatcher.from_database(db)
    outcomes = matcher.lookup("sha256", [sha, rand_hex(rng, "sha256")])
    assert [[m.entry_id for m in o.matches] for o in outcomes][1] == []
    assert outcomes[0].matches[0].bank == "exact"
    assert outcomes[0].matches[0].distance == 0
