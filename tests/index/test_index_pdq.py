"""The PDQ index is exact: randomized comparisons against brute force.

All hashes are synthetic random bits (`vigil.index.synthetic`), never real hash lists.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from numpy.typing import NDArray

from vigil.index import PDQIndex, allocate_radii
from vigil.index import pdq as pdq_module
from vigil.index._bits import to_words
from vigil.index.pdq import ball_size, flip_masks, probe_plan, substrings
from vigil.index.synthetic import clustered_pdq, flip_exactly, perturb, random_pdq
from vigil.signals.pdq import hamming

THRESHOLDS = (0, 1, 15, 31, 32, 48, 64)


@dataclass
class Model:
    """What the index should hold: id -> (hash bytes, enabled)."""

    hashes: dict[int, NDArray[np.uint8]] = field(default_factory=dict)
    enabled: dict[int, bool] = field(default_factory=dict)

    def add(self, ids: NDArray[np.int64], hashes: NDArray[np.uint8], enabled: bool = True) -> None:
        for entry, row in zip(ids.tolist(), hashes, strict=True):
            self.hashes[entry] = row.copy()
            self.enabled[entry] = enabled

    def remove(self, ids: NDArray[np.int64]) -> int:
        removed = 0
        for entry in ids.tolist():
            if self.hashes.pop(entry, None) is not None:
                del self.enabled[entry]
                removed += 1
        return removed

    def arrays(self) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
        live = [entry for entry, on in self.enabled.items() if on]
        ids = np.array(live, dtype=np.int64)
        if not live:
            return ids, np.zeros((0, 32), np.uint8)
        return ids, np.stack([self.hashes[entry] for entry in live])


def brute_force(
    ids: NDArray[np.int64], hashes: NDArray[np.uint8], queries: NDArray[np.uint8], threshold: int
) -> list[list[tuple[int, int]]]:
    """The reference answer, by popcount over bytes: sorted by (distance, id)."""
    results = []
    for query in queries:
        dist = np.bitwise_count(hashes ^ query).sum(axis=1, dtype=np.int64)
        hit = np.flatnonzero(dist <= threshold)
        results.append(sorted(zip(dist[hit].tolist(), ids[hit].tolist(), strict=True)))
    return [[(entry, distance) for distance, entry in result] for result in results]


def make_queries(
    rng: np.random.Generator, stored: NDArray[np.uint8], count: int
) -> NDArray[np.uint8]:
    """Stored hashes as they are, stored hashes with 1-40 bits flipped, and random hashes."""
    picks = stored[rng.integers(0, stored.shape[0], size=count)]
    exact = picks[: count // 4]
    near = flip_exactly(rng, picks[count // 4 : 3 * count // 4], rng.integers(1, 41, count // 2))
    far = random_pdq(rng, count - exact.shape[0] - near.shape[0])
    return np.concatenate([exact, near, far])


def check(index: PDQIndex, model: Model, queries: NDArray[np.uint8]) -> None:
    ids, hashes = model.arrays()
    for threshold in THRESHOLDS:
        expected = brute_force(ids, hashes, queries, threshold)
        assert index.search(queries, threshold) == expected, f"threshold {threshold}"


@pytest.fixture(params=["cost model", "always probe"])
def probing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run with the planner's choice, and with scanning priced out so every segment with
    tables probes at every threshold (the multi-index path at 48 and 64 too)."""
    if request.param == "always probe":
        monkeypatch.setattr(pdq_module, "_SCAN_NS", 1e9)
    yield str(request.param)


def test_exact_against_brute_force_over_100k_clustered(probing: str) -> None:
    rng = np.random.default_rng(20240531)
    hashes, _ = clustered_pdq(rng, 100_000, large_clusters=4, large_cluster_size=300)
    ids = rng.permutation(10 * hashes.shape[0])[: hashes.shape[0]].astype(np.int64)
    model = Model()
    model.add(ids[:80_000], hashes[:80_000])
    index = PDQIndex.build(ids[:80_000], hashes[:80_000], delta_capacity=2048)
    main = index._segments[0]
    assert main.tables > 0 and main.plan(31) is not None, "the main segment must probe at 31"
    if probing == "always probe":
        assert all(main.plan(t) is not None for t in THRESHOLDS)
    check(index, model, make_queries(rng, hashes[:80_000], 48))

    # Interleave additions (to the delta and, past its capacity, as segments), replacements,
    # removals, disabling and enabling; every change must show in the next search.
    index.add(ids[80_000:80_500], hashes[80_000:80_500])
    model.add(ids[80_000:80_500], hashes[80_000:80_500])
    index.add(ids[80_500:95_000], hashes[80_500:95_000])
    model.add(ids[80_500:95_000], hashes[80_500:95_000])
    gone = rng.choice(ids[:95_000], size=5_000, replace=False)
    assert index.remove(gone) == model.remove(gone)
    off = rng.choice(ids[:95_000], size=5_000, replace=False)
    found = index.set_enabled(off, False)
    assert found == sum(1 for entry in off.tolist() if entry in model.hashes)
    for entry in off.tolist():
        if entry in model.enabled:
            model.enabled[entry] = False
    replaced = rng.choice(ids[:95_000], size=1_000, replace=False)
    new_values = perturb(rng, hashes[rng.integers(0, 95_000, size=1_000)], 20)
    index.add(replaced, new_values)
    model.add(replaced, new_values)
    stored = np.concatenate([hashes[:95_000], new_values])
    check(index, model, make_queries(rng, stored, 48))

    back_on = off[:2_500]
    index.set_enabled(back_on, True)
    for entry in back_on.tolist():
        if entry in model.enabled:
            model.enabled[entry] = True
    index.add(ids[95_000:], hashes[95_000:], enabled=False)
    model.add(ids[95_000:], hashes[95_000:], enabled=False)
    index.set_enabled(ids[97_000:], True)
    for entry in ids[97_000:].tolist():
        model.enabled[entry] = True
    assert len(index) == len(model.hashes)
    check(index, model, make_queries(rng, hashes, 48))

    index.compact()
    assert len(index._segments) == 1
    check(index, model, make_queries(rng, hashes, 24))


@pytest.mark.parametrize("width", [6, 9, 13, 16, 20])
def test_exact_for_every_table_width(width: int) -> None:
    """Widths that leave bits uncovered (256 % width != 0) and sparse or dense tables."""
    rng = np.random.default_rng(width)
    hashes, _ = clustered_pdq(rng, 6_000, mean_cluster_size=8)
    ids = np.arange(hashes.shape[0], dtype=np.int64)
    index = PDQIndex.build(ids, hashes, width=width)
    model = Model()
    model.add(ids, hashes)
    queries = make_queries(rng, hashes, 24)
    for threshold in (*THRESHOLDS, 2, 5, 11, 40, 90, 128, 256):
        expected = brute_force(*model.arrays(), queries, threshold)
        assert index.search(queries, threshold) == expected, f"threshold {threshold}"
        # one at a time takes the single-query path
        assert [index.search(q[None], threshold)[0] for q in queries[:6]] == expected[:6]


@settings(max_examples=200, deadline=None)
@given(tables=st.integers(1, 40), threshold=st.integers(0, 256))
def test_radii_satisfy_the_generalised_pigeonhole_bound(tables: int, threshold: int) -> None:
    radii = allocate_radii(tables, threshold)
    assert len(radii) == tables
    assert sum(r + 1 for r in radii) == threshold + 1
    assert all(r >= -1 for r in radii)
    probed = [r for r in radii if r >= 0]
    assert max(probed) - min(probed) <= 1


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    width=st.integers(4, 32),
    threshold=st.integers(0, 80),
    data=st.data(),
)
def test_pigeonhole_some_table_is_within_its_radius(
    seed: int, width: int, threshold: int, data: st.DataObject
) -> None:
    """For any pair within the threshold, some probed table's substrings are within that
    table's radius: so the probe of that table finds the stored hash."""
    rng = np.random.default_rng(seed)
    distance = data.draw(st.integers(0, threshold))
    stored = random_pdq(rng, 1)
    query = flip_exactly(rng, stored, distance)
    tables = 256 // width
    radii = allocate_radii(tables, threshold)
    a = substrings(to_words(stored), width, tables)[0]
    b = substrings(to_words(query), width, tables)[0]
    differing = [int(x ^ y).bit_count() for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    assert any(d <= r for d, r in zip(differing, radii, strict=True))


@pytest.mark.parametrize(("width", "radius"), [(8, 0), (8, 3), (13, 2), (21, 2), (23, 3)])
def test_flip_masks_are_the_whole_ball(width: int, radius: int) -> None:
    masks = flip_masks(width, radius)
    assert masks.size == ball_size(width, radius) == np.unique(masks).size
    assert int(masks.max()) < 1 << width
    assert int(np.bitwise_count(masks).max()) <= radius


def test_probe_plan_counts() -> None:
    plan = probe_plan(23, 11, 31)
    assert plan is not None
    assert plan.radii == (2,) * 10 + (1,)
    assert plan.size == 10 * (1 + 23 + 253) + 24


def test_dihedral_search_takes_the_best_variant() -> None:
    rng = np.random.default_rng(7)
    stored = random_pdq(rng, 3_000)
    ids = np.arange(100, 3_100, dtype=np.int64)
    index = PDQIndex.build(ids, stored)
    # Query variants: variant v of query i is near stored hash 8*i+v at a known distance.
    variants = np.stack(
        [flip_exactly(rng, stored[8 * i : 8 * i + 8], np.arange(8) * 4 + 3) for i in range(20)]
    )
    variants[0, 5] = stored[0]  # two variants near the same entry: the closer one wins
    variants[1, 2] = variants[1, 6] = stored[9]  # a tie: the lower variant index
    found = index.search_dihedral(variants, 31)
    for i in range(20):
        expected: dict[int, tuple[int, int]] = {}
        for v in range(8):
            for entry, distance in brute_force(ids, stored, variants[i, v][None], 31)[0]:
                if entry not in expected or distance < expected[entry][0]:
                    expected[entry] = (distance, v)
        want = sorted((d, e, v) for e, (d, v) in expected.items())
        assert found[i] == [(e, d, v) for d, e, v in want]
    assert (100, 0, 5) in found[0]
    assert (109, 0, 2) in found[1]
    hexes = [[row.tobytes().hex() for row in query] for query in variants[:3]]
    assert index.search_dihedral(hexes, 31) == found[:3]


def test_hex_and_array_queries_agree_with_signals_hamming() -> None:
    rng = np.random.default_rng(3)
    stored = random_pdq(rng, 500)
    index = PDQIndex()
    index.add(np.arange(500), [row.tobytes().hex().upper() for row in stored])
    query = flip_exactly(rng, stored[:1], 9)[0].tobytes().hex()
    hits = index.search([query], 31)[0]
    assert hits[0] == (0, 9)
    assert all(d == hamming(query, stored[e].tobytes().hex()) for e, d in hits)
    assert index.search(np.frombuffer(bytes.fromhex(query), np.uint8)[None], 31) == [hits]


def test_updates_and_accessors() -> None:
    rng = np.random.default_rng(11)
    stored = random_pdq(rng, 10)
    index = PDQIndex(delta_capacity=4)
    index.add(np.arange(10), stored)
    assert len(index) == 10 and 3 in index and 10 not in index
    assert index.get(3) == stored[3].tobytes().hex()
    index.add([3], stored[4:5])  # upsert: same id, new value
    assert len(index) == 10 and index.get(3) == stored[4].tobytes().hex()
    assert [e for e, _ in index.search(stored[3:4], 0)[0]] == []
    assert [e for e, _ in index.search(stored[4:5], 0)[0]] == [3, 4]
    assert index.set_enabled([4, 99], False) == 1 and index.is_enabled(4) is False
    assert [e for e, _ in index.search(stored[4:5], 0)[0]] == [3]
    assert index.remove([3, 3, 99]) == 1 and index.get(3) is None
    assert index.search(stored[4:5], 0) == [[]]
    index.set_enabled([4], True)
    assert index.search(stored[4:5], 0) == [[(4, 0)]]
    assert index.ids().tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert index.search(np.zeros((0, 32), np.uint8), 31) == []
    assert PDQIndex().search(stored[:2], 64) == [[], []]


def test_removing_most_of_a_segment_rebuilds_it() -> None:
    rng = np.random.default_rng(5)
    stored = random_pdq(rng, 20_000)
    index = PDQIndex.build(np.arange(20_000), stored)
    index.remove(np.arange(15_000))
    assert len(index) == 5_000
    assert sum(len(s) for s in index._segments) == 5_000
    assert index.search(stored[14_999:15_001], 0) == [[], [(15_000, 0)]]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda i: i.search(["ab" * 32], 257), "threshold"),
        (lambda i: i.search(["ab" * 32], -1), "threshold"),
        (lambda i: i.search(["zz" * 32], 31), "not hexadecimal"),
        (lambda i: i.search(["ab" * 31], 31), "64 hexadecimal"),
        (lambda i: i.search(np.zeros((2, 31), np.uint8), 31), "n x 32"),
        (lambda i: i.add([1, 1], ["ab" * 32, "cd" * 32]), "twice"),
        (lambda i: i.add([1, 2], ["ab" * 32]), "2 ids for 1"),
        (lambda i: i.search_dihedral(np.zeros((2, 8, 31), np.uint8), 31), "q x k x 32"),
    ],
)
def test_bad_input_is_refused(call: object, message: str) -> None:
    index = PDQIndex()
    with pytest.raises(ValueError, match=message):
        call(index)  # type: ignore[operator]


def test_incremental_growth_keeps_few_segments() -> None:
    """Adding one batch at a time: segment sizes stay geometric, so searches stay exact and
    touch O(log n) segments."""
    rng = np.random.default_rng(9)
    stored = random_pdq(rng, 30_000)
    index = PDQIndex(delta_capacity=1_000)
    for start in range(0, 30_000, 700):
        index.add(np.arange(start, min(start + 700, 30_000)), stored[start : start + 700])
    sizes = [len(s) for s in index._segments]
    assert sum(sizes) + index._delta.live == 30_000
    assert all(a > 4 * b for a, b in itertools.pairwise(sizes))
    queries = make_queries(rng, stored, 12)
    assert index.search(queries, 31) == brute_force(np.arange(30_000), stored, queries, 31)


class IndexMachine(RuleBasedStateMachine):
    """Random sequences of updates on a tiny index (delta of 5, small segments built with
    tables): every search equals brute force over the model, before and after snapshots."""

    def __init__(self) -> None:
        super().__init__()
        # Give even tiny segments tables, and always probe them.
        self.saved = (pdq_module._MIN_TABLE_ROWS, pdq_module._SCAN_NS)
        pdq_module._MIN_TABLE_ROWS, pdq_module._SCAN_NS = 1, 1e9
        self.rng = np.random.default_rng(0)
        self.index = PDQIndex(delta_capacity=5, merge_factor=2)
        self.model = Model()
        self.pool = clustered_pdq(self.rng, 400, mean_cluster_size=6, max_flips=12)[0]

    @rule(start=st.integers(0, 399), count=st.integers(1, 12), enabled=st.booleans())
    def add(self, start: int, count: int, enabled: bool) -> None:
        ids = np.arange(start, start + count, dtype=np.int64) % 60
        ids = np.unique(ids)
        rows = self.pool[self.rng.integers(0, 400, size=ids.size)]
        self.index.add(ids, rows, enabled=enabled)
        self.model.add(ids, rows, enabled)

    @rule(ids=st.lists(st.integers(0, 70), max_size=10))
    def remove(self, ids: list[int]) -> None:
        array = np.array(ids, dtype=np.int64)
        assert self.index.remove(array) == self.model.remove(np.unique(array))

    @rule(ids=st.lists(st.integers(0, 70), max_size=10), enabled=st.booleans())
    def set_enabled(self, ids: list[int], enabled: bool) -> None:
        found = self.index.set_enabled(np.array(ids, dtype=np.int64), enabled)
        present = {entry for entry in ids if entry in self.model.hashes}
        assert found == len(present)
        for entry in present:
            self.model.enabled[entry] = enabled

    @rule()
    def compact(self) -> None:
        self.index.compact()

    @rule()
    def snapshot(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "pdq.vidx"
            self.index.save(path)
            self.index = PDQIndex.load(path)

    @rule(threshold=st.sampled_from([0, 3, 12, 31, 64]), pick=st.integers(0, 399))
    def search(self, threshold: int, pick: int) -> None:
        queries = np.concatenate([self.pool[pick : pick + 3], random_pdq(self.rng, 1)])
        expected = brute_force(*self.model.arrays(), queries, threshold)
        assert self.index.search(queries, threshold) == expected

    def teardown(self) -> None:
        pdq_module._MIN_TABLE_ROWS, pdq_module._SCAN_NS = self.saved

    @invariant()
    def sizes_agree(self) -> None:
        assert len(self.index) == len(self.model.hashes)
        assert self.index.ids().tolist() == sorted(self.model.hashes)


IndexMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_index_state_machine = IndexMachine.TestCase
