"""The compiled scoring kernel behind :class:`detectors.anomaly.detector.AnomalyDetector`.

One function, :func:`run_kernel`, advances the detector's state over a block of values and writes one
score per value. The per-point ``update()`` and the batch ``update_many()`` both call it (with blocks of
one value and of many values), so both paths give the same scores by construction.

The whole state lives in three flat float64 arrays (``fs`` scalars, ``tab`` the context table, ``p`` the
parameters, read only), which keeps the kernel compilable with numba and the state trivially
snapshot-able. Without numba the same source runs as plain Python (slow but identical).

Components (each gives a raw "surprise" per point, all scale-free):

0. fast residual:   log1p(|x - EWMA_fast(x)| / noise scale)       (spikes, dips)
1. slow residual:   log1p(|x - EWMA_slow(x)| / noise scale)              (level shifts, sustained drifts)
2. context surprise: -log P(bin_t | bin_{t-2}, bin_{t-1}) on values quantised inside a slowly
   contracting min/max envelope, counts learnt online (CAD-OSE-like pattern novelty)
3. volatility change: |log(short / long mean absolute first difference)|  (flat-lining, noise bursts)
4. seasonal residual: log1p(|x - profile[time-of-day slot]| / the slot's mean absolute deviation),
   weighted by how much better the daily profile predicts than the slow level does (0 for series
   without a daily rhythm), so a daily pattern that breaks (a missing peak, a holiday) is caught
   while an ordinary level change of a periodic series is not. A weekly profile (168 hourly
   time-of-week slots by default, EWMA mean and mean absolute deviation per slot, a slot trusted once
   visited in ``weekly_min_weeks`` distinct weeks) takes the daily profile's place wherever its slot
   is trusted and its long-run mean |error| is below the daily profile's (both measured over the same
   points): ordinary weekends stop looking like broken days, and a weekday that behaves like a Sunday
   (a holiday) is caught
5. lagged-window novelty (KNN-CAD-like): log1p(L1 distance from the window of the last ``knn_len``
   values to the nearest of ``knn_refs`` stored windows (one stored every ``knn_stride`` points, never
   one overlapping the current window) / (``knn_len`` x noise scale)), windows centred on their means
   by default (shape, not level); an incident whose values all lie in the normal range but whose
   shape is new

Each raw surprise is smoothed over a short horizon and standardised against its own long-run mean and
variance (an anomaly-likelihood in the manner of Numenta's HTM post-processing; the standard
deviation has a floor, so a surprise that is almost constant, e.g. on a perfectly periodic series,
does not turn its tiny wiggles into alarms); the largest standardised
surprise becomes a tail probability, mapped to a log-likelihood score in [0, 1]. A value well outside
the (very slowly contracting) range seen so far scores at least ``spatial_score`` (as in Numenta's NAB
HTM detector). A recurrence memory keeps, per time-of-day slot (15 min by default), the largest
score seen there, fading over a few days; a later score near that time of day, on a later day, is
lowered by a fraction of it, so a spike that comes back every day (a nightly batch job, a cron
backup) alarms once and then becomes expected, while the same spike at a new time still alarms.
Habituation lowers scores by a fraction of the recent alarm level, so recurring
incidents of one size stop alarming; after an alarm (score >= ``alarm``) the output is damped for
``refractory`` points, so one incident raises one alarm.
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


N_COMP = 6

# ---- parameter vector layout (p) -------------------------------------------------------------------
P_WARMUP = 0  # points scored 0 while the statistics settle
P_A_FAST = 1  # EWMA weight of the fast level
P_A_SLOW = 2  # EWMA weight of the slow level
P_A_NOISE = 3  # EWMA weight of the noise scale (mean |first difference|)
P_BINS = 4  # quantisation bins of the context model (<= MAX_BINS)
P_ENV_DECAY = 5  # per-point contraction of the min/max envelope (fraction of its width)
P_CTX_PRIOR = 6  # additive prior of the context model's counts
P_CTX_CAP = 7  # a context row is halved when its total exceeds this (bounded memory, forgetting)
P_V_SHORT = 8  # EWMA weight of the short volatility
P_V_LONG = 9  # EWMA weight of the long volatility
P_SMOOTH = 10  # EWMA weight of the short average of each raw surprise
P_A_STATS = 11  # EWMA weight of the long-run mean/variance of the averaged surprises
P_ALARM = 12  # score at which an alarm is raised
P_REFRACTORY = 13  # points damped after an alarm
P_DAMP = 14  # factor applied to scores inside the refractory period
P_W0 = 15  # weights of the standardised surprises, components 0..3
P_W1 = 16
P_W2 = 17
P_W3 = 18
P_FLOOR = 19  # noise-scale floor, as a fraction of the envelope width
P_Z_CLIP = 20  # raw surprises are clipped at this many long-run standard deviations before learning
P_SPATIAL = 21  # a value this far (fraction of the width) outside the min/max envelope scores at least P_SPATIAL_SCORE
P_SPATIAL_SCORE = 22
P_SPATIAL_DECAY = 23  # per-point contraction of the spatial min/max envelope (slower than the binning one)
P_HAB_W = 24  # habituation: scores are lowered by this fraction of the recent alarm level
P_HAB_DECAY = 25  # per-point decay of the recent alarm level
P_SPATIAL_WARMUP = 26  # points seen before the spatial rule may fire
P_W4 = 27  # weight of the seasonal (time-of-day) surprise
P_SEAS_SLOTS = 28  # time-of-day slots of the seasonal profile (<= MAX_SLOTS); 0 disables it
P_SEAS_ALPHA = 29  # per-visit EWMA weight of a slot's mean and mean absolute deviation
P_SEAS_MIN = 30  # visits of a slot before its profile is trusted
P_SEAS_PERIOD = 31  # period of the profile in seconds (a day)
P_SD_FLOOR = 32  # floor of the long-run standard deviation of each surprise (in the surprise's units)
P_REC_SLOTS = 33  # time-of-day slots of the recurrence memory (<= MAX_REC_SLOTS); 0 disables it
P_REC_W = 34  # scores are lowered by this fraction of the score remembered near this time of day
P_REC_TAU = 35  # seconds over which a remembered score fades (e-folding time)
P_REC_MIN = 36  # smallest (pre-discount) score the recurrence memory records
P_W5 = 37  # weight of the lagged-window nearest-neighbour surprise
P_KNN_LEN = 38  # values per lagged window (<= MAX_KNN_LEN); 0 disables the component
P_KNN_REFS = 39  # reference windows kept (<= MAX_KNN_REFS)
P_KNN_STRIDE = 40  # a reference window is stored every this many points
P_KNN_CENTRE = 41  # 1: windows are stored and compared without their means (shape only)
P_WEEK_SLOTS = 42  # time-of-week slots of the weekly profile (<= MAX_WEEK_SLOTS); 0 disables it
P_WEEK_ALPHA = 43  # per-visit EWMA weight of a weekly slot's mean and mean absolute deviation
P_WEEK_MIN = 44  # distinct weeks a weekly slot must have been visited in before it is trusted
P_WEEK_PERIOD = 45  # period of the weekly profile in seconds (a week)
N_PARAMS = 46

MAX_BINS = 16
MAX_SLOTS = 96
MAX_REC_SLOTS = 288
MAX_KNN_LEN = 32
MAX_KNN_REFS = 128
MAX_WEEK_SLOTS = 336

# ---- scalar state layout (fs) ----------------------------------------------------------------------
S_N = 0
S_FAST = 1
S_SLOW = 2
S_NOISE = 3
S_PREV = 4
S_LO = 5
S_HI = 6
S_B1 = 7
S_B2 = 8
S_VS = 9
S_VL = 10
S_REFR = 11
S_SMIN = 12
S_SMAX = 13
S_HAB = 14
S_AVG = 15  # N_COMP short averages
S_MU = S_AVG + N_COMP  # N_COMP long-run means
S_VAR = S_MU + N_COMP  # N_COMP long-run variances
S_SEAS_ERR = S_VAR + N_COMP  # long-run mean |x - seasonal profile|
S_LEVEL_ERR = S_SEAS_ERR + 1  # long-run mean |x - slow level| over the same points
S_WEEK_ERR = S_LEVEL_ERR + 1  # long-run mean |x - weekly profile| where both profiles are trusted
S_DAYW_ERR = S_WEEK_ERR + 1  # long-run mean |x - daily profile| over the same points
N_STATE = S_DAYW_ERR + 1

CTX_SIZE = MAX_BINS * MAX_BINS * MAX_BINS + MAX_BINS * MAX_BINS  # counts + row totals
T_SEAS_MEAN = CTX_SIZE  # per-slot mean, mean absolute deviation, visits
T_SEAS_DEV = T_SEAS_MEAN + MAX_SLOTS
T_SEAS_CNT = T_SEAS_DEV + MAX_SLOTS
T_REC_VAL = T_SEAS_CNT + MAX_SLOTS  # recurrence memory: per time-of-day slot, the remembered score ...
T_REC_TIME = T_REC_VAL + MAX_REC_SLOTS  # ... and the timestamp (seconds) at which it was recorded
T_KNN_RING = T_REC_TIME + MAX_REC_SLOTS  # the last MAX_KNN_LEN values (ring, position n % len)
T_KNN_REF = T_KNN_RING + MAX_KNN_LEN  # reference windows (oldest value first, centred if so configured), rows of MAX_KNN_LEN
T_KNN_AT = T_KNN_REF + MAX_KNN_REFS * MAX_KNN_LEN  # point count (n + 1) at which each reference was stored
T_WK_MEAN = T_KNN_AT + MAX_KNN_REFS  # weekly profile: per time-of-week slot mean, mean absolute deviation,
T_WK_DEV = T_WK_MEAN + MAX_WEEK_SLOTS
T_WK_CNT = T_WK_DEV + MAX_WEEK_SLOTS  # points learnt,
T_WK_WEEKS = T_WK_CNT + MAX_WEEK_SLOTS  # distinct weeks visited
T_WK_LAST = T_WK_WEEKS + MAX_WEEK_SLOTS  # and 1 + the index of the last week visited (0: never)
TAB_SIZE = T_WK_LAST + MAX_WEEK_SLOTS

_LOG_EPS = math.log(1e-10)


@_njit(cache=True, nogil=True)
def _learn_slot(tab: np.ndarray, mean_at: int, dev_at: int, count_at: int, x: float, alpha: float) -> None:
    """One visit of a profile slot: its EWMA mean and mean absolute deviation learn ``x`` (plain running
    averages for the first ``1 / alpha`` visits), and its visit count grows."""
    c = tab[count_at]
    if c == 0.0:
        tab[mean_at] = x
    else:
        a = alpha if c * alpha > 1.0 else 1.0 / (c + 1.0)
        e = x - tab[mean_at]
        tab[mean_at] += a * e
        tab[dev_at] += a * (abs(e) - tab[dev_at])
    tab[count_at] = c + 1.0


@_njit(cache=True, nogil=True)
def run_kernel(
    times: np.ndarray, values: np.ndarray, out: np.ndarray, fs: np.ndarray, tab: np.ndarray, p: np.ndarray
) -> None:
    """Advance the state (``fs``, ``tab``) over ``values`` and write one score in [0, 1] per value to ``out``.

    ``times`` holds each value's timestamp in seconds (NaN where unknown: the seasonal component then
    stays neutral for that point). A non-finite value leaves the state untouched and scores 0.
    """
    nb = int(p[P_BINS])
    tot0 = MAX_BINS * MAX_BINS * MAX_BINS
    warm = p[P_WARMUP]
    a_fast = p[P_A_FAST]
    a_slow = p[P_A_SLOW]
    a_noise = p[P_A_NOISE]
    decay = p[P_ENV_DECAY]
    prior = p[P_CTX_PRIOR]
    cap = p[P_CTX_CAP]
    a_vs = p[P_V_SHORT]
    a_vl = p[P_V_LONG]
    a_sm = p[P_SMOOTH]
    a_st = p[P_A_STATS]
    zclip = p[P_Z_CLIP]
    lognb = math.log(nb)
    nslots = int(p[P_SEAS_SLOTS])
    s_alpha = p[P_SEAS_ALPHA]
    s_min = p[P_SEAS_MIN]
    period = p[P_SEAS_PERIOD]
    sd_floor = p[P_SD_FLOOR] + 1e-9
    wslots = int(p[P_WEEK_SLOTS])
    w_alpha = p[P_WEEK_ALPHA]
    w_min = p[P_WEEK_MIN]
    wperiod = p[P_WEEK_PERIOD]
    raw = np.zeros(N_COMP)
    win = np.zeros(MAX_KNN_LEN)
    for t in range(values.shape[0]):
        x = values[t]
        if not math.isfinite(x):
            out[t] = 0.0
            continue
        n = fs[S_N]
        if n == 0.0:
            fs[S_FAST] = x
            fs[S_SLOW] = x
            fs[S_PREV] = x
            fs[S_LO] = x
            fs[S_HI] = x
            fs[S_SMIN] = x
            fs[S_SMAX] = x
            fs[S_NOISE] = 0.0
            fs[S_VS] = 0.0
            fs[S_VL] = 0.0
        lo = fs[S_LO]
        hi = fs[S_HI]
        width = hi - lo
        scale = fs[S_NOISE] + p[P_FLOOR] * width + 1e-12 * (abs(x) + 1.0)

        # -- component 0/1: residuals against a fast and a slow level
        raw[0] = math.log1p(abs(x - fs[S_FAST]) / scale)
        raw[1] = math.log1p(abs(x - fs[S_SLOW]) / scale)

        # -- component 2: context surprise on quantised values
        if width > 0.0:
            b = int((x - lo) / width * nb)
            if b < 0:
                b = 0
            elif b >= nb:
                b = nb - 1
        else:
            b = 0
        ctx = int(fs[S_B2]) * MAX_BINS + int(fs[S_B1])
        cell = ctx * MAX_BINS + b
        rowtot = tab[tot0 + ctx]
        raw[2] = -math.log((tab[cell] + prior) / (rowtot + prior * nb)) / lognb

        # -- component 3: change of volatility
        d = abs(x - fs[S_PREV])
        vs = fs[S_VS]
        vl = fs[S_VL]
        eps = p[P_FLOOR] * width + 1e-12 * (abs(x) + 1.0)
        raw[3] = abs(math.log((vs + eps) / (vl + eps)))

        # -- component 4: residual against the time-of-day profile (neutral until the slot is known)
        tt = times[t]
        slot = -1
        if nslots > 0 and math.isfinite(tt):
            ph = tt / period
            slot = int((ph - math.floor(ph)) * nslots)
            if slot >= nslots:
                slot = nslots - 1
        wslot = -1
        week = 0.0
        if wslots > 0 and math.isfinite(tt):
            wph = tt / wperiod
            week = math.floor(wph) + 1.0
            wslot = int((wph - math.floor(wph)) * wslots)
            if wslot >= wslots:
                wslot = wslots - 1
        seas_w = 0.0
        if slot >= 0 and tab[T_SEAS_CNT + slot] >= s_min:
            sres = abs(x - tab[T_SEAS_MEAN + slot])
            sdev = tab[T_SEAS_DEV + slot]
            if wslot >= 0 and tab[T_WK_WEEKS + wslot] >= w_min:
                # the weekly profile replaces the daily one where it has predicted better (same points)
                wres = abs(x - tab[T_WK_MEAN + wslot])
                fs[S_WEEK_ERR] += a_st * (wres - fs[S_WEEK_ERR])
                fs[S_DAYW_ERR] += a_st * (sres - fs[S_DAYW_ERR])
                if fs[S_WEEK_ERR] < fs[S_DAYW_ERR]:
                    sres = wres
                    sdev = tab[T_WK_DEV + wslot]
            raw[4] = math.log1p(sres / (sdev + scale))
            # the profile counts only as far as it predicts better than the slow level does
            fs[S_SEAS_ERR] += a_st * (sres - fs[S_SEAS_ERR])
            fs[S_LEVEL_ERR] += a_st * (abs(x - fs[S_SLOW]) - fs[S_LEVEL_ERR])
            if fs[S_LEVEL_ERR] > 0.0:
                seas_w = 1.0 - fs[S_SEAS_ERR] / fs[S_LEVEL_ERR]
                if seas_w < 0.0:
                    seas_w = 0.0
        else:
            raw[4] = fs[S_MU + 4]

        # -- component 5: distance from the window of the last L values to its nearest stored window
        klen = int(p[P_KNN_LEN])
        nref = int(p[P_KNN_REFS])
        if klen > 0:
            tab[T_KNN_RING + int(n) % klen] = x
        best = -1.0
        if klen > 0 and n + 1.0 >= klen:
            start = int(n + 1.0) % klen  # ring position of the oldest value of the current window
            wmean = 0.0
            for k in range(klen):
                win[k] = tab[T_KNN_RING + (start + k) % klen]
                wmean += win[k]
            if p[P_KNN_CENTRE] > 0.0:  # compare shapes: windows are kept and compared without their means
                wmean /= klen
                for k in range(klen):
                    win[k] -= wmean
            newest = n + 1.0 - klen  # a reference stored later than this overlaps the current window
            for r in range(nref):
                at = tab[T_KNN_AT + r]
                if at <= 0.0 or at > newest:
                    continue
                base = T_KNN_REF + r * MAX_KNN_LEN
                dsum = 0.0
                for k in range(klen):
                    dsum += abs(win[k] - tab[base + k])
                if best < 0.0 or dsum < best:
                    best = dsum
        if best >= 0.0:
            raw[5] = math.log1p(best / (klen * scale))
        else:
            raw[5] = fs[S_MU + 5]

        # -- standardise each smoothed surprise against its long-run statistics
        zmax = 0.0
        a_stat = a_st if n * a_st > 1.0 else 1.0 / (n + 1.0)
        for i in range(N_COMP):
            r = raw[i]
            avg = fs[S_AVG + i] + a_sm * (r - fs[S_AVG + i]) if n > 0.0 else r
            mu = fs[S_MU + i]
            var = fs[S_VAR + i]
            sd = math.sqrt(var) + sd_floor
            z = (avg - mu) / sd
            if n > 0.0:
                if i < 4:
                    wz = z * p[P_W0 + i]
                elif i == 4:
                    wz = z * p[P_W4] * seas_w
                else:
                    wz = z * p[P_W5]
                if wz > zmax:
                    zmax = wz
            # learn with the surprise clipped, so one incident does not inflate the baseline
            if zclip > 0.0 and n > warm and avg > mu + zclip * sd:
                avg_l = mu + zclip * sd
            else:
                avg_l = avg
            fs[S_AVG + i] = avg_l if n > warm else avg
            dlt = avg_l - mu
            fs[S_MU + i] = mu + a_stat * dlt
            fs[S_VAR + i] = (1.0 - a_stat) * (var + a_stat * dlt * dlt)

        # -- tail probability of the largest surprise -> log-likelihood score in [0, 1]
        q = 0.5 * math.erfc(zmax / math.sqrt(2.0))
        s = math.log(q + 1e-10) / _LOG_EPS
        if s < 0.0:
            s = 0.0
        elif s > 1.0:
            s = 1.0

        # -- spatial novelty: a value well outside everything seen recently
        tol = p[P_SPATIAL]
        smin = fs[S_SMIN]
        smax = fs[S_SMAX]
        swidth = smax - smin
        if tol > 0.0 and swidth > 0.0 and n >= p[P_SPATIAL_WARMUP] and (x > smax + tol * swidth or x < smin - tol * swidth):
            if s < p[P_SPATIAL_SCORE]:
                s = p[P_SPATIAL_SCORE]
        sshrink = p[P_SPATIAL_DECAY] * swidth
        smax -= sshrink
        smin += sshrink
        fs[S_SMAX] = x if x > smax else smax
        fs[S_SMIN] = x if x < smin else smin

        # -- recurrence memory: a surprise like one seen at about this time of day on an earlier day
        #    (this slot or a neighbour, recorded at least half a period ago) is partly expected
        s_raw = s
        rslots = int(p[P_REC_SLOTS])
        rslot = -1
        if rslots > 0 and math.isfinite(tt):
            rph = tt / period
            rslot = int((rph - math.floor(rph)) * rslots)
            if rslot >= rslots:
                rslot = rslots - 1
            rec = 0.0
            for k in range(-1, 2):
                j = (rslot + k) % rslots
                m = tab[T_REC_VAL + j]
                age = tt - tab[T_REC_TIME + j]
                if m > 0.0 and age > 0.5 * period:
                    m = m * math.exp(-age / p[P_REC_TAU])
                    if m > rec:
                        rec = m
            s = s - p[P_REC_W] * rec

        # -- habituation (recurring alarms of one size become expected) and alarm suppression
        hab = fs[S_HAB]
        s = s - p[P_HAB_W] * hab
        if s < 0.0:
            s = 0.0
        if n < warm:
            s = 0.0
        elif fs[S_REFR] > 0.0:
            s = s * p[P_DAMP]
            fs[S_REFR] -= 1.0
        elif s >= p[P_ALARM]:
            fs[S_REFR] = p[P_REFRACTORY]
            if s_raw > hab:
                hab = s_raw
        fs[S_HAB] = hab * (1.0 - p[P_HAB_DECAY])
        out[t] = s

        # -- remember a large surprise at this time of day (the larger of it and the faded memory)
        if rslot >= 0 and n >= warm and s_raw >= p[P_REC_MIN]:
            m = tab[T_REC_VAL + rslot]
            age = tt - tab[T_REC_TIME + rslot]
            if m > 0.0 and age > 0.0:
                m = m * math.exp(-age / p[P_REC_TAU])
            if s_raw > m:
                tab[T_REC_VAL + rslot] = s_raw
                tab[T_REC_TIME + rslot] = tt

        # -- learn
        fs[S_FAST] += a_fast * (x - fs[S_FAST])
        fs[S_SLOW] += a_slow * (x - fs[S_SLOW])
        if n > 0.0:
            fs[S_NOISE] += (a_noise if n * a_noise > 1.0 else 1.0 / n) * (d - fs[S_NOISE])
            fs[S_VS] += (a_vs if n * a_vs > 1.0 else 1.0 / n) * (d - vs)
            fs[S_VL] += (a_vl if n * a_vl > 1.0 else 1.0 / n) * (d - vl)
        if slot >= 0:
            _learn_slot(tab, T_SEAS_MEAN + slot, T_SEAS_DEV + slot, T_SEAS_CNT + slot, x, s_alpha)
        if wslot >= 0:
            _learn_slot(tab, T_WK_MEAN + wslot, T_WK_DEV + wslot, T_WK_CNT + wslot, x, w_alpha)
            if tab[T_WK_LAST + wslot] != week:
                tab[T_WK_LAST + wslot] = week
                tab[T_WK_WEEKS + wslot] += 1.0
        if klen > 0 and nref > 0 and n + 1.0 >= klen and int(n + 1.0) % int(p[P_KNN_STRIDE]) == 0:
            r = int((n + 1.0) / p[P_KNN_STRIDE]) % nref
            for k in range(klen):
                tab[T_KNN_REF + r * MAX_KNN_LEN + k] = win[k]
            tab[T_KNN_AT + r] = n + 1.0
        tab[cell] += 1.0
        tab[tot0 + ctx] = rowtot + 1.0
        if rowtot + 1.0 > cap:
            base = ctx * MAX_BINS
            for j in range(nb):
                tab[base + j] *= 0.5
            tab[tot0 + ctx] = (rowtot + 1.0) * 0.5
        shrink = decay * width
        hi = hi - shrink
        lo = lo + shrink
        if x > hi:
            hi = x
        if x < lo:
            lo = x
        fs[S_HI] = hi
        fs[S_LO] = lo
        fs[S_B2] = fs[S_B1]
        fs[S_B1] = b
        fs[S_PREV] = x
        fs[S_N] = n + 1.0
