"""Per-model detector checkpoints: encoding, bookkeeping, and a pipeline that resumes its drift reference."""

from __future__ import annotations

import json
import zlib

import pytest

from bench.drift_eval import read_jsonl
from detectors.drift.monitor import DriftConfig
from streams.checkpoints import Checkpointer, decode_state, encode_state, state_key
from streams.pipeline import Pipeline, PipelineConfig, RawItem
from tests.events import inference, raw

DATA = "bench/data"
CONFIG = PipelineConfig(pii=None, ops=None, fairness=None,
                        drift=DriftConfig(reference_size=100, window_size=50, step=25, min_window=50))


def test_state_round_trips_compressed_and_garbage_is_refused() -> None:
    state = {"version": 1, "drift": {"3": {"phase": "monitoring", "rows": list(range(1000))}}}
    raw_state = encode_state(state)
    assert decode_state(raw_state) == state and len(raw_state) < len(str(state))
    for bad in (b"not zlib", zlib.compress(b"[1, 2]"), zlib.compress(b"\xff\xfe")):
        with pytest.raises(ValueError):
            decode_state(bad)
    assert state_key("acme", "bot") == b"acme/bot"


def test_checkpointer_writes_each_model_once_per_interval_and_forgets_moved_ones() -> None:
    c = Checkpointer(interval_s=10)
    c.seen("acme", "bot", 2, now=0.0)
    c.seen("acme", "chat", 3, now=0.0)
    assert c.due(5.0) == []  # not before an interval has passed
    assert sorted(c.due(10.0)) == [("acme", "bot", 2), ("acme", "chat", 3)]
    c.written("acme", "bot", 10.0)
    c.written("acme", "chat", 10.0)
    assert c.due(30.0) == []  # nothing new since
    c.seen("acme", "bot", 2, now=31.0)
    assert c.due(31.0) == [("acme", "bot", 2)]
    assert c.keep_only({2}) == [("acme", "chat")] and len(c) == 1


def _events(name: str, prefix: str, n: int) -> list[RawItem]:
    records = read_jsonl(f"{DATA}/drift_{name}.jsonl")[:n]
    out = []
    for i, r in enumerate(records):
        ev = inference(f"{prefix}-{i}", messages=[{"role": "user", "content": r["prompt"]}],
                       response={"content": r["response"], "finish_reason": "stop"})
        out.append(RawItem(raw(ev), "warden.inference", 0, i))
    return out


def _drift_found(pipe: Pipeline, items: list[RawItem]) -> bool:
    return any(f.kind == "distribution_drift" for o in pipe.process_batch(items) for f in o.findings)


def test_a_restarted_pipeline_resumes_the_pinned_reference_from_its_checkpoint() -> None:
    before = Pipeline(CONFIG)
    assert not _drift_found(before, _events("ref", "ref", 150))  # reference pinned from the first 100
    state = before.model_state("acme", "support-bot")
    assert state is not None and before.model_state("acme", "other") is None
    checkpoint = encode_state(state)

    verbose = _events("verbose", "v", 100)
    resumed = Pipeline(CONFIG)
    loads: list[tuple[str, str]] = []
    resumed.state_loader = lambda t, m: (loads.append((t, m)), decode_state(checkpoint))[1]
    assert _drift_found(resumed, verbose)  # judged against the reference pinned before the restart
    assert loads == [("acme", "support-bot")]  # loaded once, on first sight
    # without the checkpoint the same events become the new reference, and nothing is found
    assert not _drift_found(Pipeline(CONFIG), verbose)
    # a model moved away is forgotten, and loads its checkpoint again when it comes back
    resumed.forget_model("acme", "support-bot")
    assert resumed.model_state("acme", "support-bot") is None
    resumed.process_batch(_events("ref", "again", 1))
    assert loads == [("acme", "support-bot")] * 2


def test_a_checkpoint_also_carries_ops_windows_and_fairness_cohorts() -> None:
    config = PipelineConfig(pii=None, drift=DriftConfig(reference_size=100, window_size=50, step=25, min_window=50))
    before = Pipeline(config)
    items = [RawItem(raw({**inference(f"e{i}", user={"id": f"u{i}", "attributes": {"age_band": ["18-25", "65+"][i % 2]}}),
                          "occurred_at": f"2026-11-26T12:{i // 20:02d}:{(i * 3) % 60:02d}Z"}), "t", 0, i)
             for i in range(120)]
    before.process_batch(items)
    state = decode_state(encode_state(before.model_state("acme", "support-bot") or {}))
    assert {"drift", "ops", "fairness", "security"} <= set(state)
    after = Pipeline(config)
    assert after.restore_model_state("acme", "support-bot", state) == 4
    assert after.ops is not None and before.ops is not None and after.fairness is not None and before.fairness is not None
    assert after.ops.model_state("acme", "support-bot") == before.ops.model_state("acme", "support-bot")
    assert after.fairness.model_state("acme", "support-bot") == before.fairness.model_state("acme", "support-bot")
    after.forget_model("acme", "support-bot")
    assert after.model_state("acme", "support-bot") is None


def _training(event_id: str, version: str = "8", **body: object) -> RawItem:
    ev = {"schema_version": "1", "event_id": event_id, "type": "training", "occurred_at": "2026-11-26T10:00:00Z",
          "tenant": "acme", "model": {"name": "summarizer", "version": version}, "training": {"run_id": "r1", **body}}
    return RawItem(json.dumps(ev).encode(), "warden.training", 0, None)


def _kinds(pipe: Pipeline, items: list[RawItem]) -> list[tuple[str, str]]:
    return [(f.kind, f.finding_id) for o in pipe.process_batch(items) for f in o.findings]


def test_a_checkpoint_carries_training_runs_and_evaluation_baselines() -> None:
    config = PipelineConfig(pii=None, drift=None)
    before = Pipeline(config)
    deploy = {"schema_version": "1", "event_id": "dep-1", "type": "deployment", "occurred_at": "2026-11-26T09:00:00Z",
              "tenant": "acme", "model": {"name": "summarizer", "version": "7"}, "deployment": {"alias": "production"}}
    history = [RawItem(json.dumps(deploy).encode(), "warden.deployments", 0, None),
               _training("ev-7", version="7", phase="evaluation", metrics={"rougeL": 0.42}, eval_dataset="cnn",
                         split="test")]
    history += [_training(f"s{i}", phase="step", step=i, metrics={"loss": 2.0 - i * 0.01}) for i in range(50)]
    assert not any(k == "loss_divergence" for k, _ in _kinds(before, history))
    state = decode_state(encode_state(before.model_state("acme", "summarizer") or {}))
    assert {"training", "evaluation"} <= set(state)

    later = [_training(f"s{i}", phase="step", step=i, metrics={"loss": 9.0}) for i in range(50, 60)]
    later.append(_training("ev-8", phase="evaluation", metrics={"rougeL": 0.30}, eval_dataset="cnn", split="test"))
    expected = _kinds(before, later)  # the worker that never stopped
    assert {k for k, _ in expected} == {"loss_divergence", "eval_regression"}
    resumed = Pipeline(config)
    resumed.state_loader = lambda t, m: state if (t, m) == ("acme", "summarizer") else None
    assert _kinds(resumed, later) == expected  # same findings, same ids, after the restart
    # without the checkpoint the run restarts cold and there is no production baseline to compare with
    cold = {k for k, _ in _kinds(Pipeline(config), later)}
    assert "eval_regression" not in cold and "loss_divergence" not in cold
    resumed.forget_model("acme", "summarizer")
    assert resumed.model_state("acme", "summarizer") is None
    # a checkpoint written before the per-model state protocol (version 1) still restores
    legacy = {"version": 1, "training": state["training"]["runs"], "run_base": state["training"]["run_base"],
              "eval": state["evaluation"].get("eval"), "bbq": state["evaluation"].get("bbq")}
    old = Pipeline(config)
    old.state_loader = lambda t, m: legacy if (t, m) == ("acme", "summarizer") else None
    assert _kinds(old, later) == expected
