"""What the stream worker does to a batch of payloads, free of Kafka.

    decode ──bad──► dead letter
      │
    PII: every message and the response are analysed (batched); the event is replaced by a
         redacted copy, so no later stage — detector, finding, topic — sees a raw value
      │
    detectors: rules (per event), ops metrics → anomaly (per interval), cohort fairness (per window),
               security: injection (last user message, tool/function results) and toxicity (prompt and
               response) per event, attack / toxic-response rates per model window, toxic-response
               regression after a deployment
      │
    policies → decisions

The faust agent (``streams.app``) feeds raw bytes in and publishes what comes out; keeping this
pure makes it testable without a broker and lets the benchmark measure it alone.

:meth:`Pipeline.process_batch` is three steps the worker runs apart: :meth:`Pipeline.prepare` (decode, plan the
text stage), the text stage (:mod:`streams.textstage`: PII, embeddings, security scans — stateless, in child
processes in the worker) and :meth:`Pipeline.complete` (redacted events, detectors, policies, serialisation — the
per-model state, on the worker's event loop). With ``fast_path``, :meth:`Pipeline.process_fast` handles rules and
operational metrics beside it, so their decisions never wait for the text stage.

Failures are isolated per event: an exception while one event is redacted, embedded, scanned, detected
on, decided on, turned into history or serialised sends that event alone to the dead-letter topic (code
``processing_error``, the stage and the exception's type — never its message, which may quote the
event) and the batch goes on. A batched stage (PII, embeddings, security) that fails is retried event by
event to find the culprit.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from contracts import topics
from contracts.aggregates import AggregateDelta
from contracts.dead_letter import DeadLetter, Rejection
from contracts.decision import Decision
from contracts.events import DeploymentEvent, Event, FeedbackEvent, InferenceEvent, TrainingEvent
from contracts.samples import Label, Sample, label_of, sample_of
from detectors.anomaly.opsmetrics import OpsMetricsConfig, OpsMetricsMonitor
from detectors.base import PerModelState
from detectors.bias.fairness import CohortFairnessMonitor, FairnessConfig
from detectors.bias.outcomes import protected_groups, refusal_outcome
from detectors.drift.budget import EmbeddingBudget
from detectors.drift.monitor import DriftConfig
from detectors.drift.monitors import DriftMonitors
from detectors.features.embeddings import EmbedderConfig, MiniLMEmbedder
from detectors.features.tabular import extract_features
from detectors.finding import Finding, Subject
from detectors.pii.detector import PiiConfig, PiiDetector, PiiResult, pii_finding
from detectors.pii.redaction import keyed_hash
from detectors.rules import RuleConfig, RuleDetector
from detectors.security import (
    Scan,
    SecurityConfig,
    SecurityMonitor,
    SecurityScanner,
    SecurityWindowConfig,
    security_finding,
)
from detectors.training.evaluation import EvaluationMonitor
from detectors.training.lineage import run_lineage_finding
from detectors.training.runs import TrainingRuns
from detectors.training.skew import SkewMonitors
from policies.routing import AggregateCollector
from streams.codec import decode_event
from streams.redaction import Path, field_name, free_texts, message_texts, replace_texts
from streams.textstage import TextJob, TextPlan, TextResult, TextStage, TextStageConfig

#: format of :meth:`Pipeline.model_state` checkpoints (version 1 still restores)
MODEL_STATE_VERSION = 2
#: reference rows a drift finding carries for the Evidently report (its current window is kept whole)
MAX_REPORT_ROWS = 500
#: the dead-letter code of an event some stage failed on (the reason names the stage and the exception type)
PROCESSING_ERROR = "processing_error"


class Policy(Protocol):
    """What the pipeline needs of the policy engine (:class:`policies.PolicyEngine`)."""

    def evaluate(self, finding: Finding, routed: AggregateCollector | None = None) -> list[Decision]:
        """Decisions for one finding; aggregate policies' inputs go to ``routed`` when given."""
        ...

    def observe_event(self, subject: Subject, ts: datetime | float, routed: AggregateCollector | None = None) -> None:
        """Count one inference event (ratio denominators of aggregate policies)."""
        ...

    def apply_delta(self, delta: AggregateDelta, state: list[Any] | None) -> tuple[list[Decision], list[Any] | None]:
        """Apply routed aggregate inputs to a group's window state: the decisions fired and the new state."""
        ...


@dataclass(slots=True)
class Outcome:
    """The result of processing one payload. ``event`` is the redacted event."""

    event: Event | None = None
    dead_letter: DeadLetter | None = None
    findings: list[Finding] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    history: Sample | Label | None = None
    """What the event adds to the training history (``warden.samples``), if anything."""
    records: list[OutputRecord] = field(default_factory=list)
    """Everything above, serialised for its topic (what the worker publishes, in order)."""
    text_plan: int | None = None
    """Between :meth:`Pipeline.prepare` and :meth:`Pipeline.complete`: the event's plan in the text job."""


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One message to publish: topic, key and value bytes."""

    topic: str
    key: bytes | None
    value: bytes




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
    #: embedded events per second per (tenant, model) at most, on top of ``embedding_fraction`` (None: no limit):
    #: drift compares a bounded sample of embeddings, so its cost follows the number of models, not the event rate
    #: (see :mod:`detectors.drift.budget`)
    embedding_rate: float | None = None
    embedding_burst: float = 10.0
    #: share of inference events kept as redacted training samples on ``warden.samples`` (chosen by event id;
    #: 0 keeps none). Samples are only published when the PII stage redacts (``pii`` set).
    sample_fraction: float = 1.0
    #: prompt-injection and toxicity detectors (None: off). They reuse the drift stage's MiniLM vectors; a scanned
    #: text without one is embedded only when its lexical score reaches ``security.embed_gate`` (and only when
    #: ``embeddings`` is set: otherwise the lexical score alone decides)
    security: SecurityConfig | None = field(default_factory=SecurityConfig)
    security_windows: SecurityWindowConfig = field(default_factory=SecurityWindowConfig)
    #: aggregate policies: collect their inputs per batch for routing to the owner of each group
    #: (``drain_aggregates``), instead of counting in this pipeline's own windows
    route_aggregates: bool = False
    #: the worker's fast path (:meth:`Pipeline.process_fast`) handles the rule detector, the operational metrics and
    #: their anomalies; :meth:`Pipeline.process_batch` then leaves them out (and leaves decode rejections to it)
    fast_path: bool = False


def _subject(event: Event) -> Subject:
    return Subject(tenant=event.tenant, model=event.model.name, version=event.model.version)


def _sampled(event_id: str, fraction: float) -> bool:
    """Deterministic sampling by event id (the same events are picked on every replay)."""
    if fraction >= 1.0:
        return True
    digest = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")
    return digest < fraction * 2**64


@dataclass(slots=True)
class BatchTimings:
    """Seconds spent on one batch, per pipeline stage (``decode``, ``pii``, ``embed``, ``security``, ``detect``,
    ``decide``) and per detector (``pii``, ``rule``, ``anomaly``, ``drift``, ``security``, ``bias``, ``training``)."""

    stages: dict[str, float] = field(default_factory=dict)
    detectors: dict[str, float] = field(default_factory=dict)


def _lap(spent: dict[str, float], name: str, since: float) -> float:
    """Add the time since ``since`` to ``spent[name]``; returns now."""
    now = time.perf_counter()
    spent[name] = spent.get(name, 0.0) + (now - since)
    return now


def _tag_trace(out: Outcome) -> None:
    """Findings of an event mapped from a trace span carry its trace and span ids (the link to the trace)."""
    event = out.event
    if not (isinstance(event, InferenceEvent) and event.inference.trace is not None):
        return
    ref = event.inference.trace
    link = {"trace_id": ref.trace_id, "span_id": ref.span_id}
    out.findings = [f.model_copy(update={"evidence": {**f.evidence, "trace": link}})
                    if f.event_id == event.event_id else f for f in out.findings]


def _pii_kind(event: Event, path: Path | None) -> str:
    """The kind of PII finding a field's PII belongs to (see :meth:`Pipeline._redact`)."""
    if isinstance(event, InferenceEvent):
        return "pii_detected"
    if isinstance(event, TrainingEvent) and path is not None and path[1:2] == ("items",):
        return "pii_in_training_data"
    return "pii_in_metadata"


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


class Pipeline:
    """Runs every detector and policy on the events of one worker."""

    def __init__(self, config: PipelineConfig | None = None, policy: Policy | None = None) -> None:
        from policies import PolicyEngine, load_pack

        self.config = config or PipelineConfig()
        self.rules = RuleDetector(self.config.rules)
        self.pii = PiiDetector(self.config.pii) if self.config.pii is not None else None
        self.ops = OpsMetricsMonitor(self.config.ops) if self.config.ops is not None else None
        self.fairness = CohortFairnessMonitor(self.config.fairness) if self.config.fairness is not None else None
        self.drift = DriftMonitors(self.config.drift) if self.config.drift is not None else None
        self.training = TrainingRuns()
        self.evaluation = EvaluationMonitor()
        self.skew = SkewMonitors(self.config.drift) if self.config.drift is not None else None
        self.security = SecurityScanner(self.config.security) if self.config.security is not None else None
        self.security_windows = (SecurityMonitor(self.config.security_windows)
                                 if self.config.security is not None else None)
        self.policy: Policy = policy or PolicyEngine(load_pack())
        self._routed = AggregateCollector() if self.config.route_aggregates else None
        #: where a model's checkpoint comes from the first time the pipeline sees the model (None: nowhere)
        self.state_loader: Callable[[str, str], dict[str, Any] | None] | None = None
        self._loaded: set[tuple[str, str]] = set()
        self.embedder = MiniLMEmbedder(self.config.embeddings) if self.config.embeddings is not None else None
        self._embedding_cache: OrderedDict[str, np.ndarray] = OrderedDict()
        #: what the in-process text stage embedded so far (see :attr:`streams.textstage.TextStage.stats`)
        self.text_stats: Counter[str] = Counter()
        cfg = self.config
        self.embedding_budget = (EmbeddingBudget(cfg.embedding_rate, cfg.embedding_burst)
                                 if cfg.embedding_rate else None)
        #: the fast path's own PII detector (error texts of failed calls; the text stage may run elsewhere)
        self._fast_pii = PiiDetector(cfg.pii) if cfg.pii is not None and cfg.fast_path else None
        #: what the last :meth:`process_batch` spent per stage and per detector
        self.timings = BatchTimings()

    @property
    def stateful(self) -> dict[str, PerModelState]:
        """The detectors holding per-model state, by checkpoint key (the ones configured)."""
        parts: dict[str, PerModelState | None] = {
            "drift": self.drift, "ops": self.ops, "fairness": self.fairness, "training": self.training,
            "skew": self.skew, "evaluation": self.evaluation, "security": self.security_windows,
        }
        return {name: part for name, part in parts.items() if part is not None}

    def warm_up(self, text_stage: bool = True) -> None:
        """Load the expensive models before the first event: the PII tagger and MiniLM of the in-process text
        stage (``text_stage``; a worker whose text stage runs in child processes leaves them), the fast path's."""
        if text_stage and self.pii is not None:
            self.pii.warm_up()
        if text_stage and self.embedder is not None:
            self.embedder.embed(["warm-up"])
        if self._fast_pii is not None:
            self._fast_pii.warm_up()

    def process(self, raw: bytes, *, topic: str, partition: int | None = None, offset: int | None = None,
                key: bytes | None = None) -> Outcome:
        """Process one payload (see :meth:`process_batch`)."""
        return self.process_batch([RawItem(raw, topic, partition, offset, key)])[0]

    def process_batch(self, items: Sequence[RawItem]) -> list[Outcome]:
        """Decode, redact, detect, decide and serialise for a batch; never raises on bad input, and an
        exception in any stage dead-letters only the event it happened on (see the module's docstring).

        It is :meth:`prepare`, the text stage (:mod:`streams.textstage`, in this process) and :meth:`complete`;
        the stream worker runs the text stage in child processes instead. Afterwards :attr:`timings` holds the
        seconds each stage and each detector spent on the batch."""
        outcomes, job = self.prepare(items)
        stage = TextStage(self.pii, self.embedder, self.security)
        stage.cache = self._embedding_cache
        result = stage.run(job)
        self.text_stats.update(stage.stats)
        self.complete(items, outcomes, job, result)
        return outcomes

    def text_stage_config(self) -> TextStageConfig:
        """What a text stage process needs to build the same PII detector, embedder and security scanner."""
        cfg = self.config
        return TextStageConfig(cfg.pii, cfg.embeddings if cfg.drift is not None else None, cfg.security)

    def prepare(self, items: Sequence[RawItem]) -> tuple[list[Outcome], TextJob]:
        """Decode the batch and list what the text stage must do: every free text of every event for PII, the
        (redacted) prompt and response of the events drift embeds, the messages and response of the events
        security scans. Starts a new :attr:`timings`."""
        self.timings = timings = BatchTimings()
        clock = time.perf_counter
        started = clock()
        outcomes = [self._decode(item) for item in items]
        job = TextJob()
        budget, now = self.embedding_budget, time.monotonic()
        embeds = self.embedder is not None and self.config.drift is not None
        for out in outcomes:
            event = out.event
            if event is None:
                continue
            named = message_texts(event)
            free = free_texts(event) if self.pii is not None else []
            plan = TextPlan(len(job.texts), len(named), len(free))
            job.texts.extend(t for _, t in named)
            job.texts.extend(t for _, t in free)
            if isinstance(event, InferenceEvent):
                body = event.inference
                plan.roles = [m.role for m in body.messages]
                plan.has_response = body.response is not None
                users = [i for i, m in enumerate(body.messages) if m.role == "user"]
                plan.prompt = users[-1] if users else len(body.messages) - 1
                plan.scan = self.security is not None
                plan.embed = (embeds and body.is_llm_call and _sampled(event.event_id, self.config.embedding_fraction)
                              and (budget is None or budget.allow((event.tenant, event.model.name), now)))
            out.text_plan = len(job.plans)
            job.plans.append(plan)
        timings.stages["decode"] = clock() - started
        return outcomes, job

    def complete(self, items: Sequence[RawItem], outcomes: list[Outcome], job: TextJob, result: TextResult,
                 start: int = 0, stop: int | None = None) -> None:
        """Apply the text stage's results to ``outcomes[start:stop]`` (redacted events and PII findings), run the
        detectors and policies on them and serialise what they produce; adds to :attr:`timings`. Called once
        for the whole batch, or for consecutive slices of it (the worker yields to its event loop in between)."""
        timings = self.timings
        for name, seconds in result.seconds.items():
            if start == 0:
                timings.stages[name] = timings.stages.get(name, 0.0) + seconds
                if name in ("pii", "security"):
                    timings.detectors[name] = timings.detectors.get(name, 0.0) + seconds
        clock = time.perf_counter
        started = clock()
        decide = 0.0
        stop = len(outcomes) if stop is None else stop
        for item, out in zip(items[start:stop], outcomes[start:stop]):
            k, out.text_plan = out.text_plan, None
            if out.event is None or k is None:
                continue
            plan = job.plans[k]
            error = result.errors[k]
            if error is not None:
                failed, kind = error
                self.fail(item, out, failed, kind)
                continue
            stage = "pii"
            try:
                if self.pii is not None:
                    self._apply_pii(out, plan, result.pii[plan.start:plan.start + plan.n_named + plan.n_free])
                stage = "detectors"
                out.findings.extend(self.detect(out.event, result.vectors[k], result.scans[k]))
                _tag_trace(out)
                stage = "policies"
                user_hash = self._tag_user(out)
                t = clock()
                out.decisions.extend(self.decide(out.event, out.findings))
                decide += clock() - t
                stage = "history"
                out.history = self._history(out.event, user_hash)
            except Exception as exc:
                self.fail(item, out, stage, exc)
        for item, out in zip(items[start:stop], outcomes[start:stop]):
            if self.config.fast_path and out.dead_letter is not None and out.dead_letter.code != PROCESSING_ERROR:
                continue  # the fast path dead-letters what cannot be decoded
            try:
                out.records = self.encode(out)
            except Exception as exc:
                self.fail(item, out, "serialisation", exc)
                out.records = self.encode(out)
        timings.stages["detect"] = timings.stages.get("detect", 0.0) + clock() - started - decide
        timings.stages["decide"] = timings.stages.get("decide", 0.0) + decide

    def process_fast(self, items: Sequence[RawItem]) -> tuple[list[Outcome], BatchTimings]:
        """The fast path of a batch: decode (rejections become dead letters), then for model calls the rule
        detector and the operational metrics with their anomaly detectors, their policies, serialised. It runs
        beside :meth:`process_batch` on the same events (the worker's two agents; ``fast_path`` set), so failed
        and slow calls are decided on without waiting for PII, embeddings and the other detectors.

        The only free text it uses is a failed call's error, redacted first (the same PII detector, in this
        process). No ratio denominators are counted here (the full path counts them with the PII findings)."""
        timings = BatchTimings()
        clock = time.perf_counter
        started = clock()
        outcomes = [self._decode(item) for item in items]
        spent = timings.detectors
        for item, out in zip(items, outcomes):
            event = out.event
            if not (isinstance(event, InferenceEvent) and event.inference.is_llm_call):
                continue
            stage = "rules"
            try:
                self._ensure_loaded(event.tenant, event.model.name)
                body = event.inference
                t = clock()
                error = body.error
                if error and self._fast_pii is not None:
                    error = self._fast_pii.analyze(error).redacted
                out.findings = self.rules.update(subject=_subject(event), event_id=event.event_id,
                                                 occurred_at=event.occurred_at, status=body.status,
                                                 latency_ms=body.latency_ms, error=error)
                t = _lap(spent, "rule", t)
                if self.ops is not None:
                    stage = "anomaly"
                    out.findings += self._observe_ops(event)
                    t = _lap(spent, "anomaly", t)
                _tag_trace(out)
                stage = "policies"
                self._tag_user(out)
                out.decisions = [d for f in out.findings for d in self.policy.evaluate(f, self._routed)]
                _lap(timings.stages, "decide", t)
            except Exception as exc:
                self.fail(item, out, stage, exc)
        for item, out in zip(items, outcomes):
            try:
                out.records = self.encode(out) if out.dead_letter is not None or out.findings else []
            except Exception as exc:
                self.fail(item, out, "serialisation", exc)
                out.records = self.encode(out)
        timings.stages["fast"] = clock() - started
        return outcomes, timings

    def _observe_ops(self, event: InferenceEvent) -> list[Finding]:
        assert self.ops is not None
        body = event.inference
        tokens = None
        if body.usage is not None and (body.usage.input_tokens is not None or body.usage.output_tokens is not None):
            tokens = (body.usage.input_tokens or 0) + (body.usage.output_tokens or 0)
        return self.ops.observe(Subject(tenant=event.tenant, model=event.model.name), event.occurred_at,
                                body.latency_ms, body.status == "error", tokens, body.cost_usd)

    def _decode(self, item: RawItem) -> Outcome:
        decoded = decode_event(item.value, self.config.max_event_bytes)
        if isinstance(decoded, Rejection):
            return Outcome(dead_letter=DeadLetter.build(decoded, item.value, source_topic=item.topic,
                                                        partition=item.partition, offset=item.offset, key=item.key))
        return Outcome(event=decoded)

    @staticmethod
    def fail(item: RawItem, out: Outcome, stage: str, exc: BaseException | str) -> None:
        """Turn an event some stage raised on into a dead letter (its partial outputs are dropped).

        The reason names the stage and the exception's type only: an exception's message may quote the
        event's text, and dead letters reach logs and the store."""
        event = out.event
        kind = exc if isinstance(exc, str) else type(exc).__name__
        reason = (f"processing failed in stage {stage!r} ({kind}); the event was set aside "
                  "and the batch went on")
        rejection = Rejection(PROCESSING_ERROR, reason, event.event_id if event else None,
                              event.tenant if event else None)
        out.dead_letter = DeadLetter.build(rejection, item.value, source_topic=item.topic, partition=item.partition,
                                           offset=item.offset, key=item.key)
        out.event, out.findings, out.decisions, out.history, out.records = None, [], [], None, []

    @staticmethod
    def encode(out: Outcome) -> list[OutputRecord]:
        """The records to publish for one outcome: its dead letter, or its findings, decisions and history."""
        if out.dead_letter is not None:
            return [OutputRecord(topics.DLQ, out.dead_letter.key_bytes(), out.dead_letter.to_json())]
        records = [OutputRecord(topics.FINDINGS, f"{f.subject.tenant}/{f.subject.model}".encode(),
                                f.model_dump_json().encode()) for f in out.findings]
        records += [OutputRecord(topics.DECISIONS, f"{d.subject.tenant}/{d.subject.model}".encode(),
                                 d.model_dump_json().encode()) for d in out.decisions]
        if out.history is not None:
            records.append(OutputRecord(topics.SAMPLES, f"{out.history.tenant}/{out.history.model}".encode(),
                                        out.history.model_dump_json().encode()))
        return records

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
        if (isinstance(event, InferenceEvent) and event.inference.is_llm_call and self.pii is not None
                and _sampled(event.event_id, self.config.sample_fraction)):
            return sample_of(event, user_hash)
        return None

    def _security(self, event: InferenceEvent, subject: Subject, scans: list[Scan] | None) -> list[Finding]:
        found, scans = self._security_verdicts(event, subject, scans)
        if self.security_windows is not None:
            body = event.inference
            attack = any(s.detector == "injection" and s.verdict.flagged for s in scans)
            toxic = [s.verdict.flagged for s in scans if s.detector == "toxicity" and s.field == "response"]
            found += self.security_windows.observe(
                subject, event.occurred_at, attack=attack, toxic_response=toxic[0] if toxic else None,
                attributes=body.user.attributes if body.user is not None else None)
        return found

    def _security_verdicts(self, event: InferenceEvent, subject: Subject,
                           scans: list[Scan] | None) -> tuple[list[Finding], list[Scan]]:
        """The event's per-event security findings, and the scans they came from (computed here when the batch
        did not)."""
        assert self.security is not None
        if scans is None:  # a single event outside process_batch: lexical scores and cached vectors only
            body = event.inference
            scans = self.security.scan([(m.role, m.text) for m in body.messages],
                                       body.response_text if body.response is not None else None,
                                       {t: v for t in (body.prompt_text, body.response_text)
                                        if (v := self._embedding_cache.get(t)) is not None})
        config = self.security.config
        return [security_finding(s, subject, event.event_id, event.occurred_at, config)
                for s in scans if s.verdict.flagged], scans

    def _apply_pii(self, out: Outcome, plan: TextPlan, results: Sequence[PiiResult | None]) -> None:
        """Replace the event by its redacted copy and add its PII findings.

        Every free text was analysed: the messages and the response, and every other string the event carries
        except identifiers and enumerations (``streams.redaction``): errors, tool calls and outputs, metadata,
        user attributes, training params and samples, feedback comments, deployment notes. PII findings name the
        fields: ``pii_detected`` for inference events, ``pii_in_training_data`` for training samples (``items``),
        ``pii_in_metadata`` for the other fields of training, feedback and deployment events. Everything is
        computed before the outcome changes."""
        event = out.event
        assert event is not None
        if any(r is None for r in results):
            raise RuntimeError("a text of the event has no PII result")
        named, free = message_texts(event), free_texts(event)
        if len(named) != plan.n_named or len(free) != plan.n_free:
            raise RuntimeError("the event's texts changed since the text stage was planned")
        mine = [r for r in results[:plan.n_named] if r is not None]
        rest = [r for r in results[plan.n_named:] if r is not None]
        fields: dict[str, dict[str, PiiResult]] = {}
        for (name, _), res in zip(named, mine):
            fields.setdefault(_pii_kind(event, None), {})[name] = res
        for (path, _), res in zip(free, rest):
            fields.setdefault(_pii_kind(event, path), {})[field_name(path)] = res
        findings = [f for kind, by_field in fields.items()
                    if (f := pii_finding(_subject(event), event.event_id, by_field, event.occurred_at, kind=kind))]
        redacted: Event = redact_inference(event, mine) if isinstance(event, InferenceEvent) else event
        swaps = {path: res.redacted for (path, text), res in zip(free, rest) if res.redacted != text}
        out.event = replace_texts(redacted, swaps) if swaps else redacted
        out.findings.extend(findings)

    def detect(self, event: Event, embeddings: dict[str, np.ndarray] | None = None,
               security: list[Scan] | None = None) -> list[Finding]:
        """Run the per-event detectors that apply to the event's type (on the redacted event); ``security`` is
        the event's security verdicts when the batch computed them (see :meth:`_security_scans`)."""
        self._ensure_loaded(event.tenant, event.model.name)
        if isinstance(event, TrainingEvent):
            t = time.perf_counter()
            found = self._training(event)
            _lap(self.timings.detectors, "training", t)
            return found
        if isinstance(event, DeploymentEvent):
            if event.deployment.alias == "production":
                self.evaluation.set_production(event.tenant, event.model.name, event.model.version)
                monitor = self.drift.get(event.tenant, event.model.name, event.model.version) if self.drift else None
                if monitor is not None:
                    monitor.start_collecting()  # a (re)deployment pins a fresh reference
                if self.security_windows is not None:
                    self.security_windows.deployed(event.tenant, event.model.name, event.model.version)
            return []
        if not isinstance(event, InferenceEvent):
            return []
        subject = _subject(event)
        if not event.inference.is_llm_call:
            # an agent's tool or retrieval step: what it returns enters the model's context, so it is scanned like
            # a prompt (PII before, injection here), but it is no model call (no latency, drift, fairness, windows)
            if self.security is None:
                return []
            t = time.perf_counter()
            found, _ = self._security_verdicts(event, subject, security)
            _lap(self.timings.detectors, "security", t)
            return found
        body = event.inference
        clock, spent = time.perf_counter, self.timings.detectors
        t = clock()
        findings: list[Finding] = []
        if not self.config.fast_path:  # else the fast path (process_fast) ran these
            findings = self.rules.update(subject=subject, event_id=event.event_id, occurred_at=event.occurred_at,
                                         status=body.status, latency_ms=body.latency_ms, error=body.error)
            t = _lap(spent, "rule", t)
            if self.ops is not None:
                findings += self._observe_ops(event)
                t = _lap(spent, "anomaly", t)
        if self.drift is not None:
            findings += self._drift(event, subject, embeddings)
            t = _lap(spent, "drift", t)
        if self.security is not None:
            findings += self._security(event, subject, security)
            t = _lap(spent, "security", t)
        if self.fairness is not None and body.user is not None:
            groups = protected_groups(body.user.attributes, self.fairness.config.protected_attributes)
            outcome = refusal_outcome(body.response_text) if body.status == "ok" else None
            if groups and outcome is not None:
                findings += self.fairness.update(subject, event.occurred_at, groups, outcome, kind="refusal")
            _lap(spent, "bias", t)
        return findings

    def _drift(self, event: InferenceEvent, subject: Subject,
               embeddings: dict[str, np.ndarray] | None) -> list[Finding]:
        assert self.drift is not None and self.skew is not None
        monitor = self.drift.monitor(subject)
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
        found += self.skew.observe(event.tenant, event.model.name, event.model.version, features, event.occurred_at)
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
        tenant, model = event.tenant, event.model.name
        if body.phase == "run_started" or body.phase == "run_finished":  # (== narrows the Literal; `in` does not)
            if body.phase == "run_started":
                self.training.started(tenant, model, body.run_id, body.base_version)
            return [run_lineage_finding(
                tenant=tenant, model=model, version=event.model.version, phase=body.phase, run_id=body.run_id,
                base_version=body.base_version, output_version=body.output_version, dataset=body.dataset,
                dataset_hash=body.dataset_hash, status=body.status, params=body.params, has_error=bool(body.error),
                event_id=event.event_id, occurred_at=event.occurred_at)]
        if body.phase == "step" and body.step is not None:
            return self.training.step(tenant, model, body.run_id, body.base_version or event.model.version,
                                      body.step, body.metrics, event.occurred_at, event_id=event.event_id)
        if body.phase == "evaluation":
            return self.evaluation.evaluate(_subject(event), body.metrics, body.items,
                                            dataset=body.eval_dataset or body.dataset or "", split=body.split or "",
                                            ts=event.occurred_at, event_id=event.event_id)
        if body.phase != "data_sample":
            return []
        found: list[Finding] = []  # PII in the samples was found (and redacted) by the PII stage
        if self.skew is not None and self.drift is not None:
            base = (body.base_version or self.training.base_of(tenant, model, body.run_id)
                    or self.evaluation.production_version(tenant, model))
            if base is not None:
                found += self.skew.judge(tenant, model, base, body.run_id, body.items, event.occurred_at,
                                         self.drift.get(tenant, model, base))
        return found

    def decide(self, event: Event, findings: list[Finding]) -> list[Decision]:
        """Policy decisions for an event's findings (inference events also feed ratio denominators).

        With ``route_aggregates``, aggregate policies' inputs are collected for :meth:`drain_aggregates`
        and only single-finding decisions come back here."""
        if isinstance(event, InferenceEvent) and event.inference.is_llm_call:
            self.policy.observe_event(_subject(event), event.occurred_at, self._routed)
        return [d for f in findings for d in self.policy.evaluate(f, self._routed)]

    # ------------------------------------------------------------ state kept across restarts

    def model_state(self, tenant: str, model: str) -> dict[str, Any] | None:
        """What to checkpoint for ``tenant``/``model`` (None: nothing): the state of every
        :attr:`stateful` detector that holds some for the model — drift monitors of its versions,
        operational-metric buckets and anomaly detectors, open fairness windows, training runs and their
        base versions, training samples waiting for production traffic (skew), evaluation baselines with
        the production version and BBQ history."""
        state = {name: part.model_state(tenant, model) for name, part in self.stateful.items()}
        state = {k: v for k, v in state.items() if v}
        return {"version": MODEL_STATE_VERSION, **state} if state else None

    def restore_model_state(self, tenant: str, model: str, state: dict[str, Any]) -> int:
        """Load a :meth:`model_state` checkpoint (state already in memory is kept); returns how many parts
        it restored. A checkpoint of an unknown format is ignored."""
        if state.get("version") == 1:
            state = _from_version_1(state)
        if state.get("version") != MODEL_STATE_VERSION:
            return 0
        return sum(part.restore_model(tenant, model, state[name])
                   for name, part in self.stateful.items() if state.get(name))

    def forget_model(self, tenant: str, model: str) -> None:
        """Drop the model's in-memory state (its events moved to another worker); the next event of the
        model here loads its checkpoint again."""
        for part in self.stateful.values():
            part.forget_model(tenant, model)
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


def _from_version_1(state: dict[str, Any]) -> dict[str, Any]:
    """A version-1 checkpoint (training runs, run bases, eval and BBQ state at the top level) as version 2."""
    out = {k: v for k, v in state.items() if k in ("drift", "ops", "fairness", "skew")}
    out["training"] = {"runs": state.get("training") or [], "run_base": state.get("run_base") or []}
    out["evaluation"] = {"eval": state.get("eval"), "bbq": state.get("bbq")}
    return {**out, "version": MODEL_STATE_VERSION}
