"""The minimal policy: a finding at or above a severity becomes an alert decision.

Used until a policy pack is configured; it is also the fallback when no policy file matches.
"""

from __future__ import annotations

from detectors.finding import Finding, Severity
from policies.decision import Decision, DecisionAction

POLICY_ID = "builtin.severity-threshold"
POLICY_VERSION = 1


class SeverityThresholdPolicy:
    """Alert on every finding whose severity is at least ``min_severity``."""

    def __init__(self, min_severity: Severity | str = Severity.high) -> None:
        self.min_severity = Severity.parse(min_severity)

    def evaluate(self, finding: Finding) -> list[Decision]:
        """Decisions for one finding (zero or one alert)."""
        if finding.severity < self.min_severity:
            return []
        dedup = f"{finding.detector}:{finding.subject.tenant}:{finding.subject.model}:{finding.kind}"
        return [
            Decision(
                decision_id=Decision.make_id(POLICY_ID, POLICY_VERSION, "alert", finding.finding_id),
                policy_id=POLICY_ID,
                policy_version=POLICY_VERSION,
                action=DecisionAction.alert,
                subject=finding.subject,
                severity=finding.severity,
                summary=f"[{finding.subject.tenant}/{finding.subject.model}] {finding.summary}",
                finding_ids=[finding.finding_id],
                detector=finding.detector,
                dedup_key=dedup,
                route="default",
                created_at=finding.occurred_at,
            )
        ]
