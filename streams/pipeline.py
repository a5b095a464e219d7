"""What the stream worker does to one payload, free of Kafka: decode → detectors → policies.

The faust agents (``streams.app``) feed raw bytes in and publish what comes out; keeping this pure
makes it testable without a broker and lets the benchmark measure it alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from detectors.finding import Finding, Subject
from detectors.rules import RuleConfig, RuleDetector
from policies.decision import Decision
from policies.threshold import SeverityThresholdPolicy
from streams.codec import DeadLetter, Rejection, decode_event
from streams.schemas import Event, InferenceEvent


class Policy(Protocol):
    """Anything that turns one finding into decisions."""

    def evaluate(self, finding: Finding) -> list[Decision]: ...


@dataclass(slots=True)
class Outcome:
    """The result of processing one payload."""

    event: Event | None = None
    dead_letter: DeadLetter | None = None
    findings: list[Finding] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Knobs of the stream pipeline (mapped from :class:`warden.settings.Settings`)."""

    max_event_bytes: int = 1024 * 1024
    rules: RuleConfig = RuleConfig()
    alert_min_severity: str = "high"


class Pipeline:
    """Runs every detector and policy on each event of one worker."""

    def __init__(self, config: PipelineConfig | None = None, policy: Policy | None = None) -> None:
        self.config = config or PipelineConfig()
        self.rules = RuleDetector(self.config.rules)
        self.policy: Policy = policy or SeverityThresholdPolicy(self.config.alert_min_severity)

    def process(
        self,
        raw: bytes,
        *,
        topic: str,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | None = None,
    ) -> Outcome:
        """Decode, detect and decide for one payload; never raises on bad input."""
        decoded = decode_event(raw, self.config.max_event_bytes)
        if isinstance(decoded, Rejection):
            return Outcome(
                dead_letter=DeadLetter.build(
                    decoded, raw, source_topic=topic, partition=partition, offset=offset, key=key
                )
            )
        findings = self.detect(decoded)
        decisions = [d for f in findings for d in self.policy.evaluate(f)]
        return Outcome(event=decoded, findings=findings, decisions=decisions)

    def detect(self, event: Event) -> list[Finding]:
        """Run the detectors that apply to the event's type."""
        subject = Subject(tenant=event.tenant, model=event.model.name, version=event.model.version)
        if isinstance(event, InferenceEvent):
            body = event.inference
            return self.rules.update(
                subject=subject,
                event_id=event.event_id,
                occurred_at=event.occurred_at,
                status=body.status,
                latency_ms=body.latency_ms,
                error=body.error,
            )
        return []
