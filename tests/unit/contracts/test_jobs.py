import pytest
from pydantic import ValidationError

from contracts.decision import Decision, DecisionAction, JobRequest
from contracts.jobs import JobCommand, JobSpec, JobStatus, TrainSpec
from detectors.finding import Severity, Subject


def _decision(approval: str = "required", **params) -> Decision:
    return Decision(decision_id="d-1", policy_id="drift-retrain", policy_version=3, action=DecisionAction.job,
                    subject=Subject(tenant="acme", model="bot", version="v1"), severity=Severity.high,
                    summary="embedding drift on bot", job=JobRequest(kind="retrain", approval=approval, params=params))


def test_job_id_is_idempotent_per_request_key():
    a = JobSpec.make_id("acme", "bot", "retrain", "key-1")
    assert a == JobSpec.make_id("acme", "bot", "retrain", "key-1")
    assert a != JobSpec.make_id("acme", "bot", "retrain", "key-2")
    assert a != JobSpec.make_id("acme", "bot", "rollback", "key-1")


def test_job_from_decision_carries_approval_params_and_stable_id():
    d = _decision(train={"task": "causal_lm", "epochs": 2}, promote="auto")
    job = JobSpec.from_decision(d)
    assert job.job_id == JobSpec.from_decision(d).job_id
    assert job.kind == "retrain" and job.tenant == "acme" and job.model == "bot"
    assert job.train.task == "causal_lm" and job.train.epochs == 2 and job.promote == "auto"
    assert job.decision_id == "d-1" and job.requested_by == "policy:drift-retrain@3"
    # required approval blocks the job until someone approves it
    assert not job.approved
    approved = job.approve("op@acme")
    assert approved.approved and approved.approved_by == "op@acme" and approved.job_id == job.job_id
    assert JobSpec.from_decision(_decision("auto")).approved


def test_default_gate_follows_the_task():
    assert [r.metric for r in JobSpec(job_id="j", kind="retrain", tenant="t", model="m").gate] == ["accuracy", "macro_f1"]
    lm = JobSpec(job_id="j", kind="retrain", tenant="t", model="m", train=TrainSpec(task="causal_lm"))
    assert [(r.metric, r.direction) for r in lm.gate] == [("eval_loss", "lower")]


def test_run_command_must_carry_its_job_and_round_trips():
    job = JobSpec(job_id="j-1", kind="rollback", tenant="t", model="m")
    cmd = JobCommand.run(job)
    back = JobCommand.model_validate_json(cmd.to_bytes())
    assert back.job == job and back.key == b"j-1"
    with pytest.raises(ValidationError):
        JobCommand(op="run", job_id="other", job=job)
    with pytest.raises(ValidationError):
        JobCommand(op="run", job_id="j-1")
    assert JobCommand.cancel("j-1", "admin").job is None


def test_status_ids_are_stable_per_attempt_and_sequence():
    job = JobSpec(job_id="j-1", kind="retrain", tenant="t", model="m")
    a = JobStatus.of(job, "running", attempt=1, seq=2, progress=0.5)
    assert a.status_id == JobStatus.of(job, "running", attempt=1, seq=2, progress=0.7).status_id
    assert a.status_id != JobStatus.of(job, "running", attempt=2, seq=2).status_id
    assert not a.terminal and JobStatus.of(job, "cancelled").terminal
    back = JobStatus.model_validate_json(a.to_bytes())
    assert back.progress == 0.5 and back.at.tzinfo is not None
