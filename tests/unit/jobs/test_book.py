from datetime import UTC, datetime, timedelta

from contracts.jobs import JobCommand, JobSpec, JobStatus
from jobs.book import JobBook

JOB = JobSpec(job_id="j", kind="retrain", tenant="t", model="m")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_lease_of_a_live_other_worker_only():
    book = JobBook()
    assert book.lease_holder("j", "me", 5) is None
    book.observe_status(JobStatus.of(JOB, "running", attempt=1, seq=3, worker="w1", at=NOW))
    assert book.lease_holder("j", "me", 5, now=NOW + timedelta(seconds=10)) == "w1"
    assert book.lease_holder("j", "w1", 5, now=NOW) is None
    assert book.lease_holder("j", "me", 5, now=NOW + timedelta(seconds=16)) is None  # w1 is presumed dead
    assert book.attempts("j") == 1


def test_latest_status_by_attempt_and_seq_and_terminal_wins():
    book = JobBook()
    book.observe_status(JobStatus.of(JOB, "running", attempt=2, seq=0, worker="w2", at=NOW))
    book.observe_status(JobStatus.of(JOB, "running", attempt=1, seq=9, worker="w1", at=NOW))  # late, older attempt
    assert book.latest["j"].worker == "w2" and book.attempts("j") == 2
    book.observe_status(JobStatus.of(JOB, "succeeded", attempt=2, seq=1, worker="w2", at=NOW))
    assert book.terminal["j"].state == "succeeded"
    assert book.lease_holder("j", "me", 5, now=NOW) is None


def test_cancels_are_remembered():
    book = JobBook()
    book.observe_command(JobCommand.run(JOB))
    assert not book.cancelled("j")
    book.observe_command(JobCommand.cancel("j", "admin", "wrong data"))
    assert book.cancelled("j") and book.cancels["j"].reason == "wrong data"
