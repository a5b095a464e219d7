"""Schemathesis against the OpenAPI spec, in-process (ASGI) on SQLite and PostgreSQL: no input gives a 5xx.

Every operation is fuzzed with a bounded number of generated examples, called with the bootstrap
admin key (every route admits admin) on a database seeded with findings, alerts, a model and keys.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from governance.alerting import AlertingConfig
from governance.ingest import persist_batch
from streams.pipeline import Pipeline
from tests.events import inference, raw
from tests.integration.test_governance_harness import ADMIN_KEY, make_gov

ALERTING = AlertingConfig()  # record only: these tests route no alert anywhere


MAX_EXAMPLES = 20


def _seeded_app(database_url: str):  # type: ignore[no-untyped-def]
    gov = make_gov(database_url, with_keys=False)
    p = Pipeline()
    outs = [p.process(raw(inference(f"fz-{i}", status="error")), topic="warden.inference", partition=0, offset=i)
            for i in range(5)]
    persist_batch(gov.engine, [f for o in outs for f in o.findings], [d for o in outs for d in o.decisions], alerting=ALERTING)
    gov.request("POST", "/v1/registry/acme/models/bot/versions", json={"version": "1", "artifact_uri": "s3://m/1"})
    return gov


@pytest.mark.postgres
def test_no_input_gives_a_server_error(database_url: str) -> None:
    gov = _seeded_app(database_url)
    schema = schemathesis.openapi.from_asgi("/openapi.json", gov.client.app)
    failures: list[str] = []
    operations = 0
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def fuzz(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {ADMIN_KEY}"}
            response = case.call()
            calls += 1
            assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                                response.text[:300])

        try:
            fuzz()
        except Exception as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {type(exc).__name__}: {str(exc)[:600]}")
    gov.engine.dispose()
    assert operations >= 29 and calls >= operations * 2
    assert failures == []


EDGE_CASES = [
    ("GET", "/v1/reports/compliance/acme", {"params": {"to": "0001-01-01T00:00:00Z"}}),
    ("GET", "/v1/reports/compliance/acme", {"params": {"from": "0001-01-01T00:30:00+01:00", "to": "9999-12-31T23:59:59-01:00"}}),
    ("GET", "/v1/audit", {"params": {"since": "0001-01-01T00:30:00+01:00"}}),
    ("GET", "/v1/audit/export", {"params": {"from": "0001-01-01T00:30:00+01:00"}}),
    ("GET", "/v1/registry/acme/models/bot/aliases/production/history", {"params": {"at": "0001-01-01T00:30:00+01:00"}}),
    ("POST", "/v1/keys", {"json": {"role": "admin", "tenants": ["a"], "expires_at": "9999-12-31T23:59:59-01:00"}}),
    ("POST", "/v1/keys", {"json": {"role": "admin", "tenants": ["a\u0000"], "name": "\u0000"}}),
    ("POST", "/v1/registry/acme/models", {"json": {"name": "ok", "description": "nul \u0000 inside"}}),
    ("POST", "/v1/registry/acme/models/bot/versions", {"json": {"version": "9", "artifact_uri": "x\u0000"}}),
    ("PUT", "/v1/registry/acme/models/bot/aliases/production", {"json": {"version": "1", "reason": "\u0000"}}),
    ("POST", "/v1/lifecycle/erasure", {"json": {"user_id": "\u0000"}}),
    ("GET", "/v1/audit", {"params": {"actor": "a\u0001b", "cursor": "123"}}),
]


@pytest.mark.postgres
def test_values_the_calendar_or_database_refuse_are_client_errors(database_url: str) -> None:
    """Year 1 / year 9999 with offsets overflow, PostgreSQL text cannot hold NUL: 4xx, never 5xx."""
    from fastapi.testclient import TestClient

    gov = _seeded_app(database_url)
    client = TestClient(gov.client.app, raise_server_exceptions=False)
    for method, path, kw in EDGE_CASES:
        r = client.request(method, path, headers=gov.admin, **kw)
        assert r.status_code < 500, (method, path, kw, r.status_code, r.text[:300])
    assert client.get("/v1/audit/verify", headers=gov.admin).json()["ok"]
    gov.engine.dispose()
