"""Per-model drift detector: a pinned reference against sliding current windows.

One :class:`DriftMonitor` per (tenant, model, version). It pins a reference — the first
``reference_size`` events after construction or a deployment (:meth:`DriftMonitor.start_collecting`),
or an uploaded / training-eval sample (:meth:`DriftMonitor.pin_reference`) — then keeps the last
``window_size`` events as the current window and evaluates it every ``step`` events (or when
``window_seconds`` have passed). State is bounded: reference feature columns (≤ ``max_reference``
rows), a bottom-k sample of reference embeddings, the current window ring, counters. Embeddings have a
window of their own (the last ``window_size`` embedded events), so a stream that embeds only a bounded number of
events per model (:mod:`detectors.drift.budget`) still tests enough of them; when every event is embedded it
holds exactly the tabular window's embeddings. A reference pinned with fewer than ``embedding_reference_min``
embeddings keeps collecting them, and the MMD tests start once it has them.

Calibration. Each window runs one test per feature (KS for numeric, chi-square homogeneity for
categorical, MMD with a permutation null for each embedding stream) and Holm's procedure across
them at level ``alpha / horizon_windows``: on same-distribution data the probability of *any*
false alarm in a window is at most that, and over ``horizon_windows`` evaluated windows at most
``alpha`` (a union bound, valid for overlapping windows and a shared reference). A rejected test
only counts as drift when its effect size also clears a practical floor (``min_effect``), so a
huge sample cannot alarm on a negligible change. Severity comes from the largest effect size.
Word-frequency divergence is deliberately not a decision input (unreliable on LLM text).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from detectors.drift.mmd import mmd_test
from detectors.drift.stats import TestResult, categorical_test, holm, numeric_test, paired_test
from detectors.features.tabular import CATEGORICAL_FEATURES, NUMERIC_FEATURES, PROMPT_KEY
from detectors.finding import Finding, Severity, Subject, Window

DETECTOR = "drift"

_BLAS: Any = None


def _blas_threads(n: int | None) -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS threads while a window is evaluated (small matrices: threads only contend).

    On a busy 2-core host a multi-threaded OpenBLAS made a 300×384·384×200 product 40× slower
    than one thread. Uses ``threadpoolctl`` when installed; otherwise leaves BLAS alone.
    """
    global _BLAS
    if n is None:
        return contextlib.nullcontext()
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:  # pragma: no cover - optional
            _BLAS = False
    if _BLAS is False:
        return contextlib.nullcontext()
    return _BLAS.limit(limits=n, user_api="blas")

Embeddings = Mapping[str, np.ndarray] | np.ndarray | None


@dataclass
class DriftConfig:
    """Settings of one drift monitor (the service maps env settings onto these)."""

    reference_size: int = 500
    """Events collected automatically as the reference after a (re)start."""
    max_reference: int = 2000
    """Cap on pinned reference rows (a deterministic sample is kept beyond it)."""
    embedding_reference_size: int = 300
    """Reference embeddings kept per stream (bounded MMD cost)."""
    embedding_reference_min: int = 100
    """Fewest embedded events the embedding reference waits for: when the tabular reference pins with some but
    fewer embeddings (the stream embeds a bounded number per model), embeddings keep being collected until there
    are this many, and the MMD tests start then."""
    window_size: int = 200
    """Events in the current window."""
    step: int = 100
    """Evaluate every ``step`` events once the window is full."""
    min_window: int = 50
    """Fewest events a time-closed or flushed window may have."""
    window_seconds: float | None = None
    """Also evaluate when this many seconds passed since the last evaluation (None: count only)."""
    alpha: float = 0.01
    """False-alarm probability per model over ``horizon_windows`` evaluated windows."""
    horizon_windows: int = 1000
    """Looks the ``alpha`` budget covers; the per-window family-wise level is ``alpha / horizon_windows``."""
    n_permutations: int = 200
    """Permutations of the MMD null."""
    min_effect_ks: float = 0.1
    """Smallest KS D that counts as drift."""
    min_effect_tv: float = 0.1
    """Smallest total-variation distance (categorical) that counts as drift."""
    min_effect_mmd: float = 0.1
    """Smallest bias-corrected MMD that counts as drift."""
    min_feature_n: int = 30
    """A feature is tested only with at least this many non-missing values on both sides."""
    paired_feature: str = "response_chars"
    """Compared per prompt: an event whose prompt is also in the reference is paired with the reference's mean
    log value for that prompt ("" disables the paired test)."""
    pair_window: int = 1000
    """Paired log-ratios kept (the most recent ones) for the paired test."""
    min_effect_paired: float = 0.05
    """Smallest relative change of the median paired ratio that counts as drift (0.05: 5 %)."""
    blas_threads: int | None = 1
    """BLAS threads while evaluating a window (None: leave the process setting)."""
    numeric_features: tuple[str, ...] = NUMERIC_FEATURES
    categorical_features: tuple[str, ...] = CATEGORICAL_FEATURES
    seed: int = 0

    @property
    def window_alpha(self) -> float:
        """Family-wise false-alarm level of one window."""
        return self.alpha / max(self.horizon_windows, 1)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftConfig:
        """Inverse of :func:`dataclasses.asdict` (tuples restored)."""
        d = dict(data)
        for k in ("numeric_features", "categorical_features"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


# Effect-size cut points per test: severity low / medium / high / critical starts at these values.
_SEVERITY_CUTS: dict[str, tuple[float, float, float, float]] = {
    "ks": (0.1, 0.2, 0.35, 0.5),
    "chi2": (0.1, 0.2, 0.35, 0.5),
    "mmd": (0.1, 0.2, 0.3, 0.45),
    "paired": (0.05, 0.15, 0.3, 0.5),
}


def severity_for(test: str, effect: float) -> Severity:
    """Severity of one drifted feature from its effect size."""
    cuts = _SEVERITY_CUTS.get(test, _SEVERITY_CUTS["ks"])
    sev = Severity.info
    for level, cut in zip((Severity.low, Severity.medium, Severity.high, Severity.critical), cuts):
        if effect >= cut:
            sev = level
    return sev


@dataclass
class WindowResult:
    """The outcome of evaluating one current window."""

    drift: bool
    drifted: list[str]
    results: dict[str, TestResult]
    start: datetime
    end: datetime
    n_cur: int
    index: int
    level: float
    severity: Severity = Severity.info
    extra: dict[str, Any] = field(default_factory=dict)

    def features_dict(self) -> dict[str, dict[str, object]]:
        """Per-feature results as plain dicts, with a ``drifted`` flag."""
        return {k: {**r.as_dict(), "drifted": k in self.drifted} for k, r in self.results.items()}


def _ts(ts: float | datetime | None) -> datetime:
    if ts is None:
        return datetime.now(UTC)
    if isinstance(ts, datetime):
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(ts), tz=UTC)


def _priority(seed: int, index: int) -> int:
    """A stable pseudo-random priority for bottom-k sampling (same inputs, same sample)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest(), "big")


def _enc(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.float16).tobytes()).decode("ascii")


def _dec(s: str, dim: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.float16).astype(np.float32).reshape(-1, dim)


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _as_embeddings(emb: Embeddings) -> dict[str, np.ndarray]:
    if emb is None:
        return {}
    if isinstance(emb, np.ndarray):
        return {"embedding": np.asarray(emb, dtype=np.float32).ravel()}
    return {k: np.asarray(v, dtype=np.float32).ravel() for k, v in emb.items() if v is not None}


class DriftMonitor:
    """Drift detector of one (tenant, model, version).

    Usage::

        mon = DriftMonitor(DriftConfig(), Subject(tenant="t", model="m", version="v1"))
        for ev in events:
            for finding in mon.update(extract_features(...), {"prompt": e_p, "response": e_r}, ts=ev.ts):
                publish(finding)
    """

    def __init__(self, config: DriftConfig | None = None, subject: Subject | None = None) -> None:
        self.config = config or DriftConfig()
        self.subject = subject or Subject(tenant="default", model="unknown")
        self.phase = "collecting"
        self.reference_source: str | None = None
        self.reference_pinned_at: datetime | None = None
        self._ref_num: dict[str, np.ndarray] = {}
        self._ref_cat: dict[str, dict[str, int]] = {}
        self._ref_rows: list[dict[str, Any]] = []  # tabular reference rows (for reports)
        self._ref_keys: list[str | None] = []  # the prompt key of each reference row (kept out of reports)
        self._ref_by_key: dict[str, float] = {}  # prompt key -> mean log paired feature of its reference rows
        self._pairs: deque[float] = deque(maxlen=self.config.pair_window)  # current log-ratios to the reference
        self._ref_emb: dict[str, np.ndarray] = {}
        self._ref_xx: dict[str, np.ndarray] = {}
        self._collect: list[tuple[dict[str, Any], dict[str, np.ndarray]]] = []
        self._window: deque[tuple[dict[str, Any], dict[str, np.ndarray], datetime]] = deque(
            maxlen=self.config.window_size
        )
        # the current embeddings: the last ``window_size`` embedded events, apart from the tabular window so that
        # a stream that embeds only some events (a budget per model) still has enough of them to test
        self._emb_window: deque[dict[str, np.ndarray]] = deque(maxlen=self.config.window_size)
        self._emb_collect: list[dict[str, np.ndarray]] = []  # embeddings for a reference still short of them
        self.embedding_pending = False
        self.events_seen = 0
        self.since_eval = 0
        self.windows_evaluated = 0
        self.last_eval_at: datetime | None = None
        self.drifting = False
        self.last_result: WindowResult | None = None

    # ------------------------------------------------------------------ reference
    def start_collecting(self) -> None:
        """Forget the reference and pin the next ``reference_size`` events (e.g. after a deployment)."""
        self.phase = "collecting"
        self._collect = []
        self._window.clear()
        self._emb_window.clear()
        self._emb_collect = []
        self.embedding_pending = False
        self._pairs.clear()
        self.since_eval = 0
        self.drifting = False

    def pin_reference(
        self,
        rows: Iterable[Mapping[str, Any]],
        embeddings: Iterable[Embeddings] | None = None,
        *,
        source: str = "uploaded",
        ts: float | datetime | None = None,
    ) -> None:
        """Pin a reference from feature rows (and optional per-row embeddings).

        Beyond ``max_reference`` rows a deterministic bottom-k sample is kept; embeddings are
        sampled down to ``embedding_reference_size`` per stream the same way.
        """
        cfg = self.config
        rows = [dict(r) for r in rows]
        embs = [_as_embeddings(e) for e in embeddings] if embeddings is not None else [{}] * len(rows)
        if len(embs) != len(rows):
            raise ValueError("embeddings must align with rows")
        if not rows:
            raise ValueError("an empty reference cannot be pinned")
        keep = self._bottom_k(len(rows), cfg.max_reference, salt=1)
        rows = [rows[i] for i in keep]
        self._ref_rows = [{k: _clean(r.get(k)) for k in (*cfg.numeric_features, *cfg.categorical_features)}
                          for r in rows]
        self._ref_keys = [str(r[PROMPT_KEY]) if r.get(PROMPT_KEY) else None for r in rows]
        self._index_pairs()
        self._ref_num = {
            f: np.array([_float(r.get(f)) for r in rows], dtype=np.float64) for f in cfg.numeric_features
        }
        self._ref_cat = {}
        for f in cfg.categorical_features:
            counts: dict[str, int] = {}
            for r in rows:
                v = r.get(f)
                if v is not None:
                    counts[str(v)] = counts.get(str(v), 0) + 1
            self._ref_cat[f] = counts
        self._pin_embeddings(embs)
        self.phase = "monitoring"
        self.reference_source = source
        self.reference_pinned_at = _ts(ts)
        self._collect = []
        self._window.clear()
        self._emb_window.clear()
        self._emb_collect = []
        self.embedding_pending = False
        self._pairs.clear()
        self.since_eval = 0
        self.windows_evaluated = 0
        self.drifting = False
        self.last_result = None

    def _pin_embeddings(self, embs: list[dict[str, np.ndarray]]) -> None:
        """The embedding reference: per stream, a deterministic bottom-k sample of ``embedding_reference_size``."""
        self._ref_emb, self._ref_xx = {}, {}
        names = sorted({k for e in embs for k in e})
        for name in names:
            idx = [i for i, e in enumerate(embs) if name in e]
            pick = self._bottom_k(len(idx), self.config.embedding_reference_size, salt=2)
            mat = np.stack([embs[idx[i]][name] for i in pick]).astype(np.float16).astype(np.float32)
            self._set_ref_emb(name, mat)

    def _index_pairs(self) -> None:
        """Prompt key -> mean log(1 + paired feature) over the reference rows with that prompt."""
        feature = self.config.paired_feature
        sums: dict[str, list[float]] = {}
        if feature:
            for key, row in zip(self._ref_keys, self._ref_rows, strict=True):
                v = _float(row.get(feature))
                if key is not None and math.isfinite(v) and v >= 0.0:
                    sums.setdefault(key, []).append(math.log1p(v))
        self._ref_by_key = {k: float(np.mean(v)) for k, v in sums.items()}

    def _set_ref_emb(self, name: str, mat: np.ndarray) -> None:
        self._ref_emb[name] = mat
        with _blas_threads(self.config.blas_threads):
            self._ref_xx[name] = mat @ mat.T

    def _bottom_k(self, n: int, k: int, salt: int) -> list[int]:
        if n <= k:
            return list(range(n))
        pri = [_priority(self.config.seed * 7919 + salt, i) for i in range(n)]
        return sorted(sorted(range(n), key=pri.__getitem__)[:k])

    # ------------------------------------------------------------------ stream
    def update(self, features: Mapping[str, Any], embeddings: Embeddings = None,
               ts: float | datetime | None = None) -> list[Finding]:
        """Add one event; returns findings when a window closed and drifted (or recovered)."""
        self.events_seen += 1
        emb = {k: v.astype(np.float16).astype(np.float32) for k, v in _as_embeddings(embeddings).items()}
        when = _ts(ts)
        if self.phase == "collecting":
            self._collect.append((dict(features), emb))
            if len(self._collect) >= self.config.reference_size:
                rows, embs = zip(*self._collect)
                self.pin_reference(rows, embs, source="first_events", ts=when)
                embedded = [e for e in embs if e]
                if 0 < len(embedded) < self.config.embedding_reference_min:  # too few yet: no MMD until then
                    self._emb_collect, self.embedding_pending = embedded, True
                    self._ref_emb, self._ref_xx = {}, {}
            return []
        self._window.append((dict(features), {}, when))
        if emb:
            if self.embedding_pending:
                self._emb_collect.append(emb)
                if len(self._emb_collect) >= self.config.embedding_reference_min:
                    self._pin_embeddings(self._emb_collect)
                    self._emb_collect, self.embedding_pending = [], False
            else:
                self._emb_window.append(emb)
        self._pair(features)
        self.since_eval += 1
        cfg = self.config
        full = len(self._window) == cfg.window_size and self.since_eval >= cfg.step
        timed = (
            cfg.window_seconds is not None
            and self.since_eval >= cfg.min_window
            and (when - (self.last_eval_at or self._window[0][2])).total_seconds() >= cfg.window_seconds
        )
        if full or timed:
            n = len(self._window) if full else min(len(self._window), max(self.since_eval, cfg.min_window))
            return self._evaluate(n)
        return []

    def _pair(self, features: Mapping[str, Any]) -> None:
        """Keep the log-ratio of this event's paired feature to the reference's, if the prompt is in it."""
        key = features.get(PROMPT_KEY)
        ref = self._ref_by_key.get(str(key)) if key else None
        v = _float(features.get(self.config.paired_feature)) if self.config.paired_feature else math.nan
        if ref is not None and math.isfinite(v) and v >= 0.0:
            self._pairs.append(math.log1p(v) - ref)

    def flush(self) -> list[Finding]:
        """Evaluate the events not yet evaluated (end of a replay), if there are ``min_window`` of them."""
        if self.phase != "monitoring" or self.since_eval == 0 or len(self._window) < self.config.min_window:
            return []
        return self._evaluate(len(self._window))

    def _evaluate(self, n: int) -> list[Finding]:
        with _blas_threads(self.config.blas_threads):
            return self._evaluate_window(n)

    def _evaluate_window(self, n: int) -> list[Finding]:
        cfg = self.config
        rows = list(self._window)[-n:]
        results: list[TestResult] = []
        for f in cfg.numeric_features:
            ref = self._ref_num.get(f)
            if ref is None:
                continue
            cur = np.array([_float(r[0].get(f)) for r in rows], dtype=np.float64)
            if min(np.count_nonzero(~np.isnan(ref)), np.count_nonzero(~np.isnan(cur))) < cfg.min_feature_n:
                continue
            results.append(numeric_test(f, ref, cur))
        for f in cfg.categorical_features:
            ref_counts = self._ref_cat.get(f)
            if not ref_counts or sum(ref_counts.values()) < cfg.min_feature_n:
                continue
            counts: dict[str, int] = {}
            for r in rows:
                v = r[0].get(f)
                if v is not None:
                    counts[str(v)] = counts.get(str(v), 0) + 1
            if sum(counts.values()) < cfg.min_feature_n:
                continue
            results.append(categorical_test(f, ref_counts, counts))
        current = [] if self.embedding_pending else list(self._emb_window)[-n:]
        for name, ref_mat in self._ref_emb.items():
            cur_vecs = [e[name] for e in current if name in e]
            if len(cur_vecs) < cfg.min_feature_n or len(ref_mat) < cfg.min_feature_n:
                continue
            results.append(mmd_test(f"{name}_embedding", ref_mat, np.stack(cur_vecs), n_perm=cfg.n_permutations,
                                    seed=cfg.seed, xx=self._ref_xx[name]))
        if cfg.paired_feature and len(self._pairs) >= cfg.min_feature_n:
            results.append(paired_test(f"{cfg.paired_feature}_paired", np.fromiter(self._pairs, dtype=np.float64),
                                       len(self._ref_by_key)))
        level = cfg.window_alpha
        reject = holm([r.p_value for r in results], level) if results else []
        floors = {"ks": cfg.min_effect_ks, "chi2": cfg.min_effect_tv, "mmd": cfg.min_effect_mmd,
                  "paired": cfg.min_effect_paired}
        drifted = [r for r, rej in zip(results, reject) if rej and r.effect >= floors[r.test]]
        sev = max((severity_for(r.test, r.effect) for r in drifted), default=Severity.info)
        res = WindowResult(
            drift=bool(drifted),
            drifted=[r.feature for r in drifted],
            results={r.feature: r for r in results},
            start=rows[0][2],
            end=rows[-1][2],
            n_cur=len(rows),
            index=self.windows_evaluated,
            level=level,
            severity=sev,
        )
        self.windows_evaluated += 1
        self.since_eval = 0
        self.last_eval_at = rows[-1][2]
        self.last_result = res
        findings: list[Finding] = []
        if res.drift:
            findings.append(self._finding(res, drifted))
        elif self.drifting:
            findings.append(self._resolved(res))
        self.drifting = res.drift
        return findings

    # ------------------------------------------------------------------ findings
    def _window_obj(self, res: WindowResult) -> Window:
        return Window(start=res.start, end=res.end, n=res.n_cur)

    def _common_evidence(self, res: WindowResult) -> dict[str, Any]:
        return {
            "window_index": res.index,
            "n_reference": int(max((len(a) for a in self._ref_num.values()), default=0)),
            "n_current": res.n_cur,
            "reference_source": self.reference_source,
            "reference_pinned_at": self.reference_pinned_at.isoformat() if self.reference_pinned_at else None,
            "window_alpha": res.level,
            "alpha": self.config.alpha,
            "horizon_windows": self.config.horizon_windows,
            "correction": "holm",
        }

    def _finding(self, res: WindowResult, drifted: list[TestResult]) -> Finding:
        drifted = sorted(drifted, key=lambda r: -r.effect)
        parts = [f"{r.feature} ({r.test} {r.effect:.2f}, p={r.p_value:.1e})" for r in drifted[:4]]
        return Finding.create(
            detector=DETECTOR,
            kind="distribution_drift",
            subject=self.subject,
            severity=res.severity,
            score=float(max(r.effect for r in drifted)),
            summary=f"{len(drifted)} feature(s) drifted vs reference: " + ", ".join(parts),
            evidence={
                **self._common_evidence(res),
                "drifted": [r.feature for r in drifted],
                "features": res.features_dict(),
            },
            window=self._window_obj(res),
            occurred_at=res.end,
        )

    def _resolved(self, res: WindowResult) -> Finding:
        return Finding.create(
            detector=DETECTOR,
            kind="drift_resolved",
            subject=self.subject,
            severity=Severity.info,
            score=0.0,
            summary="no feature drifted in this window; earlier drift resolved",
            evidence=self._common_evidence(res),
            window=self._window_obj(res),
            occurred_at=res.end,
        )

    # ------------------------------------------------------------------ reports & state
    def window_samples(self) -> dict[str, list[dict[str, Any]]]:
        """Tabular reference and current-window rows (feature dicts) for a human report."""
        keys = (*self.config.numeric_features, *self.config.categorical_features)
        cur = [{k: _clean(r[0].get(k)) for k in keys} for r in self._window]
        return {"reference": [dict(r) for r in self._ref_rows], "current": cur}

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state (embeddings as base64 float16)."""
        dims = {k: int(v.shape[1]) for k, v in self._ref_emb.items()}
        for _, e, _ in self._window:
            for k, v in e.items():
                dims.setdefault(k, int(v.shape[0]))
        for e in (*(e for _, e in self._collect), *self._emb_window, *self._emb_collect):
            for k, v in e.items():
                dims.setdefault(k, int(v.shape[0]))
        return {
            "version": 1,
            "config": {**asdict(self.config), "numeric_features": list(self.config.numeric_features),
                       "categorical_features": list(self.config.categorical_features)},
            "subject": self.subject.model_dump(),
            "phase": self.phase,
            "reference_source": self.reference_source,
            "reference_pinned_at": self.reference_pinned_at.isoformat() if self.reference_pinned_at else None,
            "ref_rows": self._ref_rows,
            "ref_keys": self._ref_keys,
            "pairs": list(self._pairs),
            "ref_emb": {k: _enc(v) for k, v in self._ref_emb.items()},
            "dims": dims,
            "collect": [[{k: _clean(v) for k, v in f.items()}, {k: _enc(v) for k, v in e.items()}]
                        for f, e in self._collect],
            "window": [[{k: _clean(v) for k, v in f.items()}, {k: _enc(v) for k, v in e.items()}, t.isoformat()]
                       for f, e, t in self._window],
            "emb_window": [{k: _enc(v) for k, v in e.items()} for e in self._emb_window],
            "emb_collect": [{k: _enc(v) for k, v in e.items()} for e in self._emb_collect],
            "embedding_pending": self.embedding_pending,
            "events_seen": self.events_seen,
            "since_eval": self.since_eval,
            "windows_evaluated": self.windows_evaluated,
            "last_eval_at": self.last_eval_at.isoformat() if self.last_eval_at else None,
            "drifting": self.drifting,
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> DriftMonitor:
        """Rebuild a monitor from :meth:`snapshot` output."""
        mon = cls(DriftConfig.from_dict(data["config"]), Subject(**data["subject"]))
        dims = data.get("dims", {})
        mon.phase = data["phase"]
        mon.reference_source = data.get("reference_source")
        pinned = data.get("reference_pinned_at")
        mon.reference_pinned_at = datetime.fromisoformat(pinned) if pinned else None
        rows = data.get("ref_rows") or []
        cfg = mon.config
        mon._ref_rows = [dict(r) for r in rows]
        if rows:
            mon._ref_num = {f: np.array([_float(r.get(f)) for r in rows]) for f in cfg.numeric_features}
            for f in cfg.categorical_features:
                counts: dict[str, int] = {}
                for r in rows:
                    if r.get(f) is not None:
                        counts[str(r[f])] = counts.get(str(r[f]), 0) + 1
                mon._ref_cat[f] = counts
        keys = data.get("ref_keys")
        mon._ref_keys = list(keys) if keys is not None and len(keys) == len(rows) else [None] * len(rows)
        mon._index_pairs()
        mon._pairs.extend(float(d) for d in data.get("pairs") or [])
        for k, s in (data.get("ref_emb") or {}).items():
            mon._set_ref_emb(k, _dec(s, dims[k]))
        mon._collect = [({k: (float("nan") if v is None and k in cfg.numeric_features else v) for k, v in f.items()},
                         {k: _dec(s, dims[k])[0] for k, s in e.items()}) for f, e in data.get("collect") or []]
        for f, e, t in data.get("window") or []:
            mon._window.append(({k: (float("nan") if v is None and k in cfg.numeric_features else v)
                                 for k, v in f.items()}, {}, datetime.fromisoformat(t)))
            if e and "emb_window" not in data:  # written before embeddings had their own window
                mon._emb_window.append({k: _dec(s, dims[k])[0] for k, s in e.items()})
        mon._emb_window.extend({k: _dec(s, dims[k])[0] for k, s in e.items()} for e in data.get("emb_window") or [])
        mon._emb_collect = [{k: _dec(s, dims[k])[0] for k, s in e.items()} for e in data.get("emb_collect") or []]
        mon.embedding_pending = bool(data.get("embedding_pending", False))
        mon.events_seen = int(data.get("events_seen", 0))
        mon.since_eval = int(data.get("since_eval", 0))
        mon.windows_evaluated = int(data.get("windows_evaluated", 0))
        last = data.get("last_eval_at")
        mon.last_eval_at = datetime.fromisoformat(last) if last else None
        mon.drifting = bool(data.get("drifting", False))
        return mon


def _float(v: Any) -> float:
    if v is None:
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
