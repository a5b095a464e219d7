"""What a worker knows about every job from the topics: cancellations, latest statuses, leases (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from contracts.jobs import JobCommand, JobStatus


@dataclass
class JobBook:
    """Fed with every command of ``warden.jobs`` and every status of ``warden.job-status``."""

    cancels: dict[str, JobCommand] = field(default_factory=dict)
    submitted: set[str] = field(default_factory=set)
    latest: dict[str, JobStatus] = field(default_factory=dict)
    terminal: dict[str, JobStatus] = field(default_factory=dict)

    def observe_command(self, cmd: JobCommand) -> None:
        if cmd.op == "cancel":
            self.cancels.setdefault(cmd.job_id, cmd)
        elif cmd.job is not None:
            self.submitted.add(cmd.job_id)

    def open_jobs(self) -> dict[str, int]:
        """Jobs submitted and not finished, by state (``queued`` for those no worker has reported on yet)."""
        counts = dict.fromkeys(("queued", "awaiting_approval", "running"), 0)
        for job_id in self.submitted:
            if job_id in self.terminal:
                continue
            st = self.latest.get(job_id)
            state = st.state if st is not None and st.state in counts else "queued"
            counts[state] += 1
        return counts

    def observe_status(self, st: JobStatus) -> None:
        if st.terminal:
            self.terminal.setdefault(st.job_id, st)
        prev = self.latest.get(st.job_id)
        if prev is None or (st.attempt, st.seq) >= (prev.attempt, prev.seq):
            self.latest[st.job_id] = st

    def attempts(self, job_id: str) -> int:
        """The highest attempt number seen for the job (0: never started)."""
        st = self.latest.get(job_id)
        return st.attempt if st else 0

    def cancelled(self, job_id: str) -> bool:
        return job_id in self.cancels

    def lease_holder(self, job_id: str, me: str, lease_s: float, now: datetime | None = None) -> str | None:
        """Another worker that is running the job and reported within ``3 * lease_s``, or None."""
        st = self.latest.get(job_id)
        if st is None or st.state != "running" or st.worker in (None, me) or job_id in self.terminal:
            return None
        age = ((now or datetime.now(UTC)) - st.at).total_seconds()
        return st.worker if age < 3 * lease_s else None
