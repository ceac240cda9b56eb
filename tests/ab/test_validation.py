"""Row checks on a file of experiment users."""

from __future__ import annotations

import pytest

from helpers.ab import validation
from helpers.data.quality import DataQualityError
from tests.ab.builders import file_rows


def test_file_checks_quarantine_every_bad_row_and_keep_the_count():
    result = validation.validate_experiments(file_rows(), "upload.csv")
    assert sorted(result.clean["user_id"]) == ["u1", "u2", "u7"]
    reasons = dict(zip(result.quarantine["row_number"], result.quarantine["reasons"]))
    assert reasons == {3: "unparseable:assigned_at", 4: "unknown_category:converted", 5: "out_of_range:revenue",
                       6: "out_of_range:revenue", 7: "missing_value:user_id", 9: "duplicate_user:user_id",
                       10: "duplicate_user:user_id", 11: "duplicate_user:user_id",
                       12: "unknown_category:experiment_id"}
    assert result.rows_read == len(result.clean) + len(result.quarantine)


def test_a_missing_column_is_refused_by_name():
    with pytest.raises(DataQualityError, match=r"missing required columns \['revenue'\]"):
        validation.validate_experiments(file_rows().drop(columns="revenue"), "upload.csv")
