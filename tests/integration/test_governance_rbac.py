"""Every route × every role × own tenant / other tenant, on SQLite and PostgreSQL.

The walk reads the roles each route declares (``api.auth.roles_of``) and checks the API enforces
exactly them: a declared role gets through (no 401/403, no 5xx), any other role gets 403; a key
scoped to another tenant gets 403 on tenant-bound routes; no key or a bad key gets 401. A route
added without a declaration, or without a sample request here, fails the test.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from api.auth import iter_api_routes, roles_of
from detectors.finding import Finding, Subject
from governance.alerting import AlertingConfig
from governance.ingest import persist_batch
from governance.keys import ROLES
from store.models import AlertRow, FindingRow
from store.repository import page
from streams.pipeline import Pipeline, PipelineConfig
from tests.events import inference, raw
from tests.integration.test_governance_harness import Gov, make_gov

ALERTING = AlertingConfig()  # record only: these tests route no alert anywhere


pytestmark = pytest.mark.postgres

PUBLIC = {("GET", "/healthz"), ("GET", "/metrics")}
# The web console authenticates with a session cookie, not a bearer key, and answers in HTML: its routes
# are walked role by role (with sessions, CSRF and tenants) in test_console_routes.py, not here.
CONSOLE = "/console"


def _api_routes(gov: Gov) -> dict[tuple[str, str], tuple[str, ...] | None]:
    return {(m, r.path): roles_of(r) for r in iter_api_routes(gov.client.app.routes) for m in r.methods - {"HEAD"}
            if not r.path.startswith(CONSOLE)}


def _seed(gov: Gov) -> None:
    p = Pipeline()
    for tenant in ("acme", "globex"):
        outs = [p.process(raw(inference(f"{tenant}-ev-{i}", status="error", tenant=tenant)), topic="warden.inference",
                          partition=0, offset=i) for i in range(3)]
        persist_batch(gov.engine, [f for o in outs for f in o.findings], [d for o in outs for d in o.decisions], alerting=ALERTING)
    for tenant in ("acme", "globex"):
        r = gov.request("POST", f"/v1/registry/{tenant}/models/bot/versions", json={"version": "v1", "artifact_uri": "s3://m/v1"})
        assert r.status_code == 201, r.text
        persist_batch(gov.engine, [_drift_finding(tenant)], alerting=ALERTING)


def _drift_finding(tenant: str) -> Finding:
    rows = [{"response_chars": 100 + i % 7, "finish_reason": "stop"} for i in range(40)]
    wide = [{"response_chars": 400 + i % 9, "finish_reason": "stop"} for i in range(40)]
    return Finding.create(detector="drift", kind="distribution_drift", subject=Subject(tenant=tenant, model="bot",
                          version="v1"), severity="high", score=0.9, summary="response_chars drifted",
                          evidence={"drifted": ["response_chars"], "samples": {"reference": rows, "current": wide}},
                          key="rbac")


def _job_id(gov: Gov, tenant: str) -> str:
    r = gov.request("POST", "/v1/jobs", json={"kind": "rollback", "tenant": tenant, "model": "bot",
                                              "approval": "required", "idempotency_key": f"k{next(_n)}"})
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def _alert_id(gov: Gov, tenant: str) -> str:
    rows = page(gov.engine, AlertRow, time_col="last_seen", key_col="alert_id", filters=[AlertRow.tenant == tenant]).items
    return rows[0].alert_id


def _SILENCE(tenant: str) -> dict[str, Any]:
    return {"tenant": tenant, "matchers": [{"name": "model", "value": "bot"}], "ends_at": "2031-01-01T00:00:00Z"}


def _silence_id(gov: Gov, tenant: str) -> str:
    r = gov.request("POST", "/v1/silences", json=_SILENCE(tenant))
    assert r.status_code == 201, r.text
    return str(r.json()["silence_id"])


Sample = Callable[[Gov, str], tuple[str, dict[str, Any]]]

# (method, route path) -> (sample request for tenant t, tenant-bound?, needs a key over every tenant?)
SAMPLES: dict[tuple[str, str], tuple[Sample, bool, bool]] = {
    ("POST", "/v1/events"): (lambda g, t: ("/v1/events", {"content": raw(inference("rbac-ev", tenant=t))}), True, False),
    ("POST", "/v1/traces"): (lambda g, t: ("/v1/traces", {"content": _otlp(t), "headers_extra":
                                                          {"Content-Type": "application/json"}}), True, False),
    ("GET", "/v1/schema"): (lambda g, t: ("/v1/schema", {}), False, False),
    ("GET", "/v1/findings"): (lambda g, t: ("/v1/findings", {"params": {"tenant": t}}), True, False),
    ("GET", "/v1/alerts"): (lambda g, t: ("/v1/alerts", {"params": {"tenant": t}}), True, False),
    ("GET", "/v1/dlq"): (lambda g, t: ("/v1/dlq", {"params": {"tenant": t}}), True, False),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"):
        (lambda g, t: (f"/v1/alerts/{_alert_id(g, t)}/acknowledge", {"json": {"reason": "looking"}}), True, False),
    ("POST", "/v1/alerts/{alert_id}/resolve"):
        (lambda g, t: (f"/v1/alerts/{_alert_id(g, t)}/resolve", {"json": {}}), True, False),
    ("GET", "/v1/alerts/{alert_id}/history"): (lambda g, t: (f"/v1/alerts/{_alert_id(g, t)}/history", {}), True, False),
    ("GET", "/v1/deliveries"): (lambda g, t: ("/v1/deliveries", {"params": {"tenant": t}}), True, False),
    ("POST", "/v1/silences"): (lambda g, t: ("/v1/silences", {"json": _SILENCE(t)}), True, False),
    ("GET", "/v1/silences"): (lambda g, t: ("/v1/silences", {"params": {"tenant": t}}), True, False),
    ("GET", "/v1/silences/{silence_id}"): (lambda g, t: (f"/v1/silences/{_silence_id(g, t)}", {}), True, False),
    ("DELETE", "/v1/silences/{silence_id}"): (lambda g, t: (f"/v1/silences/{_silence_id(g, t)}", {}), True, False),
    ("POST", "/v1/keys"): (lambda g, t: ("/v1/keys", {"json": {"role": "auditor", "tenants": [t]}}), True, False),
    ("GET", "/v1/keys"): (lambda g, t: ("/v1/keys", {}), False, False),
    ("DELETE", "/v1/keys/{key_id}"): (
        lambda g, t: (f"/v1/keys/{g.request('POST', '/v1/keys', json={'role': 'producer', 'tenants': [t]}).json()['key_id']}", {}),
        True, False),
    ("GET", "/v1/audit"): (lambda g, t: ("/v1/audit", {"params": {"tenant": t}}), True, False),
    ("GET", "/v1/audit/verify"): (lambda g, t: ("/v1/audit/verify", {}), False, False),
    ("GET", "/v1/audit/head"): (lambda g, t: ("/v1/audit/head", {}), False, False),
    ("GET", "/v1/audit/export"): (lambda g, t: ("/v1/audit/export", {"params": {"format": "csv"}}), False, False),
    ("GET", "/v1/registry/{tenant}/models"): (lambda g, t: (f"/v1/registry/{t}/models", {}), True, False),
    ("POST", "/v1/registry/{tenant}/models"): (
        lambda g, t: (f"/v1/registry/{t}/models", {"json": {"name": f"m{next(_n)}"}}), True, False),
    ("GET", "/v1/registry/{tenant}/models/{model}"): (lambda g, t: (f"/v1/registry/{t}/models/bot", {}), True, False),
    ("GET", "/v1/registry/{tenant}/models/{model}/versions"):
        (lambda g, t: (f"/v1/registry/{t}/models/bot/versions", {}), True, False),
    ("POST", "/v1/registry/{tenant}/models/{model}/versions"): (
        lambda g, t: (f"/v1/registry/{t}/models/bot/versions",
                      {"json": {"version": f"v{next(_n)}", "artifact_uri": "s3://m/x", "parent_version": "v1"}}),
        True, False),
    ("GET", "/v1/registry/{tenant}/models/{model}/versions/{version}"):
        (lambda g, t: (f"/v1/registry/{t}/models/bot/versions/v1", {}), True, False),
    ("GET", "/v1/registry/{tenant}/models/{model}/versions/{version}/lineage"):
        (lambda g, t: (f"/v1/registry/{t}/models/bot/versions/v1/lineage", {}), True, False),
    ("GET", "/v1/models/{model}/versions/{version}/lineage"):
        (lambda g, t: ("/v1/models/bot/versions/v1/lineage", {"params": {"tenant": t}}), True, False),
    ("GET", "/v1/registry/{tenant}/models/{model}/aliases"):
        (lambda g, t: (f"/v1/registry/{t}/models/bot/aliases", {}), True, False),
    ("PUT", "/v1/registry/{tenant}/models/{model}/aliases/{alias}"):
        (lambda g, t: (f"/v1/registry/{t}/models/bot/aliases/staging", {"json": {"version": "v1"}}), True, False),
    ("GET", "/v1/registry/{tenant}/models/{model}/aliases/{alias}/history"):
        (lambda g, t: (f"/v1/registry/{t}/models/bot/aliases/staging/history", {}), True, False),
    ("GET", "/v1/reports/compliance/{tenant}"): (lambda g, t: (f"/v1/reports/compliance/{t}", {}), True, False),
    ("GET", "/v1/lifecycle/retention"): (lambda g, t: ("/v1/lifecycle/retention", {}), False, False),
    ("PUT", "/v1/lifecycle/retention"): (lambda g, t: ("/v1/lifecycle/retention", {"json": {"findings_days": 120}}), False, True),
    ("POST", "/v1/lifecycle/purge"): (lambda g, t: ("/v1/lifecycle/purge", {"params": {"dry_run": True}}), False, True),
    ("POST", "/v1/lifecycle/erasure"): (lambda g, t: ("/v1/lifecycle/erasure", {"json": {"user_id": "u-1"}}), False, False),
    ("POST", "/v1/jobs"): (lambda g, t: ("/v1/jobs", {"json": {"kind": "retrain", "tenant": t, "model": "bot",
                                                               "approval": "required"}}), True, False),
    ("GET", "/v1/jobs"): (lambda g, t: ("/v1/jobs", {"params": {"tenant": t}}), True, False),
    ("GET", "/v1/jobs/{job_id}"): (lambda g, t: (f"/v1/jobs/{_job_id(g, t)}", {}), True, False),
    ("POST", "/v1/jobs/{job_id}/approve"): (lambda g, t: (f"/v1/jobs/{_job_id(g, t)}/approve", {}), True, False),
    ("POST", "/v1/jobs/{job_id}/cancel"): (lambda g, t: (f"/v1/jobs/{_job_id(g, t)}/cancel", {}), True, False),
    ("GET", "/v1/models/{name}/drift-report"):
        (lambda g, t: ("/v1/models/bot/drift-report", {"params": {"tenant": t, "format": "json"}}), True, False),
}
_n = itertools.count(100)
INGEST = {("POST", "/v1/events"), ("POST", "/v1/traces")}


def _otlp(tenant: str) -> bytes:
    """One OTLP/JSON chat span of ``tenant``."""
    attr = [{"key": "warden.tenant", "value": {"stringValue": tenant}},
            {"key": "service.name", "value": {"stringValue": "bot"}}]
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": f"{next(_n):016x}", "name": "chat m",
            "startTimeUnixNano": "1764158400000000000", "endTimeUnixNano": "1764158401000000000",
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}]}
    return json.dumps({"resourceSpans": [{"resource": {"attributes": attr}, "scopeSpans": [{"spans": [span]}]}]}).encode()


def _error_code(response: Any) -> str:
    """The machine-readable error of an answer: ``detail.error``, or an OTLP Status's ErrorInfo reason."""
    body = response.json()
    if "detail" in body:
        return str(body["detail"]["error"])
    return str(next(d["reason"] for d in body["details"] if d["@type"].endswith("google.rpc.ErrorInfo")))


def _call(gov: Gov, method: str, url: str, kw: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    kw = dict(kw)
    extra = kw.pop("headers_extra", {})
    return gov.client.request(method, url, headers={**extra, **(headers or {})}, **kw)


def test_every_route_declares_roles_and_has_a_sample(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gov = make_gov(f"sqlite:///{tmp_path / 'w.db'}", with_keys=False)
    routes = _api_routes(gov)
    undeclared = sorted(k for k, roles in routes.items() if roles is None and k not in PUBLIC)
    assert undeclared == [], f"routes without a role declaration: {undeclared}"
    missing = sorted(set(routes) - set(SAMPLES) - PUBLIC)
    assert missing == [], f"routes without a sample request in this test: {missing}"
    assert sorted(set(SAMPLES) - set(routes)) == []
    # the role semantics, spot-checked from the declarations
    assert all(routes[k] == ("admin", "producer") for k in INGEST)
    assert all("auditor" in roles for (m, _), roles in routes.items() if m == "GET" and roles)
    assert all("auditor" not in roles for (m, _), roles in routes.items() if m != "GET" and roles)
    assert all(roles == ("admin", "operator", "auditor", "producer") or "producer" not in roles
               for k, roles in routes.items() if roles and k not in INGEST)


def test_route_role_tenant_walk(database_url: str) -> None:
    gov = make_gov(database_url)
    _seed(gov)
    routes = _api_routes(gov)
    checked = 0
    for (method, path), roles in sorted(routes.items()):
        if (method, path) in PUBLIC:
            assert gov.client.request(method, path).status_code < 500
            continue
        assert roles is not None
        sample, tenant_bound, needs_all = SAMPLES[(method, path)]
        url, kw = sample(gov, "acme")
        assert _call(gov, method, url, kw).status_code == 401, (method, path, "no key")
        assert _call(gov, method, url, kw, gov.auth("wdn_00000000_nope")).status_code == 401
        for role in ROLES:
            url, kw = sample(gov, "acme")
            own = _call(gov, method, url, kw, gov.as_(role, "acme"))
            url, kw = sample(gov, "acme")
            every = _call(gov, method, url, kw, gov.as_(role, "*"))
            url, kw = sample(gov, "acme")
            other = _call(gov, method, url, kw, gov.as_(role, "globex"))
            ctx = (method, path, role, own.status_code, own.text[:200])
            if role not in roles:
                assert (own.status_code, every.status_code, other.status_code) == (403, 403, 403), ctx
                assert _error_code(own) == "role_forbidden"
                continue
            assert every.status_code < 400, (method, path, role, every.status_code, every.text[:200])
            if needs_all:
                assert own.status_code == 403 and _error_code(own) == "tenant_forbidden", ctx
            else:
                assert own.status_code < 400, ctx
            if tenant_bound:
                assert other.status_code in (403, 404), (method, path, role, "other tenant", other.status_code)
            elif not needs_all:
                assert other.status_code < 400, (method, path, role, "other tenant", other.status_code)
            checked += 1
    assert checked >= 40
    gov.engine.dispose()


def test_reads_are_limited_to_the_keys_tenants(database_url: str) -> None:
    gov = make_gov(database_url)
    _seed(gov)
    for key_tenant, expected in (("acme", {"acme"}), ("globex", {"globex"}), ("*", {"acme", "globex"})):
        headers = gov.as_("auditor", key_tenant)
        findings = gov.client.get("/v1/findings", headers=headers, params={"limit": 1000}).json()["items"]
        alerts = gov.client.get("/v1/alerts", headers=headers).json()["items"]
        audit = gov.client.get("/v1/audit", headers=headers, params={"limit": 1000}).json()["items"]
        assert {f["tenant"] for f in findings} == expected
        assert {a["tenant"] for a in alerts} == expected
        assert {e["tenant"] for e in audit} - {None} == expected
        if key_tenant != "*":
            assert all(e["tenant"] == key_tenant for e in audit)
    total = len(page(gov.engine, FindingRow, time_col="occurred_at", key_col="finding_id", limit=1000).items)
    acme = gov.client.get("/v1/findings", headers=gov.as_("operator", "acme"), params={"limit": 1000}).json()["items"]
    assert 0 < len(acme) < total
    # an acme alert is invisible (404) to a globex operator, and not acknowledged by the attempt
    alert = _alert_id(gov, "acme")
    assert gov.client.post(f"/v1/alerts/{alert}/acknowledge", headers=gov.as_("operator", "globex")).status_code == 404
    assert gov.client.get("/v1/alerts", headers=gov.admin, params={"tenant": "acme"}).json()["items"][0]["status"] == "triggered"
    # a producer may only ingest for its tenants
    r = gov.client.post("/v1/events", headers=gov.as_("producer", "globex"), content=raw(inference("x1", tenant="acme")))
    assert r.status_code == 403
    r = gov.client.post("/v1/events", headers=gov.as_("producer", "acme"), content=raw(inference("x2", tenant="acme")))
    assert r.status_code == 202 and gov.producer.sent[-1][0] == "warden.inference"
    gov.engine.dispose()


def test_dead_letters_are_read_by_the_tenant_their_payload_names(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    bad_type = inference("dl-1", tenant="acme")
    bad_type["inference"]["latency_ms"] = "fast"
    old_version = {**inference("dl-2", tenant="globex"), "schema_version": "0"}
    pipe = Pipeline(PipelineConfig(pii=None, drift=None))
    letters = [pipe.process(p, topic="warden.inference", partition=0, offset=i).dead_letter
               for i, p in enumerate([raw(bad_type), raw(old_version), b'{"tenant": "acme", oops'])]
    assert [d.tenant for d in letters] == ["acme", "globex", None]  # malformed JSON names no tenant
    persist_batch(gov.engine, dead_letters=letters, alerting=ALERTING)
    acme = gov.auth(gov.request("POST", "/v1/keys", json={"role": "auditor", "tenants": ["acme"]}).json()["key"])
    seen = gov.client.get("/v1/dlq", headers=acme).json()["items"]
    assert [(d["event_id"], d["tenant"], d["code"]) for d in seen] == [("dl-1", "acme", "validation_error")]
    assert gov.client.get("/v1/dlq", headers=acme, params={"tenant": "globex"}).status_code == 403
    everyone = gov.client.get("/v1/dlq", headers=gov.admin).json()["items"]
    assert sorted(str(d["tenant"]) for d in everyone) == ["None", "acme", "globex"]
    gov.engine.dispose()
