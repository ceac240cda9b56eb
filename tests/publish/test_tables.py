from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest
from IPython.display import Markdown

from helpers.publish import tables
from tests.browser import unreadable, visible_text


def _cells(styler) -> list[list[str]]:
    """The table as a reader sees it: header row, then each row's cells."""
    page = styler.to_html() if hasattr(styler, "to_html") else styler._repr_html_()
    cells = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", flags=re.DOTALL)
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells.findall(row)]
            for row in re.findall(r"<tr>(.*?)</tr>", page, flags=re.DOTALL)]


def test_a_frame_of_raw_numbers_reads_as_a_table_for_people():
    frame = pd.DataFrame({"variant": ["control", "b"], "users": [3180, 3115], "P(best)": [0.0794, 0.9206],
                          "p_value": [np.nan, 9.231379e-09], "rmse": [13.850481704178579, 1234567.8],
                          "first_assigned": pd.to_datetime(["2026-10-05 00:04:19", None]),
                          "significant": [False, True], "note": [None, "ok"]})
    shown = tables.table(frame, units={"rmse": "GW"})
    assert _cells(shown) == [
        ["variant", "users", "P(best)", "p value", "RMSE (GW)", "first assigned", "significant", "note"],
        ["control", "3,180", "7.94%", "\u2013", "13.9", "2026-10-05 00:04:19", "no", "\u2013"],
        ["b", "3,115", "92.1%", "< 0.001", "1,234,568", "\u2013", "yes", "ok"]]
    page = shown.to_html()
    assert "&lt; 0.001" in page and 'class="data row0 col1 number"' in page and "row0 col0 number" not in page
    assert unreadable(visible_text(page)) == []
    assert unreadable(visible_text(frame.to_html())) != []  # what the report showed before: NaN, None, e-09


def test_the_index_is_kept_only_when_it_means_something():
    frame = pd.DataFrame({"rmse": [1.0, 2.0]}, index=pd.Index(["ets", "naive"], name="model"))
    assert _cells(tables.table(frame))[0] == ["model", "RMSE"]
    assert _cells(tables.table(frame.reset_index()))[0] == ["model", "RMSE"]  # 0, 1: dropped
    assert _cells(tables.table(frame, index=False))[0] == ["RMSE"]
    unnamed = pd.DataFrame({"mean": [4.61]}, index=["y"])
    assert _cells(tables.table(unnamed)) == [["", "mean"], ["y", "4.61"]]
    shifted = pd.DataFrame({"a": [1, 2]}, index=pd.RangeIndex(1, 3))
    assert _cells(tables.table(shifted))[0] == ["", "a"]
    assert not tables.meaningful_index(pd.DataFrame({"a": [1, 2]}, index=pd.Index([0, 1])))


def test_columns_of_several_levels_and_model_names():
    frame = pd.DataFrame([[0.5, 0.9]], columns=pd.MultiIndex.from_tuples([("coverage", "80"), ("coverage", "95")]))
    assert _cells(tables.table(frame))[0] == ["coverage 80", "coverage 95"]
    folds = pd.DataFrame({"ets_calendar": [5.31], "seasonal_naive": [8.51]})
    assert _cells(tables.table(folds, words=False))[0] == ["ets_calendar", "seasonal_naive"]
    assert _cells(tables.table(folds))[0] == ["ets calendar", "seasonal naive"]


def test_options_say_how_a_column_reads():
    frame = pd.DataFrame({"lift": [0.0078], "relative lift": [0.165], "rate": [0.5], "p": [0.2], "x": [0.25]})
    shown = tables.table(frame, points=["lift"], percent=["relative lift", "x"], plain=["rate"],
                         labels={"x": "share of x"}, caption="One experiment")
    assert _cells(shown)[1:] == [["+0.78 pp", "16.5%", "0.5", "0.2", "25%"]]
    assert "share of x" in shown.to_html() and "One experiment" in shown.to_html()
    assert _cells(tables.table(frame, p_values=["x"]))[1][-1] == "0.25"
    drift = pd.DataFrame({"KS p-value": [1e-12], "PSI": [0.0123456]})  # the monitoring page's drift table
    assert _cells(tables.table(drift))[1] == ["< 0.001", "0.0123"]
    with pytest.raises(KeyError, match=r"table\(percent=...\) names columns the table does not have: nope"):
        tables.table(frame, percent=["nope"])


def test_a_series_or_a_mapping_is_an_item_value_table():
    assert _cells(tables.table({"selected": "ets", "members": ["a", "b"]})) == [
        ["item", "value"], ["selected", "ets"], ["members", "a, b"]]
    assert _cells(tables.table(pd.Series({"dates": 365, "agree": 365})))[1] == ["dates", "365"]


def test_an_empty_table_is_a_sentence_and_a_missing_part_stays_what_it_is():
    empty = tables.table(pd.DataFrame({"reason": [], "rows": []}), empty="No row was quarantined.")
    assert empty._repr_html_() == "<p>No row was quarantined.</p>" and repr(empty) == "No row was quarantined."
    assert _cells(tables.table(pd.DataFrame({"reason": []})))[0] == ["reason"]  # no sentence given: headers
    note = Markdown("*not fitted*")
    assert tables.show(note) is note
    assert _cells(tables.show(pd.DataFrame({"a": [0.5]}), percent=["a"]))[1] == ["50%"]
    assert tables.html(pd.DataFrame({"a": []}), empty="none <yet>") == "<p>none &lt;yet&gt;</p>"
    assert "<table" in tables.html(pd.DataFrame({"a": [1]}))


def test_the_browser_check_finds_what_no_reader_should_meet():
    text = "a NaN\nvalue None\n{'dates': 365, 'agree': 365}\n9.231379e-09\n1E+05\nNaT\nok 0.0457"
    assert [line.split(":")[0] for line in unreadable(text)] == [
        "NaN", "None", "a dict repr", "a float in scientific notation", "a float in scientific notation", "NaT"]
    # hashes, versions and words are not numbers with exponents
    assert unreadable("sha 59c9d65a7172 fd6d1d75fd3928a5d6e78e9d87 version 2.3e 1.2.3e4 Nonesuch") == []
    hidden = "<div class='jp-InputArea'>print(None)</div><script>var x = NaN</script><p>shown</p>"
    assert visible_text(hidden).strip() == "shown"
