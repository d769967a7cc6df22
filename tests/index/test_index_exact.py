"""ExactIndex against a dictionary model (random digests only)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from vigil.index import ExactIndex


def test_lookup_many_with_shared_values_and_updates() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 256, (3_000, 20), dtype=np.uint8)
    values[1_000:1_100] = values[:100]  # the same file in two banks: two ids, one value
    index = ExactIndex(20, delta_capacity=500)
    index.add(np.arange(2_000), values[:2_000])  # large batch: straight into the main part
    index.add(np.arange(2_000, 2_300), values[2_000:2_300])  # the delta
    index.add(np.arange(2_300, 3_000), values[2_300:])  # merges
    hexes = [row.tobytes().hex() for row in values]
    assert index.lookup(hexes[:3]) == [[0, 1_000], [1, 1_001], [2, 1_002]]
    assert index.lookup([hexes[2_500].upper()]) == [[2_500]]
    assert index.lookup(["00" * 20]) == [[]]
    index.set_enabled([1_000], False)
    index.remove([1])
    assert index.lookup(hexes[:2]) == [[0], [1_001]]
    index.add([0], values[5:6])  # upsert moves id 0 to another value
    assert index.lookup(hexes[:1]) == [[]] and index.lookup(hexes[5:6]) == [[0, 5, 1_005]]
    assert index.get(0) == hexes[5] and index.get(1) is None and 0 in index and 1 not in index
    assert len(index) == 2_999
    index.set_enabled([1_000], True)
    assert index.lookup(hexes[:1]) == [[1_000]]


def test_bad_values_are_refused() -> None:
    index = ExactIndex(16)
    with pytest.raises(ValueError, match="32 hexadecimal"):
        index.add([1], ["abc"])
    with pytest.raises(ValueError, match="not hexadecimal"):
        index.lookup(["zz" * 16])
    with pytest.raises(TypeError, match="single string"):
        index.lookup("ab" * 16)
    with pytest.raises(ValueError, match="twice"):
        index.add([1, 1], ["ab" * 16, "cd" * 16])


class ExactMachine(RuleBasedStateMachine):
    """Random updates with a tiny delta: lookups always equal the dictionary model."""

    def __init__(self) -> None:
        super().__init__()
        self.index = ExactIndex(16, delta_capacity=3)
        self.values = [bytes([v]) * 16 for v in range(8)]
        self.model: dict[int, tuple[bytes, bool]] = {}

    @rule(
        ids=st.lists(st.integers(0, 30), min_size=1, max_size=6, unique=True),
        value=st.integers(0, 7),
        enabled=st.booleans(),
    )
    def add(self, ids: list[int], value: int, enabled: bool) -> None:
        self.index.add(ids, [self.values[value].hex()] * len(ids), enabled=enabled)
        for entry in ids:
            self.model[entry] = (self.values[value], enabled)

    @rule(ids=st.lists(st.integers(0, 35), max_size=8))
    def remove(self, ids: list[int]) -> None:
        expected = len({entry for entry in ids if entry in self.model})
        assert self.index.remove(ids) == expected
        for entry in ids:
            self.model.pop(entry, None)

    @rule(ids=st.lists(st.integers(0, 35), max_size=8), enabled=st.booleans())
    def set_enabled(self, ids: list[int], enabled: bool) -> None:
        present = {entry for entry in ids if entry in self.model}
        assert self.index.set_enabled(ids, enabled) == len(present)
        for entry in present:
            self.model[entry] = (self.model[entry][0], enabled)

    @invariant()
    def lookups_agree(self) -> None:
        expected = [
            sorted(e for e, (v, on) in self.model.items() if v == value and on)
            for value in self.values
        ]
        assert self.index.lookup([v.hex() for v in self.values]) == expected
        assert len(self.index) == len(self.model)


ExactMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
test_exact_state_machine = ExactMachine.TestCase
