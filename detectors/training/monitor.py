"""Training-run monitoring: step metrics of one run in, ``training`` findings out.

:class:`TrainingRunMonitor` follows one training run (one run id) step by step. ``update(step,
metrics, ts)`` takes the metrics a trainer logs at a step (loss, learning rate, grad norm, throughput,
any of them missing) and returns the findings that step raises:

``loss_nan`` (critical)
    the loss is NaN or ±inf (a ``None`` loss counts too when ``null_is_nan`` is set, for producers whose
    JSON encoder writes non-finite floats as ``null``).
``loss_divergence`` (high)
    one of three rules, named in the evidence as ``rule``:

    * ``explosion`` — the loss is more than ``explosion_factor`` (3) times the running median of its
      last ``median_window`` (K) finite values, on ``explosion_confirm`` consecutive steps (2: a lone
      spike that recovers at once is not a divergence). The current value is compared with the median
      of the values *before* it, so a jump is flagged on its second step.
    * ``trend`` — slow divergence: the smoothed log-loss (EWMA) has risen ``trend_factor`` (1.5×) above
      the best smoothed value of the run.
    * ``anomaly`` (off by default) — the streaming :class:`~detectors.anomaly.detector.AnomalyDetector` on the
      log-loss alarms *upwards* (value above its expected range) while the smoothed loss is also above
      its best by ``anomaly_min_rise``. Measured by ``python -m bench.training_eval --with-anomaly``
      (200 simulated runs per fault): at the default gate (1.2x) it detects nothing earlier than the
      two rules above (same delays, no extra alarms); loosened to 1.05x it raised false alarms on about
      a third of healthy runs (a noisy, decreasing curve looks "novel" to a level/volatility detector).
      So it stays off; it is kept as an option for series whose shape the simple rules miss.
``loss_plateau`` (low)
    the smoothed log-loss has not improved by ``plateau_rel_tol`` (1 %) for ``plateau_patience`` steps.
``grad_explosion`` (high; critical when non-finite)
    the gradient norm is non-finite, or above ``grad_factor`` times the running median of its last K
    values on ``grad_confirm`` consecutive steps.

Each kind fires once per *episode*: after a finding the monitor stays quiet for that kind until the
series has been healthy for ``rearm_steps`` consecutive observations (plateau: until the loss improves
again), so a diverged run gives one finding, not one per step. "Steps" in the settings count observed
step events (a trainer that logs every 10th step makes each logged step one observation).

Steps arrive in order per run (producers key by model, one partition); a step at or before the last
seen one is a redelivery and is ignored (``stale`` counts them), so at-least-once delivery cannot raise
a finding twice. Finding ids derive from the run id, the kind and the onset step, so a replay after a
crash upserts the same findings.

Ratio and log rules need a positive loss; a run whose loss is <= 0 gets the NaN rule and the
grad-norm rules only. Pure: no Kafka, no clock; state round-trips through ``snapshot()`` /
``restore()`` as JSON data.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from detectors.anomaly.detector import AnomalyConfig, AnomalyDetector, restorable
from detectors.finding import Finding, Severity, Subject, Window

__all__ = ["TrainingMonitorConfig", "TrainingRunMonitor", "DETECTOR", "KINDS"]

DETECTOR = "training"
KINDS = ("loss_nan", "loss_divergence", "loss_plateau", "grad_explosion")


def _anomaly_default() -> AnomalyConfig:
    # training curves are not seasonal; learn for 50 steps, one alarm per 50 steps at most
    return AnomalyConfig(warmup=50, refractory=50, w_seasonal=0.0, seasonal_slots=0)


@dataclass(frozen=True)
class TrainingMonitorConfig:
    """Settings of :class:`TrainingRunMonitor` (the service maps env settings onto these)."""

    loss_keys: tuple[str, ...] = ("loss", "train_loss", "train/loss")
    grad_norm_keys: tuple[str, ...] = ("grad_norm", "train/grad_norm", "gradient_norm")
    lr_keys: tuple[str, ...] = ("learning_rate", "lr", "train/learning_rate")
    null_is_nan: bool = False
    median_window: int = 50  # K: running median over the last K finite values
    min_history: int = 10  # values in the window before the ratio rules apply
    explosion_factor: float = 3.0
    explosion_confirm: int = 2
    trend_alpha: float = 0.05  # EWMA weight of the log-loss
    trend_factor: float = 1.5
    trend_min_steps: int = 20
    use_anomaly: bool = False
    anomaly: AnomalyConfig = field(default_factory=_anomaly_default)
    anomaly_min_rise: float = 1.2  # smoothed loss at least this many times its best for an anomaly alarm
    plateau_patience: int = 200
    plateau_rel_tol: float = 0.01
    grad_factor: float = 10.0
    grad_confirm: int = 2
    rearm_steps: int = 10

    def __post_init__(self) -> None:
        if self.median_window < 3:
            raise ValueError("median_window must be >= 3")
        if not 1 <= self.min_history <= self.median_window:
            raise ValueError("min_history must be in [1, median_window]")
        if self.explosion_factor <= 1.0 or self.grad_factor <= 1.0 or self.trend_factor <= 1.0:
            raise ValueError("explosion_factor, grad_factor and trend_factor must be > 1")
        if self.explosion_confirm < 1 or self.grad_confirm < 1 or self.rearm_steps < 1:
            raise ValueError("explosion_confirm, grad_confirm and rearm_steps must be >= 1")
        if not 0.0 < self.trend_alpha <= 1.0:
            raise ValueError("trend_alpha must be in (0, 1]")
        if self.plateau_patience < 1 or not 0.0 <= self.plateau_rel_tol < 1.0:
            raise ValueError("plateau_patience must be >= 1 and plateau_rel_tol in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for snapshots)."""
        d = asdict(self)
        for k in ("loss_keys", "grad_norm_keys", "lr_keys"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingMonitorConfig:
        """Inverse of :meth:`to_dict` (missing keys take defaults, unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown TrainingMonitorConfig keys: {sorted(unknown)}")
        d = dict(data)
        for k in ("loss_keys", "grad_norm_keys", "lr_keys"):
            if k in d:
                d[k] = tuple(d[k])
        if "anomaly" in d and isinstance(d["anomaly"], Mapping):
            d["anomaly"] = AnomalyConfig.from_dict(dict(d["anomaly"]))
        return cls(**d)


def _pick(metrics: Mapping[str, float | None], keys: tuple[str, ...]) -> tuple[bool, float | None]:
    """(present, value) of the first of ``keys`` in ``metrics``."""
    for k in keys:
        if k in metrics:
            v = metrics[k]
            return True, None if v is None else float(v)
    return False, None


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.isoformat()


def _parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class _Episode:
    """One kind's alarm state: open from its onset until ``rearm_steps`` healthy observations."""

    __slots__ = ("open", "onset_step", "onset_ts", "healthy", "streak", "streak_step", "streak_ts")

    def __init__(self) -> None:
        self.open = False
        self.onset_step: int | None = None
        self.onset_ts: str | None = None
        self.healthy = 0  # consecutive healthy observations while open
        self.streak = 0  # consecutive observations breaking a ratio rule (for confirmation)
        self.streak_step: int | None = None  # step and time of the first breach of the current streak
        self.streak_ts: str | None = None

    def breach(self, step: int, iso: str | None) -> None:
        """Count one more consecutive breach of a ratio rule."""
        if self.streak == 0:
            self.streak_step, self.streak_ts = int(step), iso
        self.streak += 1

    def to_dict(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _Episode:
        e = cls()
        for s in cls.__slots__:
            setattr(e, s, d[s])
        return e


class TrainingRunMonitor:
    """Loss / gradient health of one training run, one step at a time.

    Usage::

        mon = TrainingRunMonitor("run-42", Subject(tenant="acme", model="summariser", version="7"))
        for ev in step_events:  # in step order
            findings = mon.update(ev.step, ev.metrics, ev.occurred_at, event_id=ev.event_id)

    Readable state: ``n`` (finite losses seen), ``last_step``, ``running_median``, ``smoothed_loss``,
    ``best_smoothed_loss``, ``steps_since_improvement``, ``open_kinds``, ``stale``.
    """

    def __init__(self, run_id: str, subject: Subject, config: TrainingMonitorConfig | None = None) -> None:
        self.run_id = run_id
        self.subject = subject
        self.config = cfg = config or TrainingMonitorConfig()
        self._losses: deque[float] = deque(maxlen=cfg.median_window)
        self._grads: deque[float] = deque(maxlen=cfg.median_window)
        self._log_ewma: float | None = None
        self._best_ewma: float | None = None  # minimum of the smoothed log-loss
        self._plateau_ref: float | None = None  # smoothed log-loss at the last real improvement
        self._since_improvement = 0
        self._episodes: dict[str, _Episode] = {k: _Episode() for k in KINDS}
        self._anomaly: AnomalyDetector | None = AnomalyDetector(cfg.anomaly) if cfg.use_anomaly else None
        self.n = 0
        self.observations = 0
        self.last_step: int | None = None
        self.last_lr: float | None = None
        self.stale = 0

    # ---- readable state --------------------------------------------------------------------------
    @property
    def running_median(self) -> float | None:
        """Median of the last K finite losses (None before any)."""
        return statistics.median(self._losses) if self._losses else None

    @property
    def smoothed_loss(self) -> float | None:
        """EWMA of the loss in log space, back on the loss scale (None before a positive loss)."""
        return None if self._log_ewma is None else math.exp(self._log_ewma)

    @property
    def best_smoothed_loss(self) -> float | None:
        """The lowest smoothed loss of the run so far."""
        return None if self._best_ewma is None else math.exp(self._best_ewma)

    @property
    def steps_since_improvement(self) -> int:
        """Observations since the smoothed loss last improved by ``plateau_rel_tol``."""
        return self._since_improvement

    @property
    def open_kinds(self) -> list[str]:
        """Kinds whose episode is open (already reported, not yet healthy again)."""
        return [k for k in KINDS if self._episodes[k].open]

    # ---- input -----------------------------------------------------------------------------------
    def update(
        self,
        step: int,
        metrics: Mapping[str, float | None],
        ts: datetime | None = None,
        *,
        event_id: str | None = None,
    ) -> list[Finding]:
        """Take the metrics logged at ``step``; return the findings this step raises (usually none)."""
        cfg = self.config
        if self.last_step is not None and step <= self.last_step:
            self.stale += 1
            return []
        self.last_step = int(step)
        self.observations += 1
        iso = _iso(ts)
        out: list[Finding] = []

        present, lr = _pick(metrics, cfg.lr_keys)
        if present and lr is not None and math.isfinite(lr):
            self.last_lr = lr

        present, loss = _pick(metrics, cfg.loss_keys)
        if present and (loss is not None or cfg.null_is_nan):
            out.extend(self._loss_rules(step, loss, iso, event_id))

        present, grad = _pick(metrics, cfg.grad_norm_keys)
        if present and (grad is not None or cfg.null_is_nan):
            out.extend(self._grad_rules(step, grad, iso, event_id))
        return out

    # ---- loss ------------------------------------------------------------------------------------
    def _loss_rules(self, step: int, loss: float | None, iso: str | None, event_id: str | None) -> list[Finding]:
        cfg = self.config
        out: list[Finding] = []
        nan_ep = self._episodes["loss_nan"]
        if loss is None or not math.isfinite(loss):
            nan_ep.healthy = 0
            if not nan_ep.open:
                self._open(nan_ep, step, iso)
                shown = "null" if loss is None else repr(loss)
                out.append(
                    self._finding(
                        "loss_nan",
                        Severity.critical,
                        1.0,
                        f"training loss is {shown} at step {step} (run {self.run_id})",
                        {"loss": shown, "last_finite_median": self.running_median},
                        step,
                        iso,
                        event_id,
                    )
                )
            return out
        self._heal(nan_ep)

        median = self.running_median if len(self._losses) >= cfg.min_history else None
        div_ep = self._episodes["loss_divergence"]
        rule: str | None = None
        ratio = loss / median if median is not None and median > 0 else None
        if ratio is not None and ratio > cfg.explosion_factor:
            div_ep.breach(step, iso)
            if div_ep.streak >= cfg.explosion_confirm:
                rule = "explosion"
        else:
            div_ep.streak = 0

        anomaly_score: float | None = None
        if loss > 0:
            x = math.log(loss)
            if self._log_ewma is None:
                self._log_ewma = x
            else:
                self._log_ewma += cfg.trend_alpha * (x - self._log_ewma)
            if self._best_ewma is None or self._log_ewma < self._best_ewma:
                self._best_ewma = self._log_ewma
            rise = self._log_ewma - self._best_ewma
            if rule is None and self.n >= cfg.trend_min_steps and rise > math.log(cfg.trend_factor):
                rule = "trend"
            if self._anomaly is not None:
                high = self._anomaly.expected_range()[1]
                anomaly_score = self._anomaly.update(None, x)
                if (
                    rule is None
                    and self._anomaly.flag
                    and x > high
                    and rise > math.log(cfg.anomaly_min_rise)
                ):
                    rule = "anomaly"
            out.extend(self._plateau_rule(step, iso, event_id))

        if rule is not None:
            div_ep.healthy = 0
            if not div_ep.open:
                self._open(div_ep, step, iso, from_streak=rule == "explosion")
                smooth, best = self.smoothed_loss, self.best_smoothed_loss
                if rule == "explosion" and ratio is not None:
                    score = ratio
                else:
                    score = smooth / best if smooth and best else 1.0
                out.append(
                    self._finding(
                        "loss_divergence",
                        Severity.high,
                        float(score),
                        self._divergence_summary(rule, step, loss, median, smooth, best),
                        {
                            "rule": rule,
                            "loss": loss,
                            "running_median": median,
                            "ratio_to_median": ratio,
                            "explosion_factor": cfg.explosion_factor,
                            "median_window": cfg.median_window,
                            "smoothed_loss": smooth,
                            "best_smoothed_loss": best,
                            "anomaly_score": anomaly_score,
                        },
                        step,
                        iso,
                        event_id,
                    )
                )
        elif ratio is None or ratio <= cfg.explosion_factor:
            self._heal(div_ep)

        self._losses.append(loss)
        self.n += 1
        return out

    def _divergence_summary(
        self, rule: str, step: int, loss: float, median: float | None, smooth: float | None, best: float | None
    ) -> str:
        if rule == "explosion" and median is not None:
            return (
                f"training loss {loss:.4g} is {loss / median:.1f}x its running median {median:.4g} "
                f"at step {step} (run {self.run_id})"
            )
        return (
            f"training loss diverging ({rule}): smoothed loss {smooth:.4g} vs best {best:.4g} "
            f"at step {step} (run {self.run_id})"
        )

    def _plateau_rule(self, step: int, iso: str | None, event_id: str | None) -> list[Finding]:
        cfg = self.config
        assert self._log_ewma is not None
        ep = self._episodes["loss_plateau"]
        if self._plateau_ref is None or self._log_ewma <= self._plateau_ref + math.log1p(-cfg.plateau_rel_tol):
            self._plateau_ref = self._log_ewma
            self._since_improvement = 0
            ep.open = False
            ep.streak = 0
            return []
        self._since_improvement += 1
        if ep.open or self._since_improvement < cfg.plateau_patience:
            return []
        self._open(ep, step, iso)
        smooth = math.exp(self._log_ewma)
        return [
            self._finding(
                "loss_plateau",
                Severity.low,
                self._since_improvement / cfg.plateau_patience,
                f"training loss has not improved by {cfg.plateau_rel_tol:.0%} for {self._since_improvement} "
                f"steps (smoothed {smooth:.4g}) at step {step} (run {self.run_id})",
                {
                    "smoothed_loss": smooth,
                    "reference_loss": math.exp(self._plateau_ref),
                    "steps_without_improvement": self._since_improvement,
                    "plateau_patience": cfg.plateau_patience,
                    "plateau_rel_tol": cfg.plateau_rel_tol,
                },
                step,
                iso,
                event_id,
            )
        ]

    # ---- gradient norm ---------------------------------------------------------------------------
    def _grad_rules(self, step: int, grad: float | None, iso: str | None, event_id: str | None) -> list[Finding]:
        cfg = self.config
        ep = self._episodes["grad_explosion"]
        finite = grad is not None and math.isfinite(grad)
        median = statistics.median(self._grads) if len(self._grads) >= cfg.min_history else None
        ratio = grad / median if finite and median is not None and median > 0 else None  # type: ignore[operator]
        breach = not finite
        if ratio is not None and ratio > cfg.grad_factor:
            ep.breach(step, iso)
            breach = ep.streak >= cfg.grad_confirm
        elif finite:
            ep.streak = 0
        out: list[Finding] = []
        if breach:
            ep.healthy = 0
            if not ep.open:
                self._open(ep, step, iso, from_streak=finite)
                shown = repr(grad) if grad is not None else "null"
                summary = (
                    f"gradient norm is {shown} at step {step} (run {self.run_id})"
                    if not finite
                    else f"gradient norm {grad:.4g} is {ratio:.1f}x its running median {median:.4g} "
                    f"at step {step} (run {self.run_id})"
                )
                out.append(
                    self._finding(
                        "grad_explosion",
                        Severity.critical if not finite else Severity.high,
                        float(ratio) if ratio is not None else 1.0,
                        summary,
                        {
                            "grad_norm": grad if finite else shown,
                            "running_median": median,
                            "ratio_to_median": ratio,
                            "grad_factor": cfg.grad_factor,
                        },
                        step,
                        iso,
                        event_id,
                    )
                )
        elif ratio is None or ratio <= cfg.grad_factor:
            self._heal(ep)
        if finite:
            self._grads.append(float(grad))  # type: ignore[arg-type]
        return out

    # ---- episodes and findings -------------------------------------------------------------------
    def _open(self, ep: _Episode, step: int, iso: str | None, from_streak: bool = False) -> None:
        """Open an episode; its onset is the first breach of a confirmed streak, else this step."""
        ep.open = True
        ep.healthy = 0
        if from_streak and ep.streak > 0 and ep.streak_step is not None:
            ep.onset_step, ep.onset_ts = ep.streak_step, ep.streak_ts
        else:
            ep.onset_step, ep.onset_ts = int(step), iso

    def _heal(self, ep: _Episode) -> None:
        if not ep.open:
            return
        ep.healthy += 1
        if ep.healthy >= self.config.rearm_steps:
            ep.open = False
            ep.healthy = 0
            ep.onset_step = None
            ep.onset_ts = None

    def _finding(
        self,
        kind: str,
        severity: Severity,
        score: float,
        summary: str,
        evidence: dict[str, Any],
        step: int,
        iso: str | None,
        event_id: str | None,
    ) -> Finding:
        ep = self._episodes[kind]
        ts = _parse_ts(iso)
        start = _parse_ts(ep.onset_ts) or ts
        window = Window(start=start, end=ts, n=max(1, step - (ep.onset_step or step) + 1)) if ts and start else None
        return Finding.create(
            detector=DETECTOR,
            kind=kind,
            subject=self.subject,
            severity=severity,
            score=score,
            summary=summary,
            evidence={
                "run_id": self.run_id,
                "step": step,
                "onset_step": ep.onset_step,
                **evidence,
                "learning_rate": self.last_lr,
            },
            event_id=event_id,
            window=window,
            occurred_at=ts,
            key=f"{self.run_id}|{kind}|{ep.onset_step}",
        )

    # ---- persistence -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-serialisable plain data."""
        return {
            "version": 1,
            "run_id": self.run_id,
            "subject": self.subject.model_dump(),
            "config": self.config.to_dict(),
            "losses": list(self._losses),
            "grads": list(self._grads),
            "log_ewma": self._log_ewma,
            "best_ewma": self._best_ewma,
            "plateau_ref": self._plateau_ref,
            "since_improvement": self._since_improvement,
            "episodes": {k: e.to_dict() for k, e in self._episodes.items()},
            "anomaly": None if self._anomaly is None else self._anomaly.snapshot(),
            "n": self.n,
            "observations": self.observations,
            "last_step": self.last_step,
            "last_lr": self.last_lr,
            "stale": self.stale,
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> TrainingRunMonitor:
        """Rebuild a monitor from :meth:`snapshot` output."""
        if data.get("version") != 1:
            raise ValueError(f"unsupported training snapshot version {data.get('version')!r}")
        mon = cls(data["run_id"], Subject(**data["subject"]), TrainingMonitorConfig.from_dict(data["config"]))
        mon._losses.extend(float(x) for x in data["losses"])
        mon._grads.extend(float(x) for x in data["grads"])
        mon._log_ewma = data["log_ewma"]
        mon._best_ewma = data["best_ewma"]
        mon._plateau_ref = data["plateau_ref"]
        mon._since_improvement = int(data["since_improvement"])
        mon._episodes = {k: _Episode.from_dict(data["episodes"][k]) for k in KINDS}
        if data["anomaly"] is not None and restorable(data["anomaly"]):
            mon._anomaly = AnomalyDetector.restore(data["anomaly"])  # an earlier detector's state starts afresh
        mon.n = int(data["n"])
        mon.observations = int(data["observations"])
        mon.last_step = data["last_step"]
        mon.last_lr = data["last_lr"]
        mon.stale = int(data["stale"])
        return mon
