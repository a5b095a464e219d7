"""API keys on SQLite and PostgreSQL: shown once, stored hashed, prefix, expiry, revocation, CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from governance import keys
from tests.integration.test_governance_harness import make_gov
from warden.cli_governance import register

pytestmark = pytest.mark.postgres


def test_key_lifecycle_through_the_api(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    r = gov.request("POST", "/v1/keys", json={"role": "auditor", "tenants": ["acme"], "name": "compliance"})
    assert r.status_code == 201
    body = r.json()
    secret, prefix = body["key"], body["prefix"]
    assert secret.startswith(f"wdn_{prefix}_") and len(secret) > 40 and "key_hash" not in body
    # only the hash is stored; the secret appears nowhere in the database
    with gov.engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash, prefix FROM api_keys WHERE key_id = :k"), {"k": body["key_id"]}).one()
        everything = " ".join(str(v) for t in ("api_keys", "audit_log")
                              for row in conn.execute(text(f"SELECT * FROM {t}")) for v in row)
    assert stored == (keys.hash_key(secret), prefix) and secret not in everything
    listed = gov.client.get("/v1/keys", headers=gov.admin).json()["items"]
    assert [k["prefix"] for k in listed] == [prefix] and "key" not in listed[0] and "key_hash" not in listed[0]
    assert gov.client.get("/v1/audit", headers=gov.auth(secret)).status_code == 200
    # a tampered secret with the right prefix is refused
    assert gov.client.get("/v1/audit", headers=gov.auth(secret[:-2] + "xx")).status_code == 401
    # revocation takes effect at once (by prefix), and is idempotent
    assert gov.request("DELETE", f"/v1/keys/{prefix}").json()["revoked_at"] is not None
    assert gov.client.get("/v1/audit", headers=gov.auth(secret)).status_code == 401
    assert gov.request("DELETE", f"/v1/keys/{body['key_id']}").status_code == 200
    assert gov.request("DELETE", "/v1/keys/nope").status_code == 404
    # bad requests
    assert gov.request("POST", "/v1/keys", json={"role": "root", "tenants": ["acme"]}).status_code == 422
    assert gov.request("POST", "/v1/keys", json={"role": "admin", "tenants": []}).status_code == 422
    assert gov.request("POST", "/v1/keys", json={"role": "admin", "tenants": ["acme"],
                                                "expires_at": "2001-01-01T00:00:00Z"}).status_code == 422
    gov.engine.dispose()


def test_expiry_and_tenant_limits_of_key_creation(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    soon = datetime.now(UTC) + timedelta(hours=1)
    key = gov.request("POST", "/v1/keys", json={"role": "admin", "tenants": ["acme"], "expires_at": soon.isoformat()}).json()
    assert gov.client.get("/v1/keys", headers=gov.auth(key["key"])).status_code == 200
    assert keys.authenticate(gov.engine, key["key"], now=soon + timedelta(seconds=1)) is None
    assert keys.authenticate(gov.engine, key["key"], now=soon - timedelta(seconds=1)) is not None
    # an acme admin may make acme keys only, sees only acme keys, and may not revoke others
    acme_admin = gov.auth(key["key"])
    assert gov.client.post("/v1/keys", headers=acme_admin, json={"role": "auditor", "tenants": ["acme"]}).status_code == 201
    for tenants in (["globex"], ["*"], ["acme", "globex"]):
        r = gov.client.post("/v1/keys", headers=acme_admin, json={"role": "auditor", "tenants": tenants})
        assert r.status_code == 403, tenants
    other = gov.request("POST", "/v1/keys", json={"role": "auditor", "tenants": ["globex"]}).json()
    assert gov.client.delete(f"/v1/keys/{other['key_id']}", headers=acme_admin).status_code == 404
    seen = {tuple(k["tenants"]) for k in gov.client.get("/v1/keys", headers=acme_admin).json()["items"]}
    assert seen == {("acme",)}
    # the bootstrap key (WARDEN_ADMIN_KEY) is an admin over every tenant
    assert gov.client.get("/v1/dlq", headers=gov.admin).status_code == 200
    gov.engine.dispose()


def test_cli_create_list_revoke_and_verify(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gov = make_gov(database_url, with_keys=False)
    monkeypatch.setenv("WARDEN_DATABASE_URL", database_url)
    app = typer.Typer()
    app.command("noop")(lambda: None)
    register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["keys", "create", "--role", "auditor", "--tenant", "acme", "--name", "cli-made"])
    assert res.exit_code == 0, res.output
    secret = res.stdout.strip().splitlines()[0]
    assert secret.startswith("wdn_")
    assert gov.client.get("/v1/audit", headers=gov.auth(secret), params={"tenant": "acme"}).status_code == 200
    assert gov.client.get("/v1/audit", headers=gov.auth(secret), params={"tenant": "globex"}).status_code == 403
    res = runner.invoke(app, ["keys", "list", "--json"])
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["cli-made"] and rows[0]["tenants"] == ["acme"]
    assert runner.invoke(app, ["keys", "create", "--role", "root", "--tenant", "acme"]).exit_code == 2
    assert runner.invoke(app, ["keys", "revoke", rows[0]["prefix"]]).exit_code == 0
    assert gov.client.get("/v1/audit", headers=gov.auth(secret)).status_code == 401
    res = runner.invoke(app, ["audit", "verify", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[0])["checked"] == 2
    res = runner.invoke(app, ["audit", "verify"])
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 1 and "2 entries" in res.stdout
    entries = gov.client.get("/v1/audit", headers=gov.admin).json()["items"]
    assert [e["action"] for e in entries] == ["key.revoked", "key.created"]
    assert all(e["actor"].startswith("cli:") for e in entries)
    res = runner.invoke(app, ["purge", "--dry-run"])
    assert res.exit_code == 0 and json.loads(res.stdout)["dry_run"] is True
    gov.engine.dispose()
