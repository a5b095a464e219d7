"""Alert lifecycle and delivery against real local HTTP receivers, on SQLite and PostgreSQL.

The receivers are ``http.server`` servers in threads on free ports: one is down for a while (its port
is closed, then opened), one is slow (sleeps past the client's timeout at first, and like a real
server drops a request whose client has gone), one answers 429 with ``Retry-After``, one answers
400, and one stands in for PagerDuty's Events API v2. Each receiver counts what it *processed*;
the tests assert nothing is lost and nothing is processed twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.routes import alert_lifecycle
from contracts.decision import Decision, DecisionAction
from detectors.finding import Subject, stable_id
from governance import alerting
from governance.alerting import AlertingConfig
from governance.alerting.delivery import payloads
from governance.alerting.delivery.destinations import Destinations, parse_destinations
from governance.alerting.delivery.dispatcher import Dispatcher, DispatcherConfig
from governance.alerting.outbox import outbox_counts
from governance.ingest import touch_alerts
from governance.keys import create_key
from store.db import init_db, make_engine
from store.models import AlertRow, DeliveryLogRow, OutboxRow, ensure_alerting_tables
from warden.settings import Settings

pytestmark = pytest.mark.postgres
SECRET = "webhook-secret-for-tests"
PD_KEY = "R0UTINGKEY0123456789abcdef012345"


# ---------------------------------------------------------------- receivers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """A local HTTP receiver. ``plan(n)`` gives the n-th request's (status, sleep_s, headers);
    ``processed`` holds what it accepted (2xx answered to a client still waiting)."""

    def __init__(self, plan: Callable[[int], tuple[int, float, dict[str, str]]] | None = None) -> None:
        self.port = free_port()
        self.plan = plan or (lambda n: (200, 0.0, {}))
        self.requests = 0
        self.processed: list[dict[str, Any]] = []
        self.dropped = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests += 1
                    n = receiver.requests
                status, sleep_s, headers = receiver.plan(n)
                if sleep_s:
                    time.sleep(sleep_s)
                    # a client that timed out closes its end; on a loaded machine that close may come late,
                    # so wait for it a while (a request processed after the client gave up would be
                    # delivered twice, and the test would blame the dispatcher for the receiver's race)
                    r, _, _ = select.select([self.connection], [], [], 3.0)
                    if r and self.connection.recv(1, socket.MSG_PEEK) == b"":  # the client gave up
                        with receiver._lock:
                            receiver.dropped += 1
                        return
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.processed.append({"body": json.loads(body), "raw": body,
                                                   "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def alert_events(self) -> list[tuple[str, str]]:
        """(alert id, event) of every processed notification, in arrival order."""
        out = []
        for p in self.processed:
            b = p["body"]
            if "event_action" in b:  # PagerDuty
                out.append((b["dedup_key"], b["event_action"]))
            else:
                out.extend((a["alert_id"], a["event"]) for a in b["alerts"])
        return out


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()


# ---------------------------------------------------------------- store and pipeline helpers


def make_store(database_url: str) -> Engine:
    engine = make_engine(database_url)
    init_db(engine)
    ensure_alerting_tables(engine)
    return engine


def decision(i: int, key: str, *, route: str, tenant: str = "acme", model: str = "bot", severity: str = "high",
             at: datetime | None = None, labels: dict[str, str] | None = None) -> Decision:
    return Decision(decision_id=stable_id("test-decision", i, key, route), policy_id="pol-" + route.split(":")[-1],
                    policy_version=1, action=DecisionAction.alert, subject=Subject(tenant=tenant, model=model),
                    severity=severity, summary=f"alert {key}", dedup_key=key, route=route,
                    labels=labels or {}, created_at=at or datetime.now(UTC))


def persist(engine: Engine, decisions: list[Decision], config: AlertingConfig) -> alerting.Enqueued:
    """What persist_batch does once wired: the alert upsert and the outbox in one transaction."""
    with Session(engine) as session:
        touch_alerts(session, engine, decisions)
        out = alerting.enqueue_notifications(session, decisions, config=config)
        session.commit()
    return out


def alert_id(key: str, tenant: str = "acme") -> str:
    return stable_id("alert", tenant, key)


def destinations(spec: dict[str, Any]) -> Destinations:
    return parse_destinations({"destinations": spec, "alert_url_template": "https://warden.test/alerts/{alert_id}"})


FAST = DispatcherConfig(poll_interval_s=0.02, backoff_base_s=0.05, backoff_max_s=0.4, sweep_interval_s=0.1)


async def run_until(dispatcher: Dispatcher, done: Callable[[], bool], timeout: float = 15.0) -> None:
    task = asyncio.create_task(dispatcher.run())
    try:
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(done):
            assert time.monotonic() < deadline, "timed out waiting for deliveries"
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, 10)


def settled(engine: Engine) -> Callable[[], bool]:
    def check() -> bool:
        counts = outbox_counts(engine)
        return counts.get("pending", 0) == 0 and counts.get("sending", 0) == 0
    return check


def history_kinds(engine: Engine, aid: str) -> list[str]:
    with Session(engine) as s:
        return [e.kind for e in alerting.alert_history(s, aid)]


# ---------------------------------------------------------------- tests


async def test_receivers_down_slow_and_throttling_lose_nothing_and_duplicate_nothing(
        database_url: str, receivers: list[Receiver]) -> None:
    down = Receiver()  # its port stays closed for the first ~1.5 s
    slow = Receiver(lambda n: (200, 0.6 if n <= 3 else 0.0, {})).start()
    busy = Receiver(lambda n: (429, 0.0, {"Retry-After": "1"}) if n <= 2 else (200, 0.0, {})).start()
    pager = Receiver(lambda n: (202, 0.0, {})).start()
    receivers += [down, slow, busy, pager]
    dests = destinations({
        "webhook:down": {"type": "webhook", "url": down.url, "secret": SECRET, "timeout_s": 1},
        "webhook:slow": {"type": "webhook", "url": slow.url, "secret": SECRET, "timeout_s": 0.3},
        # one alert per request here, so the 429s hit most of them (the others batch what is due together)
        "webhook:busy": {"type": "webhook", "url": busy.url, "secret": SECRET, "timeout_s": 1, "max_batch": 1},
        "pagerduty:oncall": {"type": "pagerduty", "url": pager.url, "routing_key": PD_KEY},
    })
    config = dests.alerting_config()
    engine = make_store(database_url)
    routes = list(dests.destinations)
    keys = {r: [f"{r}-k{i}" for i in range(8)] for r in routes}
    batch = [decision(j, k, route=r) for r in routes for j, k in enumerate(keys[r])]
    batch += [decision(100 + j, k, route=r) for r in routes for j, k in enumerate(keys[r][:3])]  # repeats: dedup
    enq = persist(engine, batch, config)
    assert enq.triggered == 32 and enq.notifications == 32
    with Session(engine) as s:
        assert s.get(AlertRow, alert_id(keys["webhook:busy"][0])).count == 2  # type: ignore[union-attr]

    dispatcher = Dispatcher(engine, dests, FAST, alerting=config, rng=random.Random(1))

    async def open_later() -> None:
        await asyncio.sleep(1.5)
        down.start()

    opener = asyncio.create_task(open_later())
    await run_until(dispatcher, lambda: settled(engine)() and down._server is not None)
    await opener

    for r in routes:
        rec = {"webhook:down": down, "webhook:slow": slow, "webhook:busy": busy, "pagerduty:oncall": pager}[r]
        got = rec.alert_events()
        assert sorted(got) == sorted((alert_id(k), "trigger") for k in keys[r]), r  # 0 lost, 0 duplicates
    assert outbox_counts(engine) == {"delivered": 32}
    assert slow.dropped == 3 and busy.requests >= 10
    assert all(len(p["body"]["alerts"]) == 1 for p in busy.processed)
    # the webhooks are signed over "{timestamp}.{body}" with the shared secret, and carry their delivery id
    for p in down.processed + slow.processed + busy.processed:
        h = p["headers"]
        assert payloads.verify_signature(SECRET, p["raw"], h["x-warden-timestamp"], h["x-warden-signature"])
        assert not payloads.verify_signature("other", p["raw"], h["x-warden-timestamp"], h["x-warden-signature"])
        members = [a["delivery_id"] for a in p["body"]["alerts"]]
        if len(members) == 1:
            assert h["x-warden-delivery"] == members[0]
        else:  # a batch has an id of its own, derived from its members'
            assert h["x-warden-delivery"] not in members and len(h["x-warden-delivery"]) == 32
    # PagerDuty Events v2 shape
    pd = pager.processed[0]["body"]
    assert set(pd) == {"routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links"}
    assert pd["routing_key"] == PD_KEY and pd["event_action"] == "trigger"
    assert set(pd["payload"]) == {"summary", "source", "severity", "timestamp", "component", "group", "class",
                                  "custom_details"}
    assert pd["payload"]["severity"] == "error" and pd["payload"]["group"] == "acme"
    assert pd["links"][0]["href"] == f"https://warden.test/alerts/{pd['dedup_key']}"
    # a delivery log row per attempt: retries for the down, slow and busy receivers, one per pager event
    with Session(engine) as s:
        log = {(d, o): n for d, o, n in s.execute(
            sa_select(DeliveryLogRow.destination, DeliveryLogRow.outcome, func.count())
            .group_by(DeliveryLogRow.destination, DeliveryLogRow.outcome))}
    assert log[("webhook:down", "retry")] >= 8 and log[("webhook:slow", "retry")] >= 3
    assert log[("pagerduty:oncall", "delivered")] == 8
    with Session(engine) as s:
        busy_log = list(s.execute(sa_select(DeliveryLogRow.outbox_id, DeliveryLogRow.status_code, DeliveryLogRow.at)
                                  .where(DeliveryLogRow.destination == "webhook:busy").order_by(DeliveryLogRow.seq)))
    throttled = [r for r in busy_log if r[1] == 429]
    assert len(throttled) == 2
    for outbox_id, _, at in throttled:  # Retry-After: 1 was honoured before the next attempt
        later = [r[2] for r in busy_log if r[0] == outbox_id and r[2] > at]
        assert later and (later[0] - at).total_seconds() >= 0.95
    assert all(log[(r, "delivered")] == 8 for r in routes)
    kinds = history_kinds(engine, alert_id(keys["webhook:slow"][0]))
    assert kinds[:3] == ["triggered", "notification_queued", "notified"]
    engine.dispose()


async def test_acknowledge_and_resolve_reach_pagerduty_in_order_after_an_outage(
        database_url: str, receivers: list[Receiver]) -> None:
    pager = Receiver(lambda n: (202, 0.0, {}))
    receivers.append(pager)
    dests = destinations({"pagerduty:oncall": {"type": "pagerduty", "url": pager.url, "routing_key": PD_KEY}})
    config = dests.alerting_config()
    engine = make_store(database_url)
    persist(engine, [decision(i, f"k{i}", route="pagerduty:oncall") for i in range(3)], config)
    for i in range(3):
        with Session(engine) as s:
            alerting.acknowledge(s, alert_id(f"k{i}"), actor="ops@example", reason="looking", config=config)
            if i < 2:
                alerting.resolve(s, alert_id(f"k{i}"), actor="ops@example", reason="fixed", config=config)
            s.commit()
    dispatcher = Dispatcher(engine, dests, FAST, alerting=config, rng=random.Random(2))

    async def open_later() -> None:
        await asyncio.sleep(0.8)
        pager.start()

    opener = asyncio.create_task(open_later())
    await run_until(dispatcher, lambda: settled(engine)() and pager._server is not None)
    await opener
    for i in range(3):
        events = [e for a, e in pager.alert_events() if a == alert_id(f"k{i}")]
        assert events == (["trigger", "acknowledge", "resolve"] if i < 2 else ["trigger", "acknowledge"])
    ack = next(p["body"] for p in pager.processed if p["body"]["event_action"] == "acknowledge")
    assert ack == {"routing_key": PD_KEY, "event_action": "acknowledge", "dedup_key": ack["dedup_key"]}
    with Session(engine) as s:
        row = s.get(AlertRow, alert_id("k0"))
        assert row is not None and row.status == "resolved" and row.resolved_by == "ops@example"
    assert history_kinds(engine, alert_id("k0")).count("notified") == 3
    engine.dispose()


async def test_other_4xx_fails_without_retry(database_url: str, receivers: list[Receiver]) -> None:
    bad = Receiver(lambda n: (400, 0.0, {})).start()
    receivers.append(bad)
    dests = destinations({"slack:ml": {"type": "slack", "url": bad.url}})
    engine = make_store(database_url)
    persist(engine, [decision(0, "k0", route="slack:ml")], dests.alerting_config())
    await run_until(Dispatcher(engine, dests, FAST), settled(engine))
    assert bad.requests == 1 and outbox_counts(engine) == {"failed": 1}
    assert history_kinds(engine, alert_id("k0"))[-1] == "delivery_failed"
    engine.dispose()


async def test_a_webhook_takes_ungrouped_alerts_due_together_in_batches(database_url: str,
                                                                         receivers: list[Receiver]) -> None:
    hook, chat = Receiver().start(), Receiver().start()
    receivers += [hook, chat]
    dests = destinations({"webhook:ops": {"type": "webhook", "url": hook.url, "secret": SECRET, "max_batch": 3},
                          "slack:ml": {"type": "slack", "url": chat.url}})
    config = dests.alerting_config()
    engine = make_store(database_url)
    persist(engine, [decision(i, f"w{i}", route="webhook:ops") for i in range(8)]
            + [decision(50 + i, f"s{i}", route="slack:ml") for i in range(3)], config)
    await run_until(Dispatcher(engine, dests, FAST, alerting=config), settled(engine))
    assert sorted(hook.alert_events()) == sorted((alert_id(f"w{i}"), "trigger") for i in range(8))
    assert sorted(len(p["body"]["alerts"]) for p in hook.processed) == [2, 3, 3]
    ids = [p["headers"]["x-warden-delivery"] for p in hook.processed]
    assert len(set(ids)) == 3  # one delivery id per request, so a receiver can drop a repeated request
    for p in hook.processed:
        assert payloads.verify_signature(SECRET, p["raw"], p["headers"]["x-warden-timestamp"],
                                         p["headers"]["x-warden-signature"])
    assert chat.requests == 3  # Slack: one message per ungrouped alert
    assert outbox_counts(engine) == {"delivered": 11}
    engine.dispose()


async def test_grouping_waits_then_sends_a_group_in_one_request(database_url: str, receivers: list[Receiver]) -> None:
    hook = Receiver().start()
    receivers.append(hook)
    dests = destinations({"webhook:ops": {"type": "webhook", "url": hook.url, "secret": SECRET, "group_by": ["model"],
                                          "group_wait_s": 0.4, "group_interval_s": 0.8}})
    config = dests.alerting_config()
    engine = make_store(database_url)
    t0 = time.monotonic()
    persist(engine, [decision(i, f"a{i}", route="webhook:ops", model="bot") for i in range(4)]
            + [decision(9, "b0", route="webhook:ops", model="other")], config)
    dispatcher = Dispatcher(engine, dests, FAST, alerting=config)
    task = asyncio.create_task(dispatcher.run())
    try:
        while len(hook.processed) < 2:
            await asyncio.sleep(0.02)
        first_flush = time.monotonic() - t0
        persist(engine, [decision(20, "a9", route="webhook:ops", model="bot")], config)  # joins the next flush
        t1 = time.monotonic()
        while len(hook.processed) < 3:
            await asyncio.sleep(0.02)
        second_wait = time.monotonic() - t1
    finally:
        dispatcher.stop()
        await task
    assert first_flush >= 0.4
    sizes = sorted(len(p["body"]["alerts"]) for p in hook.processed[:2])
    assert sizes == [1, 4]  # model=bot in one request, model=other in another
    assert [a["dedup_key"] for a in hook.processed[2]["body"]["alerts"]] == ["a9"]
    assert second_wait >= 0.3  # group_interval after the bot group's flush, not at once
    for p in hook.processed:
        h = p["headers"]
        assert payloads.verify_signature(SECRET, p["raw"], h["x-warden-timestamp"], h["x-warden-signature"])
    engine.dispose()


async def test_silence_holds_a_trigger_until_it_is_expired(database_url: str, receivers: list[Receiver]) -> None:
    hook = Receiver().start()
    receivers.append(hook)
    dests = destinations({"webhook:ops": {"type": "webhook", "url": hook.url, "secret": SECRET}})
    config = dests.alerting_config()
    engine = make_store(database_url)
    with Session(engine) as s:
        sil = alerting.create_silence(s, tenant="acme", matchers=[{"name": "model", "value": "b.t", "op": "=~"},
                                                                  {"name": "team", "value": "ml"}],
                                      ends_at=datetime.now(UTC) + timedelta(hours=1), created_by="ops",
                                      reason="maintenance")
        s.commit()
        silence_id = sil.silence_id
    enq = persist(engine, [decision(0, "quiet", route="webhook:ops", labels={"team": "ml"}),
                           decision(1, "loud", route="webhook:ops", labels={"team": "web"}),
                           decision(2, "other-tenant", route="webhook:ops", tenant="globex", labels={"team": "ml"})],
                  config)
    assert enq.suppressed == 1 and enq.notifications == 2
    await run_until(Dispatcher(engine, dests, FAST, alerting=config), settled(engine))
    assert sorted(a for a, _ in hook.alert_events()) == sorted([alert_id("loud"), alert_id("other-tenant", "globex")])
    assert "suppressed" in history_kinds(engine, alert_id("quiet"))
    with Session(engine) as s:
        alerting.expire_silence(s, silence_id, actor="ops")
        s.commit()
    dispatcher = Dispatcher(engine, dests, FAST, alerting=config)
    await run_until(dispatcher, lambda: alert_id("quiet") in {a for a, _ in hook.alert_events()})
    assert len(hook.alert_events()) == 3  # the quiet one once, after its silence ended
    assert history_kinds(engine, alert_id("quiet"))[-3:] == ["silence_ended", "notification_queued", "notified"]
    engine.dispose()


async def test_renotify_and_escalate_while_unacknowledged_then_stop(database_url: str,
                                                                    receivers: list[Receiver]) -> None:
    primary, lead = Receiver().start(), Receiver().start()
    receivers += [primary, lead]
    dests = destinations({
        "webhook:oncall": {"type": "webhook", "url": primary.url, "secret": SECRET, "repeat_interval_s": 0.4,
                           "escalation": [{"after_s": 0.6, "to": "webhook:lead"}]},
        "webhook:lead": {"type": "webhook", "url": lead.url, "secret": SECRET},
    })
    config = dests.alerting_config()
    engine = make_store(database_url)
    persist(engine, [decision(0, "page", route="webhook:oncall")], config)
    aid = alert_id("page")
    await run_until(Dispatcher(engine, dests, FAST, alerting=config),
                    lambda: len(lead.processed) >= 1 and len(primary.processed) >= 3)
    with Session(engine) as s:
        alerting.acknowledge(s, aid, actor="lead@example", config=config)
        s.commit()
    before = (len(primary.processed), len(lead.processed))
    await run_until(Dispatcher(engine, dests, FAST, alerting=config), settled(engine))
    await asyncio.sleep(0.5)
    await run_until(Dispatcher(engine, dests, FAST, alerting=config), settled(engine))
    assert [e for _, e in primary.alert_events()][-1] == "acknowledge"
    assert [e for _, e in lead.alert_events()] == ["trigger", "acknowledge"]
    assert len(primary.processed) == before[0] + 1 and len(lead.processed) == before[1] + 1  # no more repeats
    kinds = history_kinds(engine, aid)
    assert kinds.count("escalated") == 1 and kinds.count("renotified") >= 2
    engine.dispose()


async def test_auto_resolve_and_reopen(database_url: str, receivers: list[Receiver]) -> None:
    hook = Receiver().start()
    receivers.append(hook)
    dests = destinations({"default": {"type": "webhook", "url": hook.url, "secret": SECRET}})
    config = dests.alerting_config(resolve_after_s=60)
    engine = make_store(database_url)
    old = datetime.now(UTC) - timedelta(minutes=5)
    persist(engine, [decision(0, "stale", route="pagerduty:unknown-route", at=old),  # falls back to default
                     decision(1, "fresh", route="default"),
                     decision(3, "block-promotion:acme:bot:v7", route="default", at=old)], config)
    await run_until(Dispatcher(engine, dests, FAST, alerting=config),
                    lambda: (alert_id("stale"), "resolve") in hook.alert_events() and settled(engine)())
    with Session(engine) as s:
        stale, fresh = s.get(AlertRow, alert_id("stale")), s.get(AlertRow, alert_id("fresh"))
        assert stale is not None and stale.status == "resolved" and stale.resolved_by == alerting.AUTO_RESOLVE_ACTOR
        assert fresh is not None and fresh.status == "triggered"
        block = s.get(AlertRow, alert_id("block-promotion:acme:bot:v7"))
        assert block is not None and block.status == "triggered"  # only a person lifts a promotion block
    assert "auto_resolved" in history_kinds(engine, alert_id("stale"))
    # a new firing reopens it: a second episode, paged again
    enq = persist(engine, [decision(2, "stale", route="pagerduty:unknown-route")], config)
    assert enq.reopened == 1
    await run_until(Dispatcher(engine, dests, FAST, alerting=config), settled(engine))
    assert [e for a, e in hook.alert_events() if a == alert_id("stale")] == ["trigger", "resolve", "trigger"]
    assert hook.processed[-1]["body"]["alerts"][0]["episode"] == 2
    engine.dispose()


def test_lifecycle_routes(database_url: str) -> None:
    engine = make_store(database_url)
    config = AlertingConfig()
    persist(engine, [decision(0, "k0", route="log"), decision(1, "g0", route="log", tenant="globex")], config)
    app = FastAPI()
    app.state.config = Settings(admin_key="admin-key-for-tests", kafka_bootstrap="127.0.0.1:1").api_config()
    app.state.engine = engine
    app.state.alerting = config
    app.include_router(alert_lifecycle.router)
    with Session(engine) as s:
        keys = {role: create_key(s, role=role, tenants=["acme"], actor="test").secret
                for role in ("operator", "auditor", "producer")}
        s.commit()
    client = TestClient(app)

    def h(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[role]}"}

    a = alert_id("k0")
    assert client.post(f"/v1/alerts/{a}/acknowledge", headers=h("auditor")).status_code == 403
    assert client.post(f"/v1/alerts/{alert_id('g0', 'globex')}/acknowledge", headers=h("operator")).status_code == 404
    r = client.post(f"/v1/alerts/{a}/acknowledge", headers=h("operator"), json={"reason": "on it"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged" and r.json()["severity"] == "high"
    assert client.post(f"/v1/alerts/{a}/resolve", headers=h("operator"), json={}).json()["status"] == "resolved"
    assert client.post(f"/v1/alerts/{a}/acknowledge", headers=h("operator")).status_code == 409
    hist = client.get(f"/v1/alerts/{a}/history", headers=h("auditor")).json()
    assert [i["kind"] for i in hist["items"]] == ["triggered", "not_routed", "acknowledged", "resolved"]
    assert hist["items"][2]["actor"].startswith("key:") and hist["items"][2]["detail"]["reason"] == "on it"
    assert client.get(f"/v1/alerts/{a}/history", headers=h("producer")).status_code == 403

    ends = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {"tenant": "acme", "matchers": [{"name": "model", "value": "bot"}], "ends_at": ends, "reason": "deploy"}
    assert client.post("/v1/silences", headers=h("auditor"), json=body).status_code == 403
    assert client.post("/v1/silences", headers=h("operator"), json={**body, "tenant": "globex"}).status_code == 403
    bad = {**body, "matchers": [{"name": "model", "value": "(", "op": "=~"}]}
    assert client.post("/v1/silences", headers=h("operator"), json=bad).status_code == 422
    created = client.post("/v1/silences", headers=h("operator"), json=body)
    assert created.status_code == 201 and created.json()["active"] is True
    sid = created.json()["silence_id"]
    assert [s["silence_id"] for s in client.get("/v1/silences?active=true", headers=h("auditor")).json()["items"]] == [sid]
    assert client.get(f"/v1/silences/{sid}", headers=h("auditor")).json()["reason"] == "deploy"
    gone = client.delete(f"/v1/silences/{sid}", headers=h("operator"))
    assert gone.status_code == 200 and gone.json()["active"] is False and gone.json()["expired_by"].startswith("key:")
    assert client.get("/v1/silences?active=true", headers=h("auditor")).json()["items"] == []
    assert client.delete("/v1/silences/nope", headers=h("operator")).status_code == 404
    assert client.get("/v1/deliveries", headers=h("auditor")).json()["items"] == []
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(text("SELECT action FROM audit_log ORDER BY seq"))]
    assert actions[-4:] == ["alert.acknowledged", "alert.resolved", "silence.created", "silence.expired"]
    engine.dispose()


def test_migration_helper_matches_the_models(tmp_path: Path) -> None:
    """``store.migrations.alerting`` as revision 0003 on top of the store's migrations gives exactly the
    tables of ``governance.alerting`` (SQLite; the lead's revision file is the three lines in its docstring)."""
    import shutil

    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    from store.db import alembic_config

    scripts = tmp_path / "migrations"
    shutil.copytree(Path(alembic_config().get_main_option("script_location")), scripts,
                    ignore=shutil.ignore_patterns("__pycache__"))
    heads = [p.stem for p in (scripts / "versions").glob("0*.py")]
    down = max(heads)
    (scripts / "versions" / "9999_alerting_check.py").write_text(
        f'revision = "9999_alerting_check"\ndown_revision = "{down}"\nbranch_labels = None\ndepends_on = None\n'
        "from store.migrations.alerting import downgrade as _down, upgrade as _up\n"
        "def upgrade() -> None:\n    _up()\n\ndef downgrade() -> None:\n    _down()\n")
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    cfg = alembic_config()
    cfg.set_main_option("script_location", str(scripts))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name == "audit_head")]
    assert [d for d in diff if "alert_" in repr(d)] == []
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, down)
    with engine.connect() as conn:
        names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'")).scalars())
    assert not names & set(alerting_migration_tables())
    engine.dispose()


def alerting_migration_tables() -> tuple[str, ...]:
    from store.migrations.alerting import TABLES

    return TABLES


def test_outbox_rows_are_written_in_the_alert_transaction(database_url: str) -> None:
    """A rolled-back persist leaves neither the alert nor its notification (transactional outbox)."""
    engine = make_store(database_url)
    config = AlertingConfig(routes={"default": alerting.RoutePolicy()})
    with Session(engine) as s:
        touch_alerts(s, engine, [decision(0, "rolled", route="default")])
        assert alerting.enqueue_notifications(s, [decision(0, "rolled", route="default")], config=config).notifications == 1
        s.rollback()
    with Session(engine) as s:
        assert s.execute(sa_select(func.count()).select_from(OutboxRow)).scalar_one() == 0
        assert s.get(AlertRow, alert_id("rolled")) is None
    persist(engine, [decision(0, "rolled", route="default")], config)
    persist(engine, [decision(0, "rolled", route="default")], config)  # re-delivery of the same batch
    assert outbox_counts(engine) == {"pending": 1}
    engine.dispose()
