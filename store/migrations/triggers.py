"""Database-side guards that make ``audit_log`` append-only (PostgreSQL and SQLite).

PostgreSQL: a trigger function raises on UPDATE and DELETE (row level) and on TRUNCATE (statement
level). SQLite: ``BEFORE UPDATE``/``BEFORE DELETE`` triggers ``RAISE(ABORT)``. Code refuses the same
statements first (see ``governance.audit``); these guards catch anyone going around the code.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION warden_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: %% refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def create_audit_guards(bind: Connection) -> None:
    """Install the append-only triggers on ``audit_log``."""
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(PG_FUNCTION)
        bind.exec_driver_sql(
            "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION warden_audit_append_only()")
        bind.exec_driver_sql(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION warden_audit_append_only()")
    else:
        bind.exec_driver_sql(
            "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END")
        bind.exec_driver_sql(
            "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
            "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END")


def drop_audit_guards(bind: Connection) -> None:
    """Remove the triggers (downgrade only)."""
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS warden_audit_append_only()")
    else:
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS audit_log_no_delete")
