"""The browser check's list of what a reader should not meet (tests/browser.py)."""

from __future__ import annotations

from tests.browser import unreadable


def test_numbers_in_scientific_notation_are_found_but_not_ids_that_look_like_them():
    assert unreadable("p = 9.231379e-09 and -1.2E+05") == [
        "a float in scientific notation: p = 9.231379e-09 and -1.2E+05"]
    assert unreadable("run 20261202T125123-1393e535 (1680 rows loaded), commit ab12e345, hash 1e5f") == []
    assert [line.split(":")[0] for line in unreadable("NaN\nNone\n{'dates': 365}")] == [
        "NaN", "None", "a dict repr"]
