"""Retrain → evaluate → register with the tiny GPT-2 on CPU (the whole file stays well under 60 s)."""

import json
import math
import time

import pytest

torch = pytest.importorskip("torch")

from contracts.events import dump_event  # noqa: E402
from contracts.jobs import DatasetSpec, GateRule, JobSpec, TrainSpec  # noqa: E402
from jobs.artifacts import ArtifactStore  # noqa: E402
from jobs.datasets import ListHistory  # noqa: E402
from jobs.evaluate import gate  # noqa: E402
from jobs.executor import JobCancelled, JobContext, JobExecutor, JobRejected  # noqa: E402
from jobs.registry_port import InMemoryRegistry  # noqa: E402
from jobs.synthetic import LABELS, support_history  # noqa: E402
from streams.codec import decode_event  # noqa: E402

CLS = TrainSpec(task="classification", base="tiny", epochs=4, batch_size=32, learning_rate=3e-3, max_length=32)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def env(tmp_path):
    reg, events = InMemoryRegistry(), []
    ex = JobExecutor(registry=reg, artifacts=ArtifactStore(tmp_path / "artifacts"),
                     history=ListHistory(support_history(400, style="old", seed=0)), publish_deployment=events.append)
    return ex, reg, events


def _job(job_id, **kw):
    return JobSpec(job_id=job_id, kind="retrain", tenant="acme", model="support-bot", **kw)


def test_tiny_classifier_retrain_evaluate_register_and_challenge(env):
    ex, reg, events = env
    t0 = time.perf_counter()
    phases = []
    first = ex.run(_job("j1", train=CLS, promote="auto"), JobContext(report=lambda p, ph, m: phases.append((p, ph))))
    elapsed = time.perf_counter() - t0
    assert elapsed < 60, f"tiny retrain took {elapsed:.1f}s"
    assert [ph for _, ph in phases][0] == "dataset" and "train" in {ph for _, ph in phases}
    assert [p for p, _ in phases] == sorted(p for p, _ in phases)  # progress only goes up
    assert first["candidate_version"] == "v1" and first["promoted"] and first["champion"] is None
    assert first["challenger"]["accuracy"] > 2 / len(LABELS)  # clearly above chance (1/8)
    assert first["train"]["device"] == "cpu" and first["train"]["samples_per_s"] > 0
    v1 = reg.get_version("acme", "support-bot", "v1")
    assert reg.alias_version("acme", "support-bot") == "v1"
    assert v1.dataset_version == first["dataset"]["version"] and v1.metrics["accuracy"] == first["challenger"]["accuracy"]
    assert ex.artifacts.open_uri(v1.artifact_uri).joinpath("warden_model.json").exists()
    assert len(events) == 1 and decode_event(dump_event(events[0]), 1 << 20).deployment.action == "promote"

    # champion/challenger: fine-tune production (v1) further; the gate decides with the job's metrics
    rules = [GateRule(metric="accuracy", direction="higher", min_delta=0.0)]
    second = ex.run(_job("j2", train=CLS.model_copy(update={"base": "production", "epochs": 2, "learning_rate": 1e-3}),
                         gate=rules, promote="approval"), JobContext())
    assert second["champion"]["version"] == "v1"
    # the champion is re-measured on the same held-out split, so its figure matches v1's registration
    assert second["champion"]["metrics"]["accuracy"] == pytest.approx(first["challenger"]["accuracy"])
    expected = gate(second["champion"]["metrics"], second["challenger"], rules)
    assert second["gate"]["passed"] == expected.passed
    v2 = reg.get_version("acme", "support-bot", second["candidate_version"])
    assert v2.parent_version == "v1" and not second["promoted"]
    assert second["awaiting_promotion_approval"] == expected.passed
    assert reg.alias_version("acme", "support-bot") == "v1"  # approval pending: production unchanged
    # promotion after approval, then rollback to v1
    ex.run(JobSpec(job_id="p", kind="promote", tenant="acme", model="support-bot", version=v2.version,
                   approval="required", approved_by="op@acme"), JobContext())
    assert reg.alias_version("acme", "support-bot") == v2.version
    rb = ex.run(JobSpec(job_id="rb", kind="rollback", tenant="acme", model="support-bot"), JobContext())
    assert rb["version"] == "v1" and reg.alias_version("acme", "support-bot") == "v1"
    assert [e.deployment.action for e in events] == ["promote", "promote", "rollback"]


def test_tiny_causal_lm_sft_learns_the_responses(env):
    ex, reg, _ = env
    spec = TrainSpec(task="causal_lm", base="tiny", epochs=10, batch_size=32, learning_rate=5e-3, max_length=48,
                     checkpoint_every=20)
    res = ex.run(_job("lm", train=spec, promote="auto", dataset=DatasetSpec(max_rows=240)), JobContext())
    folder = ex.artifacts.open_uri(reg.get_version("acme", "support-bot", "v1").artifact_uri)
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    # an untrained model scores about ln(V); the replies are a few templates, so SFT must get far below
    assert res["challenger"]["eval_loss"] < 0.5 * math.log(vocab)
    assert res["gate"]["passed"] and reg.get_version("acme", "support-bot", "v1").task == "causal_lm"
    assert len(res["checkpoints"]) >= 1
    for uri in res["checkpoints"]:
        assert ex.artifacts.open_uri(uri).joinpath("config.json").exists()


def test_cancellation_between_steps_stops_the_job_and_registers_nothing(env):
    ex, reg, _ = env
    calls = {"n": 0}

    def check():
        calls["n"] += 1
        if calls["n"] > 5:
            raise JobCancelled("cancelled by test")

    with pytest.raises(JobCancelled):
        ex.run(_job("c", train=CLS.model_copy(update={"epochs": 50})), JobContext(check=check))
    assert reg.versions("acme", "support-bot") == []


def test_rejections_are_clear(env):
    ex, _, _ = env
    with pytest.raises(JobRejected, match="no production version"):
        ex.run(_job("r1", train=TrainSpec(base="production")), JobContext())
    with pytest.raises(JobRejected, match="rows"):
        ex.run(_job("r2", train=CLS, dataset=DatasetSpec(labels=["nope"])), JobContext())
    with pytest.raises(JobRejected, match="roll back"):
        ex.run(JobSpec(job_id="r3", kind="rollback", tenant="acme", model="support-bot"), JobContext())


def test_a_rerun_job_resumes_from_its_latest_checkpoint(env):
    ex, reg, _ = env
    job = _job("resume", train=CLS.model_copy(update={"epochs": 2, "checkpoint_every": 5}))
    calls = {"n": 0}

    def dies_at_step_12():
        calls["n"] += 1
        if calls["n"] == 13:  # the worker dies during step 13: checkpoints at steps 5 and 10 exist
            raise JobCancelled("worker lost")

    with pytest.raises(JobCancelled):
        ex.run(job, JobContext(check=dies_at_step_12))
    assert [m["step"] for _, m in ex.artifacts.find("checkpoint", job_id="resume")] in ([5, 10], [10, 5])
    res = ex.run(job, JobContext())
    assert res["train"]["resumed_from"] == 10
    total = res["train"]["steps"]
    assert res["train"]["samples"] <= (total - 10) * CLS.batch_size  # only the steps after 10 were trained
    assert res["challenger"]["accuracy"] > 2 / len(LABELS)
    assert reg.get_version("acme", "support-bot", res["candidate_version"]).job_id == "resume"
