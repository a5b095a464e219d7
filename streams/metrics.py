"""Prometheus metrics of the stream worker, served on ``WARDEN_WORKER_WEB_PORT`` (``GET /metrics``,
see :func:`warden.metrics.serve`). Labels are bounded: event types, rejection codes, detector names and severities are closed sets; topics
and partitions come from the topic catalogue; no tenant, model or event id is a label."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

EVENTS = Counter("warden_worker_events_total", "Events handled, by type and outcome (processed, dead_letter)",
                 ["type", "outcome"])
DEAD_LETTERS = Counter("warden_worker_dead_letters_total", "Events sent to the dead-letter topic, by reason", ["reason"])
FINDINGS = Counter("warden_worker_findings_total", "Findings published, by detector and severity",
                   ["detector", "severity"])
DECISIONS = Counter("warden_worker_decisions_total", "Policy decisions published, by action", ["action"])
BATCH_SIZE = Histogram("warden_worker_batch_size", "Events per processed batch",
                       buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000))
STAGE_SECONDS = Histogram("warden_worker_stage_seconds", "Time one batch spent in a pipeline stage "
                          "(decode, pii, embed, security, detect, decide, publish)", ["stage"], buckets=_SECONDS)
DETECTOR_SECONDS = Histogram("warden_worker_detector_seconds", "Time one batch spent in a detector", ["detector"],
                             buckets=_SECONDS)
CONSUMER_LAG = Gauge("warden_worker_consumer_lag", "Messages not yet processed on an assigned input partition "
                     "(log end offset minus the next offset to process)", ["topic", "partition"])
LAST_BATCH = Gauge("warden_worker_last_batch_timestamp_seconds", "When the worker last finished a batch")
CHECKPOINTS = Counter("warden_worker_checkpoints_total", "Detector-state checkpoints, by outcome (written, too_large)",
                      ["outcome"])
CHECKPOINT_BYTES = Histogram("warden_worker_checkpoint_bytes", "Size of one compressed detector-state checkpoint",
                             buckets=(1e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6, 1e7, 1.6e7))
CHECKPOINT_AGE = Gauge("warden_worker_checkpoint_age_seconds",
                       "Oldest unsaved detector state: seconds since the last checkpoint of a model with new events")
MODELS = Gauge("warden_worker_models", "Models whose detector state this worker holds")

OFFSET_JUMPS = Counter("warden_worker_offset_jumps_total", "Deliveries that jumped ahead of the last offset read on "
                       "a partition (a stale fetch): the skipped range is read again, not counted as done", ["topic"])
LOOP_DELAY = Histogram("warden_worker_loop_delay_seconds", "How late a 0.1 s sleep on the worker's event loop woke "
                       "up: time the loop spent in other work (decoding, detectors, sends) before it could run the next "
                       "ready task (fast-path batches, heartbeats, commits wait that long)", buckets=_SECONDS)
