"""Streaming univariate anomaly detection (latency, error rate, tokens, cost, any metric series).

:class:`AnomalyDetector` scores one series point by point: ``update(timestamp, value)`` returns a
score in [0, 1] and ``flag`` tells whether that score raised an alarm. It never looks ahead (no file
minimum or maximum, no labels), keeps a fixed-size state (a few dozen floats, a small context table, a
24-slot daily and a 168-slot weekly profile, a 96-slot time-of-day recurrence memory), costs O(1) per
point, and its state round-trips through ``snapshot()`` / ``restore()`` as plain JSON data.

``update_many(timestamps, values)`` runs the same compiled kernel over a whole block (numba when it is
installed) and returns exactly the scores repeated ``update()`` calls would give.

The evidence and its post-processing are described in :mod:`detectors.anomaly.kernel`; how the defaults
were chosen (leave-one-category-out on NAB's development subset and synthetic families) is in
``docs/anomaly.md``. One configuration (:class:`AnomalyConfig` defaults) is used for every series.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np

from detectors.anomaly import kernel as K

__all__ = ["AnomalyConfig", "AnomalyDetector", "SNAPSHOT_VERSION", "restorable"]

SNAPSHOT_VERSION = 6
"""Snapshot format of this detector. Version 6 (issue 20) replaced the ensemble; versions 2-5 (the earlier
detector) are not restored: :meth:`AnomalyDetector.restore` raises ``ValueError`` for them and callers
that hold checkpoints start those series afresh."""

def restorable(data: Mapping[str, Any]) -> bool:
    """Whether :meth:`AnomalyDetector.restore` takes this snapshot (its format is the current one).

    Holders of checkpoints use it to drop an earlier detector's state (the series then starts afresh)
    instead of failing the whole restore."""
    return data.get("version") == SNAPSHOT_VERSION


# configuration fields of earlier versions that no longer exist: accepted (and ignored) when an old
# configuration is read back, so a stored training-monitor or ops-metrics configuration still loads
_RETIRED_FIELDS = frozenset({
    "a_slow", "w_fast", "w_slow", "w_knn", "knn_len", "knn_refs", "knn_stride", "knn_centre",
})


@dataclass(frozen=True)
class AnomalyConfig:
    """Parameters of :class:`AnomalyDetector` (the defaults are the one configuration used everywhere).

    Weights ``a_*`` are per-point EWMA weights (1/horizon in points); ``w_*`` weight each standardised
    surprise (0 switches it off). Every default was judged by leave-one-category-out scoring, not tuned
    per series; ``docs/anomaly.md`` has the figures and what was tried and dropped.
    """

    warmup: int = 100
    """Points scored 0 while the statistics settle."""
    a_fast: float = 0.3
    """Fast level (the centre of :meth:`AnomalyDetector.expected_range`)."""
    a_level: float = 0.05
    """Level the seasonal profile must beat before it is trusted."""
    a_noise: float = 0.01
    """Noise scale: mean absolute first difference."""
    noise_floor: float = 1e-3
    """Smallest noise scale, as a fraction of the range seen."""
    smooth: float = 0.2
    """Short average of each raw surprise."""
    a_stats: float = 0.002
    """Long-run mean and variance each surprise is standardised with."""
    z_clip: float = 6.0
    """A surprise is learnt clipped at this many standard deviations (one incident does not become normal)."""
    sd_floor: float = 0.05
    """Smallest standard deviation a surprise is standardised with."""
    bins: int = 6
    """Quantisation bins of the context model."""
    env_decay: float = 1e-4
    """Contraction per point of the envelope the context model quantises in (fraction of its width)."""
    ctx_prior: float = 0.1
    ctx_cap: float = 1000.0
    w_context: float = 1.0
    v_short: float = 0.1
    v_long: float = 0.005
    w_volatility: float = 1.0
    w_seasonal: float = 1.5
    """Seasonal residual (daily / weekly profile); needs timestamps."""
    seasonal_slots: int = 24
    seasonal_alpha: float = 0.05
    seasonal_min_visits: int = 5
    seasonal_period_s: float = 86400.0
    weekly_slots: int = 168
    """Time-of-week slots (0: no weekly profile). A slot is trusted once visited in ``weekly_min_weeks``
    distinct weeks, and used instead of the daily one where it has predicted better."""
    weekly_alpha: float = 0.05
    weekly_min_weeks: int = 2
    weekly_period_s: float = 7 * 86400.0
    a_base: float = 0.01
    """Slow baseline (and its mean absolute deviation) the change-point CUSUM measures deviations from."""
    cusum_k: float = 1.5
    """CUSUM allowance in deviation units: only deviations beyond it accumulate."""
    cusum_clip: float = 2.5
    """Deviations enter a CUSUM clipped to +-this (a single spike cannot make a change point)."""
    w_cusum: float = 1.0
    w_seasonal_cusum: float = 1.5
    """CUSUM of residuals against the seasonal profile (a day that breaks its rhythm)."""
    run_length: bool = True
    """Evidence from runs of repeated values (tail probability under a geometric model)."""
    spatial_tol: float = 0.05
    spatial_score: float = 1.0
    spatial_decay: float = 1e-5
    spatial_warmup: int = 200
    recurrence_slots: int = 96
    recurrence_weight: float = 0.6
    recurrence_tau_s: float = 4 * 86400.0
    recurrence_min: float = 0.2
    habituation: float = 0.2
    habituation_decay: float = 1e-3
    alarm: float = 0.5
    refractory: int = 50
    damp: float = 0.3

    def __post_init__(self) -> None:
        if not 2 <= self.bins <= K.MAX_BINS:
            raise ValueError(f"bins must be in [2, {K.MAX_BINS}]")
        if not 0 <= self.seasonal_slots <= K.MAX_SLOTS:
            raise ValueError(f"seasonal_slots must be in [0, {K.MAX_SLOTS}]")
        if self.seasonal_period_s <= 0.0:
            raise ValueError("seasonal_period_s must be positive")
        if not 0.0 <= self.alarm <= 1.0:
            raise ValueError("alarm must be in [0, 1]")
        if not 0 <= self.recurrence_slots <= K.MAX_REC_SLOTS:
            raise ValueError(f"recurrence_slots must be in [0, {K.MAX_REC_SLOTS}]")
        if self.recurrence_tau_s <= 0.0:
            raise ValueError("recurrence_tau_s must be positive")
        if not 0 <= self.weekly_slots <= K.MAX_WEEK_SLOTS:
            raise ValueError(f"weekly_slots must be in [0, {K.MAX_WEEK_SLOTS}]")
        if self.weekly_period_s <= 0.0:
            raise ValueError("weekly_period_s must be positive")
        if self.cusum_k < 0.0 or self.cusum_clip <= 0.0:
            raise ValueError("cusum_k must be >= 0 and cusum_clip > 0")

    def as_params(self) -> np.ndarray:
        """The kernel's parameter block."""
        p = np.zeros(K.N_PARAMS)
        for index, value in (
            (K.P_WARMUP, self.warmup), (K.P_A_FAST, self.a_fast), (K.P_A_SLOW, self.a_level),
            (K.P_A_NOISE, self.a_noise), (K.P_FLOOR, self.noise_floor), (K.P_SMOOTH, self.smooth),
            (K.P_A_STATS, self.a_stats), (K.P_Z_CLIP, self.z_clip), (K.P_SD_FLOOR, self.sd_floor),
            (K.P_BINS, self.bins), (K.P_ENV_DECAY, self.env_decay), (K.P_CTX_PRIOR, self.ctx_prior),
            (K.P_CTX_CAP, self.ctx_cap), (K.P_V_SHORT, self.v_short), (K.P_V_LONG, self.v_long),
            (K.P_SEAS_SLOTS, self.seasonal_slots), (K.P_SEAS_ALPHA, self.seasonal_alpha),
            (K.P_SEAS_MIN, self.seasonal_min_visits), (K.P_SEAS_PERIOD, self.seasonal_period_s),
            (K.P_WEEK_SLOTS, self.weekly_slots), (K.P_WEEK_ALPHA, self.weekly_alpha),
            (K.P_WEEK_MIN, self.weekly_min_weeks), (K.P_WEEK_PERIOD, self.weekly_period_s),
            (K.P_A_BASE, self.a_base), (K.P_CUSUM_K, self.cusum_k), (K.P_CUSUM_CLIP, self.cusum_clip),
            (K.P_W_CTX, self.w_context), (K.P_W_VOL, self.w_volatility), (K.P_W_SEAS, self.w_seasonal),
            (K.P_W_CUSUM, self.w_cusum), (K.P_W_SCUSUM, self.w_seasonal_cusum),
            (K.P_RUN, 1.0 if self.run_length else 0.0), (K.P_SPATIAL, self.spatial_tol),
            (K.P_SPATIAL_SCORE, self.spatial_score), (K.P_SPATIAL_DECAY, self.spatial_decay),
            (K.P_SPATIAL_WARMUP, self.spatial_warmup), (K.P_REC_SLOTS, self.recurrence_slots),
            (K.P_REC_W, self.recurrence_weight), (K.P_REC_TAU, self.recurrence_tau_s),
            (K.P_REC_MIN, self.recurrence_min), (K.P_HAB_W, self.habituation),
            (K.P_HAB_DECAY, self.habituation_decay), (K.P_ALARM, self.alarm),
            (K.P_REFRACTORY, self.refractory), (K.P_DAMP, self.damp),
        ):
            p[index] = float(value)
        return p

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnomalyConfig:
        """Build from plain data (missing keys take defaults; fields retired in issue 20 are ignored)."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names - _RETIRED_FIELDS
        if unknown:
            raise ValueError(f"unknown AnomalyConfig keys: {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in names})


def _to_seconds(ts: datetime | np.datetime64 | float | int | None) -> float:
    """Seconds since the epoch (naive datetimes are taken as UTC); NaN for None."""
    if ts is None:
        return math.nan
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        return ts.timestamp()
    if isinstance(ts, np.datetime64):
        return float(ts.astype("datetime64[ns]").astype(np.int64)) / 1e9
    return float(ts)


def _times_array(timestamps: Sequence[Any] | np.ndarray | None, n: int) -> np.ndarray:
    """Timestamps of a block as float64 seconds (NaN where unknown)."""
    if timestamps is None:
        return np.full(n, np.nan)
    if isinstance(timestamps, np.ndarray):
        if np.issubdtype(timestamps.dtype, np.datetime64):
            out = timestamps.astype("datetime64[ns]").astype(np.int64) / 1e9
            out[np.isnat(timestamps)] = np.nan
            return np.ascontiguousarray(out, dtype=np.float64)
        if timestamps.dtype.kind in "iuf":
            return np.ascontiguousarray(timestamps, dtype=np.float64)
    out = np.array([_to_seconds(t) for t in timestamps], dtype=np.float64)
    if out.shape[0] != n:
        raise ValueError("timestamps and values differ in length")
    return out


def _compiled_step() -> Callable[[np.ndarray, float, float], float]:
    """The per-point kernel, called without numba's per-call type dispatch where that is possible.

    ``step`` is compiled for (float64[:], float64, float64) once; its compiled entry point skips the
    dispatcher's argument typing (about half the cost of a call). Without numba, or if numba's internals
    change, the plain function is used.
    """
    if not K.HAVE_NUMBA:
        return K.step
    probe = np.zeros(K.SIZE)
    K.step(probe, math.nan, math.nan)  # compile / load the cached kernel
    try:
        compiled: Any = K.step.overloads[K.step.signatures[0]]
        entry: Callable[[np.ndarray, float, float], float] = compiled.entry_point
        entry(probe, math.nan, math.nan)
        return entry
    except Exception:  # pragma: no cover - numba internals moved: the dispatcher still works
        return K.step


_STEP: Callable[[np.ndarray, float, float], float] | None = None


class AnomalyDetector:
    """Streaming univariate anomaly detector: ``update(timestamp, value) -> score in [0, 1]``.

    Attributes readable at any time: ``score`` (last score), ``flag`` (last score >= ``config.alarm``),
    ``n`` (points seen), ``level`` (the slow causal baseline), ``expected_range()`` (what a normal next
    value looks like). The detector is driven by arrival order (callers feed points in time order);
    timestamps place each point in its time-of-day / time-of-week slot (``None`` leaves the seasonal parts
    neutral) and the last one is kept as ``last_timestamp``.
    """

    __slots__ = ("config", "_st", "_step", "score", "last_timestamp")

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        global _STEP
        self.config = config or AnomalyConfig()
        self._st = np.zeros(K.SIZE)
        self._st[: K.N_PARAMS] = self.config.as_params()
        if _STEP is None:
            _STEP = _compiled_step()
        self._step = _STEP
        self.score = 0.0
        self.last_timestamp = math.nan

    # ---- scoring -------------------------------------------------------------------------------
    def update(self, timestamp: datetime | float | None, value: float) -> float:
        """Score one point (after learning nothing from the future) and learn from it."""
        ts: float = timestamp if type(timestamp) is float else _to_seconds(timestamp)
        s = self._step(self._st, ts, value if type(value) is float else float(value))
        self.score = s
        self.last_timestamp = ts
        return s

    def update_many(
        self, timestamps: Sequence[Any] | np.ndarray | None, values: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Score a block of points in order; identical to calling :meth:`update` for each point.

        ``timestamps`` may be None (no seasonal profile for these points), a numeric array of epoch
        seconds, a ``datetime64`` array, or a sequence of datetimes (naive ones are taken as UTC).
        """
        v = np.ascontiguousarray(values, dtype=np.float64)
        out = np.zeros(v.shape[0])
        if v.shape[0] == 0:
            return out
        ts = _times_array(timestamps, v.shape[0])
        if ts.shape[0] != v.shape[0]:
            raise ValueError("timestamps and values differ in length")
        K.run(self._st, ts, v, out)
        self.score = float(out[-1])
        self.last_timestamp = float(ts[-1])
        return out

    # ---- readable state ------------------------------------------------------------------------
    @property
    def flag(self) -> bool:
        """Whether the last score reached the alarm threshold."""
        return self.score >= self.config.alarm

    @property
    def n(self) -> int:
        """Number of finite points learnt so far."""
        return int(self._st[K.S_N])

    @property
    def level(self) -> float:
        """The slow causal baseline the change-point evidence measures deviations from."""
        return float(self._st[K.S_BASE])

    def expected_range(self, k: float = 4.0) -> tuple[float, float]:
        """A band around the fast level, ``k`` noise scales wide on each side (NaN before any point)."""
        if self.n == 0:
            return (math.nan, math.nan)
        st = self._st
        width = st[K.S_HI] - st[K.S_LO]
        scale = st[K.S_NOISE] + self.config.noise_floor * width
        centre = st[K.S_FAST]
        return (float(centre - k * scale), float(centre + k * scale))

    # ---- persistence ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-serialisable plain data (the tables are stored sparsely)."""
        tab = self._st[K.T0 :]
        nz = np.flatnonzero(tab)
        return {
            "version": SNAPSHOT_VERSION,
            "config": asdict(self.config),
            "state": self._st[K.S0 : K.T0].tolist(),
            "table_index": nz.tolist(),
            "table_value": tab[nz].tolist(),
            "score": self.score,
            "last_timestamp": None if math.isnan(self.last_timestamp) else self.last_timestamp,
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> AnomalyDetector:
        """Rebuild a detector from :meth:`snapshot` output (version 6 only; see :data:`SNAPSHOT_VERSION`)."""
        version = data.get("version")
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported anomaly snapshot version {version!r} (this detector writes "
                             f"{SNAPSHOT_VERSION}; earlier detectors' state is not carried over)")
        det = cls(AnomalyConfig.from_dict(data["config"]))
        state = np.asarray(data["state"], dtype=np.float64)
        if state.shape != (K.N_STATE,):
            raise ValueError("anomaly snapshot state has the wrong size")
        index = np.asarray(data["table_index"], dtype=np.int64)
        if index.size and (index.min() < 0 or index.max() >= K.N_TAB):
            raise ValueError("anomaly snapshot table index out of range")
        det._st[K.S0 : K.T0] = state
        det._st[K.T0 + index] = np.asarray(data["table_value"], dtype=np.float64)
        det.score = float(data["score"])
        ts = data.get("last_timestamp")
        det.last_timestamp = math.nan if ts is None else float(ts)
        return det
