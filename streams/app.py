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

import asyncio
import json
import logging
import os
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import faust

from contracts import topics
from contracts.aggregates import AggregateDelta
from contracts.heartbeat import Heartbeat
from streams import metrics
from streams.checkpoints import MAX_STATE_BYTES, Checkpointer, decode_state, encode_state, state_key
from streams.config import WorkerConfig
from streams.offsets import guard_offsets
from streams.pipeline import BatchTimings, Outcome, Pipeline, RawItem
from streams.textstage import TextStagePool

log = logging.getLogger("warden.worker")


def _observe_timings(timings: BatchTimings) -> None:
    """Seconds per stage and per detector of one batch into the worker's metrics."""
    for stage, seconds in timings.stages.items():
        metrics.STAGE_SECONDS.labels(stage).observe(seconds)
    for detector, seconds in timings.detectors.items():
        metrics.DETECTOR_SECONDS.labels(detector).observe(seconds)


def _observe_batch(size: int, timings: BatchTimings, handled: Counter[tuple[str, str]],
                   found: Counter[tuple[str, str]], publish_s: float) -> None:
    """One processed batch into the worker's metrics (counts aggregated per batch, timings per stage/detector)."""
    metrics.BATCH_SIZE.observe(size)
    _observe_timings(timings)
    metrics.STAGE_SECONDS.labels("publish").observe(publish_s)
    for (kind, outcome), n in handled.items():
        metrics.EVENTS.labels(kind, outcome).inc(n)
    for (detector, severity), n in found.items():
        metrics.FINDINGS.labels(detector, severity).inc(n)
    metrics.LAST_BATCH.set(time.time())


def create_app(config: WorkerConfig, pipeline: Pipeline) -> faust.App:
    """Build the faust app with its agent; nothing connects until the worker starts."""
    guard_offsets()  # no input offset counted as processed that was never delivered (see streams.offsets)
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
    event_type = {topic: kind for kind, topic in topics.INPUT_TOPICS.items()}
    #: next offset to process per input (topic, partition), for the consumer-lag gauge
    next_offset: dict[tuple[str, int], int] = {}
    lag_series: set[tuple[str, str]] = set()

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

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode types receivers as (sender, *args); faust sends one positional `assigned`
    async def forget_moved_models(sender: Any, assigned: Any, **_: Any) -> None:
        # a model whose events now go to another worker is dropped here; it reloads if it comes back
        mine = {tp.partition for tp in assigned if tp.topic in topics.INPUT_TOPICS.values()}
        for tenant, model in checkpointer.keep_only(mine):
            pipe.forget_model(tenant, model)
        next_offset.clear()
        for series in list(lag_series):  # partitions that moved away stop being reported here
            metrics.CONSUMER_LAG.remove(*series)
            lag_series.discard(series)

    async def checkpoint(now: float) -> None:
        for tenant, model, partition in checkpointer.due(now):
            checkpointer.written(tenant, model, now)
            state = pipe.model_state(tenant, model)
            if state is None or partition is None:
                continue
            raw = encode_state(state)
            metrics.CHECKPOINT_BYTES.observe(len(raw))
            if len(raw) > MAX_STATE_BYTES:
                metrics.CHECKPOINTS.labels("too_large").inc()
                log.warning("detector checkpoint too large, not written",
                            extra={"tenant": tenant, "model": model, "bytes": len(raw)})
                continue
            metrics.CHECKPOINTS.labels("written").inc()
            key = state_key(tenant, model)
            detector_state.data[key] = raw
            detector_state.send_changelog(partition, key, raw)
            counters["checkpoints"] += 1


    async def publish(topic: str, key: bytes | None, value: bytes) -> None:
        # straight to the producer (raw bytes already: no codec, no channel): faust flushes it before it commits
        # the input offsets, so at-least-once holds as with Topic.send, for a fraction of the event loop's time
        await app.producer.send(topic, key, value, partition=None, timestamp=None, headers=None)
    counted = {topics.FINDINGS: "findings", topics.DECISIONS: "decisions", topics.DLQ: "dead_letters",
               topics.SAMPLES: "samples"}

    def process_safely(items: list[RawItem]) -> tuple[list[Outcome], BatchTimings]:
        # The pipeline isolates failures per event; should a bug escape it, the batch is processed one
        # event at a time and an event that still raises is dead-lettered: input never stops the agent.
        try:
            return pipe.process_batch(items), pipe.timings  # (synchronous: the timings are this batch's)
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
        return outcomes, pipe.timings

    # The text stage (PII, embeddings, security scans) in child processes: the event loop stays free for the
    # fast path, heartbeats, commits and sends, and a worker can use more than one core.
    pool = TextStagePool(pipe.text_stage_config(), config.text_processes) if config.text_processes > 0 else None
    if pool is not None:
        pool.start()
        app.warden_text_pool = pool  # type: ignore[attr-defined]

        @app.on_before_shutdown.connect  # type: ignore[arg-type]
        async def stop_text_stage(sender: Any, **_: Any) -> None:
            pool.close()

    async def process_full(items: list[RawItem]) -> tuple[list[Outcome], BatchTimings]:
        if pool is None:
            return process_safely(items)
        try:
            outcomes, job = pipe.prepare(items)
            timings = pipe.timings  # this batch's: another batch in flight replaces pipe.timings meanwhile
            result = await pool.run(job)
            step = config.complete_chunk
            for lo in range(0, len(outcomes), step):  # detectors and policies, in slices: the loop breathes
                pipe.timings = timings  # (complete() adds to pipe.timings and does not await)
                pipe.complete(items, outcomes, job, result, lo, lo + step)
                if lo + step < len(outcomes):
                    await asyncio.sleep(0)
            return outcomes, timings
        except Exception:
            if pool.closed:
                raise
            counters["batch_fallbacks"] += 1
            log.exception("batch processing with the text stage processes failed; processing it in the worker")
            return process_safely(items)

    if pipe.config.fast_path:
        @app.agent(source, name="warden.fast")
        async def fast(stream: Any) -> None:
            # The same events as warden.process (an event is committed once both agents acked it): rules and
            # operational metrics decided within a batch interval, never behind the text stage.
            async for batch in stream.take_events(config.batch_max, within=config.batch_within_s):
                items = [RawItem(bytes(e.value or b""), e.message.topic, e.message.partition, e.message.offset,
                                 e.message.key) for e in batch]
                outcomes, timings = process_fast_safely(items)
                for out in outcomes:
                    if out.dead_letter is not None:
                        metrics.DEAD_LETTERS.labels(out.dead_letter.code).inc()
                    for decision in out.decisions:
                        metrics.DECISIONS.labels(decision.action.value).inc()
                    for record in out.records:
                        counters[counted[record.topic]] += 1
                        await publish(record.topic, record.key, record.value)
                for delta in pipe.drain_aggregates():
                    counters["aggregate_deltas"] += 1
                    await publish(topics.AGGREGATES, delta.key.encode(), delta.model_dump_json().encode())
                _observe_timings(timings)

    def process_fast_safely(items: list[RawItem]) -> tuple[list[Outcome], BatchTimings]:
        try:
            return pipe.process_fast(items)
        except Exception:
            counters["batch_fallbacks"] += 1
            log.exception("fast path failed on a batch; processing its events one by one")
        outcomes, timings = [], BatchTimings()
        for item in items:
            try:
                outcomes += pipe.process_fast([item])[0]
            except Exception as exc:
                out = Outcome()
                pipe.fail(item, out, "fast path", exc)
                out.records = pipe.encode(out)
                outcomes.append(out)
        return outcomes, timings

    # Batches in flight at once: the agent's actors share one queue, so while the text stage processes work on
    # one actor's batch, the event loop runs the detectors and policies of another's.
    in_flight = config.batches_in_flight if pool is not None else 1
    actor_starts: Counter[int | None] = Counter()

    @app.agent(source, name="warden.process", concurrency=in_flight)
    async def process(stream: Any) -> None:
        # Batches amortise faust's per-event overhead; take_events acks the batch only after
        # this body has handled it (and sent its outputs), so at-least-once is kept.
        actor_starts[getattr(stream, "concurrency_index", None)] += 1
        # above 1: faust restarted an actor after a crash
        counters["agent_starts"] = 1 + sum(n - 1 for n in actor_starts.values())
        async for batch in stream.take_events(config.batch_max, within=config.batch_within_s):
            items = [RawItem(bytes(e.value or b""), e.message.topic, e.message.partition, e.message.offset,
                             e.message.key) for e in batch]
            outcomes, timings = await process_full(items)
            published = time.perf_counter()
            handled: Counter[tuple[str, str]] = Counter()
            found: Counter[tuple[str, str]] = Counter()
            for item, out in zip(items, outcomes):
                counters["events"] += 1
                kind = event_type.get(item.topic, "unknown")
                if item.partition is not None and item.offset is not None:
                    position = (item.topic, item.partition)
                    next_offset[position] = max(next_offset.get(position, 0), item.offset + 1)
                if out.dead_letter is not None:
                    handled[(kind, "dead_letter")] += 1
                    if out.records:  # else the fast path dead-lettered it
                        metrics.DEAD_LETTERS.labels(out.dead_letter.code).inc()
                    log.warning(
                        "event rejected",
                        extra={"code": out.dead_letter.code, "reason": out.dead_letter.reason,
                               "topic": item.topic, "partition": item.partition, "offset": item.offset},
                    )
                else:
                    handled[(kind, "processed")] += 1
                    for finding in out.findings:
                        found[(finding.detector, finding.severity.name)] += 1
                    for decision in out.decisions:
                        metrics.DECISIONS.labels(decision.action.value).inc()
                for record in out.records:  # serialised by the pipeline: sending cannot fail on content
                    counters[counted[record.topic]] += 1
                    await publish(record.topic, record.key, record.value)
            for delta in pipe.drain_aggregates():
                counters["aggregate_deltas"] += 1
                await publish(topics.AGGREGATES, delta.key.encode(), delta.model_dump_json().encode())
            _observe_batch(len(items), timings, handled, found, time.perf_counter() - published)
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
                encoded = [(d, f"{d.subject.tenant}/{d.subject.model}".encode(), d.model_dump_json().encode())
                           for d in fired]
            except Exception as exc:  # one group's failure must not stop the others' windows
                counters["aggregate_errors"] += 1
                log.error("aggregate delta could not be applied; skipped", extra={
                    "error_type": type(exc).__name__, "policy_id": delta.policy_id,
                    "partition": event.message.partition, "offset": event.message.offset})
                continue
            window_state[key] = new_raw
            for decision, dkey, value in encoded:
                counters["decisions"] += 1
                metrics.DECISIONS.labels(decision.action.value).inc()
                await publish(topics.DECISIONS, dkey, value)

    @app.timer(interval=max(0.5, config.state_checkpoint_s / 2))
    async def checkpoint_idle_models() -> None:
        # models whose traffic stopped still get their last checkpoint
        now = time.monotonic()
        await checkpoint(now)
        metrics.CHECKPOINT_AGE.set(checkpointer.oldest_unsaved(now))
        metrics.MODELS.set(len(checkpointer))

    @app.timer(interval=config.lag_interval_s)
    async def report_lag() -> None:
        # log end offset (asked of the broker) minus the next offset this worker will process
        assigned = [tp for tp in app.consumer.assignment() if tp.topic in event_type]
        if not assigned:
            return
        try:
            ends = await app.consumer.highwaters(*assigned)
        except Exception as exc:  # the broker is away: keep the last values, try again next time
            log.warning("consumer lag not measured", extra={"error": type(exc).__name__})
            return
        for tp in assigned:
            end = ends.get(tp)
            done = next_offset.get((tp.topic, tp.partition))
            if done is None:
                done = await app.consumer.position(tp)
            if end is None or done is None:
                continue
            series = (tp.topic, str(tp.partition))
            metrics.CONSUMER_LAG.labels(*series).set(max(0, end - done))
            lag_series.add(series)

    @app.task
    async def watch_loop() -> None:
        # how long ready work waits for the event loop (what a fast-path batch or a heartbeat waits at worst)
        while not app.should_stop:
            asked = time.monotonic()
            await asyncio.sleep(0.1)
            metrics.LOOP_DELAY.observe(max(0.0, time.monotonic() - asked - 0.1))

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
