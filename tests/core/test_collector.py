"""The collector policy of the batch commands: survivors of a full collection are frozen inside, handed back after."""

from __future__ import annotations

import gc

from helpers.core.collector import frozen_survivors


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_survivors_of_a_full_collection_are_frozen_inside_and_handed_back_after():
    before = gc.get_freeze_count()
    with frozen_survivors():
        kept = [Node() for _ in range(100)]
        gc.collect()  # a full collection: what it finds alive is frozen
        frozen = gc.get_freeze_count()
        assert frozen >= before + 100
        garbage = Node()
        del garbage
        assert gc.collect(0) >= 1  # objects made after the freeze are still collected
    assert gc.get_freeze_count() == 0 and kept
    assert _freeze_callbacks() == 0


def test_the_policy_is_removed_even_when_the_command_fails():
    try:
        with frozen_survivors():
            raise RuntimeError("a failed build")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0 and _freeze_callbacks() == 0


def _freeze_callbacks() -> int:
    return sum(getattr(cb, "__name__", "") == "_freeze_after_full_collection" for cb in gc.callbacks)
