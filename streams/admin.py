"""Creating the topic catalogue at start-up (faust creates only its internal topics)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from contracts.topics import ALL_TOPICS, CHANGELOG_MAX_BYTES, TOPIC_CONFIGS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """Partitions and replication for the catalogue's topics."""

    partitions: int = 4
    replication: int = 1



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
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(
                    [NewTopic(t, spec.partitions, spec.replication,
                              topic_configs={"cleanup.policy": "compact",
                                             "max.message.bytes": str(CHANGELOG_MAX_BYTES)} if t in compacted
                              else TOPIC_CONFIGS.get(t))
                     for t in missing],
                    timeout_ms=30_000,
                )
            log.info("topics created", extra={"topics": missing})
        return missing
    finally:
        await admin.close()
