"""What a job worker's metrics report: open jobs by state from the book, and outcomes and durations of attempts."""

from __future__ import annotations

from prometheus_client import REGISTRY

from contracts.jobs import JobCommand, JobSpec, JobStatus
from jobs.book import JobBook
from jobs.config import JobsConfig
from jobs.worker import JobWorker


def _job(job_id: str, kind: str = "retrain") -> JobSpec:
    return JobSpec(job_id=job_id, kind=kind, tenant="t", model="m")  # type: ignore[arg-type]


def test_open_jobs_by_state() -> None:
    book = JobBook()
    for j in ("a", "b", "c", "d"):
        book.observe_command(JobCommand(op="run", job_id=j, job=_job(j)))
    book.observe_command(JobCommand(op="cancel", job_id="a"))
    book.observe_status(JobStatus.of(_job("b"), "running", attempt=1))
    book.observe_status(JobStatus.of(_job("c"), "awaiting_approval"))
    book.observe_status(JobStatus.of(_job("d"), "running", attempt=1))
    book.observe_status(JobStatus.of(_job("d"), "succeeded", attempt=1, seq=1))
    assert book.open_jobs() == {"queued": 1, "awaiting_approval": 1, "running": 1}


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_attempt_outcomes_and_durations_are_counted() -> None:
    worker = JobWorker(JobsConfig(), lambda publish: None)  # type: ignore[arg-type, return-value]
    job = _job("m1", "evaluate")
    before = {o: _sample("warden_jobs_finished_total", kind="evaluate", outcome=o) for o in ("succeeded", "requeued")}
    count = _sample("warden_job_duration_seconds_count", kind="evaluate", outcome="succeeded")
    retries = _sample("warden_jobs_retries_total", kind="evaluate")
    worker._measure(job, "running", "m1/1", "starting")
    worker._measure(job, "running", "m1/1", "retrying")
    worker._measure(job, "succeeded", "m1/1", "done")
    worker._measure(job, "running", "m1/2", "starting")
    worker._measure(job, "queued", "m1/2", None)  # the worker stopped: back to the queue
    assert _sample("warden_jobs_finished_total", kind="evaluate", outcome="succeeded") == before["succeeded"] + 1
    assert _sample("warden_jobs_finished_total", kind="evaluate", outcome="requeued") == before["requeued"] + 1
    assert _sample("warden_job_duration_seconds_count", kind="evaluate", outcome="succeeded") == count + 1
    assert _sample("warden_jobs_retries_total", kind="evaluate") == retries + 1
    worker._measure(job, "awaiting_approval", "m1/0", None)  # not an attempt: nothing counted
    assert _sample("warden_jobs_finished_total", kind="evaluate", outcome="succeeded") == before["succeeded"] + 1
