"""Training/serving skew: a run's data sample, pinned as a drift reference, against production traffic
of its base version (the same DriftMonitor and false-alarm budget as production drift)."""

from __future__ import annotations

import json
import random

from detectors.drift.monitor import DriftConfig
from detectors.training.skew import sample_texts
from streams.pipeline import Pipeline, PipelineConfig
from tests.events import inference, raw

WORDS = ["the", "order", "ships", "soon", "refund", "policy", "thanks"]
PROMPT = "Where is my order?"  # the prompt of tests.events.inference


def _answer(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def _pipe() -> Pipeline:
    return Pipeline(PipelineConfig(pii=None, ops=None, fairness=None,
                                   drift=DriftConfig(reference_size=200, window_size=100, step=50)))


def _traffic(p: Pipeline, rng: random.Random, start: int, n: int, lo: int, hi: int) -> list:  # type: ignore[type-arg]
    out = []
    for i in range(start, start + n):
        ev = inference(f"inf-{i}", response={"content": _answer(rng, lo, hi), "finish_reason": "stop"})
        out += p.process(raw(ev), topic="warden.inference").findings
    return out


def _sample(run_id: str, rng: random.Random, lo: int, hi: int, n: int = 120, base: str | None = "3") -> bytes:
    items = [{"messages": [{"role": "user", "content": PROMPT},
                           {"role": "assistant", "content": _answer(rng, lo, hi)}]} for _ in range(n)]
    training = {"run_id": run_id, "phase": "data_sample", "items": items}
    if base:
        training["base_version"] = base
    return json.dumps({"schema_version": "1", "event_id": f"ds-{run_id}", "type": "training",
                       "occurred_at": "2026-11-26T12:00:00Z", "tenant": "acme",
                       "model": {"name": "support-bot", "version": "4"}, "training": training}).encode()


def _deploy_version_3(p: Pipeline) -> None:
    """Version 3 of the model becomes production."""
    p.process(raw({"schema_version": "1", "event_id": "dep", "type": "deployment", "occurred_at": "2026-11-26T11:00:00Z",
                   "tenant": "acme", "model": {"name": "support-bot", "version": "3"},
                   "deployment": {"alias": "production"}}), topic="warden.deployments")


def _skew(findings) -> list:  # type: ignore[no-untyped-def]
    return [f for f in findings if f.kind == "training_serving_skew"]


def test_a_sample_unlike_production_is_reported_and_a_like_one_is_not() -> None:
    rng = random.Random(11)
    p = _pipe()
    assert [f for f in _traffic(p, rng, 0, 320, 20, 40) if f.detector == "drift"] == []
    assert _skew(p.process(_sample("healthy", rng, 20, 40), topic="warden.training").findings) == []
    (f,) = _skew(p.process(_sample("verbose", rng, 120, 200), topic="warden.training").findings)
    assert f.detector == "training" and f.subject.version == "3"  # the base version's traffic
    assert f.evidence["run_id"] == "verbose" and f.evidence["reference_source"] == "training_sample:verbose"
    assert "response_words" in f.evidence["drifted"]
    assert "prompt_chars" not in f.evidence["drifted"]  # same prompts on both sides
    assert not {"latency_ms", "cost_usd", "finish_reason"} & set(f.evidence["features"])  # not in training rows
    assert p.skew is not None and p.skew.waiting() == []  # answered at once, nothing left waiting


def test_a_sample_before_production_traffic_waits_for_the_next_window() -> None:
    rng = random.Random(5)
    p = _pipe()
    _deploy_version_3(p)
    # no base_version in the sample: the production version of the model stands in
    assert p.process(_sample("early", rng, 120, 200, base=None), topic="warden.training").findings == []
    assert p.skew is not None and p.skew.waiting() == [("acme", "support-bot", "3")]
    found = _skew(_traffic(p, rng, 0, 100, 20, 40))
    assert [f.evidence["run_id"] for f in found] == ["early"]
    assert p.skew is not None and p.skew.waiting() == []  # one verdict per sample


def test_the_base_version_comes_from_the_runs_start_event() -> None:
    rng = random.Random(9)
    p = _pipe()
    _traffic(p, rng, 0, 320, 20, 40)
    start = json.dumps({"schema_version": "1", "event_id": "st", "type": "training", "occurred_at": "2026-11-26T11:00:00Z",
                        "tenant": "acme", "model": {"name": "support-bot", "version": "4"},
                        "training": {"run_id": "named", "phase": "run_started", "base_version": "3"}}).encode()
    p.process(start, topic="warden.training")
    (f,) = _skew(p.process(_sample("named", rng, 120, 200, base=None), topic="warden.training").findings)
    assert f.subject.version == "3" and f.evidence["run_id"] == "named"


def test_small_or_unsplittable_samples_are_not_compared() -> None:
    rng = random.Random(3)
    p = _pipe()
    _traffic(p, rng, 0, 320, 20, 40)
    assert p.process(_sample("tiny", rng, 120, 200, n=10), topic="warden.training").findings == []
    assert p.skew is not None and p.skew.waiting() == []
    assert sample_texts({"text": "a bare document"}) is None
    assert sample_texts({"prompt": "q", "completion": "a"}) == ("q", "a")
    assert sample_texts({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                                      {"role": "assistant", "content": "a"}]}) == ("s\nq", "a")


def test_a_waiting_sample_survives_a_restart_through_the_models_checkpoint() -> None:
    from streams.checkpoints import decode_state, encode_state

    rng = random.Random(5)
    p = _pipe()
    _deploy_version_3(p)
    p.process(_sample("early", rng, 120, 200, base=None), topic="warden.training")
    state = decode_state(encode_state(p.model_state("acme", "support-bot") or {}))
    assert len(state["skew"]) == 1 and state["evaluation"]["eval"]["production"] == "3"
    resumed = _pipe()
    resumed.state_loader = lambda t, m: state
    found = _skew(_traffic(resumed, rng, 0, 100, 20, 40))
    assert [f.evidence["run_id"] for f in found] == ["early"]  # the verdict still comes, after the restart
    assert resumed.skew is not None and resumed.skew.waiting() == []
    assert _skew(_traffic(_pipe(), rng, 100, 100, 20, 40)) == []  # a cold worker knew of no waiting sample
