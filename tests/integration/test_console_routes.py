"""The web console's routes × roles × tenants, with real sessions, on SQLite and PostgreSQL.

Every console route declares its roles like the API's (``roles_of``); the walk signs in with a key of each
role and tenant and checks the console admits exactly those roles, that a form posted without the
session's CSRF token is refused, that a key scoped to one tenant sees nothing of another, and that
sessions end when they expire, when the person signs out and when the key is revoked. The browser test
(test_console_browser.py) drives the same pages in Chromium against the running service.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, select

from api.auth import ADMIN, ADMIN_OPERATOR, AUDIT_ROLES, READ_ROLES, iter_api_routes, roles_of
from governance import audit as audit_trail
from governance.alerting import AlertingConfig
from governance.ingest import persist_batch
from store.models import AlertRow, ConsoleSessionRow, FindingRow
from store.repository import page
from streams.pipeline import Pipeline
from tests.events import inference, raw
from tests.integration.test_governance_harness import ADMIN_KEY, Gov, make_gov
from tests.integration.test_governance_rbac import _drift_finding, _seed

pytestmark = pytest.mark.postgres
_n = itertools.count(1)
PUBLIC = {("GET", "/console/signin"), ("POST", "/console/signin")}


def sign_in(gov: Gov, key: str) -> TestClient:
    """A browser-like client signed in with ``key`` (its own cookie jar)."""
    client = TestClient(gov.client.app, raise_server_exceptions=False)
    form = client.get("/console/signin")
    pre = re.search(r'name="pre" value="([^"]+)"', form.text)
    assert pre, form.text[:500]
    r = client.post("/console/signin", data={"key": key, "pre": pre.group(1), "next": "/console"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[:500]
    return client


def csrf_of(client: TestClient) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/reports").text)
    assert m, "every signed-in page carries the sign-out form and its CSRF token"
    return m.group(1)


def _alert(gov: Gov, tenant: str, status: str | None = None) -> str:
    filters = [AlertRow.tenant == tenant] + ([AlertRow.status == status] if status else [])
    return str(page(gov.engine, AlertRow, time_col="last_seen", key_col="alert_id", filters=filters).items[0].alert_id)


def _finding(gov: Gov, tenant: str) -> str:
    return str(page(gov.engine, FindingRow, time_col="occurred_at", key_col="finding_id",
                    filters=[FindingRow.tenant == tenant]).items[0].finding_id)


def _job(gov: Gov, tenant: str) -> str:
    r = gov.request("POST", "/v1/jobs", json={"kind": "rollback", "tenant": tenant, "model": "bot",
                                              "approval": "required", "idempotency_key": f"c{next(_n)}"})
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def _silence(gov: Gov, tenant: str) -> str:
    r = gov.request("POST", "/v1/silences", json={"tenant": tenant, "matchers": [{"name": "model", "value": "bot"}],
                                                  "ends_at": "2031-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    return str(r.json()["silence_id"])


def _fresh_alert(gov: Gov, tenant: str) -> str:
    """A triggered alert of ``tenant`` (reopened by resolving then refiring is not needed: seed more)."""
    p = Pipeline()
    out = p.process(raw(inference(f"{tenant}-c-{next(_n)}", status="error", tenant=tenant,
                                  model=f"m{next(_n)}")), topic="warden.inference", partition=0, offset=0)
    persist_batch(gov.engine, out.findings, out.decisions, alerting=AlertingConfig())
    return _alert(gov, tenant, "triggered")


_API_APP: Any = None


def roles_of_api(method: str, path: str) -> tuple[str, ...]:
    """The roles the JSON API route declares (the console's route must admit the same)."""
    from api.app import create_app
    from warden.settings import Settings

    global _API_APP
    if _API_APP is None:
        _API_APP = create_app(Settings(admin_key="x", kafka_bootstrap="127.0.0.1:1").api_config(), consume=False)
    for r in iter_api_routes(_API_APP.routes):
        if r.path == path and method in r.methods:
            roles = roles_of(r)
            assert roles is not None
            return roles
    raise AssertionError(f"no API route {method} {path}")




Sample = Callable[[Gov, str], tuple[str, dict[str, str]]]
# (method, path) -> (sample (url, form) for tenant t, tenant-bound?, roles of the API route it stands for)
SAMPLES: dict[tuple[str, str], tuple[Sample, bool, tuple[str, ...]]] = {
    ("GET", "/console"): (lambda g, t: ("/console", {}), False, READ_ROLES),
    ("GET", "/console/alerts"): (lambda g, t: (f"/console/alerts?tenant={t}", {}), True, roles_of_api("GET", "/v1/alerts")),
    ("GET", "/console/alerts/{alert_id}"): (lambda g, t: (f"/console/alerts/{_alert(g, t)}", {}), True,
                                            roles_of_api("GET", "/v1/alerts/{alert_id}/history")),
    ("POST", "/console/alerts/{alert_id}/acknowledge"): (
        lambda g, t: (f"/console/alerts/{_fresh_alert(g, t)}/acknowledge", {"reason": "on it"}), True,
        roles_of_api("POST", "/v1/alerts/{alert_id}/acknowledge")),
    ("POST", "/console/alerts/{alert_id}/resolve"): (
        lambda g, t: (f"/console/alerts/{_fresh_alert(g, t)}/resolve", {"reason": "fixed"}), True,
        roles_of_api("POST", "/v1/alerts/{alert_id}/resolve")),
    ("POST", "/console/alerts/{alert_id}/silence"): (
        lambda g, t: (f"/console/alerts/{_alert(g, t)}/silence", {"reason": "maintenance", "hours": "2"}), True,
        roles_of_api("POST", "/v1/silences")),
    ("POST", "/console/silences/{silence_id}/expire"): (
        lambda g, t: (f"/console/silences/{_silence(g, t)}/expire", {}), True,
        roles_of_api("DELETE", "/v1/silences/{silence_id}")),
    ("GET", "/console/findings"): (lambda g, t: (f"/console/findings?tenant={t}&severity=high", {}), True,
                                   roles_of_api("GET", "/v1/findings")),
    ("GET", "/console/findings/{finding_id}"): (lambda g, t: (f"/console/findings/{_finding(g, t)}", {}), True,
                                                roles_of_api("GET", "/v1/findings")),
    ("GET", "/console/models"): (lambda g, t: ("/console/models", {}), False, READ_ROLES),
    ("GET", "/console/models/open"): (lambda g, t: (f"/console/models/open?tenant={t}&model=bot", {}), False,
                                      READ_ROLES),
    ("GET", "/console/models/{tenant}/{model}"): (
        lambda g, t: (f"/console/models/{t}/bot?alias=production&at=2030-01-01T00:00", {}), True,
        roles_of_api("GET", "/v1/registry/{tenant}/models/{model}/versions")),
    ("GET", "/console/models/{tenant}/{model}/drift-report"): (
        lambda g, t: (f"/console/models/{t}/bot/drift-report", {}), True,
        roles_of_api("GET", "/v1/models/{name}/drift-report")),
    ("GET", "/console/jobs"): (lambda g, t: ("/console/jobs", {}), False, roles_of_api("GET", "/v1/jobs")),
    ("GET", "/console/jobs/{job_id}"): (lambda g, t: (f"/console/jobs/{_job(g, t)}", {}), True,
                                        roles_of_api("GET", "/v1/jobs/{job_id}")),
    ("POST", "/console/jobs/{job_id}/approve"): (lambda g, t: (f"/console/jobs/{_job(g, t)}/approve", {}), True,
                                                 roles_of_api("POST", "/v1/jobs/{job_id}/approve")),
    ("POST", "/console/jobs/{job_id}/cancel"): (lambda g, t: (f"/console/jobs/{_job(g, t)}/cancel", {"reason": "no"}),
                                                True, roles_of_api("POST", "/v1/jobs/{job_id}/cancel")),
    ("GET", "/console/audit"): (lambda g, t: (f"/console/audit?tenant={t}&verify=1", {}), True,
                                roles_of_api("GET", "/v1/audit")),
    ("POST", "/console/audit/verify"): (lambda g, t: ("/console/audit/verify", {}), False,
                                        roles_of_api("GET", "/v1/audit/verify")),
    ("GET", "/console/audit/export"): (lambda g, t: ("/console/audit/export?format=csv", {}), False,
                                       roles_of_api("GET", "/v1/audit/export")),
    ("GET", "/console/reports"): (lambda g, t: (f"/console/reports?tenant={t}&format=csv", {}), True,
                                  roles_of_api("GET", "/v1/reports/compliance/{tenant}")),
    ("GET", "/console/keys"): (lambda g, t: ("/console/keys", {}), False, roles_of_api("GET", "/v1/keys")),
    ("POST", "/console/keys"): (lambda g, t: ("/console/keys", {"role": "auditor", "tenants": t, "name": "x"}), True,
                                roles_of_api("POST", "/v1/keys")),
    ("POST", "/console/keys/{key_id}/revoke"): (
        lambda g, t: (f"/console/keys/{g.request('POST', '/v1/keys', json={'role': 'producer', 'tenants': [t]}).json()['key_id']}/revoke", {}),
        True, roles_of_api("DELETE", "/v1/keys/{key_id}")),
    ("POST", "/console/signout"): (lambda g, t: ("/console/signout", {}), False, READ_ROLES),
}




def _console_routes(gov: Gov) -> dict[tuple[str, str], Any]:
    return {(m, r.path): r for r in iter_api_routes(gov.client.app.routes) for m in r.methods - {"HEAD"}
            if r.path.startswith("/console")}


def test_every_console_route_declares_the_roles_of_the_api_route_it_stands_for(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gov = make_gov(f"sqlite:///{tmp_path / 'w.db'}", with_keys=False)
    routes = _console_routes(gov)
    assert sorted(set(routes) - set(SAMPLES) - PUBLIC) == [], "a console route without a sample request here"
    assert sorted(set(SAMPLES) - set(routes)) == []
    for key, route in routes.items():
        if key in PUBLIC:
            assert roles_of(route) is None
            continue
        assert roles_of(route) == SAMPLES[key][2], (key, roles_of(route), SAMPLES[key][2])
        if key[0] == "POST":  # every state-changing form checks the session's CSRF token
            assert any(getattr(d.call, "warden_csrf", False) for d in route.dependant.dependencies), key
    # the role semantics, from the declarations
    assert routes[("POST", "/console/alerts/{alert_id}/acknowledge")] and \
        roles_of(routes[("POST", "/console/alerts/{alert_id}/acknowledge")]) == ADMIN_OPERATOR
    assert roles_of(routes[("GET", "/console/audit")]) == AUDIT_ROLES
    assert roles_of(routes[("POST", "/console/keys")]) == ADMIN
    assert not gov.client.app.openapi()["paths"].keys() & {p for _, p in routes}, "console pages are not API"


def _call(gov: Gov, method: str, sample: Sample, client: TestClient, csrf: bool) -> Any:
    url, form = sample(gov, "acme")
    data = {**form, **({"csrf_token": csrf_of(client)} if csrf and method == "POST" else {})}
    return client.request(method, url, data=data if method == "POST" else None, follow_redirects=False)


def test_console_route_role_tenant_walk(database_url: str) -> None:
    gov = make_gov(database_url)
    _seed(gov)
    clients = {(role, t): sign_in(gov, gov.keys[(role, t)]) for role in READ_ROLES for t in ("acme", "globex", "*")}
    anonymous = TestClient(gov.client.app, raise_server_exceptions=False)
    checked = 0
    for (method, path), (sample, tenant_bound, roles) in sorted(SAMPLES.items()):
        if path == "/console/signout":
            continue  # signing out ends the walk's sessions: tested below
        url, form = sample(gov, "acme")
        r = anonymous.request(method, url, data=form or None, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/signin"), (method, path, r.status_code)
        for role in READ_ROLES:
            own, every, other = clients[(role, "acme")], clients[(role, "*")], clients[(role, "globex")]

            def call(client: TestClient, *, csrf: bool = True, m: str = method, s: Sample = sample) -> Any:
                return _call(gov, m, s, client, csrf)

            ctx = (method, path, role)
            if role not in roles:
                assert call(own).status_code == 403, ctx
                assert call(every).status_code == 403, ctx
                continue
            if method == "POST":
                refused = call(every, csrf=False)
                assert refused.status_code == 403 and "CSRF" in refused.text, ctx
            got = call(every)
            assert got.status_code in (200, 201, 303), (*ctx, got.status_code, got.text[:300])
            assert call(own).status_code in (200, 201, 303), ctx
            if tenant_bound:
                assert call(other).status_code in (403, 404), (*ctx, "other tenant")
            checked += 1
    assert checked >= 40
    gov.engine.dispose()


def test_a_tenant_key_sees_only_its_tenant_and_acts_as_the_api_would(database_url: str) -> None:
    gov = make_gov(database_url)
    _seed(gov)
    acme = sign_in(gov, gov.keys[("operator", "acme")])
    for page_ in ("/console/alerts", "/console/findings", "/console", "/console/models", "/console/jobs"):
        text = acme.get(page_).text
        assert "globex" not in text, page_
    assert "acme" in acme.get("/console/alerts").text
    globex_alert = _alert(gov, "globex")
    assert acme.get(f"/console/alerts/{globex_alert}").status_code == 404
    assert acme.get("/console/alerts?tenant=globex").status_code == 403
    assert acme.get(f"/console/findings/{_finding(gov, 'globex')}").status_code == 404
    assert acme.get("/console/models/globex/bot").status_code == 403
    # acting on another tenant's alert is a 404, and changes nothing
    r = acme.post(f"/console/alerts/{globex_alert}/acknowledge", data={"csrf_token": csrf_of(acme)})
    assert r.status_code == 404
    assert gov.client.get("/v1/alerts", headers=gov.admin, params={"tenant": "globex"}).json()["items"][0]["status"] \
        == "triggered"
    # acknowledging through the console writes the API's audit entry under the key's name
    mine = _alert(gov, "acme", "triggered")
    r = acme.post(f"/console/alerts/{mine}/acknowledge", data={"csrf_token": csrf_of(acme), "reason": "looking"},
                  follow_redirects=False)
    assert r.status_code == 303
    rows, _ = audit_trail.list_entries(gov.engine, action="alert.acknowledged", target_id=mine)
    entry = audit_trail.entry_view(rows[0])
    assert entry["actor"].startswith("key:") and "operator-acme" in entry["actor"]
    assert entry["after"]["reason"] == "looking"
    gov.engine.dispose()


def test_sessions_expire_end_on_sign_out_and_with_their_key(database_url: str) -> None:
    gov = make_gov(database_url)
    persist_batch(gov.engine, [_drift_finding("acme")], alerting=AlertingConfig())
    # a producer key may not use the console; a bad key is refused
    anon = TestClient(gov.client.app, raise_server_exceptions=False)
    pre = re.search(r'name="pre" value="([^"]+)"', anon.get("/console/signin").text).group(1)  # type: ignore[union-attr]
    r = anon.post("/console/signin", data={"key": gov.keys[("producer", "acme")], "pre": pre})
    assert r.status_code == 401 and "cannot use the console" in r.text
    r = anon.post("/console/signin", data={"key": "wdn_00000000_nope", "pre": pre})
    assert r.status_code == 401
    assert anon.post("/console/signin", data={"key": ADMIN_KEY, "pre": "forged"}).status_code == 403
    # the cookie: HttpOnly, SameSite=Strict, scoped to /console; the store keeps only its hash
    client = TestClient(gov.client.app, raise_server_exceptions=False)
    pre = re.search(r'name="pre" value="([^"]+)"', client.get("/console/signin").text).group(1)  # type: ignore[union-attr]
    r = client.post("/console/signin", data={"key": ADMIN_KEY, "pre": pre}, follow_redirects=False)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie and "Max-Age=" in cookie
    token = client.cookies.get("warden_console")
    assert token
    with Session(gov.engine) as s:
        rows = list(s.exec(select(ConsoleSessionRow)))
    assert len(rows) == 1 and rows[0].session_id != token and rows[0].key_id is None
    assert client.get("/console").status_code == 200
    # expiry: the session's end passes → back to the sign-in form
    with Session(gov.engine) as s:
        s.execute(update(ConsoleSessionRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        s.commit()
    r = client.get("/console/alerts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/signin?next=%2Fconsole%2Falerts"
    assert "session has ended" in client.get(r.headers["location"]).text
    # sign-out deletes the session; the old cookie is worthless
    operator = sign_in(gov, gov.keys[("operator", "acme")])
    old = operator.cookies.get("warden_console")
    assert operator.post("/console/signout", data={"csrf_token": csrf_of(operator)},
                         follow_redirects=False).status_code == 303
    replay = TestClient(gov.client.app, raise_server_exceptions=False, cookies={"warden_console": str(old)})
    assert replay.get("/console", follow_redirects=False).status_code == 303
    # revoking the key ends its sessions at once
    auditor = sign_in(gov, gov.keys[("auditor", "acme")])
    assert auditor.get("/console/audit").status_code == 200
    key_id = next(k["key_id"] for k in gov.client.get("/v1/keys", headers=gov.admin).json()["items"]
                  if k["name"] == "auditor-acme")
    assert gov.client.delete(f"/v1/keys/{key_id}", headers=gov.admin).status_code == 200
    assert auditor.get("/console/audit", follow_redirects=False).status_code == 303
    actions = [audit_trail.entry_view(r)["action"] for r in audit_trail.list_entries(gov.engine, limit=1000)[0]]
    assert actions.count("console.signed_in") == 3 and actions.count("console.signed_out") == 1
    gov.engine.dispose()


HOSTILE = [
    "/console/findings?cursor=%%%", "/console/findings?since=yesterday", "/console/findings?severity=dire",
    "/console/findings?until=9999-12-31T23:59:59-01:00", "/console/alerts?status=gone", "/console/alerts?cursor=abc",
    "/console/audit?cursor=-1", "/console/audit?since=0001-01-01T00:30:00%2B01:00", "/console?period=forever",
    "/console/models/acme/bot?alias=production&at=not-a-date", "/console/reports?tenant=acme&format=pdf",
    "/console/reports?tenant=acme&from=2030-01-01&to=2020-01-01", "/console/audit/export?format=xml",
    "/console/jobs?cursor=zz", "/console/models/acme/nope", "/console/findings/%00", "/console/nowhere",
]


def test_hostile_inputs_are_client_errors(database_url: str) -> None:
    gov = make_gov(database_url)
    _seed(gov)
    admin = sign_in(gov, ADMIN_KEY)
    for url in HOSTILE:
        r = admin.get(url, follow_redirects=False)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])
        if r.status_code >= 400:
            assert "text/html" in r.headers["content-type"], url  # an error page, not a JSON body
    csrf = csrf_of(admin)
    for url, form in (("/console/keys", {"role": "root", "tenants": "acme"}), ("/console/keys", {"role": "auditor"}),
                      (f"/console/alerts/{_alert(gov, 'acme')}/silence", {"reason": "", "hours": "2"}),
                      (f"/console/alerts/{_alert(gov, 'acme')}/silence", {"reason": "x", "hours": "-1"}),
                      (f"/console/alerts/{_alert(gov, 'acme')}/silence", {"reason": "x", "ends_at": "soon"})):
        r = admin.post(url, data={**form, "csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 422, (url, form, r.status_code, r.text[:300])
    r = admin.post("/console/keys", content=b'{"role": "admin"}', headers={"content-type": "application/json"})
    assert r.status_code == 415
    gov.engine.dispose()


def test_the_audit_page_checks_new_entries_quickly_and_shows_the_last_full_verification(database_url: str) -> None:
    """"Verify chain" checks the entries after the checkpoint; "Full verification" (a CSRF-guarded form) walks
    the whole chain and the page then shows when it ran, by whom, its result and its time, broken or not."""
    import sqlite3

    import psycopg

    gov = make_gov(database_url)
    auditor = sign_in(gov, gov.keys[("auditor", "*")])
    page_ = auditor.get("/console/audit").text
    assert "No full verification has run yet" in page_ and "Chain verified" not in page_
    assert auditor.post("/console/audit/verify", data={}, follow_redirects=False).status_code == 403  # no CSRF token
    r = auditor.post("/console/audit/verify", data={"csrf_token": csrf_of(auditor)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/audit?full=done"
    full = re.search(r'id="full-result">(.*?)</p>', auditor.get(r.headers["location"]).text, re.S)
    assert full and "Last full verification" in full.group(1) and "auditor-*" in full.group(1)
    assert "links from the first entry to the head" in full.group(1) and re.search(r"took \d+\.\d\d s", full.group(1))
    for i in range(3):
        audit_trail.record(gov.engine, actor="ops", action="x.y", target_type="t", target_id=str(i), after={"i": i})
    head = audit_trail.head(gov.engine)[0]
    quick = re.search(r'id="verify-result">(.*?)</p>', auditor.get("/console/audit?verify=1").text, re.S)
    assert quick and "Chain verified" in quick.group(1) and f"the 3 entries after the checkpoint (entries {head - 2}–{head})" in quick.group(1)
    # an entry changed after the full verification: the quick check has no new entry to look at; the full one
    # finds it, and the page says so (and the quick check, starting from the last good entry, too)
    if database_url.startswith("sqlite"):
        conn: Any = sqlite3.connect(database_url.split("///", 1)[1])
        conn.execute("DROP TRIGGER audit_log_no_update")
    else:
        conn = psycopg.connect(database_url)
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    conn.execute(f"UPDATE audit_log SET content = replace(content, '\"i\":0', '\"i\":7') WHERE seq = {head - 2}")
    conn.commit()
    conn.close()
    assert "Chain verified" in auditor.get("/console/audit?verify=1").text
    auditor.post("/console/audit/verify", data={"csrf_token": csrf_of(auditor)})
    page_ = auditor.get("/console/audit").text
    full = re.search(r'id="full-result">(.*?)</p>', page_, re.S)
    assert full and f"chain BROKEN at entry {head - 2}" in full.group(1) and 'role="alert" id="full-result"' in page_
    quick = re.search(r'id="verify-result">(.*?)</p>', auditor.get("/console/audit?verify=1").text, re.S)
    assert quick and f"Chain BROKEN at entry {head - 2}" in quick.group(1)
    gov.engine.dispose()
