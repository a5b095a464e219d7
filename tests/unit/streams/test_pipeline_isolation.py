"""An exception in any stage dead-letters only the event it happened on; the batch goes on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from contracts.aggregates import AggregateDelta
from contracts.decision import Decision
from detectors.finding import Finding, Subject
from detectors.pii.detector import PiiConfig, PiiDetector, PiiResult
from policies import PolicyEngine, load_pack
from policies.routing import AggregateCollector
from streams.pipeline import PROCESSING_ERROR, Pipeline, PipelineConfig, RawItem
from tests.events import inference, raw

SECRET = "patricia.desrosiers@example.ch"


class _Policy:
    """The built-in pack, except that it fails (or returns an unserialisable decision) on chosen events."""

    def __init__(self, raise_on: str = "", garble: str = "") -> None:
        self.engine = PolicyEngine(load_pack())
        self.raise_on, self.garble = raise_on, garble

    def evaluate(self, finding: Finding, routed: AggregateCollector | None = None) -> list[Decision]:
        if finding.event_id == self.raise_on:
            raise KeyError(f"no route for {SECRET}")  # an exception whose text quotes the event
        out = self.engine.evaluate(finding, routed)
        if finding.event_id == self.garble:
            out = [d.model_copy(update={"summary": "broken \ud800 text"}) for d in out]
        return out

    def observe_event(self, subject: Subject, ts: datetime | float, routed: AggregateCollector | None = None) -> None:
        self.engine.observe_event(subject, ts, routed)

    def apply_delta(self, delta: AggregateDelta, state: list[Any] | None) -> tuple[list[Decision], list[Any] | None]:
        return self.engine.apply_delta(delta, state)


def _batch(ids: Sequence[str], **kw: Any) -> list[RawItem]:
    return [RawItem(raw(inference(e, status="error", **kw)), "warden.inference", 0, n) for n, e in enumerate(ids)]


def _config() -> PipelineConfig:
    return PipelineConfig(pii=None, drift=None, ops=None, fairness=None)


def _check_isolated(outs: list[Any], bad: str, stage: str, exc_type: str) -> None:
    for out in outs:
        if out.dead_letter is not None:
            assert out.dead_letter.event_id == bad
            assert out.dead_letter.code == PROCESSING_ERROR
            assert repr(stage) in out.dead_letter.reason and exc_type in out.dead_letter.reason
            assert SECRET not in out.dead_letter.reason
            assert out.findings == [] and out.decisions == [] and out.event is None
            assert [r.topic for r in out.records] == ["warden.dlq"]
            assert json.loads(out.records[0].value)["code"] == PROCESSING_ERROR
        else:
            assert out.event is not None and [f.kind for f in out.findings] == ["error_status"]
            assert {r.topic for r in out.records} == {"warden.findings", "warden.decisions"}
    assert sum(o.dead_letter is not None for o in outs) == 1


def test_a_policy_raising_on_one_event_dead_letters_that_event_only() -> None:
    pipe = Pipeline(_config(), policy=_Policy(raise_on="b"))
    _check_isolated(pipe.process_batch(_batch(["a", "b", "c"])), "b", "policies", "KeyError")


def test_a_detector_failing_on_one_event_dead_letters_that_event_only() -> None:
    pipe = Pipeline(_config())

    def loader(tenant: str, model: str) -> dict[str, Any] | None:  # a corrupt checkpoint of one model
        if model == "cursed":
            raise ValueError(f"bad checkpoint for {SECRET}")
        return None

    pipe.state_loader = loader
    items = _batch(["a"]) + [RawItem(raw(inference("b", status="error", model="cursed")), "warden.inference", 0, 1)]
    items += _batch(["c"])
    _check_isolated(pipe.process_batch(items), "b", "detectors", "ValueError")


def test_an_output_that_cannot_be_serialised_dead_letters_its_event_only() -> None:
    pipe = Pipeline(_config(), policy=_Policy(garble="b"))
    _check_isolated(pipe.process_batch(_batch(["a", "b", "c"])), "b", "serialisation", "PydanticSerializationError")


class _FlakyPii(PiiDetector):
    """The PII detector failing on one text (say, a tokenizer bug), as a batch and alone."""

    def analyze_batch(self, texts: Sequence[str]) -> list[PiiResult]:
        if any("explode" in t for t in texts):
            raise RuntimeError(f"tokenizer failed near {SECRET}")
        return super().analyze_batch(texts)


def test_a_batched_stage_failing_is_retried_per_event_and_only_the_culprit_is_dead_lettered() -> None:
    pipe = Pipeline(PipelineConfig(pii=PiiConfig(), drift=None, ops=None, fairness=None))
    pipe.pii = _FlakyPii(PiiConfig())
    items = _batch(["a"]) + [RawItem(raw(inference("b", status="error", messages=[
        {"role": "user", "content": "please explode"}])), "warden.inference", 0, 1)] + _batch(["c"])
    outs = pipe.process_batch(items)
    assert [o.dead_letter is not None for o in outs] == [False, True, False]
    assert "'pii'" in outs[1].dead_letter.reason and "RuntimeError" in outs[1].dead_letter.reason
    assert SECRET not in outs[1].dead_letter.reason
    assert all(any(f.kind == "error_status" for f in o.findings) for o in (outs[0], outs[2]))
