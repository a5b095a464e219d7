"""Pure rules of delivery: backoff with full jitter, Retry-After, outcome classes, request building
(PagerDuty one event each, webhooks one request per group)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from governance.alerting.delivery import payloads
from governance.alerting.delivery.destinations import load_destinations
from governance.alerting.delivery.dispatcher import backoff_delay, build_requests, classify, parse_retry_after
from governance.alerting.outbox import OutboxItem

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    rng = random.Random(3)
    for attempt, cap in [(1, 0.5), (2, 1.0), (4, 4.0), (20, 30.0)]:
        draws = [backoff_delay(attempt, base_s=0.5, max_s=30.0, rng=rng) for _ in range(400)]
        assert min(draws) >= 0 and max(draws) <= cap
        assert max(draws) > 0.8 * cap and min(draws) < 0.2 * cap  # spread over the whole range


def test_retry_after_and_outcome_classes() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("soon", NOW) is None and parse_retry_after(None, NOW) is None
    assert [classify(c) for c in (200, 202, 204, 429, 500, 503, None, 400, 401, 404, 408, 301)] == [
        "delivered", "delivered", "delivered", "retry", "retry", "retry", "retry",
        "failed", "failed", "failed", "failed", "failed"]


def _item(i: int, group: str | None, event: str = "trigger") -> OutboxItem:
    note = {"alert_id": f"a{i}", "dedup_key": f"k{i}", "tenant": "acme", "model": "bot", "policy_id": "p",
            "severity": "critical", "summary": f"s{i}", "event": event}
    return OutboxItem(i, f"d{i}", "x", f"a{i}", "acme", event, group, note, 1, NOW)


def test_requests_pagerduty_one_each_webhooks_one_per_group() -> None:
    dests = load_destinations({
        "pd": {"type": "pagerduty", "routing_key": "rk"},
        "hook": {"type": "webhook", "url": "https://h.test", "secret": "s", "group_by": ["model"]},
    })
    items = [_item(1, "g"), _item(2, "g"), _item(3, None, "resolve")]
    pd = build_requests(dests.get("pd"), items)  # type: ignore[arg-type]
    assert len(pd) == 3 and [payloads.pagerduty_event(i.payload, "rk") for i in items] == [
        __import__("json").loads(r.body) for r in pd]
    hooks = build_requests(dests.get("hook"), items, now=1_700_000_000)  # type: ignore[arg-type]
    assert [len(r.items) for r in hooks] == [2, 1]
    for r in hooks:
        assert payloads.verify_signature("s", r.body, r.headers[payloads.TIMESTAMP_HEADER],
                                         r.headers[payloads.SIGNATURE_HEADER], now=1_700_000_000)
    assert hooks[1].headers[payloads.DELIVERY_HEADER] == "d3" and hooks[1].headers[payloads.EVENT_HEADER] == "resolve"
