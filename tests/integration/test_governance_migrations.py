"""Alembic migrations on SQLite and PostgreSQL: they match the models, upgrade a pre-migration
database in place, and go down and up again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from governance import audit
from store import models, rollups
from store.db import alembic_config, init_db, make_engine

pytestmark = pytest.mark.postgres


def _table_of(diff: Any) -> str:
    """The table an Alembic autogenerate diff is about."""
    if isinstance(diff, list):  # column modifications: [("modify_type", schema, table, column, ...), ...]
        return str(diff[0][2])
    kind, obj = diff[0], diff[1]
    if kind in ("add_table", "remove_table"):
        return str(obj.name)
    if kind in ("add_column", "remove_column"):
        return str(diff[2])
    table = getattr(obj, "table", None)
    if table is None:
        table = getattr(obj, "parent", None)
    return str(getattr(table, "name", ""))


def test_migrations_match_the_models(database_url: str) -> None:
    """The store's own tables (store.models) are exactly what the migrations build (the alerting
    tables are checked by their own test)."""
    engine = make_engine(database_url)
    init_db(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    mine = {m.__tablename__ for m in vars(models).values()
            if isinstance(m, type) and issubclass(m, SQLModel) and hasattr(m, "__tablename__")}
    assert {"audit_log", "api_keys", "findings", "model_alias_history"} <= mine
    diff = [d for d in diff if _table_of(d) in mine]
    assert diff == []
    with engine.connect() as conn:
        indexes = {i["name"] for t in ("findings", "alerts", "audit_log", "model_alias_history")
                   for i in inspect(conn).get_indexes(t)}
    assert {"ix_findings_tenant_time", "ix_alerts_tenant_last_seen", "ix_audit_tenant_seq",
            "ix_alias_history_lookup"} <= indexes
    engine.dispose()


def test_upgrades_a_database_made_before_migrations(database_url: str) -> None:
    engine = make_engine(database_url)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_spine")
        conn.execute(text("DROP TABLE alembic_version"))  # what `create_all` used to leave behind
        conn.execute(text("INSERT INTO findings (finding_id, detector, kind, tenant, model, severity, score, summary, "
                          "evidence, occurred_at, recorded_at) VALUES ('f1', 'rule', 'k', 'acme', 'bot', 2, 1.0, 's', "
                          "'{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO findings (finding_id, detector, kind, tenant, model, severity, score, summary, "
                          "evidence, occurred_at, recorded_at) VALUES ('f2', 'pii', 'pii_detected', 'acme', 'bot', 3, "
                          "1.0, 's', '{\"entity_types\": [\"PERSON\", \"EMAIL_ADDRESS\"], \"counts\": "
                          "{\"EMAIL_ADDRESS\": 2}}', '2026-01-01 00:30:00', '2026-01-01 00:30:00')"))
    init_db(engine)
    init_db(engine)
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        assert conn.execute(text("SELECT finding_id, user_hash FROM findings ORDER BY finding_id")).all() == \
            [("f1", None), ("f2", None)]
        # the rollups were counted from the findings already stored (0009)
        at = conn.execute(text("SELECT occurred_at FROM findings WHERE finding_id = 'f1'")).scalar_one()
        at = at if isinstance(at, datetime) else datetime.fromisoformat(at)
        hour, day = rollups.bucket_of(at, 3600), rollups.bucket_of(at, 86400)
        assert conn.execute(text("SELECT tenant, bucket, detector, severity, n FROM finding_counts ORDER BY detector")
                            ).all() == [("acme", hour, "pii", 3, 1), ("acme", hour, "rule", 2, 1)]
        assert conn.execute(text("SELECT tenant, bucket, model, kind, n FROM finding_counts_daily ORDER BY kind")
                            ).all() == [("acme", day, "bot", "k", 1), ("acme", day, "bot", "pii_detected", 1)]
        assert conn.execute(text("SELECT bucket, model, entity_type, n FROM pii_entity_counts")).all() == \
            [(day, "bot", "EMAIL_ADDRESS", 2)]  # the counts, not the types, when both are given
    assert audit.verify(engine).ok
    engine.dispose()


def test_downgrade_and_upgrade_again(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    audit.record(engine, actor="a", action="x.y", target_type="t", target_id="1")
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001_spine")
    assert "audit_log" not in inspect(engine).get_table_names()
    init_db(engine)
    assert {"audit_log", "audit_head", "api_keys", "model_alias_history"} <= set(inspect(engine).get_table_names())
    assert audit.head(engine) == (0, audit.GENESIS)
    engine.dispose()
