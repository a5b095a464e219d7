"""The API's input checks: ingest refusals are 4xx with a code and counted; unknown tenants and states."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.events import MINIMAL, inference, raw
from tests.integration.test_governance_harness import Gov, make_gov


@pytest.fixture
def gov(tmp_path: Path) -> Gov:
    g = make_gov(f"sqlite:///{tmp_path / 'warden.db'}")
    yield g
    g.engine.dispose()


def _count(gov: Gov, outcome: str) -> float:
    text = gov.client.get("/metrics").text
    m = re.search(rf'^warden_http_events_total{{outcome="{outcome}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.mark.parametrize(("body", "code"), [
    (b"[" * 100_000 + b"]" * 100_000, "too_deeply_nested"),
    (b'{"a": ' + b"9" * 5001 + b"}", "number_out_of_range"),
    (raw(MINIMAL).replace(b"Where is my order?", b"\\ud800"), "invalid_string"),
    (raw(MINIMAL).replace(b'"latency_ms": 850', b'"latency_ms": NaN'), "validation_error"),
    (raw(MINIMAL).replace(b'"latency_ms": 850', b'"latency_ms": 1e308'), "validation_error"),
])
def test_poison_bodies_get_a_4xx_with_their_code_and_are_counted(gov: Gov, body: bytes, code: str) -> None:
    before = _count(gov, code)
    r = gov.client.post("/v1/events", headers={**gov.as_("producer"), "Content-Type": "application/json"},
                        content=body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.json()["detail"]["error"] == code and r.json()["detail"]["detail"]
    assert _count(gov, code) == before + 1
    assert gov.producer.sent == []


def test_non_json_content_types_are_refused_with_415(gov: Gov) -> None:
    body = raw(inference("ct-1"))
    before = _count(gov, "unsupported_media_type")
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        r = gov.client.post("/v1/events", headers={**gov.as_("producer"), "Content-Type": ctype}, content=body)
        assert r.status_code == 415 and r.json()["detail"]["error"] == "unsupported_media_type", ctype
    assert _count(gov, "unsupported_media_type") == before + 3
    for ctype in ("application/json", "application/json; charset=utf-8", "application/cloudevents+json"):
        r = gov.client.post("/v1/events", headers={**gov.as_("producer"), "Content-Type": ctype}, content=body)
        assert r.status_code == 202, (ctype, r.text)
    assert len(gov.producer.sent) == 3


def test_a_broker_failure_is_a_503_and_counted(gov: Gov) -> None:
    gov.producer.fail = True
    before = _count(gov, "publish_failed")
    r = gov.client.post("/v1/events", headers=gov.as_("producer"), content=raw(inference("pf-1")))
    assert r.status_code == 503 and r.json()["detail"]["error"] == "publish_failed"
    assert _count(gov, "publish_failed") == before + 1


def test_compliance_report_of_an_unknown_tenant_is_a_404(gov: Gov) -> None:
    r = gov.client.get("/v1/reports/compliance/nobody-here", headers=gov.admin)
    assert r.status_code == 404 and r.json()["detail"]["error"] == "unknown_tenant"
    assert gov.client.get("/v1/reports/compliance/acme", headers=gov.admin).status_code == 200  # its keys are audited


def test_job_listing_refuses_an_unknown_state(gov: Gov) -> None:
    assert gov.client.get("/v1/jobs", params={"state": "garbage"}, headers=gov.admin).status_code == 422
    assert gov.client.get("/v1/jobs", params={"state": "queued"}, headers=gov.admin).status_code == 200


def test_silences_refuse_patterns_re2_cannot_match_in_linear_time(gov: Gov) -> None:
    body = {"tenant": "acme", "ends_at": "2099-01-01T00:00:00Z",
            "matchers": [{"name": "model", "value": r"(a)\1", "op": "=~"}]}
    r = gov.client.post("/v1/silences", headers=gov.admin, json=body)
    assert r.status_code == 422 and "RE2" in r.json()["detail"]["detail"]
    body["matchers"][0]["value"] = "(a+)+$"  # catastrophic for backtracking engines, linear for RE2
    assert gov.client.post("/v1/silences", headers=gov.admin, json=body).status_code == 201
