"""The Python producer SDK against Apache Kafka: events land on their topics, keyed by tenant/model."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from contracts.events import EventAdapter, FeedbackEvent, InferenceEvent
from streams.admin import TopicSpec, ensure_topics
from tests.support.kafka import KafkaBroker
from warden.client import WardenProducer

pytestmark = pytest.mark.kafka


def test_sdk_publishes_valid_events_keyed_by_model(kafka: KafkaBroker) -> None:
    tenant = f"sdk-{uuid.uuid4().hex[:6]}"

    async def run() -> dict[str, list]:
        await ensure_topics(kafka.bootstrap, TopicSpec())
        async with WardenProducer(kafka.bootstrap, tenant=tenant) as w:
            first = await w.log_inference(model="support-bot", version="3",
                                          messages=[{"role": "user", "content": "Where is my order?"}],
                                          response="Tomorrow.", finish_reason="stop", input_tokens=5,
                                          output_tokens=2, latency_ms=120.5, user_attributes={"age_band": "26-40"})
            await w.log_feedback(model="support-bot", version="3", target_event_id=first, thumbs="up")
            await w.log_training(model="support-bot", version="4", run_id="r1", phase="step", step=1,
                                 metrics={"loss": 1.5})
            await w.log_deployment(model="support-bot", version="4", previous_version="3")
            with pytest.raises(ValidationError):
                await w.log_inference(model="support-bot", version="3", messages=[], latency_ms=-1)
        consumer = AIOKafkaConsumer("warden.inference", "warden.feedback", "warden.training", "warden.deployments",
                                    bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                                    group_id=uuid.uuid4().hex)
        await consumer.start()
        got: dict[str, list] = {}
        try:
            for _ in range(40):
                batch = await consumer.getmany(timeout_ms=500)
                for tp, msgs in batch.items():
                    for m in msgs:
                        try:
                            event = EventAdapter.validate_json(m.value)
                        except ValidationError:  # another test's deliberately bad input on the shared topic
                            continue
                        if event.tenant == tenant:
                            got.setdefault(tp.topic, []).append((m.key, event))
                if len(got) == 4:
                    break
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(run())
    assert set(got) == {"warden.inference", "warden.feedback", "warden.training", "warden.deployments"}
    key, inf = got["warden.inference"][0]
    assert key == f"{tenant}/support-bot".encode()
    assert isinstance(inf, InferenceEvent) and inf.inference.usage.output_tokens == 2
    assert inf.inference.user.attributes == {"age_band": "26-40"}
    fb = got["warden.feedback"][0][1]
    assert isinstance(fb, FeedbackEvent) and fb.feedback.target_event_id == inf.event_id
    assert got["warden.deployments"][0][1].deployment.previous_version == "3"
