"""The stream worker's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WorkerConfig:
    """What the stream worker needs to know (``warden`` maps its settings onto this)."""

    bootstrap: str
    consumer_group: str = "warden-worker"
    data_dir: Path = Path(".warden")
    topic_partitions: int = 4
    topic_replication: int = 1
    session_timeout_s: float = 10.0
    state_checkpoint_s: float = 15.0
    """How often (per model, in processing time) detector state is checkpointed."""
    batch_max: int = 500
    """Events handled per batch."""
    batch_within_s: float = 0.05
    """Longest wait to fill a batch."""
    web_port: int = 6066
    """The worker's HTTP port: Prometheus ``/metrics`` (faust's own web server stays off)."""
    text_processes: int = 1
    """Child processes running the text stage (PII, embeddings, security scans) of ``warden.process``; 0: none,
    the stage runs on the event loop."""
    batches_in_flight: int = 2
    """Batches of ``warden.process`` in flight (the agent's concurrency): while the text stage processes work on
    one batch, the event loop completes another. 1 with ``text_processes`` 0 (nothing would overlap)."""
    complete_chunk: int = 20
    """Events per slice of the detectors-and-policies step after the text stage (the event loop runs other work
    between slices)."""
    lag_interval_s: float = 10.0
    """How often the consumer lag per input partition is measured."""
    instance: str = "worker"
    """This worker's name on ``warden.heartbeats`` (``<worker id>@<host>``: stable across restarts)."""
    heartbeat_s: float = 5.0
    """How often the worker publishes a heartbeat (``/healthz`` of the API judges its liveness by them)."""
