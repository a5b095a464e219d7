"""The faust stream worker: input topics → pipeline → findings, decisions, dead letters and samples.

Aggregate policies are evaluated in two steps: the ``warden.process`` agent collects each batch's
aggregate inputs per (policy, group) and publishes them on ``warden.aggregates`` keyed by that pair;
the ``warden.aggregate`` agent, which owns the key's partition, applies them to the group's window held
in the ``aggregate-state`` table (changelogged, so windows survive restarts and rebalances) and
publishes the decisions. A group may thus span models that different workers see.

Per-model detector state (drift, ops metrics, fairness, training runs, skew, eval baselines) is checkpointed
every ``state_checkpoint_s`` per model into
the ``detector-state`` table, in the partition of the model's events, and loaded by whichever worker
next sees the model (``streams.checkpoints``).

At-least-once: faust commits an input offset only after the agent has finished the event and
the producer has flushed what the agent sent (see ``Consumer._commit_offsets``), so a killed worker
re-processes from the last commit. Effects are idempotent because every output carries an id
derived from its input (event id, or topic/partition/offset for dead letters).
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

import faust

from contracts import topics
from contracts.aggregates import AggregateDelta
from contracts.heartbeat import Heartbeat
from streams.checkpoints import MAX_STATE_BYTES, Checkpointer, decode_state, encode_state, state_key
from streams.config import WorkerConfig
from streams.pipeline import Outcome, Pipeline, RawItem

log = logging.getLogger("warden.worker")


def create_app(config: WorkerConfig, pipeline: Pipeline) -> faust.App:
    """Build the faust app with its agent; nothing connects until the worker starts."""
    datadir = config.data_dir / "faust"  # not "<app id>-data" in the working directory
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        config.consumer_group,
        broker=[f"kafka://{host}" for host in config.bootstrap.split(",")],
        store="memory://",
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=config.topic_partitions,
        topic_replication_factor=config.topic_replication,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=min(3.0, config.session_timeout_s / 3),
        broker_rebalance_timeout=max(30.0, config.session_timeout_s * 3),
        broker_commit_interval=1.0,
        broker_request_timeout=40.0,
        producer_acks=-1,
        producer_max_request_size=topics.CHANGELOG_MAX_BYTES,  # detector checkpoints are ~0.5 MB each
        producer_linger=0.005,
        web_enabled=False,
        web_port=config.web_port,
        stream_wait_empty=False,
        logging_config=None,
    )
    pipe = pipeline
    source = app.topic(*topics.INPUT_TOPICS.values(), key_type=bytes, value_type=bytes)
    findings = app.topic(topics.FINDINGS, key_type=bytes, value_type=bytes)
    decisions = app.topic(topics.DECISIONS, key_type=bytes, value_type=bytes)
    dlq = app.topic(topics.DLQ, key_type=bytes, value_type=bytes)
    samples = app.topic(topics.SAMPLES, key_type=bytes, value_type=bytes)
    aggregates = app.topic(topics.AGGREGATES, key_type=bytes, value_type=bytes)
    counters: dict[str, int] = {"events": 0, "dead_letters": 0, "findings": 0, "decisions": 0, "samples": 0,
                                "aggregate_deltas": 0, "checkpoints": 0, "agent_starts": 0, "batch_fallbacks": 0,
                                "aggregate_errors": 0}
    app.warden_counters = counters  # type: ignore[attr-defined]
    # aggregate windows per (policy, group), changelogged: a restart or rebalance resumes them
    window_state = app.Table(topics.AGGREGATE_STATE_TABLE, default=None, key_type=bytes, value_type=bytes,
                             partitions=config.topic_partitions)
    # per-model detector checkpoints (see Pipeline.model_state), changelogged in the partition of the model's events
    detector_state = app.Table(topics.DETECTOR_STATE_TABLE, default=None, key_type=bytes, value_type=bytes,
                               partitions=config.topic_partitions)
    checkpointer = Checkpointer(config.state_checkpoint_s)

    def load_state(tenant: str, model: str) -> dict[str, Any] | None:
        raw = detector_state.get(state_key(tenant, model))
        if raw is None:
            return None
        try:
            return decode_state(raw)
        except ValueError:
            log.error("unreadable detector checkpoint ignored", extra={"tenant": tenant, "model": model})
            return None

    pipe.state_loader = load_state

    @app.on_partitions_assigned.connect
    async def forget_moved_models(sender: Any, assigned: Any, **_: Any) -> None:
        # a model whose events now go to another worker is dropped here; it reloads if it comes back
        mine = {tp.partition for tp in assigned if tp.topic in topics.INPUT_TOPICS.values()}
        for tenant, model in checkpointer.keep_only(mine):
            pipe.forget_model(tenant, model)

    async def checkpoint(now: float) -> None:
        for tenant, model, partition in checkpointer.due(now):
            checkpointer.written(tenant, model, now)
            state = pipe.model_state(tenant, model)
            if state is None or partition is None:
                continue
            raw = encode_state(state)
            if len(raw) > MAX_STATE_BYTES:
                log.warning("detector checkpoint too large, not written",
                            extra={"tenant": tenant, "model": model, "bytes": len(raw)})
                continue
            key = state_key(tenant, model)
            detector_state.data[key] = raw
            detector_state.send_changelog(partition, key, raw)
            counters["checkpoints"] += 1


    outputs = {topics.FINDINGS: findings, topics.DECISIONS: decisions, topics.DLQ: dlq, topics.SAMPLES: samples}
    counted = {topics.FINDINGS: "findings", topics.DECISIONS: "decisions", topics.DLQ: "dead_letters",
               topics.SAMPLES: "samples"}

    def process_safely(items: list[RawItem]) -> list[Outcome]:
        # The pipeline isolates failures per event; should a bug escape it, the batch is processed one
        # event at a time and an event that still raises is dead-lettered: input never stops the agent.
        try:
            return pipe.process_batch(items)
        except Exception:
            counters["batch_fallbacks"] += 1
            log.exception("batch processing failed; processing its events one by one")
        outcomes = []
        for item in items:
            try:
                outcomes.extend(pipe.process_batch([item]))
            except Exception as exc:
                out = Outcome()
                pipe.fail(item, out, "pipeline", exc)
                out.records = pipe.encode(out)
                outcomes.append(out)
        return outcomes

    @app.agent(source, name="warden.process")
    async def process(stream: Any) -> None:
        # Batches amortise faust's per-event overhead; take_events acks the batch only after
        # this body has handled it (and sent its outputs), so at-least-once is kept.
        counters["agent_starts"] += 1  # more than 1: faust restarted the agent after a crash
        async for batch in stream.take_events(config.batch_max, within=config.batch_within_s):
            items = [RawItem(bytes(e.value or b""), e.message.topic, e.message.partition, e.message.offset,
                             e.message.key) for e in batch]
            outcomes = process_safely(items)
            for item, out in zip(items, outcomes):
                counters["events"] += 1
                if out.dead_letter is not None:
                    log.warning(
                        "event rejected",
                        extra={"code": out.dead_letter.code, "reason": out.dead_letter.reason,
                               "topic": item.topic, "partition": item.partition, "offset": item.offset},
                    )
                for record in out.records:
                    counters[counted[record.topic]] += 1
                    await outputs[record.topic].send(key=record.key, value=record.value)
            for delta in pipe.drain_aggregates():
                counters["aggregate_deltas"] += 1
                await aggregates.send(key=delta.key.encode(), value=delta.model_dump_json().encode())
            now = time.monotonic()
            for item, out in zip(items, outcomes):
                if out.event is not None:
                    checkpointer.seen(out.event.tenant, out.event.model.name, item.partition, now)
            await checkpoint(now)

    @app.agent(aggregates, name="warden.aggregate")
    async def aggregate(stream: Any) -> None:
        # Each delta is applied to its group's stored window and the new window written back; the
        # table's changelog send and the decisions go out before the message is acked.
        async for event in stream.events():
            try:
                delta = AggregateDelta.model_validate_json(bytes(event.value or b""))
            except ValueError:  # produced by Warden itself: a version mismatch, not user input
                log.error("unparseable aggregate delta skipped", extra={
                    "partition": event.message.partition, "offset": event.message.offset})
                continue
            key = delta.key.encode()
            try:
                stored = window_state.get(key)
                state = None if stored is None else json.loads(stored)
                fired, new_state = pipe.policy.apply_delta(delta, state)
                new_raw = json.dumps(new_state, separators=(",", ":")).encode()
                encoded = [(f"{d.subject.tenant}/{d.subject.model}".encode(), d.model_dump_json().encode())
                           for d in fired]
            except Exception as exc:  # one group's failure must not stop the others' windows
                counters["aggregate_errors"] += 1
                log.error("aggregate delta could not be applied; skipped", extra={
                    "error_type": type(exc).__name__, "policy_id": delta.policy_id,
                    "partition": event.message.partition, "offset": event.message.offset})
                continue
            window_state[key] = new_raw
            for dkey, value in encoded:
                counters["decisions"] += 1
                await decisions.send(key=dkey, value=value)

    @app.timer(interval=max(0.5, config.state_checkpoint_s / 2))
    async def checkpoint_idle_models() -> None:
        # models whose traffic stopped still get their last checkpoint
        await checkpoint(time.monotonic())

    @app.timer(interval=30.0)
    async def report() -> None:
        log.info("worker progress", extra=dict(counters))

    beats = app.topic(topics.HEARTBEATS, key_type=bytes, value_type=bytes)
    started_at = datetime.now(UTC)

    async def send_heartbeat(state: str) -> None:
        beat = Heartbeat(instance=config.instance, group=config.consumer_group, pid=os.getpid(), started_at=started_at,
                         interval_s=config.heartbeat_s, state=state, counters=dict(counters))
        await beats.send(key=config.instance.encode(), value=beat.model_dump_json().encode())

    @app.timer(interval=config.heartbeat_s)
    async def heartbeat() -> None:
        # on the event loop, like the agents: a worker stuck in a batch or a dead process stops beating
        await send_heartbeat("running")

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def last_heartbeat(sender: Any, **_: Any) -> None:
        try:  # a worker stopped on purpose says so: /healthz then does not wait for it
            await send_heartbeat("stopped")
        except Exception:
            log.warning("last heartbeat not sent", exc_info=True)

    return app
