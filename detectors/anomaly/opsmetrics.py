"""Operational metrics per (tenant, model): interval aggregation feeding streaming anomaly detectors.

:class:`OpsMetricsMonitor` takes one observation per inference event (``observe``), keeps an open
bucket per (tenant, model) and interval, and closes buckets by *event time*: the watermark is the
largest event time seen minus ``allowed_lateness_s``, and a bucket closes once the watermark passes
its end, so a replay of the same events gives the same intervals, scores and finding ids. Each closed
interval yields latency p50/p95 (ms), error rate, request rate (requests/s), tokens and cost; each metric
series has its own :class:`~detectors.anomaly.detector.AnomalyDetector`. An alarming score becomes a
``metric_anomaly`` finding with the metric, value, expected range and score as evidence.

Pure: no Kafka, no clock (``advance`` moves the watermark explicitly when a caller wants idle
intervals closed), state snapshot-able as JSON data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from detectors.anomaly.detector import AnomalyConfig, AnomalyDetector, restorable
from detectors.finding import Finding, Severity, Subject, Window

__all__ = ["METRICS", "OpsMetricsConfig", "OpsMetricsMonitor", "IntervalMetrics"]

METRICS: tuple[str, ...] = ("latency_p50_ms", "latency_p95_ms", "error_rate", "request_rate", "tokens", "cost")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ops_detector_config() -> AnomalyConfig:
    # Learn for an hour of 60 s intervals before scoring (NAB files give the detector ~600 points).
    return AnomalyConfig(warmup=60)


@dataclass(frozen=True)
class OpsMetricsConfig:
    """Settings of :class:`OpsMetricsMonitor` (the service maps env settings onto these)."""

    interval_s: float = 60.0
    allowed_lateness_s: float = 0.0
    max_latency_samples: int = 4096  # per bucket; beyond it a deterministic reservoir sample is kept
    max_gap_fill: int = 60  # empty intervals fed as zero traffic when a subject resumes after a gap
    detector: AnomalyConfig = field(default_factory=_ops_detector_config)
    # score thresholds for severities, highest first; scores below the detector's alarm raise nothing
    severity_levels: tuple[tuple[float, str], ...] = ((0.99, "critical"), (0.9, "high"), (0.7, "medium"), (0.0, "low"))

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if self.allowed_lateness_s < 0:
            raise ValueError("allowed_lateness_s must be >= 0")
        if self.max_latency_samples < 1:
            raise ValueError("max_latency_samples must be >= 1")

    def severity(self, score: float) -> Severity:
        """Severity of a finding with this score."""
        for level, name in self.severity_levels:
            if score >= level:
                return Severity.parse(name)
        return Severity.low

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for snapshots)."""
        d = asdict(self)
        d["severity_levels"] = [list(x) for x in self.severity_levels]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpsMetricsConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["detector"] = AnomalyConfig.from_dict(d["detector"])
        d["severity_levels"] = tuple((float(a), str(b)) for a, b in d["severity_levels"])
        return cls(**d)


@dataclass
class _Bucket:
    """Raw aggregates of one subject's interval."""

    requests: int = 0
    errors: int = 0
    tokens: int = 0
    cost: float = 0.0
    latencies: list[float] = field(default_factory=list)
    latency_seen: int = 0

    def add_latency(self, value: float, cap: int) -> None:
        self.latency_seen += 1
        if len(self.latencies) < cap:
            self.latencies.append(value)
            return
        # deterministic reservoir sampling (Algorithm R with a hash of the count as the draw)
        j = ((self.latency_seen * 2654435761) & 0xFFFFFFFF) % self.latency_seen
        if j < cap:
            self.latencies[j] = value


@dataclass(frozen=True)
class IntervalMetrics:
    """The metrics of one closed interval of one subject (a metric is None when undefined)."""

    subject: Subject
    start: datetime
    end: datetime
    requests: int
    values: dict[str, float | None]


def _seconds(ts: datetime) -> float:
    if ts.tzinfo is None:  # naive times are taken as UTC
        ts = ts.replace(tzinfo=UTC)
    return ts.timestamp()


class OpsMetricsMonitor:
    """Per-(tenant, model) interval metrics with one anomaly detector per metric series.

    Usage::

        mon = OpsMetricsMonitor(OpsMetricsConfig(interval_s=60))
        for ev in events:  # in (roughly) event-time order
            findings = mon.observe(subject, ev.ts, ev.latency_ms, ev.is_error, ev.tokens, ev.cost)
    """

    def __init__(self, config: OpsMetricsConfig | None = None) -> None:
        self.config = config or OpsMetricsConfig()
        self._buckets: dict[tuple[str, str], dict[int, _Bucket]] = {}
        self._detectors: dict[tuple[str, str, str], AnomalyDetector] = {}
        self._last_closed: dict[tuple[str, str], int] = {}
        self._max_event_s = -math.inf
        self._next_close_s = math.inf  # earliest end of an open bucket (no scan needed before it)
        self.late_events = 0
        self.closed_intervals = 0

    # ---- input -----------------------------------------------------------------------------------
    def observe(
        self,
        subject: Subject,
        ts: datetime,
        latency_ms: float | None,
        is_error: bool,
        tokens: int | None,
        cost: float | None,
    ) -> list[Finding]:
        """Add one event; return the findings of every interval this event's time closes."""
        cfg = self.config
        t = _seconds(ts)
        key = (subject.tenant, subject.model)
        idx = math.floor(t / cfg.interval_s)
        last = self._last_closed.get(key)
        if last is not None and idx <= last:
            self.late_events += 1  # its interval was already closed and scored
        else:
            per = self._buckets.get(key)
            if per is None:
                per = self._buckets[key] = {}
            b = per.get(idx)
            if b is None:
                b = per[idx] = _Bucket()
                end = (idx + 1) * cfg.interval_s
                if end < self._next_close_s:
                    self._next_close_s = end
            b.requests += 1
            b.errors += 1 if is_error else 0
            if tokens is not None:
                b.tokens += int(tokens)
            if cost is not None and math.isfinite(cost):
                b.cost += float(cost)
            if latency_ms is not None and math.isfinite(latency_ms):
                b.add_latency(float(latency_ms), cfg.max_latency_samples)
        if t > self._max_event_s:
            self._max_event_s = t
        if self._max_event_s - cfg.allowed_lateness_s < self._next_close_s:
            return []
        return self._close_ready()

    def advance(self, watermark_ts: datetime) -> list[Finding]:
        """Move the watermark to ``watermark_ts`` (e.g. on an idle tick) and close what it passes."""
        t = _seconds(watermark_ts) + self.config.allowed_lateness_s
        if t > self._max_event_s:
            self._max_event_s = t
        return self._close_ready()

    @property
    def watermark(self) -> float:
        """Event-time watermark in epoch seconds (-inf before any event)."""
        return self._max_event_s - self.config.allowed_lateness_s

    # ---- closing ---------------------------------------------------------------------------------
    def _close_ready(self) -> list[Finding]:
        wm = self.watermark
        iv = self.config.interval_s
        findings: list[Finding] = []
        for key in sorted(self._buckets):
            per = self._buckets[key]
            ready = sorted(i for i in per if (i + 1) * iv <= wm)
            for i in ready:
                findings.extend(self._close(key, i, per.pop(i)))
            if not per:
                del self._buckets[key]
        self._reset_next_close()
        return findings

    def _close(self, key: tuple[str, str], idx: int, bucket: _Bucket) -> list[Finding]:
        cfg = self.config
        findings: list[Finding] = []
        last = self._last_closed.get(key)
        if last is not None and idx - last > 1:
            # the subject was silent: zero traffic in the skipped intervals (at most max_gap_fill of them)
            for gap in range(max(last + 1, idx - cfg.max_gap_fill), idx):
                findings.extend(self._score(key, gap, _Bucket()))
        findings.extend(self._score(key, idx, bucket))
        self._last_closed[key] = idx
        return findings

    def interval_metrics(self, key: tuple[str, str], idx: int, bucket: _Bucket) -> IntervalMetrics:
        """The metrics of one closed bucket."""
        iv = self.config.interval_s
        start = _EPOCH + timedelta(seconds=idx * iv)
        values: dict[str, float | None] = {m: None for m in METRICS}
        values["request_rate"] = bucket.requests / iv
        if bucket.requests:
            values["error_rate"] = bucket.errors / bucket.requests
            values["tokens"] = float(bucket.tokens)
            values["cost"] = bucket.cost
        if bucket.latencies:
            lat = np.asarray(bucket.latencies)
            p50, p95 = np.percentile(lat, [50.0, 95.0])
            values["latency_p50_ms"] = float(p50)
            values["latency_p95_ms"] = float(p95)
        return IntervalMetrics(
            subject=Subject(tenant=key[0], model=key[1]),
            start=start,
            end=start + timedelta(seconds=iv),
            requests=bucket.requests,
            values=values,
        )

    def _score(self, key: tuple[str, str], idx: int, bucket: _Bucket) -> list[Finding]:
        cfg = self.config
        m = self.interval_metrics(key, idx, bucket)
        self.closed_intervals += 1
        findings: list[Finding] = []
        for metric in METRICS:
            value = m.values[metric]
            if value is None:
                continue
            dkey = (key[0], key[1], metric)
            det = self._detectors.get(dkey)
            if det is None:
                det = self._detectors[dkey] = AnomalyDetector(cfg.detector)
            low, high = det.expected_range()
            score = det.update(m.end, value)
            if not det.flag:
                continue
            window = Window(start=m.start, end=m.end, n=m.requests)
            findings.append(
                Finding.create(
                    detector="anomaly",
                    kind="metric_anomaly",
                    subject=m.subject,
                    severity=cfg.severity(score),
                    score=score,
                    summary=f"{metric} = {value:.6g} outside its usual behaviour (expected {low:.6g}..{high:.6g})",
                    evidence={
                        "metric": metric,
                        "value": value,
                        "expected_low": low,
                        "expected_high": high,
                        "score": score,
                        "interval_s": cfg.interval_s,
                        "requests": m.requests,
                    },
                    window=window,
                    occurred_at=m.end,
                    key=metric,
                )
            )
        return findings

    # ---- readable state --------------------------------------------------------------------------
    def detector(self, tenant: str, model: str, metric: str) -> AnomalyDetector | None:
        """The detector of one metric series (None before its first closed interval)."""
        return self._detectors.get((tenant, model, metric))

    # ---- persistence -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole state (config, open buckets, detectors, watermark) as JSON-serialisable data."""
        return {
            "version": 1,
            "config": self.config.to_dict(),
            "max_event_s": None if self._max_event_s == -math.inf else self._max_event_s,
            "late_events": self.late_events,
            "closed_intervals": self.closed_intervals,
            "last_closed": [[k[0], k[1], v] for k, v in sorted(self._last_closed.items())],
            "buckets": [
                [k[0], k[1], i, asdict(b)] for k, per in sorted(self._buckets.items()) for i, b in sorted(per.items())
            ],
            "detectors": [[k[0], k[1], k[2], d.snapshot()] for k, d in sorted(self._detectors.items())],
        }

    def model_state(self, tenant: str, model: str) -> dict[str, Any] | None:
        """One (tenant, model)'s part of the state — open buckets, detectors, last closed interval, and
        the watermark — for a per-model checkpoint (None when the monitor holds nothing of it)."""
        key = (tenant, model)
        detectors = {m: d.snapshot() for (t, mo, m), d in self._detectors.items() if (t, mo) == key}
        if key not in self._buckets and not detectors:
            return None
        return {
            "version": 1,
            "max_event_s": None if self._max_event_s == -math.inf else self._max_event_s,
            "last_closed": self._last_closed.get(key),
            "buckets": [[i, asdict(b)] for i, b in sorted(self._buckets.get(key, {}).items())],
            "detectors": detectors,
        }

    def restore_model(self, tenant: str, model: str, state: dict[str, Any]) -> int:
        """Load :meth:`model_state` output for a model this monitor holds nothing of; returns 1 when it did, else 0."""
        key = (tenant, model)
        if state.get("version") != 1 or key in self._buckets or key in self._last_closed:
            return 0
        if state.get("last_closed") is not None:
            self._last_closed[key] = int(state["last_closed"])
        if state.get("buckets"):
            self._buckets[key] = {int(i): _Bucket(**b) for i, b in state["buckets"]}
            self._next_close_s = min(self._next_close_s, (min(self._buckets[key]) + 1) * self.config.interval_s)
        for metric, snap in (state.get("detectors") or {}).items():
            if restorable(snap):  # an earlier detector's state is dropped: that series starts afresh
                self._detectors[(tenant, model, metric)] = AnomalyDetector.restore(snap)
        if state.get("max_event_s") is not None and state["max_event_s"] > self._max_event_s:
            self._max_event_s = float(state["max_event_s"])
        return 1

    def forget_model(self, tenant: str, model: str) -> None:
        """Drop everything the monitor holds of one (tenant, model)."""
        key = (tenant, model)
        self._buckets.pop(key, None)
        self._last_closed.pop(key, None)
        for k in [k for k in self._detectors if k[:2] == key]:
            del self._detectors[k]
        self._reset_next_close()

    def _reset_next_close(self) -> None:
        """The earliest end of an open bucket, recomputed from all buckets."""
        iv = self.config.interval_s
        self._next_close_s = min(((min(per) + 1) * iv for per in self._buckets.values()), default=math.inf)

    @classmethod
    def restore(cls, data: dict[str, Any]) -> OpsMetricsMonitor:
        """Rebuild a monitor from :meth:`snapshot` output."""
        if data.get("version") != 1:
            raise ValueError(f"unsupported opsmetrics snapshot version {data.get('version')!r}")
        mon = cls(OpsMetricsConfig.from_dict(data["config"]))
        mon._max_event_s = -math.inf if data["max_event_s"] is None else float(data["max_event_s"])
        mon.late_events = int(data["late_events"])
        mon.closed_intervals = int(data["closed_intervals"])
        mon._last_closed = {(t, m): int(i) for t, m, i in data["last_closed"]}
        for t, m, i, b in data["buckets"]:
            mon._buckets.setdefault((t, m), {})[int(i)] = _Bucket(**b)
        mon._reset_next_close()
        for t, m, metric, snap in data["detectors"]:
            if restorable(snap):  # an earlier detector's state is dropped: that series starts afresh
                mon._detectors[(t, m, metric)] = AnomalyDetector.restore(snap)
        return mon
