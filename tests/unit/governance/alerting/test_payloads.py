"""PagerDuty Events v2, Slack and signed-webhook bodies; severity mapping; signature checks."""

from __future__ import annotations

import json

import pytest

from governance.alerting.delivery import payloads

NOTE = {"alert_id": "a-1", "dedup_key": "rule:acme:bot:err", "tenant": "acme", "model": "bot", "policy_id": "rule-x",
        "severity": "high", "summary": "5 failed calls", "status": "triggered", "count": 3, "episode": 1,
        "labels": {"team": "ml"}, "first_seen": "2026-01-01T00:00:00+00:00", "last_seen": "2026-01-01T00:05:00+00:00",
        "event": "trigger"}


@pytest.mark.parametrize("ours,theirs", [("info", "info"), ("low", "warning"), ("medium", "warning"),
                                         ("high", "error"), ("critical", "critical")])
def test_pagerduty_severity_mapping(ours: str, theirs: str) -> None:
    assert payloads.pagerduty_severity(ours) == theirs
    assert payloads.pagerduty_event({**NOTE, "severity": ours}, "rk")["payload"]["severity"] == theirs


def test_pagerduty_trigger_has_the_v2_shape() -> None:
    body = payloads.pagerduty_event(NOTE, "rk-123", url_template="https://w.test/alerts/{alert_id}?t={tenant}")
    assert body["routing_key"] == "rk-123" and body["event_action"] == "trigger" and body["dedup_key"] == "a-1"
    p = body["payload"]
    assert (p["summary"], p["source"], p["component"], p["group"], p["class"]) == (
        "5 failed calls", "warden/acme/bot", "bot", "acme", "rule-x")
    assert p["timestamp"] == NOTE["last_seen"]
    assert p["custom_details"]["dedup_key"] == NOTE["dedup_key"] and p["custom_details"]["labels"] == {"team": "ml"}
    assert body["links"] == [{"href": "https://w.test/alerts/a-1?t=acme", "text": "Open in Warden"}]
    assert len(payloads.pagerduty_event({**NOTE, "summary": "x" * 5000}, "rk")["payload"]["summary"]) == 1024


@pytest.mark.parametrize("event", ["acknowledge", "resolve"])
def test_pagerduty_acknowledge_and_resolve_carry_only_the_key(event: str) -> None:
    assert payloads.pagerduty_event({**NOTE, "event": event}, "rk") == {
        "routing_key": "rk", "event_action": event, "dedup_key": "a-1"}


def test_slack_message_lists_each_notification() -> None:
    one = payloads.slack_message([NOTE])
    assert "FIRING" in one["text"] and "5 failed calls" in one["text"] and one["blocks"][0]["type"] == "section"
    two = payloads.slack_message([NOTE, {**NOTE, "event": "resolve", "actor": "ops", "summary": "other"}])
    assert two["text"] == "Warden: 2 alert notifications"
    assert "resolved by ops" in two["blocks"][0]["text"]["text"]


def test_signature_verifies_and_refuses_tampering_staleness_and_wrong_secret() -> None:
    body = payloads.encode(payloads.webhook_body([NOTE], "d-1"))
    assert json.loads(body)["alerts"][0]["alert_id"] == "a-1"
    h = payloads.signed_headers("s3cret", body, now=1_700_000_000)
    ts, sig = h[payloads.TIMESTAMP_HEADER], h[payloads.SIGNATURE_HEADER]
    assert ts == "1700000000" and sig.startswith("v1=") and len(sig) == 67
    ok = payloads.verify_signature
    assert ok("s3cret", body, ts, sig, now=1_700_000_100)
    assert ok(["old", "s3cret"], body, ts, sig, now=1_700_000_100)  # rotation
    assert not ok("wrong", body, ts, sig, now=1_700_000_100)
    assert not ok("s3cret", body + b" ", ts, sig, now=1_700_000_100)
    assert not ok("s3cret", body, str(int(ts) + 1), sig, now=1_700_000_100)  # the timestamp is signed too
    assert not ok("s3cret", body, ts, sig, now=1_700_000_000 + 301)  # stale
    assert not ok("s3cret", body, None, sig) and not ok("s3cret", body, "abc", sig, now=0)
    assert ok("s3cret", body, ts, "v0=zz, " + sig, now=1_700_000_000)
