"""Submitting and cancelling jobs: what the governance API (``POST /v1/jobs``, ``/approve``, ``/cancel``)
and tests publish. A submission publishes the job's first status (``queued``, or ``awaiting_approval``
when it needs an approval nobody gave yet) and, when it may run, the ``run`` command."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from contracts.jobs import JobCommand, JobSpec, JobState, JobStatus
from contracts.topics import JOB_STATUS, JOBS


async def submit(producer: AIOKafkaProducer, job: JobSpec) -> JobStatus:
    """Publish ``job`` (its status first); an unapproved job only gets ``awaiting_approval``.

    Approving later means submitting ``job.approve(actor)``: the same job id, now allowed to run.
    """
    state: JobState = "queued" if job.approved else "awaiting_approval"
    status = JobStatus.of(job, state, attempt=0, seq=0 if state == "awaiting_approval" else 1,
                          message=f"requested by {job.requested_by}")
    await producer.send_and_wait(JOB_STATUS, status.to_bytes(), key=status.key)
    if job.approved:
        cmd = JobCommand.run(job)
        await producer.send_and_wait(JOBS, cmd.to_bytes(), key=cmd.key)
    return status


async def cancel(producer: AIOKafkaProducer, job_id: str, actor: str, reason: str | None = None) -> None:
    """Ask the workers to cancel ``job_id`` (checked between steps; a queued job is cancelled on pick-up)."""
    cmd = JobCommand.cancel(job_id, actor, reason)
    await producer.send_and_wait(JOBS, cmd.to_bytes(), key=cmd.key)
