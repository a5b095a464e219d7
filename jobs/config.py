"""The job worker's configuration (the service maps its settings onto it; see ``jobs.runner``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class JobsConfig:
    """Everything a ``warden jobs`` worker needs to know."""

    bootstrap: str = "127.0.0.1:9092"
    group_id: str = "warden-jobs"
    """Kafka consumer group of the job workers (more workers = more GPUs)."""
    worker_id: str = "jobs"
    artifact_root: Path = Path(".warden/artifacts")
    registry_path: Path = Path(".warden/registry.json")
    """The shared-file registry used until the store's registry is bound."""
    history_path: Path | None = None
    """A JSON-lines dataset history used until the store's history source is bound."""
    session_timeout_s: float = 10.0
    lease_s: float = 5.0
    """A running job's status is re-published at least this often; a job whose last status is older
    than ``3 * lease_s`` is taken to be lost and is re-run (its attempt counter goes up)."""
    max_job_timeout_s: float = 6 * 3600.0
    """Upper bound on any job's ``timeout_s`` (also sizes the consumer's max poll interval)."""
    retry_backoff_s: float = 5.0
    progress_interval_s: float = 1.0
    torch_threads: int | None = None
    """torch intra-op threads on CPU (None: torch's default)."""
    device: str | None = None
    """``cuda``/``cpu``; None picks cuda when available."""
    catch_up_timeout_s: float = 15.0
    """How long a starting worker reads the job and status history before taking jobs."""
