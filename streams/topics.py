"""The topic catalogue and its creation at start-up (faust creates only its internal topics)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

log = logging.getLogger(__name__)

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
)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """Partitions and replication for the catalogue's topics."""

    partitions: int = 4
    replication: int = 1


def changelog_topic(app_id: str, table: str = AGGREGATE_STATE_TABLE) -> str:
    """The changelog topic faust uses for ``table`` of the stream app ``app_id`` (its consumer group)."""
    return f"{app_id}-{table}-changelog"


async def ensure_topics(bootstrap: str, spec: TopicSpec, *, compacted: tuple[str, ...] = (),
                        timeout_s: float = 60.0) -> list[str]:
    """Create every catalogue topic, and the ``compacted`` ones (table changelogs), that does not exist
    yet; returns those created.

    Retries the connection until ``timeout_s`` so that a broker still starting is waited for.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            break
        except (KafkaConnectionError, OSError) as exc:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"Kafka at {bootstrap} is not reachable: {exc}") from exc
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in (*ALL_TOPICS, *compacted) if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, spec.partitions, spec.replication,
                              topic_configs={"cleanup.policy": "compact",
                                             "max.message.bytes": str(CHANGELOG_MAX_BYTES)} if t in compacted else None)
                     for t in missing],
                    timeout_ms=30_000,
                )
            except TopicAlreadyExistsError:
                pass  # another process won the race
            log.info("topics created", extra={"topics": missing})
        return missing
    finally:
        await admin.close()
