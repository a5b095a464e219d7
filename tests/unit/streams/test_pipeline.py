"""The stream pipeline without Kafka: PII redaction, rule detector, policies, dead letters, stable ids."""

from __future__ import annotations

import json

import pytest

from detectors.finding import Severity
from detectors.rules import RuleConfig
from streams.pipeline import Pipeline, PipelineConfig, RawItem
from tests.events import BAD_INPUTS, inference, raw

PLANTED = {
    "email": "marguerite.oyelaran@example.org",
    "phone": "(415) 555-0134",
    "card": "4111 1111 1111 1111",
    "ssn": "536-22-8014",
    "name": "Marguerite Oyelaran",
}


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    p = Pipeline(PipelineConfig(rules=RuleConfig(latency_slo_ms=2000)))
    p.warm_up()
    return p


def test_healthy_call_yields_nothing(pipe: Pipeline) -> None:
    out = pipe.process(raw(inference("e1")), topic="warden.inference", partition=0, offset=1)
    assert out.event is not None and out.dead_letter is None
    assert out.findings == [] and out.decisions == []


def test_error_call_yields_a_finding_and_an_alert_decision(pipe: Pipeline) -> None:
    out = pipe.process(raw(inference("e2", status="error")), topic="warden.inference", partition=0, offset=2)
    assert [(f.detector, f.kind, f.severity) for f in out.findings] == [("rule", "error_status", Severity.high)]
    assert out.findings[0].event_id == "e2"
    alerts = [d for d in out.decisions if d.action.value == "alert"]
    assert len(alerts) == 1
    assert alerts[0].finding_ids == [out.findings[0].finding_id]
    assert alerts[0].policy_id == "rule-error-status" and alerts[0].policy_version >= 1
    assert alerts[0].dedup_key == "rule:acme:support-bot:error_status"


def test_latency_above_slo_is_medium_then_high(pipe: Pipeline) -> None:
    slow = pipe.process(raw(inference("e3", latency_ms=3000)), topic="t").findings
    very = pipe.process(raw(inference("e4", latency_ms=9000)), topic="t").findings
    assert [(f.kind, f.severity) for f in slow] == [("latency_slo", Severity.medium)]
    assert [(f.kind, f.severity) for f in very] == [("latency_slo", Severity.high)]
    assert pipe.process(raw(inference("e5", latency_ms=2000)), topic="t").findings == []


def test_reprocessing_gives_identical_ids() -> None:
    payload = raw(inference("e6", status="error", latency_ms=10_000))
    config = PipelineConfig(rules=RuleConfig(latency_slo_ms=2000), pii=None)
    a = Pipeline(config).process(payload, topic="t", partition=1, offset=7)
    b = Pipeline(config).process(payload, topic="t", partition=1, offset=9)
    assert [f.finding_id for f in a.findings] == [f.finding_id for f in b.findings]
    assert len({f.finding_id for f in a.findings}) == 2
    assert [d.decision_id for d in a.decisions] == [d.decision_id for d in b.decisions]


def test_every_bad_input_becomes_a_dead_letter_without_raising(pipe: Pipeline) -> None:
    items = [RawItem(payload, "warden.inference", 0, i) for i, (payload, _) in enumerate(BAD_INPUTS.values())]
    outs = pipe.process_batch(items)
    for i, (out, (_, code)) in enumerate(zip(outs, BAD_INPUTS.values())):
        assert out.dead_letter is not None and out.dead_letter.code == code
        assert out.dead_letter.offset == i and out.findings == []


def test_pii_is_redacted_before_any_later_stage(pipe: Pipeline) -> None:
    text = (f"Hi, I'm {PLANTED['name']}; mail me at {PLANTED['email']} or call {PLANTED['phone']}. "
            f"My card is {PLANTED['card']} and SSN {PLANTED['ssn']}.")
    ev = inference("e7", status="error", messages=[{"role": "user", "content": text}],
                   response={"content": f"Thanks {PLANTED['name']}, I have noted {PLANTED['email']}.",
                             "finish_reason": "stop"})
    out = pipe.process(raw(ev), topic="warden.inference", partition=0, offset=70)
    pii = [f for f in out.findings if f.detector == "pii"]
    assert len(pii) == 1
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "PERSON"} <= set(pii[0].evidence["entity_types"])
    assert pii[0].severity == Severity.high
    redacted = out.event.inference
    assert "<EMAIL_ADDRESS>" in redacted.messages[0].text and "<CREDIT_CARD>" in redacted.messages[0].text
    emitted = json.dumps([out.event.model_dump(mode="json")] + [f.model_dump(mode="json") for f in out.findings]
                         + [d.model_dump(mode="json") for d in out.decisions])
    for kind, value in PLANTED.items():
        assert value not in emitted, kind
    assert any(d.policy_id.startswith("pii-") for d in out.decisions)


def _training(event_id: str, **body: object) -> bytes:
    ev = {"schema_version": "1", "event_id": event_id, "type": "training", "occurred_at": "2026-11-26T12:00:00Z",
          "tenant": "acme", "model": {"name": "summarizer", "version": "8"}, "training": {"run_id": "r1", **body}}
    return json.dumps(ev).encode()


def test_training_events_flag_divergence_regressions_and_pii(pipe: Pipeline) -> None:
    findings = []
    for step in range(60):
        loss = 2.0 - step * 0.01 if step < 50 else 9.0
        findings += pipe.process(_training(f"s{step}", phase="step", step=step, metrics={"loss": loss}),
                                 topic="warden.training").findings
    divergence = [f for f in findings if f.kind == "loss_divergence"]
    assert divergence and divergence[0].detector == "training"
    deploy = {"schema_version": "1", "event_id": "dep-1", "type": "deployment", "occurred_at": "2026-11-26T11:00:00Z",
              "tenant": "acme", "model": {"name": "summarizer", "version": "7"}, "deployment": {"alias": "production"}}
    assert pipe.process(json.dumps(deploy).encode(), topic="warden.deployments").findings == []
    prod = _training("ev-7", phase="evaluation", metrics={"rougeL": 0.42}, eval_dataset="cnn", split="test")
    prod = prod.replace(b'"version": "8"', b'"version": "7"')
    pipe.process(prod, topic="warden.training")
    worse = pipe.process(_training("ev-8", phase="evaluation", metrics={"rougeL": 0.30}, eval_dataset="cnn",
                                   split="test"), topic="warden.training").findings
    assert [f.kind for f in worse] == ["eval_regression"]
    sample = pipe.process(_training("ds-1", phase="data_sample",
                                    items=[{"text": f"Contact {PLANTED['email']} about the invoice"}]),
                          topic="warden.training")
    assert [f.kind for f in sample.findings] == ["pii_in_training_data"]
    assert PLANTED["email"] not in sample.findings[0].model_dump_json()


def test_drift_is_flagged_when_responses_get_verbose() -> None:
    from detectors.drift.monitor import DriftConfig

    p = Pipeline(PipelineConfig(pii=None, drift=DriftConfig(reference_size=200, window_size=100, step=50)))
    import random

    rng = random.Random(7)

    def ev(i: int, words: int) -> bytes:
        answer = " ".join(rng.choice(["the", "order", "ships", "soon", "refund", "policy", "thanks"])
                          for _ in range(words))
        return raw(inference(f"dr-{i}", response={"content": answer, "finish_reason": "stop"},
                             usage={"input_tokens": 12, "output_tokens": words}))

    quiet = [f for i in range(400) for f in p.process(ev(i, rng.randint(20, 40)), topic="t").findings
             if f.detector == "drift"]
    assert quiet == [], "same-distribution traffic must not alarm"
    loud = [f for i in range(400, 700) for f in p.process(ev(i, rng.randint(120, 200)), topic="t").findings
            if f.detector == "drift" and f.kind == "distribution_drift"]
    assert loud, "a 5x verbosity change must be flagged within 300 events"
    assert loud[0].subject.model == "support-bot" and loud[0].subject.version == "3"


def test_findings_carry_the_users_keyed_hash_the_store_erases_by() -> None:
    from governance.retention import user_hash

    p = Pipeline(PipelineConfig(pii=None, user_key="k3y"))
    out = p.process(raw(inference("uh-1", status="error")), topic="t")
    assert out.findings and all(f.evidence["user_hash"] == user_hash("k3y", "u-1") for f in out.findings)
    assert "u-1" not in json.dumps([f.model_dump(mode="json") for f in out.findings])
    assert "user_hash" not in Pipeline(PipelineConfig(pii=None)).process(
        raw(inference("uh-2", status="error")), topic="t").findings[0].evidence


def test_embeddings_are_sampled_by_event_id_and_topic_shift_is_still_caught() -> None:
    from detectors.drift.monitor import DriftConfig
    from detectors.features.embeddings import EmbedderConfig
    from streams.pipeline import _sampled

    picked = [i for i in range(4000) if _sampled(f"ev-{i}", 0.5)]
    assert 1900 < len(picked) < 2100 and picked == [i for i in range(4000) if _sampled(f"ev-{i}", 0.5)]
    p = Pipeline(PipelineConfig(pii=None, fairness=None, ops=None, embeddings=EmbedderConfig.fast_cpu(),
                                embedding_fraction=0.5,
                                drift=DriftConfig(reference_size=200, window_size=200, step=100)))
    import random

    rng = random.Random(3)
    billing = ["Why was I charged twice this month?", "How do I update my credit card?", "Can I get an invoice?",
               "My refund has not arrived yet.", "Which plan includes priority support?"]
    cooking = ["How long should I roast a chicken?", "What can I use instead of buttermilk?",
               "How do I keep pasta from sticking?", "Is it safe to refreeze thawed shrimp?",
               "What spices go well with lentils?"]

    def ev(i: int, pool: list[str]) -> bytes:
        q = rng.choice(pool)  # same lengths and shapes, only the topic changes
        return raw(inference(f"ts-{i}", messages=[{"role": "user", "content": q}],
                             response={"content": "Here is what I found about that.", "finish_reason": "stop"}))

    quiet = [f for i in range(400) for f in p.process(ev(i, billing), topic="t").findings if f.detector == "drift"]
    assert quiet == []
    shifted = [f for i in range(400, 700) for f in p.process(ev(i, cooking), topic="t").findings
               if f.kind == "distribution_drift"]
    assert any("prompt_embedding" in f.evidence["drifted"] for f in shifted), \
        [{k: v["p_value"] for k, v in f.evidence["features"].items() if "embedding" in k} for f in shifted]
