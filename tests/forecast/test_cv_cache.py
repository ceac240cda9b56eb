"""The cross-validation cache and the parallel backtest: same forecasts, fewer fits."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from helpers.forecast import backtest as bt
from helpers.forecast import comparison as cmp
from helpers.forecast import cv_cache
from helpers.forecast.models import model_catalog
from tests.support import daily_series

NAMES = "naive,seasonal_naive,window_average,ses"


def _config(models: str = NAMES, horizon: int = 7, **settings) -> cmp.ComparisonConfig:
    config = cmp.ComparisonConfig.parse("daily", horizon, 4, 60, models, 14)
    return cmp.replace(config, model_settings=settings) if settings else config


def _fitted(run: cmp.Comparison) -> dict[str, int]:
    """Folds fitted (not read from the cache) per model."""
    timings = run.timings
    return timings.loc[~timings["cached"]].groupby("model").size().to_dict()


@pytest.fixture(scope="module")
def frame():
    return cmp.prepare_frame(daily_series(n=120).assign(temperature=20.0, filled=False))


def test_parallel_backtest_gives_the_serial_forecasts(frame):
    models = model_catalog((7,), 7, NAMES.split(","), False, False)
    cutoffs = bt.make_cutoffs(frame["ds"], 7, 3, 60)
    serial, serial_times = bt.backtest(frame, models, 7, cutoffs)
    parallel, parallel_times = bt.backtest(frame, models, 7, cutoffs, jobs=2)
    pd.testing.assert_frame_equal(serial, parallel)
    assert list(parallel_times[["model", "cutoff"]].itertuples(index=False)) == \
        list(serial_times[["model", "cutoff"]].itertuples(index=False))
    with pytest.raises(ValueError, match="jobs must be 0"):
        bt.backtest(frame, models, 7, cutoffs, jobs=-1)


def test_workers_stopped_by_the_pool_print_nothing_under_a_parent_sigterm_handler(frame, capfd):
    """The pipeline command handles SIGTERM (to stop a build cleanly); the pool stops its forked
    workers with SIGTERM, which must end them quietly, not through the parent's handler."""
    import signal

    def stop(signum, frame):
        raise RuntimeError("the parent's handler ran in a worker")

    models = model_catalog((7,), 7, ["naive", "seasonal_naive"], False, False)
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        bt.backtest(frame, models, 7, bt.make_cutoffs(frame["ds"], 7, 3, 60), jobs=2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "Traceback" not in capfd.readouterr().err


def test_a_second_run_reads_every_fold_and_gives_the_same_comparison(frame, tmp_path):
    first = cmp.run_comparison(frame, _config(), cache_dir=tmp_path)
    second = cmp.run_comparison(frame, _config(), cache_dir=tmp_path)
    assert _fitted(first) == {m: 4 for m in NAMES.split(",")} and _fitted(second) == {}
    pd.testing.assert_frame_equal(first.forecasts, second.forecasts)
    pd.testing.assert_frame_equal(first.scores, second.scores)
    assert second.timings["seconds"].tolist() == first.timings["seconds"].tolist()  # each fold's first fit
    assert cmp.cache_summary(second) == "daily: 0 of 16 (model, fold) fits run, 16 read from the cross-validation cache."
    assert len(list((tmp_path / "daily").rglob("*.json"))) == 16


def test_one_model_setting_or_a_new_model_reruns_only_that_model(frame, tmp_path):
    cmp.run_comparison(frame, _config(), cache_dir=tmp_path)
    changed = cmp.run_comparison(frame, _config(window_average={"window": 3}), cache_dir=tmp_path)
    assert _fitted(changed) == {"window_average": 4}
    fresh = cmp.run_comparison(frame, _config(window_average={"window": 3}))
    pd.testing.assert_frame_equal(changed.forecasts, fresh.forecasts)  # the cache changes nothing
    added = cmp.run_comparison(frame, _config(NAMES + ",holt"), cache_dir=tmp_path)
    assert _fitted(added) == {"holt": 4}


def test_data_and_fold_settings_decide_what_is_fitted_again(frame, tmp_path):
    cmp.run_comparison(frame, _config(), cache_dir=tmp_path)
    assert _fitted(cmp.run_comparison(frame, _config(horizon=5), cache_dir=tmp_path)) == {m: 4 for m in NAMES.split(",")}
    first_day = frame.assign(y=frame["y"].where(frame.index > 0, frame["y"] + 1))
    assert _fitted(cmp.run_comparison(first_day, _config(), cache_dir=tmp_path)) == {m: 4 for m in NAMES.split(",")}
    # A change in the last week is read only by the last fold (training up to its cutoff, its 7 days ahead).
    last_day = frame.assign(y=frame["y"].where(frame.index < len(frame) - 1, frame["y"] + 1))
    assert _fitted(cmp.run_comparison(last_day, _config(), cache_dir=tmp_path)) == {m: 1 for m in NAMES.split(",")}


def test_an_unreadable_entry_is_fitted_again_and_rewritten(frame, tmp_path):
    first = cmp.run_comparison(frame, _config("naive"), cache_dir=tmp_path)
    entries = sorted((tmp_path / "daily" / "naive").glob("*.json"))
    entries[0].write_text("{not json")
    entries[1].write_text(json.dumps({"model": "naive", "seconds": 0.1, "columns": {"mean": [1.0]}}))  # too short
    again = cmp.run_comparison(frame, _config("naive"), cache_dir=tmp_path)
    assert _fitted(again) == {"naive": 2}
    pd.testing.assert_frame_equal(first.forecasts, again.forecasts)
    assert json.loads(entries[0].read_text())["model"] == "naive"


def test_a_cache_that_cannot_be_written_is_a_note_not_a_failure(frame, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    run = cmp.run_comparison(frame, _config("naive"), cache_dir=blocked)
    assert run.selected == "naive"
    (note,) = [n for n in run.notes if "cross-validation cache" in n]
    assert note.startswith("4 folds could not be stored in the cross-validation cache") and "the next run fits" in note


def test_keys_follow_the_model_code_and_its_settings(frame):
    (a,) = model_catalog((7,), 7, ["window_average"], False, False)
    (b,) = model_catalog((7,), 7, ["window_average"], False, False, options={"window_average": {"window": 3}})
    cache = cv_cache.FoldCache("unused", {"grain": "daily"})
    cutoff, digest = frame["ds"].iloc[60], cv_cache.data_digest(frame)
    assert cache.key(a, cutoff, digest, (80, 95)) != cache.key(b, cutoff, digest, (80, 95))
    assert cache.key(a, cutoff, digest, (80, 95)) == cache.key(model_catalog((7,), 7, ["window_average"], False,
                                                                             False)[0], cutoff, digest, (80, 95))
    assert cache.key(a, cutoff, digest, (80,)) != cache.key(a, cutoff, digest, (80, 95))
    assert b.settings == {"season_lengths": [7], "horizon": 7, "window": 3}
    with pytest.raises(ValueError, match="unknown model settings"):
        model_catalog((7,), 7, ["naive"], False, False, options={"naive": {"window": 3}})


def test_cache_folder_sits_beside_the_selection_unless_turned_off(tmp_path):
    from helpers.core.settings import load_settings

    settings = load_settings("test", products=str(tmp_path))
    assert cmp.cache_folder(settings) == tmp_path / "model" / "cv_cache"
    assert cmp.cache_folder(settings, tmp_path / "x" / "selection.json") == tmp_path / "x" / "cv_cache"
    assert cmp.cache_folder(load_settings("test", cv_cache="false")) is None
