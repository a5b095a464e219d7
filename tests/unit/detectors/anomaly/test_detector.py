"""Tests of the streaming univariate anomaly detector (detectors.anomaly.detector)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest

from detectors.anomaly import kernel as K
from detectors.anomaly.detector import AnomalyConfig, AnomalyDetector


def _series(n: int = 3000, seed: int = 7, spike_at: int | None = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 50.0 + 10.0 * np.sin(2 * np.pi * t / 288) + rng.normal(0.0, 1.0, n)
    if spike_at is not None and spike_at < n:
        x[spike_at] += 60.0
    return x


def test_scores_are_in_unit_interval_and_zero_during_warmup() -> None:
    det = AnomalyDetector(AnomalyConfig(warmup=50))
    s = det.update_many(None, _series())
    assert s.shape == (3000,)
    assert np.all((s >= 0.0) & (s <= 1.0))
    assert np.all(s[:50] == 0.0)
    assert det.n == 3000


def test_spike_is_flagged_and_quiet_stretch_is_not() -> None:
    cfg = AnomalyConfig()
    det = AnomalyDetector(cfg)
    s = det.update_many(None, _series())
    assert s[2000] >= cfg.alarm
    # after the learning period the clean, periodic part raises at most a couple of alarms
    assert int(np.sum(s[600:1990] >= cfg.alarm)) <= 2


def test_level_shift_is_flagged() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(10.0, 0.5, 1500), rng.normal(16.0, 0.5, 300)])
    s = AnomalyDetector().update_many(None, x)
    assert s[1500:1510].max() >= AnomalyConfig().alarm


def test_refractory_period_damps_repeated_alarms() -> None:
    cfg = AnomalyConfig(refractory=50, damp=0.0)
    x = _series(spike_at=None)
    x[2000:2005] += 80.0
    s = AnomalyDetector(cfg).update_many(None, x)
    first = int(np.argmax(s >= cfg.alarm))
    assert 2000 <= first <= 2004
    assert np.all(s[first + 1 : first + 51] == 0.0)


def _stamps(n: int, step_s: float = 300.0) -> np.ndarray:
    return 1_700_000_000.0 + step_s * np.arange(n)


def test_update_and_update_many_give_identical_scores() -> None:
    x = _series(1500)
    ts = _stamps(1500)
    batch = AnomalyDetector().update_many(ts, x)
    one = AnomalyDetector()
    single = np.array([one.update(float(t), v) for t, v in zip(ts, x)])
    assert np.array_equal(batch, single)
    chunked = AnomalyDetector()
    parts = [chunked.update_many(t, c) for t, c in zip(np.array_split(ts, 7), np.array_split(x, 7))]
    assert np.array_equal(batch, np.concatenate(parts))
    # datetimes (aware, or naive taken as UTC) and datetime64 give the same scores as epoch seconds
    aware = [datetime.fromtimestamp(t, tz=UTC) for t in ts]
    assert np.array_equal(AnomalyDetector().update_many(aware, x), batch)
    naive = [d.replace(tzinfo=None) for d in aware]
    per_naive = AnomalyDetector()
    assert np.array_equal(np.array([per_naive.update(d, v) for d, v in zip(naive, x)]), batch)
    dt64 = (ts * 1e9).astype("int64").astype("datetime64[ns]")
    assert np.array_equal(AnomalyDetector().update_many(dt64, x), batch)


def test_without_timestamps_the_seasonal_component_stays_neutral() -> None:
    x = _series(1500)
    no_ts = AnomalyDetector().update_many(None, x)
    no_seasonal = AnomalyDetector(AnomalyConfig(w_seasonal=0.0)).update_many(_stamps(1500), x)
    assert np.array_equal(no_ts, no_seasonal)


def _daily_square(days: int = 14, per_day: int = 288) -> np.ndarray:
    t = np.arange(days * per_day)
    return np.where((t % per_day) < per_day // 2, 20.0, 80.0)


def test_perfectly_periodic_series_raises_no_alarm() -> None:
    # a daily square wave: every level change is part of the rhythm, none is an anomaly
    x = _daily_square()
    rng = np.random.default_rng(4)
    for series in (x, x + rng.normal(0.0, 0.5, x.shape[0])):
        s = AnomalyDetector().update_many(_stamps(x.shape[0]), series)
        assert int(np.sum(s[600:] >= AnomalyConfig().alarm)) == 0


def test_broken_daily_rhythm_is_flagged_with_timestamps() -> None:
    # the high half of day 10 never comes: only a time-of-day model can tell
    x = _daily_square()
    rng = np.random.default_rng(5)
    x = x + rng.normal(0.0, 1.0, x.shape[0])
    start = 10 * 288 + 144
    x[start : start + 144] = 20.0 + rng.normal(0.0, 1.0, 144)
    ts = _stamps(x.shape[0])
    cfg = AnomalyConfig()
    s = AnomalyDetector(cfg).update_many(ts, x)
    assert s[start : start + 144].max() >= cfg.alarm
    assert int(np.sum(s[600:start] >= cfg.alarm)) == 0
    blind = AnomalyDetector(cfg).update_many(None, x)
    assert blind[start : start + 144].max() < s[start : start + 144].max()


@pytest.mark.skipif(not K.HAVE_NUMBA, reason="numba not installed")
def test_compiled_kernel_matches_plain_python_kernel() -> None:
    x = _series(1200)
    p = AnomalyConfig().as_params()
    outs = []
    for fn in (K.run_kernel, K.run_kernel.py_func):
        out = np.zeros_like(x)
        fn(_stamps(x.shape[0]), x, out, np.zeros(K.N_STATE), np.zeros(K.TAB_SIZE), p)
        outs.append(out)
    np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=1e-12)


def test_snapshot_restore_continues_identically_and_is_json() -> None:
    x = _series()
    ts = _stamps(x.shape[0])
    ref = AnomalyDetector().update_many(ts, x)
    det = AnomalyDetector()
    det.update_many(ts[:1700], x[:1700])
    snap = json.loads(json.dumps(det.snapshot()))
    again = AnomalyDetector.restore(snap)
    assert again.n == 1700
    assert again.last_timestamp == ts[1699]
    assert np.array_equal(again.update_many(ts[1700:], x[1700:]), ref[1700:])


def test_state_is_bounded() -> None:
    det = AnomalyDetector()
    det.update_many(None, _series(500))
    size_small = len(det.snapshot()["state"])
    det.update_many(None, _series(20000, seed=1))
    snap = det.snapshot()
    assert len(snap["state"]) == size_small
    assert len(snap["table_index"]) <= K.TAB_SIZE


def test_non_finite_values_score_zero_and_leave_state_unchanged() -> None:
    det = AnomalyDetector()
    det.update_many(None, _series(800))
    before = det.snapshot()
    assert det.update(None, math.nan) == 0.0
    assert det.update(None, math.inf) == 0.0
    assert det.snapshot()["state"] == before["state"]


def test_expected_range_brackets_normal_values() -> None:
    det = AnomalyDetector()
    assert all(math.isnan(v) for v in det.expected_range())
    x = _series(1000, spike_at=None)
    det.update_many(None, x)
    low, high = det.expected_range()
    assert low < x[-1] < high
    assert high - low < 30.0


def test_flat_series_raises_no_alarm() -> None:
    s = AnomalyDetector().update_many(None, np.full(3000, 5.0))
    assert s.max() < AnomalyConfig().alarm


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        AnomalyConfig(bins=1)
    with pytest.raises(ValueError):
        AnomalyConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError):
        AnomalyDetector.restore({"version": 99})
    with pytest.raises(ValueError):
        AnomalyConfig(seasonal_slots=K.MAX_SLOTS + 1)
    with pytest.raises(ValueError):
        AnomalyConfig(recurrence_slots=K.MAX_REC_SLOTS + 1)
    with pytest.raises(ValueError):
        AnomalyConfig(recurrence_tau_s=0.0)
    with pytest.raises(ValueError):
        AnomalyConfig(weekly_slots=K.MAX_WEEK_SLOTS + 1)
    with pytest.raises(ValueError):
        AnomalyConfig(weekly_period_s=0.0)
    with pytest.raises(ValueError):
        AnomalyDetector().update_many([0.0, 1.0], [1.0, 2.0, 3.0])


def _daily_spikes(days: int = 14, per_day: int = 288, seed: int = 11, size: float = 15.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = 10.0 + rng.normal(0.0, 0.5, days * per_day)
    x[per_day * np.arange(days) + 40] += size  # a nightly job: the same spike at the same time every day
    return x


def test_recurring_daily_spike_stops_alarming_but_a_new_one_still_alarms() -> None:
    per_day = 288
    # spikes of 36 noise scales: without the memory every late one clearly reaches the alarm level
    x = _daily_spikes(per_day=per_day, size=18.0)
    new_at = 12 * per_day + 200  # the same spike at a time of day never seen before
    x[new_at] += 18.0
    ts = _stamps(x.shape[0])
    # habituation and the refractory period off, so the recurrence memory alone makes the difference
    cfg = AnomalyConfig(habituation=0.0, refractory=0)
    late_days = per_day * np.arange(8, 14) + 40
    s = AnomalyDetector(cfg).update_many(ts, x)
    forgetful = AnomalyDetector(replace(cfg, recurrence_weight=0.0)).update_many(ts, x)
    assert int(np.sum(forgetful[late_days] >= cfg.alarm)) >= 5
    assert int(np.sum(s[late_days] >= cfg.alarm)) == 0
    assert np.all(s[late_days] < forgetful[late_days] - 0.1)
    # nothing was remembered near the new spike's time of day: it scores as without the memory
    assert s[new_at] == forgetful[new_at]
    assert s[new_at] >= cfg.alarm
    # without timestamps there is no time of day to remember: the memory stays out of it
    blind = AnomalyDetector(cfg).update_many(None, x)
    blind_forgetful = AnomalyDetector(replace(cfg, recurrence_weight=0.0)).update_many(None, x)
    assert np.array_equal(blind, blind_forgetful)


_KNN_FIELDS = ("w_knn", "knn_len", "knn_refs", "knn_stride", "knn_centre")
_WEEKLY_FIELDS = ("weekly_slots", "weekly_alpha", "weekly_min_weeks", "weekly_period_s")
_V4_N_STATE, _V4_TAB_SIZE = 35, 9472  # the version 4 layout (what the detector wrote before the weekly profile)


def _as_version_4(snap: dict) -> dict:
    """A current snapshot rewritten in the version 4 layout (no weekly profile: its state and table blocks
    come last, so version 4 is a prefix of both)."""
    old = json.loads(json.dumps(snap))
    old["state"] = old["state"][: K.S_WEEK_ERR]
    pairs = [(i, v) for i, v in zip(old["table_index"], old["table_value"]) if i < K.T_WK_MEAN]
    old["table_index"] = [i for i, _ in pairs]
    old["table_value"] = [v for _, v in pairs]
    for key in _WEEKLY_FIELDS:
        del old["config"][key]
    old["version"] = 4
    return old


def _as_version_3(snap: dict) -> dict:
    """A current snapshot rewritten in the version 3 layout (five components, no lagged-window part)."""
    old = _as_version_4(snap)
    state = old["state"]
    keep = [i for i in range(len(state)) if i not in (K.S_AVG + 5, K.S_MU + 5, K.S_VAR + 5)]
    old["state"] = [state[i] for i in keep]
    pairs = [(i, v) for i, v in zip(old["table_index"], old["table_value"]) if i < K.T_KNN_RING]
    old["table_index"] = [i for i, _ in pairs]
    old["table_value"] = [v for _, v in pairs]
    for key in _KNN_FIELDS:
        del old["config"][key]
    old["version"] = 3
    return old


def test_version_3_snapshot_restores_with_an_empty_lagged_window_part() -> None:
    x = _series(2500)
    ts = _stamps(x.shape[0])
    det = AnomalyDetector()
    det.update_many(ts[:1500], x[:1500])
    snap = det.snapshot()
    assert snap["version"] == 5 and det._tab[K.T_KNN_AT : K.T_KNN_AT + K.MAX_KNN_REFS].max() > 0.0
    old = AnomalyDetector.restore(_as_version_3(snap))
    # the same state with the lagged-window component's statistics and windows (and the weekly part) emptied
    expected = AnomalyDetector.restore(snap)
    for i in (K.S_AVG + 5, K.S_MU + 5, K.S_VAR + 5, K.S_WEEK_ERR, K.S_DAYW_ERR):
        expected._fs[i] = 0.0
    expected._tab[K.T_KNN_RING :] = 0.0
    assert old.config == AnomalyConfig()
    assert np.array_equal(old._fs, expected._fs)
    assert np.array_equal(old._tab, expected._tab)
    assert np.array_equal(old.update_many(ts[1500:], x[1500:]), expected.update_many(ts[1500:], x[1500:]))


def test_version_2_snapshot_restores_with_an_empty_recurrence_memory() -> None:
    x = _daily_spikes(days=3)
    ts = _stamps(x.shape[0])
    det = AnomalyDetector(AnomalyConfig(recurrence_weight=0.0))
    det.update_many(ts[:500], x[:500])
    snap = _as_version_3(det.snapshot())
    snap["version"] = 2
    for key in ("recurrence_slots", "recurrence_weight", "recurrence_tau_s", "recurrence_min"):
        del snap["config"][key]
    old = AnomalyDetector.restore(snap)
    assert old.config == AnomalyConfig()
    assert old.n == 500
    assert np.all(old._tab[K.T_REC_VAL : K.T_REC_VAL + K.MAX_REC_SLOTS] == 0.0)
    assert np.all(old.update_many(ts[500:], x[500:]) >= 0.0)


def _cycle_with_incident(seed: int) -> tuple[np.ndarray, int]:
    """Two normal dips per 144-point cycle (rush hours) and one incident: an equal drop at a quiet phase."""
    rng = np.random.default_rng(seed)
    t = np.arange(3000)
    ph = t % 144
    rush = np.exp(-((ph - 36) ** 2) / 50.0) + np.exp(-((ph - 100) ** 2) / 50.0)
    x = 65.0 - 25.0 * rush + rng.normal(0.0, 3.0, t.shape[0])
    at = 2260
    x[at : at + 20] -= 35.0
    return x, at


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lagged_window_component_lifts_an_incident_inside_the_normal_range(seed: int) -> None:
    # without the spatial rule the drop is no larger than the rush-hour dips the residuals are used to;
    # the window of the last values, though, matches no stored window
    x, at = _cycle_with_incident(seed)
    cfg = AnomalyConfig(spatial_score=0.0)
    with_knn = AnomalyDetector(cfg).update_many(None, x)
    without = AnomalyDetector(replace(cfg, w_knn=0.0)).update_many(None, x)
    assert with_knn[at : at + 20].max() >= without[at : at + 20].max() + 0.08
    assert int(np.sum(with_knn[600:at] >= cfg.alarm)) <= int(np.sum(without[600:at] >= cfg.alarm))


def test_lagged_window_component_can_be_disabled_and_is_validated() -> None:
    x, _ = _cycle_with_incident(0)
    off_len = AnomalyDetector(AnomalyConfig(knn_len=0)).update_many(None, x)
    off_w = AnomalyDetector(AnomalyConfig(w_knn=0.0)).update_many(None, x)
    assert np.array_equal(off_len, off_w)
    for bad in ({"knn_len": K.MAX_KNN_LEN + 1}, {"knn_refs": 0}, {"knn_stride": 0}):
        with pytest.raises(ValueError):
            AnomalyConfig(**bad)


def test_anomaly_free_synthetic_series_raise_few_alarms() -> None:
    from bench.nab_synthetic import no_anomaly

    cfg = AnomalyConfig()
    for kind, most in (("flatline", 0), ("daily_no_noise", 0), ("daily_square", 0), ("daily_small_noise", 0), ("noisy", 2)):
        t, x, _ = no_anomaly(np.random.default_rng(3), kind)
        s = AnomalyDetector(cfg).update_many(t, x)
        assert int(np.sum(s[604:] >= cfg.alarm)) <= most, kind


@pytest.mark.parametrize("seed", [1, 2])
def test_centred_windows_compare_shapes_not_levels(seed: int) -> None:
    # the lagged-window component alone: after a level shift the same sawtooth is not a new shape
    rng = np.random.default_rng(seed)
    t = np.arange(3000)
    x = (t % 24) / 2.0 + rng.normal(0.0, 0.3, t.shape[0])
    x[2000:] += 40.0
    only = AnomalyConfig(
        w_slow=0.0, w_context=0.0, w_volatility=0.0, w_seasonal=0.0, spatial_score=0.0, habituation=0.0, refractory=0
    )
    centred = AnomalyDetector(only).update_many(None, x)
    raw = AnomalyDetector(replace(only, knn_centre=False)).update_many(None, x)
    after = slice(2000 + only.knn_len, 2200)  # windows wholly after the shift
    assert centred[after].max() < only.alarm
    assert raw[after].max() >= only.alarm
    assert centred[600:2000].max() < only.alarm and raw[600:2000].max() < only.alarm


_DAY = 86400.0


def _weekly_with_holiday(seed: int, weeks: int = 16) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Half-hourly demand: one daily shape on weekdays, weekends at half the level with another shape, and
    one Wednesday (a holiday, 4 weeks before the end) that looks exactly like a Sunday."""
    rng = np.random.default_rng(seed)
    step = 1800.0
    n = int(weeks * 7 * _DAY / step)
    t = 1_420_070_400.0 + 3 * _DAY + step * np.arange(n)  # 2015-01-04, a Sunday
    hour = (t % _DAY) / 3600.0
    dow = (t // _DAY + 3) % 7  # 0 = Monday
    weekday = 1.0 + 0.8 * np.sin(2 * np.pi * (hour - 11.0) / 24.0) ** 3 + 0.3 * np.cos(2 * np.pi * hour / 12.0)
    weekday = np.clip(weekday, 0.1, None)
    weekend = 0.5 * (1.0 + 0.5 * np.sin(2 * np.pi * (hour - 15.0) / 24.0))
    x = 1000.0 * np.where(dow >= 5, weekend, weekday) * (1.0 + rng.normal(0.0, 0.05, n))
    per_day = int(_DAY / step)
    hol = (weeks - 4) * 7 * per_day + 3 * per_day  # a Wednesday
    x[hol : hol + per_day] = 1000.0 * weekend[hol : hol + per_day] * (1.0 + rng.normal(0.0, 0.05, per_day))
    return t, x, hol, per_day


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_weekly_profile_catches_a_weekday_that_behaves_like_a_sunday(seed: int) -> None:
    # the daily profile has learnt weekdays and weekends mixed: a Sunday-like Wednesday is no surprise to it.
    # Holiday maxima with / without the weekly profile, seeds 0-3: 0.52 / 0.05, 0.55 / 0.09, 0.58 / 0.01, 0.63 / 0.15
    t, x, hol, per_day = _weekly_with_holiday(seed)
    assert (t[hol] // _DAY + 3) % 7 == 2 and t[hol] % _DAY == 0.0  # a whole Wednesday
    cfg = AnomalyConfig()
    weekly = AnomalyDetector(cfg).update_many(t, x)
    daily_only = AnomalyDetector(replace(cfg, weekly_slots=0)).update_many(t, x)
    assert weekly[hol : hol + per_day].max() >= cfg.alarm
    assert daily_only[hol : hol + per_day].max() < cfg.alarm - 0.25


def test_weekly_profile_changes_nothing_before_a_slot_is_seen_in_two_weeks() -> None:
    x = _daily_square(days=13) + np.random.default_rng(6).normal(0.0, 1.0, 13 * 288)
    x[2000] += 60.0
    ts = _stamps(x.shape[0])
    off = AnomalyDetector(AnomalyConfig(weekly_slots=0)).update_many(ts, x)
    det = AnomalyDetector()
    s = det.update_many(ts, x)
    assert det._tab[K.T_WK_CNT : K.T_WK_CNT + 168].sum() == x.shape[0]  # the weekly profile learnt every point
    # an hourly slot of the week is visited in a second week at the earliest 7 days - 1 hour after the start
    first_week = ts < ts[0] + 7 * _DAY - 3600.0
    assert np.array_equal(s[first_week], off[first_week])
    # 13 days cannot visit any slot in 3 distinct weeks: with that requirement the whole series is unchanged
    assert np.array_equal(AnomalyDetector(AnomalyConfig(weekly_min_weeks=3)).update_many(ts, x), off)
    # ... and without timestamps there is no time of week
    blind_off = AnomalyDetector(AnomalyConfig(weekly_slots=0)).update_many(None, x)
    assert np.array_equal(AnomalyDetector().update_many(None, x), blind_off)


def test_weekly_state_round_trips_and_matches_per_point_updates() -> None:
    t, x, _, _ = _weekly_with_holiday(1, weeks=5)
    det = AnomalyDetector()
    h = x.shape[0] // 2 + 7
    first = det.update_many(t[:h], x[:h])
    assert det._tab[K.T_WK_WEEKS : K.T_WK_WEEKS + 168].max() >= 2.0 and det._fs[K.S_WEEK_ERR] > 0.0
    rest = AnomalyDetector.restore(json.loads(json.dumps(det.snapshot()))).update_many(t[h:], x[h:])
    one = AnomalyDetector()
    per_point = np.array([one.update(t[i], x[i]) for i in range(x.shape[0])])
    assert np.array_equal(np.concatenate([first, rest]), per_point)


def test_version_4_snapshot_restores_and_continues() -> None:
    # a version 4 snapshot as the detector wrote it before the weekly profile (checked byte for byte against
    # one written by that code): restored, the weekly profile starts empty with its fields at their defaults
    x = _series(2500)
    ts = _stamps(x.shape[0])  # under a week: the weekly profile is never trusted, so scores are unchanged
    ref = AnomalyDetector().update_many(ts, x)
    det = AnomalyDetector()
    det.update_many(ts[:1500], x[:1500])
    v4 = _as_version_4(det.snapshot())
    assert len(v4["state"]) == _V4_N_STATE and max(v4["table_index"]) < _V4_TAB_SIZE
    old = AnomalyDetector.restore(json.loads(json.dumps(v4)))
    assert old.config == AnomalyConfig() and old.n == 1500
    assert np.all(old._tab[K.T_WK_MEAN :] == 0.0) and old._fs[K.S_WEEK_ERR] == old._fs[K.S_DAYW_ERR] == 0.0
    assert np.array_equal(old.update_many(ts[1500:], x[1500:]), ref[1500:])
    assert old._tab[K.T_WK_CNT : K.T_WK_CNT + 168].sum() == 1000.0
    assert old.snapshot()["version"] == 5


def test_version_4_snapshot_of_a_weekly_series_restores_with_an_empty_weekly_part() -> None:
    t, x, _, _ = _weekly_with_holiday(2, weeks=5)
    det = AnomalyDetector()
    h = x.shape[0] // 2
    det.update_many(t[:h], x[:h])
    snap = det.snapshot()
    old = AnomalyDetector.restore(_as_version_4(snap))
    expected = AnomalyDetector.restore(snap)
    expected._fs[K.S_WEEK_ERR :] = 0.0
    expected._tab[K.T_WK_MEAN :] = 0.0
    assert np.array_equal(old._fs, expected._fs)
    assert np.array_equal(old._tab, expected._tab)
    assert np.array_equal(old.update_many(t[h:], x[h:]), expected.update_many(t[h:], x[h:]))
