"""The web console in a real browser: Debian's Chromium driven by Playwright, against the running service.

The governance API and a stream worker run as processes on Apache Kafka 4.x and PostgreSQL; events go
in through Kafka from another client (confluent-kafka), so every alert and finding on the pages came
from the stream. Alerts are routed to a local webhook receiver that counts re-notifications.

What it proves, as people would meet it:
- an admin signs in and creates keys (the secret is shown once); an operator scoped to tenant ``acme``
  signs in, acknowledges an alert and resolves it; an auditor then finds both entries, under the
  operator's key, on the audit page, and "Verify chain" says the chain holds;
- the auditor sees the audit trail and reports, gets no acknowledge button, and a 403 when posting the
  form anyway (with the auditor's own CSRF token);
- the ``acme`` key never sees tenant ``globex``'s alerts or findings;
- a silenced alert stops re-notifying while an unsilenced one keeps going;
- a form posted without the session's CSRF token is refused; an expired session returns to sign-in.
Screenshots of each page are saved in the test's tmp folder (``screens/``).
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import Producer

from tests.events import inference, raw
from tests.integration.test_alert_delivery import SECRET, Receiver
from tests.support.kafka import KafkaBroker, free_port
from tests.support.procs import poll, spawn, stop, wait_healthy, warden_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
ADMIN_KEY = "console-browser-admin-key"
REPEAT_S = 1.0


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: `make chromium` (or `make test`) installs Debian's package")
    return found


class Stack:
    """The running service, its database and the webhook receiver."""

    def __init__(self, base: str, db_url: str, hook: Receiver, shots: Path, kafka: KafkaBroker) -> None:
        self.base, self.db_url, self.hook, self.shots, self.kafka = base, db_url, hook, shots, kafka

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.base + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=15,
                             **kw)

    def alerts(self, tenant: str) -> list[dict[str, Any]]:
        return list(self.api("GET", "/v1/alerts", params={"tenant": tenant}).json()["items"])

    def notifications(self, alert_id: str) -> int:
        return sum(1 for a, event in self.hook.alert_events() if a == alert_id and event == "trigger")


@pytest.fixture(scope="module")
def stack(kafka: KafkaBroker, postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("console")
    name = "c_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db_url = postgres.rsplit("/", 1)[0] + "/" + name
    hook = Receiver().start()
    destinations = json.dumps({"webhook:ml-ops": {"type": "webhook", "url": hook.url, "secret": SECRET,
                                                  "repeat_interval_s": REPEAT_S}})
    port = free_port()
    env = warden_env(kafka_bootstrap=kafka.bootstrap, database_url=db_url, admin_key=ADMIN_KEY, api_port=port,
                     consumer_group=f"w-{uuid.uuid4().hex[:6]}", governance_group=f"g-{uuid.uuid4().hex[:6]}",
                     worker_web_port=free_port(), alert_destinations=destinations, drift_embeddings="false",
                     alert_resolve_after_s=86400)
    api = spawn("api", env, logs / "api.log")
    worker = spawn("worker", env, logs / "worker.log")
    s = Stack(f"http://127.0.0.1:{port}", db_url, hook, logs / "screens", kafka)
    s.shots.mkdir()
    try:
        wait_healthy(s.base, api, logs / "api.log")
        yield s
    finally:
        stop(worker)
        stop(api)
        hook.stop()


def _produce(bootstrap: str, events: list[dict[str, Any]]) -> None:
    """Publish ``events`` as happening now (alerts older than a day would be auto-resolved at once)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    now = datetime.now(UTC).isoformat()
    for e in events:
        e["occurred_at"] = now
        producer.produce("warden.inference", value=raw(e), key=e["model"]["name"].encode())
    assert producer.flush(60) == 0


def _sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/console")
    assert "/console/signin" in page.url  # not signed in: the console asks for a key
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/console(\?.*)?$"))


def _shot(stack: Stack, page: Any, name: str) -> None:
    page.screenshot(path=str(stack.shots / f"{name}.png"), full_page=True)


def _csrf(page: Any) -> str:
    return str(page.locator("input[name=csrf_token]").first.get_attribute("value"))


def test_people_work_in_the_console(stack: Stack) -> None:
    from playwright.sync_api import expect, sync_playwright

    run = uuid.uuid4().hex[:6]
    # real data: error responses (→ rule findings and alerts) for two tenants and three models
    events = [inference(f"{run}-{t}-{m}-{i}", tenant=t, model=m, status="error")
              for t, m in (("acme", "support-bot"), ("acme", "quiet-bot"), ("acme", "loud-bot"), ("globex", "hr-bot"))
              for i in range(3)]
    events += [inference(f"{run}-acme-ok-{i}", tenant="acme", model="support-bot") for i in range(5)]
    _produce(stack.kafka.bootstrap, events)
    acme = poll(lambda: (a := stack.alerts("acme")) and len({x["model"] for x in a}) >= 3 and a, 120,
                what="acme alerts from the stream")
    globex = poll(lambda: stack.alerts("globex"), 60, what="globex alerts")
    by_model = {a["model"]: a for a in acme if a["dedup_key"].endswith("error_status")}
    target, quiet, loud = by_model["support-bot"], by_model["quiet-bot"], by_model["loud-bot"]
    poll(lambda: stack.notifications(quiet["alert_id"]) >= 2, 30, what="re-notifications of an unacknowledged alert")
    # something for the models and jobs pages: a registered version, an alias, a job waiting for approval
    assert stack.api("POST", "/v1/registry/acme/models/support-bot/versions",
                     json={"version": "v1", "artifact_uri": "s3://m/v1"}).status_code == 201
    assert stack.api("PUT", "/v1/registry/acme/models/support-bot/aliases/production",
                     json={"version": "v1", "reason": "first release"}).status_code == 200
    assert stack.api("POST", "/v1/jobs", json={"kind": "retrain", "tenant": "acme", "model": "support-bot",
                                               "reason": "error burst"}).status_code == 202

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            # ---- an admin creates the operator's and the auditor's keys; each secret is shown once
            admin = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            _sign_in(admin, stack.base, ADMIN_KEY)
            secrets: dict[str, str] = {}
            for role in ("operator", "auditor"):
                admin.goto(f"{stack.base}/console/keys")
                admin.get_by_label("Role").select_option(role)
                admin.get_by_label("Tenants").fill("acme")
                admin.get_by_label("Name").fill(f"{role} alice" if role == "operator" else "auditor bob")
                admin.get_by_role("button", name="Create key").click()
                expect(admin.get_by_text("it is shown this once")).to_be_visible()
                secrets[role] = str(admin.locator("#secret").input_value())
                if role == "operator":
                    _shot(stack, admin, "keys-created")
            admin.reload()
            assert secrets["operator"] not in admin.content(), "the secret is never shown again"
            # the admin's overview: health of the service and its consumer groups
            admin.goto(f"{stack.base}/console")
            expect(admin.get_by_role("heading", name="Service health")).to_be_visible()
            expect(admin.locator("text=Status: ok")).to_be_visible()
            _shot(stack, admin, "overview-admin")

            # ---- the operator (acme) acknowledges then resolves an alert
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            op = ctx.new_page()
            _sign_in(op, stack.base, secrets["operator"])
            expect(op.get_by_role("heading", name="Overview")).to_be_visible()
            _shot(stack, op, "overview")
            op.goto(f"{stack.base}/console/alerts")
            _shot(stack, op, "alerts")
            body = op.content()
            assert target["alert_id"] in body and all(a["alert_id"] not in body for a in globex)
            assert "globex" not in body and "hr-bot" not in body
            op.goto(f"{stack.base}/console/findings")
            _shot(stack, op, "findings")
            assert "support-bot" in op.content() and "hr-bot" not in op.content()
            op.goto(f"{stack.base}/console/findings?tenant=globex")
            assert "Not allowed" in op.content()  # the key's tenants bound every read
            op.goto(f"{stack.base}/console/alerts/{globex[0]['alert_id']}")
            assert "Not found" in op.content()

            op.goto(f"{stack.base}/console/alerts/{target['alert_id']}")
            op.get_by_label("Reason (optional)").first.fill("looking into the upstream timeouts")
            op.get_by_role("button", name="Acknowledge").click()
            expect(op.get_by_role("status")).to_contain_text("Alert acknowledged")
            op.get_by_label("Reason (optional)").fill("upstream fixed")
            op.get_by_role("button", name="Resolve").click()
            expect(op.get_by_role("status")).to_contain_text("Alert resolved")
            _shot(stack, op, "alert-resolved")
            history = op.locator("section[aria-labelledby=h-hist]").inner_text()
            assert "acknowledged" in history and "resolved" in history and "operator alice" in history

            # ---- silence one alert; it stops re-notifying while another keeps going
            op.goto(f"{stack.base}/console/alerts/{quiet['alert_id']}")
            op.get_by_label("Silence: reason").fill("known incident INC-42")
            op.get_by_label("for (hours)").fill("1")
            op.get_by_role("button", name="Silence").click()
            expect(op.get_by_role("status")).to_contain_text("Alert silenced")
            assert "known incident INC-42" in op.locator("dl.facts").inner_text()
            time.sleep(REPEAT_S * 1.5)  # a re-notification already queued may still go out
            quiet_before, loud_before = stack.notifications(quiet["alert_id"]), stack.notifications(loud["alert_id"])
            time.sleep(REPEAT_S * 5)
            assert stack.notifications(quiet["alert_id"]) == quiet_before, "a silenced alert re-notified"
            assert stack.notifications(loud["alert_id"]) >= loud_before + 2, "re-notification is not running"

            # ---- a form without the session's CSRF token is refused
            refused = op.request.post(f"{stack.base}/console/alerts/{loud['alert_id']}/acknowledge",
                                      form={"reason": "forged"})
            assert refused.status == 403 and "CSRF" in refused.text()
            assert next(a for a in stack.alerts("acme") if a["alert_id"] == loud["alert_id"])["status"] == "triggered"

            # ---- the pages a person reads: models, jobs, an open alert
            op.goto(f"{stack.base}/console/models/acme/support-bot")
            expect(op.get_by_role("heading", name="Aliases")).to_be_visible()
            op.get_by_label("on (UTC)").fill((datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
            op.get_by_role("button", name="Ask").click()
            expect(op.get_by_role("status")).to_contain_text("version v1")
            _shot(stack, op, "model")
            op.goto(f"{stack.base}/console/jobs")
            expect(op.get_by_role("button", name="Approve")).to_be_visible()
            _shot(stack, op, "jobs")
            op.goto(f"{stack.base}/console/alerts/{loud['alert_id']}")
            _shot(stack, op, "alert-open")

            # ---- the auditor: trail with both entries, a verified chain, reports; no acknowledging
            aud = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            _sign_in(aud, stack.base, secrets["auditor"])
            aud.goto(f"{stack.base}/console/audit?target_id={target['alert_id']}")
            trail = aud.locator("table").inner_text()
            assert "alert.acknowledged" in trail and "alert.resolved" in trail and "operator alice" in trail
            aud.get_by_role("button", name="Verify chain").click()
            expect(aud.locator("#verify-result")).to_contain_text("Chain verified")
            aud.get_by_role("button", name="Full verification").click()
            expect(aud.locator("#full-result")).to_contain_text("links from the first entry to the head")
            _shot(stack, aud, "audit")
            aud.goto(f"{stack.base}/console/reports")
            aud.get_by_role("button", name="Build report").click()
            expect(aud.get_by_role("heading", name=re.compile("Compliance report"))).to_be_visible()
            _shot(stack, aud, "report")
            aud.goto(f"{stack.base}/console/alerts/{loud['alert_id']}")
            assert aud.get_by_role("button", name="Acknowledge").count() == 0
            _shot(stack, aud, "alert-auditor")
            posted = aud.request.post(f"{stack.base}/console/alerts/{loud['alert_id']}/acknowledge",
                                      form={"csrf_token": _csrf(aud), "reason": "not mine to do"})
            assert posted.status == 403
            aud.goto(f"{stack.base}/console/keys")
            assert aud.get_by_role("button", name="Create key").count() == 0
            _shot(stack, aud, "keys-auditor")

            # ---- an expired session returns to sign-in
            with psycopg.connect(stack.db_url, autocommit=True) as conn:
                conn.execute("UPDATE console_sessions SET expires_at = now() - interval '1 second'")
            op.goto(f"{stack.base}/console/alerts")
            assert "/console/signin" in op.url
            expect(op.get_by_text("Your session has ended")).to_be_visible()
            _shot(stack, op, "signin-expired")
        finally:
            browser.close()
    shots = sorted(p.name for p in stack.shots.glob("*.png"))
    assert len(shots) >= 12 and all((stack.shots / s).stat().st_size > 10_000 for s in shots), shots
