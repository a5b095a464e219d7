"""Jobs in the governance store: the request (with its approval) and every status a worker published.

Statuses are upserted by ``status_id`` (a re-delivered status changes nothing); the job row keeps
the latest state by ``(attempt, seq)``. Requests, approvals and terminal states are audited.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from contracts.jobs import TERMINAL_STATES, JobSpec, JobStatus
from governance import audit
from store.models import JobRow, JobStatusRow, assume_utc, utcnow
from store.repository import insert_new


def request_job(engine: Engine, job: JobSpec, actor: str) -> tuple[JobRow, bool]:
    """Store a job request (idempotent by job id); returns the row and whether it is new (then audited)."""
    with Session(engine, expire_on_commit=False) as session:
        existing = session.get(JobRow, job.job_id)
        if existing is not None:
            return existing, False
        row = JobRow(job_id=job.job_id, kind=job.kind, tenant=job.tenant, model=job.model, version=job.version,
                     state="queued" if job.approved else "awaiting_approval", approval=job.approval,
                     approved_by=job.approved_by, requested_by=job.requested_by, decision_id=job.decision_id,
                     spec=job.model_dump(mode="json"), created_at=job.created_at)
        session.add(row)
        audit.append(session, actor=actor, action="job.requested", target_type="job", target_id=job.job_id,
                     tenant=job.tenant, after={"kind": job.kind, "model": job.model, "approval": job.approval,
                                               "decision_id": job.decision_id, "reason": job.reason})
        session.commit()
        return row, True


def approve_job(engine: Engine, job_id: str, actor: str) -> JobSpec:
    """Mark a job approved (audited) and return the approved spec to publish. Raises LookupError/ValueError."""
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(JobRow, job_id)
        if row is None:
            raise LookupError(job_id)
        if row.state != "awaiting_approval":
            raise ValueError(f"job {job_id} is {row.state}, not awaiting approval")
        job = JobSpec.model_validate(row.spec).approve(actor)
        before = {"state": row.state}
        row.spec, row.approved_by, row.state, row.updated_at = job.model_dump(mode="json"), actor, "queued", utcnow()
        session.add(row)
        audit.append(session, actor=actor, action="job.approved", target_type="job", target_id=job_id,
                     tenant=row.tenant, before=before, after={"state": "queued", "approved_by": actor})
        session.commit()
        return job


def record_cancel_request(engine: Engine, job: JobRow, actor: str, reason: str | None) -> None:
    """Audit a person's request to cancel ``job`` (the workers later report ``cancelled``, audited too)."""
    with Session(engine) as session:
        audit.append(session, actor=actor, action="job.cancel_requested", target_type="job", target_id=job.job_id,
                     tenant=job.tenant, before={"state": job.state}, after={"reason": reason})
        session.commit()


def apply_statuses(session: Session, engine: Engine, statuses: Iterable[JobStatus]) -> int:
    """Upsert statuses inside the caller's transaction; advance each job to its latest one. Returns new count."""
    rows = [{"status_id": s.status_id, "job_id": s.job_id, "state": s.state, "attempt": s.attempt, "seq": s.seq,
             "progress": s.progress, "phase": s.phase, "message": s.message, "worker": s.worker, "error": s.error,
             "result": s.result, "at": s.at} for s in statuses]
    if not rows:
        return 0
    new = insert_new(session, engine, JobStatusRow, "status_id", rows)
    for s in sorted((s for s in statuses if s.status_id in new), key=lambda s: (s.attempt, s.seq)):
        job = session.get(JobRow, s.job_id)
        if job is None:  # a job requested by another path (e.g. a test publishing directly): record it
            job = JobRow(job_id=s.job_id, kind=s.kind, tenant=s.tenant, model=s.model, state=s.state,
                         approval="auto", requested_by="stream", spec={})
        if (s.attempt, s.seq) < (job.attempt, job.seq) or (job.state in TERMINAL_STATES and s.state not in TERMINAL_STATES):
            continue
        job.state, job.attempt, job.seq, job.progress = s.state, s.attempt, s.seq, s.progress
        job.message = s.error or s.message
        job.result = s.result or job.result
        job.updated_at = assume_utc(s.at) or utcnow()
        session.add(job)
        if s.state in TERMINAL_STATES:
            audit.append(session, actor=f"worker:{s.worker or 'unknown'}", action=f"job.{s.state}",
                         target_type="job", target_id=s.job_id, tenant=s.tenant,
                         after={"attempt": s.attempt, "result": s.result, "error": s.error})
    return len(new)


def job_history(engine: Engine, job_id: str) -> list[JobStatusRow]:
    """Every status of a job in order."""
    with Session(engine) as session:
        stmt = select(JobStatusRow).where(col(JobStatusRow.job_id) == job_id).order_by(
            col(JobStatusRow.attempt), col(JobStatusRow.seq), col(JobStatusRow.at))
        return list(session.execute(stmt).scalars())


def persist_statuses(engine: Engine, statuses: Iterable[JobStatus]) -> int:
    """:func:`apply_statuses` in a transaction of its own."""
    with Session(engine) as session:
        n = apply_statuses(session, engine, list(statuses))
        session.commit()
        return n
