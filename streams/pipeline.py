"""What the stream worker does to a batch of payloads, free of Kafka.

    decode ──bad──► dead letter
      │
    PII: every message and the response are analysed (batched); the event is replaced by a
         redacted copy, so no later stage — detector, finding, topic — sees a raw value
      │
    detectors: rules (per event), ops metrics → anomaly (per interval), cohort fairness (per window)
      │
    policies → decisions

The faust agent (``streams.app``) feeds raw bytes in and publishes what comes out; keeping this
pure makes it testable without a broker and lets the benchmark measure it alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

import dataclasses
import hashlib
from collections import OrderedDict

from detectors.bias.fairness import CohortFairnessMonitor, FairnessConfig
from detectors.bias.bbq import BbqRegressionDetector
from detectors.drift.monitor import DriftConfig, DriftMonitor
from detectors.features.embeddings import EmbedderConfig, MiniLMEmbedder
from detectors.features.tabular import CATEGORICAL_FEATURES, NUMERIC_FEATURES, extract_features
from detectors.training.regression import EvalRegressionDetector, EvalResult
from detectors.training.monitor import TrainingRunMonitor
from detectors.bias.outcomes import protected_groups, refusal_outcome
from detectors.finding import Finding, Subject
from detectors.anomaly.opsmetrics import OpsMetricsConfig, OpsMetricsMonitor
from detectors.pii.detector import PiiConfig, PiiDetector, PiiResult, pii_finding
from detectors.pii.redaction import keyed_hash
from detectors.rules import RuleConfig, RuleDetector
from contracts.decision import Decision
from contracts.dead_letter import DeadLetter, Rejection
from streams.codec import decode_event
from contracts.aggregates import AggregateDelta
from policies.routing import AggregateCollector
from contracts.samples import Label, Sample, label_of, sample_of
from contracts.events import DeploymentEvent, Event, FeedbackEvent, InferenceEvent, TrainingEvent

#: training runs whose monitors a worker keeps (least recently updated dropped first)
MAX_TRAINING_RUNS = 1000
#: drift monitors (tenant, model, version) a worker keeps; each holds its reference and window samples
MAX_DRIFT_MONITORS = 200
#: format of :meth:`Pipeline.model_state` checkpoints
MODEL_STATE_VERSION = 1
#: training-sample skew monitors a worker keeps waiting for production traffic (oldest dropped first)
MAX_SKEW_MONITORS = 50
#: features a training row yields (its text only: no latency, cost, token counts or finish reason)
SKEW_NUMERIC = tuple(f for f in NUMERIC_FEATURES if f not in ("prompt_tokens", "completion_tokens", "latency_ms",
                                                               "cost_usd"))
SKEW_CATEGORICAL = tuple(f for f in CATEGORICAL_FEATURES if f != "finish_reason")
#: reference rows a drift finding carries for the Evidently report (its current window is kept whole)
MAX_REPORT_ROWS = 500
#: embeddings of recent texts kept (system prompts and templates repeat)
EMBEDDING_CACHE = 20_000


class Policy(Protocol):
    """Anything that turns one finding into decisions."""

    def evaluate(self, finding: Finding) -> list[Decision]: ...


@dataclass(slots=True)
class Outcome:
    """The result of processing one payload. ``event`` is the redacted event."""

    event: Event | None = None
    dead_letter: DeadLetter | None = None
    findings: list[Finding] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    history: Sample | Label | None = None
    """What the event adds to the training history (``warden.samples``), if anything."""


@dataclass(frozen=True, slots=True)
class RawItem:
    """One payload and where it came from."""

    value: bytes
    topic: str
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None


@dataclass(frozen=True)
class PipelineConfig:
    """Knobs of the stream pipeline (mapped from :class:`warden.settings.Settings`)."""

    max_event_bytes: int = 1024 * 1024
    rules: RuleConfig = RuleConfig()
    pii: PiiConfig | None = field(default_factory=PiiConfig)  # None: PII stage off (tests of other stages)
    ops: OpsMetricsConfig | None = field(default_factory=OpsMetricsConfig)
    fairness: FairnessConfig | None = field(
        default_factory=lambda: FairnessConfig(protected_attributes=("age_band", "gender"))
    )
    drift: DriftConfig | None = field(default_factory=DriftConfig)
    user_key: str | None = None  # HMAC key: findings carry a keyed hash of the user id (for erasure), never the id
    embeddings: EmbedderConfig | None = None  # None: drift on tabular features only
    #: share of events whose texts are embedded (chosen by event id, so a replay picks the same ones): the MMD
    #: test needs tens of vectors per window, not one per event, and embedding is the costliest stage
    embedding_fraction: float = 0.5
    #: share of inference events kept as redacted training samples on ``warden.samples`` (chosen by event id;
    #: 0 keeps none). Samples are only published when the PII stage redacts (``pii`` set).
    sample_fraction: float = 1.0
    #: aggregate policies: collect their inputs per batch for routing to the owner of each group
    #: (``drain_aggregates``), instead of counting in this pipeline's own windows
    route_aggregates: bool = False


def _subject(event: Event) -> Subject:
    return Subject(tenant=event.tenant, model=event.model.name, version=event.model.version)


def _sampled(event_id: str, fraction: float) -> bool:
    """Deterministic sampling by event id (the same events are picked on every replay)."""
    if fraction >= 1.0:
        return True
    digest = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")
    return digest < fraction * 2**64


def redact_inference(event: InferenceEvent, results: Sequence[PiiResult]) -> InferenceEvent:
    """A copy of the event whose message and response texts are the redacted ones.

    ``results`` holds one result per message, then one for the response (if any).
    """
    body = event.inference
    messages = [m.model_copy(update={"content": r.redacted}) for m, r in zip(body.messages, results)]
    update: dict[str, object] = {"messages": messages}
    if body.response is not None and len(results) > len(body.messages):
        update["response"] = body.response.model_copy(update={"content": results[len(body.messages)].redacted})
    return event.model_copy(update={"inference": body.model_copy(update=update)})


def sample_texts(item: dict[str, object]) -> tuple[str, str] | None:
    """(prompt, response) of a training row: ``prompt``/``completion`` fields or chat ``messages`` (the last
    assistant turn is the response). A bare ``{"text": …}`` row has no prompt/response split: ``None``."""
    if isinstance(item.get("prompt"), str) and isinstance(item.get("completion"), str):
        return str(item["prompt"]), str(item["completion"])
    messages = item.get("messages")
    if isinstance(messages, list) and messages:
        turns = [(str(m.get("role", "")), m.get("content")) for m in messages if isinstance(m, dict)]
        turns = [(r, c) for r, c in turns if isinstance(c, str)]
        if turns and turns[-1][0] == "assistant":
            return "\n".join(c for _, c in turns[:-1]), str(turns[-1][1])
    return None


def skew_findings(found: Sequence[Finding], run_id: str) -> list[Finding]:
    """A skew monitor's drift findings as ``training_serving_skew`` findings of the run (own ids, so they
    never collide with the production drift finding of the same version and window)."""
    out: list[Finding] = []
    for f in found:
        if f.kind != "distribution_drift":
            continue
        out.append(Finding.create(
            detector="training", kind="training_serving_skew", subject=f.subject, severity=f.severity,
            score=f.score, summary=f"training sample of run {run_id} vs production traffic: {f.summary}",
            evidence={**f.evidence, "run_id": run_id}, window=f.window, occurred_at=f.occurred_at, key=run_id))
    return out


def run_lineage_finding(event: TrainingEvent) -> Finding:
    """The info finding that records a run's start or end for lineage (run → dataset → model version).

    Training runs reach the store the way every detector output does (stream → ``warden.findings`` →
    governance consumer), so no new topic or consumer path is needed. ``run_started`` is filed under
    the base version, ``run_finished`` under the version the run produced (``output_version``).
    """
    body = event.training
    version = (body.output_version if body.phase == "run_finished" else body.base_version) or event.model.version
    subject = Subject(tenant=event.tenant, model=event.model.name, version=version)
    evidence: dict[str, object] = {
        "run_id": body.run_id, "phase": body.phase, "base_version": body.base_version, "dataset": body.dataset,
        "dataset_hash": body.dataset_hash, "output_version": body.output_version, "status": body.status,
        "params": body.params, "at": event.occurred_at.isoformat(),
    }
    if body.error:  # the text may quote data; only its presence is kept
        evidence["has_error"] = True
    what = "started" if body.phase == "run_started" else f"finished ({body.status or 'unknown'})"
    target = f" → version {body.output_version}" if body.output_version else ""
    return Finding.create(detector="training", kind=body.phase, subject=subject, severity="info", score=0.0,
                          summary=f"training run {body.run_id} {what}{target}", evidence=evidence,
                          event_id=event.event_id, occurred_at=event.occurred_at, key=body.run_id)


def _trim(entries: OrderedDict[Any, Any], limit: int) -> None:
    """Drop the oldest entries of an LRU-ordered mapping beyond ``limit``."""
    while len(entries) > limit:
        entries.popitem(last=False)


class Pipeline:
    """Runs every detector and policy on the events of one worker."""

    def __init__(self, config: PipelineConfig | None = None, policy: Policy | None = None) -> None:
        from policies import PolicyEngine, load_pack

        self.config = config or PipelineConfig()
        self.rules = RuleDetector(self.config.rules)
        self.pii = PiiDetector(self.config.pii) if self.config.pii is not None else None
        self.ops = OpsMetricsMonitor(self.config.ops) if self.config.ops is not None else None
        self.fairness = CohortFairnessMonitor(self.config.fairness) if self.config.fairness is not None else None
        self.policy: Policy = policy or PolicyEngine(load_pack())
        self._routed = AggregateCollector() if self.config.route_aggregates else None
        #: where a model's checkpoint comes from the first time the pipeline sees the model (None: nowhere)
        self.state_loader: Callable[[str, str], dict[str, Any] | None] | None = None
        self._loaded: set[tuple[str, str]] = set()
        self.training_runs: OrderedDict[str, TrainingRunMonitor] = OrderedDict()
        self.eval_regression = EvalRegressionDetector()
        self.bbq = BbqRegressionDetector()
        self.drift: OrderedDict[tuple[str, str, str], DriftMonitor] = OrderedDict()
        #: training-sample references waiting for production traffic of their base version: key → run id → monitor
        self.skew: OrderedDict[tuple[str, str, str], OrderedDict[str, DriftMonitor]] = OrderedDict()
        self._run_base: OrderedDict[tuple[str, str, str], str] = OrderedDict()  # (tenant, model, run) → base version
        self.embedder = MiniLMEmbedder(self.config.embeddings) if self.config.embeddings is not None else None
        self._embedding_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def warm_up(self) -> None:
        """Load the expensive models (Presidio, spaCy) before the first event."""
        if self.pii is not None:
            self.pii.warm_up()
        if self.embedder is not None:
            self.embedder.embed(["warm-up"])

    def process(self, raw: bytes, *, topic: str, partition: int | None = None, offset: int | None = None,
                key: bytes | None = None) -> Outcome:
        """Process one payload (see :meth:`process_batch`)."""
        return self.process_batch([RawItem(raw, topic, partition, offset, key)])[0]

    def process_batch(self, items: Sequence[RawItem]) -> list[Outcome]:
        """Decode, redact, detect and decide for a batch; never raises on bad input."""
        outcomes: list[Outcome] = []
        for item in items:
            decoded = decode_event(item.value, self.config.max_event_bytes)
            if isinstance(decoded, Rejection):
                outcomes.append(Outcome(dead_letter=DeadLetter.build(
                    decoded, item.value, source_topic=item.topic, partition=item.partition,
                    offset=item.offset, key=item.key)))
            else:
                outcomes.append(Outcome(event=decoded))
        if self.pii is not None:
            self._redact(outcomes)
        vectors = self._embed(outcomes)
        for i, out in enumerate(outcomes):
            if out.event is not None:
                out.findings.extend(self.detect(out.event, vectors.get(i)))
                user_hash = self._tag_user(out)
                out.decisions.extend(self.decide(out.event, out.findings))
                out.history = self._history(out.event, user_hash)
        return outcomes

    def _tag_user(self, out: Outcome) -> str | None:
        """Tie the event's own findings to its user by keyed hash, so erasure by user id can find them;
        returns that hash (None without a user id or a key)."""
        event = out.event
        if not (self.config.user_key and isinstance(event, InferenceEvent) and event.inference.user
                and event.inference.user.id):
            return None
        uh = keyed_hash(event.inference.user.id, self.config.user_key.encode(), length=64)
        out.findings = [f.model_copy(update={"evidence": {**f.evidence, "user_hash": uh}})
                        if f.event_id == event.event_id else f for f in out.findings]
        return uh

    def _history(self, event: Event, user_hash: str | None) -> Sample | Label | None:
        """The training-history record of an event: a redacted sample or a feedback label."""
        if isinstance(event, FeedbackEvent):
            return label_of(event)
        if (isinstance(event, InferenceEvent) and self.pii is not None
                and _sampled(event.event_id, self.config.sample_fraction)):
            return sample_of(event, user_hash)
        return None

    def _embed(self, outcomes: list[Outcome]) -> dict[int, dict[str, np.ndarray]]:
        """Prompt and response embeddings of the batch's (redacted) inference events, batched and cached."""
        if self.embedder is None or self.config.drift is None:
            return {}
        wanted: dict[int, tuple[str, str]] = {
            i: (o.event.inference.prompt_text, o.event.inference.response_text)
            for i, o in enumerate(outcomes)
            if isinstance(o.event, InferenceEvent) and _sampled(o.event.event_id, self.config.embedding_fraction)
        }
        cache = self._embedding_cache
        missing = list(dict.fromkeys(t for pair in wanted.values() for t in pair if t not in cache))
        if missing:
            for text, vec in zip(missing, self.embedder.embed(missing)):
                cache[text] = vec
            _trim(cache, EMBEDDING_CACHE)
        return {i: {"prompt": cache[p], "response": cache[r]} for i, (p, r) in wanted.items()}

    def _redact(self, outcomes: list[Outcome]) -> None:
        assert self.pii is not None
        texts: list[str] = []
        spans: list[tuple[Outcome, int, int]] = []
        for out in outcomes:
            if isinstance(out.event, InferenceEvent):
                body = out.event.inference
                start = len(texts)
                texts.extend(m.text for m in body.messages)
                if body.response is not None:
                    texts.append(body.response_text)
                spans.append((out, start, len(texts)))
        if not texts:
            return
        results = self.pii.analyze_batch(texts)
        for out, start, end in spans:
            event = out.event
            assert isinstance(event, InferenceEvent)
            mine = results[start:end]
            names = [f"messages[{i}]" for i in range(len(event.inference.messages))] + ["response"]
            finding = pii_finding(_subject(event), event.event_id, dict(zip(names, mine)), event.occurred_at)
            if finding is not None:
                out.findings.append(finding)
            out.event = redact_inference(event, mine)

    def detect(self, event: Event, embeddings: dict[str, np.ndarray] | None = None) -> list[Finding]:
        """Run the per-event detectors that apply to the event's type (on the redacted event)."""
        self._ensure_loaded(event.tenant, event.model.name)
        if isinstance(event, TrainingEvent):
            return self._training(event)
        if isinstance(event, DeploymentEvent):
            if event.deployment.alias == "production":
                self.eval_regression.set_production(event.tenant, event.model.name, event.model.version)
                monitor = self.drift.get((event.tenant, event.model.name, event.model.version))
                if monitor is not None:
                    monitor.start_collecting()  # a (re)deployment pins a fresh reference
            return []
        if not isinstance(event, InferenceEvent):
            return []
        subject = _subject(event)
        body = event.inference
        findings = self.rules.update(subject=subject, event_id=event.event_id, occurred_at=event.occurred_at,
                                     status=body.status, latency_ms=body.latency_ms, error=body.error)
        if self.ops is not None:
            tokens = None
            if body.usage is not None and (body.usage.input_tokens is not None or body.usage.output_tokens is not None):
                tokens = (body.usage.input_tokens or 0) + (body.usage.output_tokens or 0)
            findings += self.ops.observe(Subject(tenant=event.tenant, model=event.model.name), event.occurred_at,
                                         body.latency_ms, body.status == "error", tokens, body.cost_usd)
        if self.config.drift is not None:
            findings += self._drift(event, subject, embeddings)
        if self.fairness is not None and body.user is not None:
            groups = protected_groups(body.user.attributes, self.fairness.config.protected_attributes)
            outcome = refusal_outcome(body.response_text) if body.status == "ok" else None
            if groups and outcome is not None:
                findings += self.fairness.update(subject, event.occurred_at, groups, outcome, kind="refusal")
        return findings

    def _drift(self, event: InferenceEvent, subject: Subject,
               embeddings: dict[str, np.ndarray] | None) -> list[Finding]:
        assert self.config.drift is not None
        key = (event.tenant, event.model.name, event.model.version)
        monitor = self.drift.pop(key, None) or DriftMonitor(self.config.drift, subject)
        self.drift[key] = monitor
        _trim(self.drift, MAX_DRIFT_MONITORS)
        body = event.inference
        usage = body.usage
        features = extract_features(
            body.prompt_text, body.response_text,
            prompt_tokens=usage.input_tokens if usage else None,
            completion_tokens=usage.output_tokens if usage else None,
            latency_ms=body.latency_ms, cost_usd=body.cost_usd,
            finish_reason=body.response.finish_reason if body.response else None,
        )
        found = monitor.update(features, embeddings, event.occurred_at)
        pending = self.skew.get(key)
        if pending:
            for run_id, skew in list(pending.items()):
                found += skew_findings(skew.update(features, None, event.occurred_at), run_id)
                if skew.windows_evaluated:  # one verdict per training sample
                    del pending[run_id]
            if not pending:
                del self.skew[key]
        for i, f in enumerate(found):
            if f.kind == "distribution_drift":  # keep the window's feature rows (no text) for the human report
                samples = monitor.window_samples()
                samples["reference"] = samples["reference"][:MAX_REPORT_ROWS]
                found[i] = f.model_copy(update={"evidence": {**f.evidence, "samples": samples}})
        return found

    def _training(self, event: TrainingEvent) -> list[Finding]:
        """Training-event findings; every one carries the run id in its evidence (the lineage API joins on it)."""
        found = self._training_findings(event)
        run_id = event.training.run_id
        return [f if f.evidence.get("run_id") == run_id else
                f.model_copy(update={"evidence": {**f.evidence, "run_id": run_id}}) for f in found]

    def _training_findings(self, event: TrainingEvent) -> list[Finding]:
        body = event.training
        subject = _subject(event)
        if body.phase in ("run_started", "run_finished"):
            if body.phase == "run_started" and body.base_version:  # a later data sample may not name it
                self._run_base[(event.tenant, event.model.name, body.run_id)] = body.base_version
                _trim(self._run_base, MAX_TRAINING_RUNS)
            return [run_lineage_finding(event)]
        if body.phase == "step" and body.step is not None:
            run = f"{event.tenant}/{event.model.name}/{body.run_id}"
            monitor = self.training_runs.pop(run, None) or TrainingRunMonitor(
                body.run_id, Subject(tenant=event.tenant, model=event.model.name,
                                     version=body.base_version or event.model.version))
            self.training_runs[run] = monitor
            _trim(self.training_runs, MAX_TRAINING_RUNS)
            return monitor.update(body.step, body.metrics, event.occurred_at, event_id=event.event_id)
        if body.phase == "evaluation":
            findings: list[Finding] = []
            if body.items and "context_condition" in body.items[0]:
                findings += self.bbq.evaluate(subject, body.items, eval_id=event.event_id)
            per_item = {str(i["id"]): float(i["score"] if i.get("score") is not None else bool(i.get("correct")))
                        for i in body.items if "id" in i and (i.get("score") is not None or i.get("correct") is not None)}
            values = {k: v for k, v in body.metrics.items() if v is not None}
            for metric, value in values.items():
                result = EvalResult(metric, value, body.eval_dataset or body.dataset or "", body.split or "",
                                    items=per_item if len(values) == 1 and per_item else None)
                findings += self.eval_regression.update(subject, result, event.occurred_at, event_id=event.event_id)
            return findings
        if body.phase != "data_sample":
            return []
        found: list[Finding] = []
        if self.pii is not None:
            texts = [str(v) for item in body.items for k, v in item.items() if k in ("text", "completion", "prompt")
                     and isinstance(v, str)]
            texts += [str(m["content"]) for item in body.items if isinstance(item.get("messages"), list)
                      for m in item["messages"] if isinstance(m, dict) and isinstance(m.get("content"), str)]
            results = self.pii.analyze_batch(texts) if texts else []
            by_field = {f"items[{n}]": r for n, r in enumerate(results)}
            finding = pii_finding(subject, event.event_id, by_field, event.occurred_at)
            if finding is not None:
                found.append(finding.model_copy(update={"kind": "pii_in_training_data"}))
        if self.config.drift is not None:
            found += self._skew(event)
        return found

    def _skew(self, event: TrainingEvent) -> list[Finding]:
        """Training/serving skew: the sample's rows become the pinned reference of a drift monitor (text
        features only) that is compared with the production window of the base version the worker holds
        now, or — when that is too short — with the next production window of that version."""
        assert self.config.drift is not None
        body = event.training
        tenant, model = event.tenant, event.model.name
        base = (body.base_version or self._run_base.get((tenant, model, body.run_id))
                or self.eval_regression.production_version(tenant, model))
        pairs = [p for p in (sample_texts(item) for item in body.items) if p is not None]
        config = dataclasses.replace(self.config.drift, numeric_features=SKEW_NUMERIC,
                                     categorical_features=SKEW_CATEGORICAL)
        if base is None or len(pairs) < config.min_feature_n:
            return []
        rows = [extract_features(p, r) for p, r in pairs]
        skew = DriftMonitor(config, Subject(tenant=tenant, model=model, version=base))
        skew.pin_reference(rows, source=f"training_sample:{body.run_id}", ts=event.occurred_at)
        production = self.drift.get((tenant, model, base))
        if production is not None and production.phase == "monitoring":
            current = production.window_samples()["current"]
            if len(current) >= config.min_window:
                verdict: list[Finding] = []
                for row in current:  # a full window is evaluated inside update(); a shorter one by flush()
                    verdict += skew.update(row, None, event.occurred_at)
                if not skew.windows_evaluated:
                    verdict += skew.flush()
                return skew_findings(verdict, body.run_id)
        pending = self.skew.setdefault((tenant, model, base), OrderedDict())
        pending[body.run_id] = skew
        self.skew.move_to_end((tenant, model, base))
        self._trim_skew()
        return []

    def _trim_skew(self) -> None:
        """Drop the oldest waiting skew monitors beyond ``MAX_SKEW_MONITORS``."""
        while sum(len(v) for v in self.skew.values()) > MAX_SKEW_MONITORS:
            oldest = next(iter(self.skew.values()))
            oldest.popitem(last=False)
            if not oldest:
                self.skew.popitem(last=False)

    def decide(self, event: Event, findings: list[Finding]) -> list[Decision]:
        """Policy decisions for an event's findings (inference events also feed ratio denominators).

        With ``route_aggregates``, aggregate policies' inputs are collected for :meth:`drain_aggregates`
        and only single-finding decisions come back here."""
        routed = self._routed
        kw = {} if routed is None else {"routed": routed}
        observe = getattr(self.policy, "observe_event", None)
        if observe is not None and isinstance(event, InferenceEvent):
            observe(_subject(event), event.occurred_at, **kw)
        return [d for f in findings for d in self.policy.evaluate(f, **kw)]

    # ------------------------------------------------------------ state kept across restarts

    def model_state(self, tenant: str, model: str) -> dict[str, Any] | None:
        """What to checkpoint for ``tenant``/``model`` (None: nothing): the drift monitors of its versions,
        its operational-metric buckets and anomaly detectors, its open fairness windows, and its training
        side: run monitors, runs' base versions, skew monitors waiting for traffic, evaluation baselines
        (with the production version) and BBQ history."""
        def mine(t: str, m: str) -> bool:
            return t == tenant and m == model

        state: dict[str, Any] = {
            "drift": {v: m.snapshot() for (t, mo, v), m in self.drift.items() if mine(t, mo)},
            "ops": self.ops.model_state(tenant, model) if self.ops is not None else None,
            "fairness": self.fairness.model_state(tenant, model) if self.fairness is not None else None,
            "training": [[m.run_id, m.snapshot()] for m in self.training_runs.values()
                         if mine(m.subject.tenant, m.subject.model)],
            "run_base": [[run, base] for (t, mo, run), base in self._run_base.items() if mine(t, mo)],
            "skew": [[base, run, m.snapshot()] for (t, mo, base), runs in self.skew.items() if mine(t, mo)
                     for run, m in runs.items()],
            "eval": self.eval_regression.model_state(tenant, model),
            "bbq": self.bbq.model_state(tenant, model),
        }
        state = {k: v for k, v in state.items() if v}
        return {"version": MODEL_STATE_VERSION, **state} if state else None

    def restore_model_state(self, tenant: str, model: str, state: dict[str, Any]) -> int:
        """Load a :meth:`model_state` checkpoint (state already in memory is kept); returns how many parts
        it restored. A checkpoint of another format is ignored."""
        if state.get("version") != MODEL_STATE_VERSION:
            return 0
        restored = 0
        for version, snapshot in (state.get("drift") or {}).items():
            key = (tenant, model, version)
            if key not in self.drift:
                self.drift[key] = DriftMonitor.restore(snapshot)
                restored += 1
        _trim(self.drift, MAX_DRIFT_MONITORS)
        if self.ops is not None and state.get("ops"):
            restored += int(self.ops.restore_model(tenant, model, state["ops"]))
        if self.fairness is not None and state.get("fairness"):
            restored += self.fairness.restore_model(state["fairness"])
        for run_id, snapshot in state.get("training") or []:
            key = f"{tenant}/{model}/{run_id}"
            if key not in self.training_runs:
                self.training_runs[key] = TrainingRunMonitor.restore(snapshot)
                self.training_runs.move_to_end(key, last=False)  # restored runs are the oldest here
                restored += 1
        _trim(self.training_runs, MAX_TRAINING_RUNS)
        for run_id, base in state.get("run_base") or []:
            self._run_base.setdefault((tenant, model, run_id), base)
        _trim(self._run_base, MAX_TRAINING_RUNS)
        for base, run_id, snapshot in state.get("skew") or []:
            pending = self.skew.setdefault((tenant, model, base), OrderedDict())
            if run_id not in pending:
                pending[run_id] = DriftMonitor.restore(snapshot)
                restored += 1
        self._trim_skew()
        if state.get("eval"):
            restored += int(self.eval_regression.restore_model(tenant, model, state["eval"]))
        if state.get("bbq"):
            restored += int(self.bbq.restore_model(tenant, model, state["bbq"]))
        return restored

    def forget_model(self, tenant: str, model: str) -> None:
        """Drop the model's in-memory state (its events moved to another worker); the next event of the
        model here loads its checkpoint again."""
        for key in [k for k in self.drift if k[0] == tenant and k[1] == model]:
            del self.drift[key]
        if self.ops is not None:
            self.ops.forget_model(tenant, model)
        if self.fairness is not None:
            self.fairness.forget_model(tenant, model)
        for key in [k for k, m in self.training_runs.items()
                    if m.subject.tenant == tenant and m.subject.model == model]:
            del self.training_runs[key]
        for key in [k for k in self._run_base if k[0] == tenant and k[1] == model]:
            del self._run_base[key]
        for key in [k for k in self.skew if k[0] == tenant and k[1] == model]:
            del self.skew[key]
        self.eval_regression.forget_model(tenant, model)
        self.bbq.forget_model(tenant, model)
        self._loaded.discard((tenant, model))

    def _ensure_loaded(self, tenant: str, model: str) -> None:
        if self.state_loader is None or (tenant, model) in self._loaded:
            return
        self._loaded.add((tenant, model))
        state = self.state_loader(tenant, model)
        if state:
            self.restore_model_state(tenant, model, state)

    def drain_aggregates(self) -> list[AggregateDelta]:
        """The aggregate inputs collected since the last call (empty unless ``route_aggregates``)."""
        return [] if self._routed is None else self._routed.drain()
