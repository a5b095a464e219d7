"""The topic catalogue: every topic Warden reads or writes, and the names of the stream tables' changelogs.

Creating them is :func:`streams.admin.ensure_topics`."""

from __future__ import annotations

INFERENCE = "warden.inference"
TRAINING = "warden.training"
FEEDBACK = "warden.feedback"
DEPLOYMENTS = "warden.deployments"
FINDINGS = "warden.findings"
DECISIONS = "warden.decisions"
JOBS = "warden.jobs"
JOB_STATUS = "warden.job-status"
DLQ = "warden.dlq"
SAMPLES = "warden.samples"  # redacted prompt/response samples and feedback labels (training history)
AGGREGATES = "warden.aggregates"  # aggregate-policy inputs, keyed by (policy, group): routed to the group's owner
HEARTBEATS = "warden.heartbeats"  # stream workers' signs of life, keyed by worker instance (read by /healthz)
#: topic configs by topic, beyond the defaults (heartbeats matter for minutes: an hour is kept)
TOPIC_CONFIGS: dict[str, dict[str, str]] = {HEARTBEATS: {"retention.ms": str(3_600_000), "segment.ms": str(600_000)}}
AGGREGATE_STATE_TABLE = "aggregate-state"  # the faust table of aggregate windows (changelog: compacted)
DETECTOR_STATE_TABLE = "detector-state"  # the faust table of per-model detector checkpoints (changelog: compacted)
STATE_TABLES = (AGGREGATE_STATE_TABLE, DETECTOR_STATE_TABLE)
#: the largest record a table changelog accepts (a model's drift checkpoint, compressed, is ~0.5 MB)
CHANGELOG_MAX_BYTES = 16 * 1024 * 1024

#: topics producers write to, by event type
INPUT_TOPICS: dict[str, str] = {
    "inference": INFERENCE,
    "training": TRAINING,
    "feedback": FEEDBACK,
    "deployment": DEPLOYMENTS,
}
ALL_TOPICS: tuple[str, ...] = (
    INFERENCE, TRAINING, FEEDBACK, DEPLOYMENTS, FINDINGS, DECISIONS, JOBS, JOB_STATUS, DLQ, SAMPLES, AGGREGATES,
    HEARTBEATS,
)
#: what the governance consumer reads (its group's lag is measured on these)
GOVERNANCE_TOPICS: tuple[str, ...] = (FINDINGS, DECISIONS, DLQ, JOB_STATUS, SAMPLES)


def changelog_topic(app_id: str, table: str = AGGREGATE_STATE_TABLE) -> str:
    """The changelog topic faust uses for ``table`` of the stream app ``app_id`` (its consumer group)."""
    return f"{app_id}-{table}-changelog"
