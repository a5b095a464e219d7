"""The compiled scoring kernel behind :class:`detectors.anomaly.detector.AnomalyDetector`.

The whole detector lives in ONE float64 array ``st``: the parameter block (read only, written from the
configuration), the scalar state and the tables. :func:`step` scores one point, :func:`run` a block; both
call the same inlined :func:`_step`, so the per-point and the batch paths give identical scores by
construction. One array and two floats in, one float out keeps the per-call overhead of the per-point
path small. Without numba the same source runs as plain Python (slow but identical).

Evidence (each a per-point "surprise", all scale-free), grouped by what they look for:

* **Contextual novelty** — ``-log P(bin_t | bin_{t-2}, bin_{t-1})`` on values quantised inside a slowly
  contracting min/max envelope, counts learnt online (relative-entropy / CAD-OSE-like pattern novelty).
* **Volatility change** — ``|log(short / long mean absolute first difference)|`` (flat-lining, noise bursts).
* **Robust residual against a causal seasonal baseline** — ``log1p(|x - profile[slot]| / (slot MAD + noise))``
  with a daily (24 hourly slots) and a weekly (168 slots) profile, the weekly one used where it has
  predicted better; weighted by how much better the profile predicts than the plain level (0 for series
  without a rhythm).
* **Change-point evidence** — two two-sided CUSUMs of Huber-clipped standardised deviations (``|u| <= clip``,
  allowance ``k``): one against a slow causal baseline (EWMA) in units of its own mean absolute deviation
  (level shifts, ramps, slow leaks), one against the seasonal profile (a day that breaks its rhythm:
  holidays, storms, outages), the latter weighted like the seasonal residual.
* **Run length** — a value repeated ``L`` times in a row has tail probability ``q^L`` under a geometric
  model whose repeat rate ``q`` is Laplace's estimate from the repeats seen (stuck sensors, frozen exports).
* **Range novelty** — a value beyond everything seen (a very slowly contracting min/max, by more than
  ``spatial_tol`` of its width) scores at least ``spatial_score`` (as in Numenta's NAB HTM detector).

Each surprise is smoothed over a short horizon and standardised against its own long-run mean and variance
(an anomaly likelihood in the manner of Numenta's HTM post-processing, with a floor on the standard
deviation); the largest weighted standardised surprise becomes a Gaussian tail probability, mapped to a
log-likelihood score in [0, 1]; the run-length and range rules enter at the score level. Post-processing:
a recurrence memory (a surprise seen near this time of day on an earlier day is partly expected),
habituation (scores lowered by a fraction of the recent alarm level), and a refractory period (one alarm per
incident).
"""

from __future__ import annotations

import math

import numpy as np

try:  # numba is optional: without it the kernel runs as plain Python (same results, ~100x slower)
    from numba import njit as _njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is absent
    HAVE_NUMBA = False

    def _njit(*args, **kwargs):  # type: ignore[no-redef]
        def wrap(fn):
            return fn

        return wrap


N_COMP = 5  # standardised components: context, volatility, seasonal residual, CUSUM, seasonal CUSUM
C_CTX, C_VOL, C_SEAS, C_CUSUM, C_SCUSUM = 0, 1, 2, 3, 4

# ---- parameter block (st[0:N_PARAMS]) ---------------------------------------------------------------
P_WARMUP = 0  # points scored 0 while the statistics settle
P_A_FAST = 1  # EWMA weight of the fast level (centre of expected_range)
P_A_SLOW = 2  # EWMA weight of the slow level (what the seasonal profile is compared with)
P_A_NOISE = 3  # EWMA weight of the noise scale (mean |first difference|)
P_FLOOR = 4  # noise-scale floor, as a fraction of the envelope width
P_SMOOTH = 5  # EWMA weight of the short average of each raw surprise
P_A_STATS = 6  # EWMA weight of the long-run mean/variance of the averaged surprises
P_Z_CLIP = 7  # averaged surprises are clipped at this many long-run standard deviations before learning
P_SD_FLOOR = 8  # floor of the long-run standard deviation of each surprise
P_BINS = 9  # quantisation bins of the context model (<= MAX_BINS)
P_ENV_DECAY = 10  # per-point contraction of the binning min/max envelope (fraction of its width)
P_CTX_PRIOR = 11  # additive prior of the context model's counts
P_CTX_CAP = 12  # a context row is halved when its total exceeds this (bounded memory, forgetting)
P_V_SHORT = 13  # EWMA weight of the short volatility
P_V_LONG = 14  # EWMA weight of the long volatility
P_SEAS_SLOTS = 15  # time-of-day slots of the daily profile (<= MAX_SLOTS); 0 disables it
P_SEAS_ALPHA = 16  # per-visit EWMA weight of a slot's mean and mean absolute deviation
P_SEAS_MIN = 17  # visits of a slot before it is trusted
P_SEAS_PERIOD = 18  # period of the daily profile in seconds
P_WEEK_SLOTS = 19  # time-of-week slots of the weekly profile (<= MAX_WEEK_SLOTS); 0 disables it
P_WEEK_ALPHA = 20
P_WEEK_MIN = 21  # distinct weeks a weekly slot must have been visited in before it is trusted
P_WEEK_PERIOD = 22
P_A_BASE = 23  # EWMA weight of the CUSUM baseline and of its mean absolute deviation
P_CUSUM_K = 24  # CUSUM allowance (in deviation units)
P_CUSUM_CLIP = 25  # standardised deviations are clipped to +-this before they enter a CUSUM
P_W_CTX = 26  # weights of the standardised surprises
P_W_VOL = 27
P_W_SEAS = 28
P_W_CUSUM = 29
P_W_SCUSUM = 30
P_RUN = 31  # 1: run-length evidence on, 0: off
P_SPATIAL = 32  # a value this far (fraction of the width) outside the min/max scores at least P_SPATIAL_SCORE
P_SPATIAL_SCORE = 33
P_SPATIAL_DECAY = 34  # per-point contraction of the spatial min/max (slower than the binning one)
P_SPATIAL_WARMUP = 35  # points seen before the spatial rule may fire
P_REC_SLOTS = 36  # time-of-day slots of the recurrence memory (<= MAX_REC_SLOTS); 0 disables it
P_REC_W = 37  # scores are lowered by this fraction of the score remembered near this time of day
P_REC_TAU = 38  # seconds over which a remembered score fades (e-folding time)
P_REC_MIN = 39  # smallest (pre-discount) score the recurrence memory records
P_HAB_W = 40  # habituation: scores are lowered by this fraction of the recent alarm level
P_HAB_DECAY = 41  # per-point decay of the recent alarm level
P_ALARM = 42  # score at which an alarm is raised
P_REFRACTORY = 43  # points damped after an alarm
P_DAMP = 44  # factor applied to scores inside the refractory period
N_PARAMS = 45

MAX_BINS = 16
MAX_SLOTS = 96
MAX_REC_SLOTS = 288
MAX_WEEK_SLOTS = 336

# ---- scalar state (st[S0 + ...]) -------------------------------------------------------------------
S0 = N_PARAMS
S_N = S0 + 0  # finite points learnt
S_FAST = S0 + 1
S_SLOW = S0 + 2
S_NOISE = S0 + 3
S_PREV = S0 + 4
S_LO = S0 + 5  # binning envelope
S_HI = S0 + 6
S_B1 = S0 + 7  # the last two bins
S_B2 = S0 + 8
S_VS = S0 + 9
S_VL = S0 + 10
S_REFR = S0 + 11  # refractory points left
S_SMIN = S0 + 12  # spatial envelope
S_SMAX = S0 + 13
S_HAB = S0 + 14
S_SEAS_ERR = S0 + 15  # long-run mean |x - seasonal profile|
S_LEVEL_ERR = S0 + 16  # long-run mean |x - slow level| over the same points
S_WEEK_ERR = S0 + 17  # long-run mean |x - weekly profile| where both profiles are trusted
S_DAYW_ERR = S0 + 18  # long-run mean |x - daily profile| over the same points
S_BASE = S0 + 19  # CUSUM baseline
S_DEV = S0 + 20  # its mean absolute deviation
S_CP = S0 + 21  # CUSUM up / down
S_CM = S0 + 22
S_SCP = S0 + 23  # seasonal CUSUM up / down
S_SCM = S0 + 24
S_REPEATS = S0 + 25  # repeats seen (a value equal to the previous one)
S_RUN = S0 + 26  # current run of repeats
S_AVG = S0 + 27  # N_COMP short averages
S_MU = S_AVG + N_COMP  # N_COMP long-run means
S_VAR = S_MU + N_COMP  # N_COMP long-run variances
N_STATE = S_VAR + N_COMP - S0

# ---- tables (st[T0 + ...]) -------------------------------------------------------------------------
T0 = S0 + N_STATE
CTX_SIZE = MAX_BINS * MAX_BINS * MAX_BINS + MAX_BINS * MAX_BINS  # counts + row totals
T_CTX = T0
T_CTX_TOT = T_CTX + MAX_BINS * MAX_BINS * MAX_BINS
T_SEAS_MEAN = T0 + CTX_SIZE  # daily profile: per-slot mean, mean absolute deviation, visits
T_SEAS_DEV = T_SEAS_MEAN + MAX_SLOTS
T_SEAS_CNT = T_SEAS_DEV + MAX_SLOTS
T_REC_VAL = T_SEAS_CNT + MAX_SLOTS  # recurrence memory: per time-of-day slot, the remembered score ...
T_REC_TIME = T_REC_VAL + MAX_REC_SLOTS  # ... and the timestamp (seconds) at which it was recorded
T_WK_MEAN = T_REC_TIME + MAX_REC_SLOTS  # weekly profile: per time-of-week slot mean, MAD,
T_WK_DEV = T_WK_MEAN + MAX_WEEK_SLOTS
T_WK_CNT = T_WK_DEV + MAX_WEEK_SLOTS  # points learnt,
T_WK_WEEKS = T_WK_CNT + MAX_WEEK_SLOTS  # distinct weeks visited
T_WK_LAST = T_WK_WEEKS + MAX_WEEK_SLOTS  # and 1 + the index of the last week visited (0: never)
N_TAB = T_WK_LAST + MAX_WEEK_SLOTS - T0
SIZE = T0 + N_TAB

_LOG_EPS = math.log(1e-10)
_SQRT2 = math.sqrt(2.0)


@_njit(cache=True, nogil=True, inline="always")
def _learn_slot(st: np.ndarray, mean_at: int, dev_at: int, count_at: int, x: float, alpha: float) -> None:
    """One visit of a profile slot: its EWMA mean and mean absolute deviation learn ``x`` (plain running
    averages for the first ``1 / alpha`` visits), and its visit count grows."""
    c = st[count_at]
    if c == 0.0:
        st[mean_at] = x
    else:
        a = alpha if c * alpha > 1.0 else 1.0 / (c + 1.0)
        e = x - st[mean_at]
        st[mean_at] += a * e
        st[dev_at] += a * (abs(e) - st[dev_at])
    st[count_at] = c + 1.0


@_njit(cache=True, nogil=True, inline="always")
def _clip(u: float, c: float) -> float:
    return c if u > c else (-c if u < -c else u)


@_njit(cache=True, nogil=True, inline="always")
def _step(st: np.ndarray, tt: float, x: float) -> float:
    """Score one point (timestamp ``tt`` in seconds, NaN if unknown) and learn from it."""
    if not math.isfinite(x):
        return 0.0
    n = st[S_N]
    if n == 0.0:
        st[S_FAST] = x
        st[S_SLOW] = x
        st[S_PREV] = x
        st[S_LO] = x
        st[S_HI] = x
        st[S_SMIN] = x
        st[S_SMAX] = x
        st[S_BASE] = x
    warm = st[P_WARMUP]
    lo = st[S_LO]
    hi = st[S_HI]
    width = hi - lo
    tiny = 1e-12 * (abs(x) + 1.0)
    scale = st[S_NOISE] + st[P_FLOOR] * width + tiny

    # -- context surprise on quantised values
    nb = int(st[P_BINS])
    if width > 0.0:
        b = int((x - lo) / width * nb)
        if b < 0:
            b = 0
        elif b >= nb:
            b = nb - 1
    else:
        b = 0
    ctx = int(st[S_B2]) * MAX_BINS + int(st[S_B1])
    cell = T_CTX + ctx * MAX_BINS + b
    rowtot = st[T_CTX_TOT + ctx]
    prior = st[P_CTX_PRIOR]
    r_ctx = -math.log((st[cell] + prior) / (rowtot + prior * nb)) / math.log(nb)

    # -- change of volatility
    d = abs(x - st[S_PREV])
    vs = st[S_VS]
    vl = st[S_VL]
    eps = st[P_FLOOR] * width + tiny
    r_vol = abs(math.log((vs + eps) / (vl + eps)))

    # -- residual against the daily / weekly profile (neutral until a slot is known)
    slot = -1
    wslot = -1
    week = 0.0
    nslots = int(st[P_SEAS_SLOTS])
    wslots = int(st[P_WEEK_SLOTS])
    if math.isfinite(tt):
        if nslots > 0:
            ph = tt / st[P_SEAS_PERIOD]
            slot = int((ph - math.floor(ph)) * nslots)
            if slot >= nslots:
                slot = nslots - 1
        if wslots > 0:
            wph = tt / st[P_WEEK_PERIOD]
            wfl = math.floor(wph)
            week = wfl + 1.0
            wslot = int((wph - wfl) * wslots)
            if wslot >= wslots:
                wslot = wslots - 1
    a_st = st[P_A_STATS]
    seas_w = 0.0
    sres_signed = 0.0
    sden = 0.0
    if slot >= 0 and st[T_SEAS_CNT + slot] >= st[P_SEAS_MIN]:
        sres_signed = x - st[T_SEAS_MEAN + slot]
        sres = abs(sres_signed)
        sdev = st[T_SEAS_DEV + slot]
        # the profile in use: its tables, slot, slot count and what makes a slot trusted
        p_mean, p_dev, p_cnt, p_slot, p_slots, p_min = T_SEAS_MEAN, T_SEAS_DEV, T_SEAS_CNT, slot, nslots, st[P_SEAS_MIN]
        if wslot >= 0 and st[T_WK_WEEKS + wslot] - (1.0 if st[T_WK_LAST + wslot] == week else 0.0) >= st[P_WEEK_MIN]:
            # the weekly profile replaces the daily one where it has predicted better (same points); a
            # slot is trusted once learnt in ``weekly_min_weeks`` earlier weeks (this week's visit aside)
            wres_s = x - st[T_WK_MEAN + wslot]
            st[S_WEEK_ERR] += a_st * (abs(wres_s) - st[S_WEEK_ERR])
            st[S_DAYW_ERR] += a_st * (sres - st[S_DAYW_ERR])
            if st[S_WEEK_ERR] < st[S_DAYW_ERR]:
                sres_signed = wres_s
                sres = abs(wres_s)
                sdev = st[T_WK_DEV + wslot]
                p_mean, p_dev, p_cnt, p_slot, p_slots, p_min = T_WK_MEAN, T_WK_DEV, T_WK_WEEKS, wslot, wslots, st[P_WEEK_MIN]
        sden = sdev + scale
        r_seas = math.log1p(sres / sden)
        # phase tolerance: a value the neighbouring slot expects is not a residual (a transition that
        # comes a few minutes early or late is not an anomaly)
        for k in range(-1, 2, 2):
            j = (p_slot + k) % p_slots
            if st[p_cnt + j] - (1.0 if p_cnt == T_WK_WEEKS and st[T_WK_LAST + j] == week else 0.0) >= p_min:
                rj = math.log1p(abs(x - st[p_mean + j]) / (st[p_dev + j] + scale))
                if rj < r_seas:
                    r_seas = rj
        # the profile counts only as far as it predicts better than the slow level does
        st[S_SEAS_ERR] += a_st * (sres - st[S_SEAS_ERR])
        st[S_LEVEL_ERR] += a_st * (abs(x - st[S_SLOW]) - st[S_LEVEL_ERR])
        if st[S_LEVEL_ERR] > 0.0:
            seas_w = 1.0 - st[S_SEAS_ERR] / st[S_LEVEL_ERR]
            if seas_w < 0.0:
                seas_w = 0.0
    else:
        r_seas = st[S_MU + C_SEAS]

    # -- change-point evidence: CUSUMs of clipped standardised deviations
    ck = st[P_CUSUM_K]
    cclip = st[P_CUSUM_CLIP]
    # the baseline and its deviation need about two of their horizons before a deviation means anything
    u = _clip((x - st[S_BASE]) / (st[S_DEV] + scale), cclip) if n * st[P_A_BASE] > 2.0 else 0.0
    cp = st[S_CP] + u - ck
    cp = cp if cp > 0.0 else 0.0
    cm = st[S_CM] - u - ck
    cm = cm if cm > 0.0 else 0.0
    r_cusum = math.log1p(cp if cp > cm else cm)
    if sden > 0.0 and seas_w > 0.0:
        us = _clip(sres_signed / sden, cclip)
        scp = st[S_SCP] + us - ck
        scp = scp if scp > 0.0 else 0.0
        scm = st[S_SCM] - us - ck
        scm = scm if scm > 0.0 else 0.0
    else:
        scp = 0.0
        scm = 0.0
    r_scusum = math.log1p(scp if scp > scm else scm)

    # -- standardise each smoothed surprise against its long-run statistics; keep the largest
    zmax = 0.0
    a_stat = a_st if n * a_st > 1.0 else 1.0 / (n + 1.0)
    a_sm = st[P_SMOOTH]
    zclip = st[P_Z_CLIP]
    sd_floor = st[P_SD_FLOOR] + 1e-9
    for i in range(N_COMP):
        if i == C_CTX:
            r = r_ctx
            w = st[P_W_CTX]
        elif i == C_VOL:
            r = r_vol
            w = st[P_W_VOL]
        elif i == C_SEAS:
            r = r_seas
            w = st[P_W_SEAS] * seas_w
        elif i == C_CUSUM:
            r = r_cusum
            w = st[P_W_CUSUM]
        else:
            r = r_scusum
            w = st[P_W_SCUSUM] * seas_w
        avg = st[S_AVG + i] + a_sm * (r - st[S_AVG + i]) if n > 0.0 else r
        mu = st[S_MU + i]
        var = st[S_VAR + i]
        sd = math.sqrt(var) + sd_floor
        if n > 0.0:
            wz = (avg - mu) / sd * w
            if wz > zmax:
                zmax = wz
        # learn with the surprise clipped, so one incident does not inflate the baseline
        avg_l = mu + zclip * sd if (zclip > 0.0 and n > warm and avg > mu + zclip * sd) else avg
        st[S_AVG + i] = avg_l if n > warm else avg
        dlt = avg_l - mu
        st[S_MU + i] = mu + a_stat * dlt
        st[S_VAR + i] = (1.0 - a_stat) * (var + a_stat * dlt * dlt)

    # -- tail probability of the largest surprise -> log-likelihood score in [0, 1]
    s = math.log(0.5 * math.erfc(zmax / _SQRT2) + 1e-10) / _LOG_EPS
    if s < 0.0:
        s = 0.0
    elif s > 1.0:
        s = 1.0

    # -- run length: P(a run of >= L repeats) = q^L, q by Laplace's rule from the repeats seen
    rep = n > 0.0 and d <= tiny
    run = st[S_RUN] + 1.0 if rep else 0.0
    if st[P_RUN] > 0.0 and run > 0.0 and n > warm:
        s_run = run * math.log((st[S_REPEATS] + 1.0) / (n + 2.0)) / _LOG_EPS
        if s_run > 1.0:
            s_run = 1.0
        if s_run > s:
            s = s_run

    # -- range novelty: a value well outside everything seen recently
    tol = st[P_SPATIAL]
    smin = st[S_SMIN]
    smax = st[S_SMAX]
    swidth = smax - smin
    outside = x > smax + tol * swidth or x < smin - tol * swidth
    if tol > 0.0 and swidth > 0.0 and n >= st[P_SPATIAL_WARMUP] and outside and s < st[P_SPATIAL_SCORE]:
        s = st[P_SPATIAL_SCORE]
    sshrink = st[P_SPATIAL_DECAY] * swidth
    smax -= sshrink
    smin += sshrink
    st[S_SMAX] = x if x > smax else smax
    st[S_SMIN] = x if x < smin else smin

    # -- recurrence memory: a surprise like one seen near this time of day on an earlier day (this slot or
    #    a neighbour, recorded at least half a period ago) is partly expected
    s_raw = s
    rslots = int(st[P_REC_SLOTS])
    rslot = -1
    period = st[P_SEAS_PERIOD]
    tau = st[P_REC_TAU]
    if rslots > 0 and math.isfinite(tt):
        rph = tt / period
        rslot = int((rph - math.floor(rph)) * rslots)
        if rslot >= rslots:
            rslot = rslots - 1
        rec = 0.0
        for k in range(-1, 2):
            j = (rslot + k) % rslots
            m = st[T_REC_VAL + j]
            age = tt - st[T_REC_TIME + j]
            if m > 0.0 and age > 0.5 * period:
                m = m * math.exp(-age / tau)
                if m > rec:
                    rec = m
        s = s - st[P_REC_W] * rec

    # -- habituation (recurring alarms of one size become expected) and alarm suppression
    hab = st[S_HAB]
    s = s - st[P_HAB_W] * hab
    if s < 0.0:
        s = 0.0
    if n < warm:
        s = 0.0
    elif st[S_REFR] > 0.0:
        s = s * st[P_DAMP]
        st[S_REFR] -= 1.0
    elif s >= st[P_ALARM]:
        st[S_REFR] = st[P_REFRACTORY]
        if s_raw > hab:
            hab = s_raw
    st[S_HAB] = hab * (1.0 - st[P_HAB_DECAY])

    # -- remember a large surprise at this time of day (the larger of it and the faded memory)
    if rslot >= 0 and n >= warm and s_raw >= st[P_REC_MIN]:
        m = st[T_REC_VAL + rslot]
        age = tt - st[T_REC_TIME + rslot]
        if m > 0.0 and age > 0.0:
            m = m * math.exp(-age / tau)
        if s_raw > m:
            st[T_REC_VAL + rslot] = s_raw
            st[T_REC_TIME + rslot] = tt

    # -- learn
    st[S_FAST] += st[P_A_FAST] * (x - st[S_FAST])
    st[S_SLOW] += st[P_A_SLOW] * (x - st[S_SLOW])
    if n > 0.0:
        a_noise = st[P_A_NOISE]
        st[S_NOISE] += (a_noise if n * a_noise > 1.0 else 1.0 / n) * (d - st[S_NOISE])
        a_vs = st[P_V_SHORT]
        st[S_VS] += (a_vs if n * a_vs > 1.0 else 1.0 / n) * (d - vs)
        a_vl = st[P_V_LONG]
        st[S_VL] += (a_vl if n * a_vl > 1.0 else 1.0 / n) * (d - vl)
        a_b = st[P_A_BASE]
        st[S_DEV] += (a_b if n * a_b > 1.0 else 1.0 / n) * (abs(x - st[S_BASE]) - st[S_DEV])
    a_b = st[P_A_BASE]
    st[S_BASE] += (a_b if (n + 1.0) * a_b > 1.0 else 1.0 / (n + 1.0)) * (x - st[S_BASE])
    st[S_CP] = cp
    st[S_CM] = cm
    st[S_SCP] = scp
    st[S_SCM] = scm
    if rep:
        st[S_REPEATS] += 1.0
    st[S_RUN] = run
    if slot >= 0:
        _learn_slot(st, T_SEAS_MEAN + slot, T_SEAS_DEV + slot, T_SEAS_CNT + slot, x, st[P_SEAS_ALPHA])
    if wslot >= 0:
        _learn_slot(st, T_WK_MEAN + wslot, T_WK_DEV + wslot, T_WK_CNT + wslot, x, st[P_WEEK_ALPHA])
        if st[T_WK_LAST + wslot] != week:
            st[T_WK_LAST + wslot] = week
            st[T_WK_WEEKS + wslot] += 1.0
    st[cell] += 1.0
    st[T_CTX_TOT + ctx] = rowtot + 1.0
    if rowtot + 1.0 > st[P_CTX_CAP]:
        base = T_CTX + ctx * MAX_BINS
        for j in range(nb):
            st[base + j] *= 0.5
        st[T_CTX_TOT + ctx] = (rowtot + 1.0) * 0.5
    shrink = st[P_ENV_DECAY] * width
    hi = hi - shrink
    lo = lo + shrink
    st[S_HI] = x if x > hi else hi
    st[S_LO] = x if x < lo else lo
    st[S_B2] = st[S_B1]
    st[S_B1] = b
    st[S_PREV] = x
    st[S_N] = n + 1.0
    return s


@_njit(cache=True, nogil=True)
def step(st: np.ndarray, tt: float, x: float) -> float:
    """Score one point and learn from it (the per-point path)."""
    return _step(st, tt, x)


@_njit(cache=True, nogil=True)
def run(st: np.ndarray, times: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    """Score a block of points in order into ``out`` (the batch path; same scores as :func:`step`)."""
    for t in range(values.shape[0]):
        out[t] = _step(st, times[t], values[t])
