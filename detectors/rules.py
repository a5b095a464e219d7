"""The rule detector: per-event checks that need no history.

* ``error_status`` — the call failed (``status == "error"``).
* ``latency_slo`` — the call took longer than the configured latency SLO.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from detectors.finding import Finding, Severity, Subject

DETECTOR = "rule"


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Thresholds of the rule detector."""

    latency_slo_ms: float = 5000.0
    #: latency at or above ``latency_slo_ms * critical_factor`` is high severity
    critical_factor: float = 4.0


class RuleDetector:
    """Stateless per-event rules; ``update()`` returns the findings of one call."""

    def __init__(self, config: RuleConfig | None = None) -> None:
        self.config = config or RuleConfig()
        self.seen = 0
        self.fired = 0

    def update(
        self,
        *,
        subject: Subject,
        event_id: str,
        occurred_at: datetime,
        status: str,
        latency_ms: float | None,
        error: str | None = None,
    ) -> list[Finding]:
        """Check one inference call."""
        self.seen += 1
        findings: list[Finding] = []
        if status == "error":
            findings.append(
                Finding.create(
                    detector=DETECTOR,
                    kind="error_status",
                    subject=subject,
                    severity=Severity.high,
                    score=1.0,
                    summary="model call failed",
                    evidence={"error_type": (error or "error")[:200]},
                    event_id=event_id,
                    occurred_at=occurred_at,
                )
            )
        slo = self.config.latency_slo_ms
        if latency_ms is not None and latency_ms > slo:
            ratio = latency_ms / slo
            findings.append(
                Finding.create(
                    detector=DETECTOR,
                    kind="latency_slo",
                    subject=subject,
                    severity=Severity.high if ratio >= self.config.critical_factor else Severity.medium,
                    score=min(1.0, (ratio - 1.0) / (self.config.critical_factor - 1.0)),
                    summary=f"latency {latency_ms:.0f} ms above the {slo:.0f} ms SLO",
                    evidence={"latency_ms": latency_ms, "slo_ms": slo},
                    event_id=event_id,
                    occurred_at=occurred_at,
                )
            )
        self.fired += len(findings)
        return findings
