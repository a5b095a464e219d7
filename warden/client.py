"""A small producer SDK for Python services that call LLMs.

    async with WardenProducer("localhost:9092", tenant="acme") as warden:
        await warden.log_inference(
            model="support-bot", version="3",
            messages=[{"role": "user", "content": "Where is my order?"}],
            response="It ships tomorrow.", finish_reason="stop",
            input_tokens=12, output_tokens=8, latency_ms=850,
        )

Events are validated locally (the same pydantic contract the stream uses), keyed by model and
batched by the Kafka producer (``linger_ms``); ``log_*`` returns once the event is queued, and
``flush()`` (or leaving the ``async with``) waits until the broker has acknowledged everything.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer

from contracts.events import (
    DeploymentEvent,
    EventAdapter,
    FeedbackEvent,
    InferenceEvent,
    TrainingEvent,
    dump_event,
)
from contracts.topics import INPUT_TOPICS


def _now() -> datetime:
    return datetime.now(UTC)


class WardenProducer:
    """Publishes Warden events to Kafka; use as an async context manager."""

    def __init__(self, bootstrap: str, *, tenant: str, linger_ms: int = 20, acks: str | int = "all") -> None:
        self.tenant = tenant
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms, acks=acks)
        self._pending: set[asyncio.Future[Any]] = set()

    async def __aenter__(self) -> WardenProducer:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        await self._producer.start()

    async def close(self) -> None:
        """Flush and disconnect."""
        await self.flush()
        await self._producer.stop()

    async def flush(self) -> None:
        """Wait until every queued event is acknowledged (raises the first delivery error)."""
        await self._producer.flush()
        pending, self._pending = self._pending, set()
        for fut in pending:
            await fut

    async def send(self, event: InferenceEvent | TrainingEvent | FeedbackEvent | DeploymentEvent) -> str:
        """Queue a validated event on its topic, keyed by tenant/model; returns its event id."""
        fut = await self._producer.send(INPUT_TOPICS[event.type], dump_event(event), key=event.key)
        self._pending.add(fut)
        fut.add_done_callback(lambda f: self._pending.discard(f) if not f.exception() else None)
        return event.event_id

    def _envelope(self, etype: str, model: str, version: str, event_id: str | None,
                  occurred_at: datetime | None, body: dict[str, Any]) -> Any:
        return EventAdapter.validate_python({
            "schema_version": "1",
            "event_id": event_id or str(uuid.uuid4()),
            "type": etype,
            "occurred_at": occurred_at or _now(),
            "tenant": self.tenant,
            "model": {"name": model, "version": version},
            etype: body,
        })

    async def log_inference(
        self,
        *,
        model: str,
        version: str,
        messages: list[dict[str, Any]],
        response: str | None = None,
        finish_reason: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        latency_ms: float | None = None,
        status: str = "ok",
        error: str | None = None,
        cost_usd: float | None = None,
        user_id: str | None = None,
        user_attributes: dict[str, str] | None = None,
        event_id: str | None = None,
        occurred_at: datetime | None = None,
    ) -> str:
        """Log one LLM call."""
        body: dict[str, Any] = {
            "messages": messages,
            "response": {"content": response, "finish_reason": finish_reason},
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
            "latency_ms": latency_ms,
            "status": status,
            "error": error,
            "cost_usd": cost_usd,
        }
        if user_id or user_attributes:
            body["user"] = {"id": user_id, "attributes": user_attributes or {}}
        return await self.send(self._envelope("inference", model, version, event_id, occurred_at, body))

    async def log_feedback(self, *, model: str, version: str, target_event_id: str, score: float | None = None,
                           thumbs: str | None = None, label: bool | None = None, event_id: str | None = None) -> str:
        """Log feedback on an earlier inference event."""
        body = {"target_event_id": target_event_id, "score": score, "thumbs": thumbs, "label": label}
        return await self.send(self._envelope("feedback", model, version, event_id, None, body))

    async def log_training(self, *, model: str, version: str, run_id: str, phase: str,
                           metrics: dict[str, float] | None = None, step: int | None = None,
                           event_id: str | None = None, **extra: Any) -> str:
        """Log a training-run event (run_started, step, evaluation, run_finished, data_sample)."""
        body = {"run_id": run_id, "phase": phase, "metrics": metrics or {}, "step": step, **extra}
        return await self.send(self._envelope("training", model, version, event_id, None, body))

    async def log_deployment(self, *, model: str, version: str, action: str = "deploy", alias: str = "production",
                             previous_version: str | None = None, event_id: str | None = None) -> str:
        """Log that a model version was deployed, promoted or rolled back."""
        body = {"action": action, "alias": alias, "previous_version": previous_version}
        return await self.send(self._envelope("deployment", model, version, event_id, None, body))
