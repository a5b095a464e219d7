"""Governance commands: ``warden keys create|list|revoke``, ``warden audit verify``, ``warden purge``.

They work on the store directly (``WARDEN_DATABASE_URL`` or the embedded SQLite file), so the first
keys can be made before the API runs. Every change is audited with the actor ``cli:<os user>``.
Mounted in ``warden/cli.py`` with one line: ``from warden.cli_governance import register; register(app)``.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from typing import Optional

import typer

keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True,
                       rich_markup_mode=None)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True, rich_markup_mode=None)


def _engine():
    from store.db import init_db, make_engine
    from warden.settings import get_settings

    engine = make_engine(get_settings().effective_database_url)
    init_db(engine)
    return engine


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:unknown"


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", help="admin | operator | auditor | producer"),
    tenant: list[str] = typer.Option(..., "--tenant", help="tenant the key may use (repeat; '*' = all)"),
    name: str = typer.Option("", "--name", help="a label for the key"),
    expires_days: Optional[float] = typer.Option(None, "--expires-days", help="expire after this many days"),
) -> None:
    """Create a key and print it ONCE (only its hash is stored)."""
    from sqlmodel import Session

    from governance import keys
    engine = _engine()
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    try:
        with Session(engine, expire_on_commit=False) as session:
            issued = keys.create_key(session, role=role, tenants=tenant, actor=_actor(), name=name, expires_at=expires)
            session.commit()
    except keys.KeyRequestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    row = issued.row
    typer.echo(issued.secret)
    typer.echo(f"key_id={row.key_id} prefix={row.prefix} role={row.role} tenants={','.join(row.tenants)}"
               + (f" expires_at={row.expires_at.isoformat()}" if row.expires_at else "")
               + "  (store the key now: it is not shown again)", err=True)


@keys_app.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table")) -> None:
    """List keys (no secrets)."""
    from governance import keys
    engine = _engine()
    rows = keys.list_keys(engine)
    engine.dispose()
    if not rows:
        typer.echo("no API keys yet (the bootstrap key WARDEN_ADMIN_KEY is not stored); create one with "
                   "`warden keys create --role auditor --tenant <tenant>`", err=True)
        return
    for r in rows:
        view = keys.public_view(r)
        if as_json:
            typer.echo(json.dumps(view, default=str))
        else:
            state = "revoked" if r.revoked_at else "active"
            typer.echo(f"{r.key_id}  {r.prefix}  {r.role:<8}  {','.join(r.tenants):<20}  {state:<7}  {r.name}")


@keys_app.command("revoke")
def keys_revoke(key: str = typer.Argument(..., help="key id or prefix")) -> None:
    """Revoke a key (immediately refused by the API)."""
    from sqlmodel import Session

    from governance import keys
    engine = _engine()
    try:
        with Session(engine) as session:
            row = keys.revoke_key(session, key, actor=_actor())
            session.commit()
            typer.echo(f"revoked {row.key_id} ({row.prefix})")
    except keys.KeyRequestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


@audit_app.command("verify")
def audit_verify(as_json: bool = typer.Option(False, "--json", help="print the result as JSON")) -> None:
    """Verify the whole chain (recorded as the last full verification); exit 1 and name the first broken
    entry if it is not intact."""
    from governance import audit
    engine = _engine()
    result = audit.verify_full(engine, by="warden audit verify (command line)")
    engine.dispose()
    if as_json:
        typer.echo(json.dumps(result.as_dict()))
    elif result.ok:
        typer.echo(f"ok: {result.checked} entries, head seq {result.head_seq} hash {result.head_hash} "
                   f"({result.seconds:.2f}s)")
    else:
        typer.echo(f"BROKEN at seq {result.first_broken_seq}: {result.reason}")
    if not result.ok:
        raise typer.Exit(1)


def purge(dry_run: bool = typer.Option(False, "--dry-run", help="count only, delete nothing")) -> None:
    """Delete findings, decisions, alerts, DLQ records and training samples older than their retention (audited)."""
    from governance import retention
    from warden.settings import get_settings

    default = get_settings().retention()
    engine = _engine()
    result = retention.purge(engine, retention.get_retention(engine, default), actor=_actor(), dry_run=dry_run)
    engine.dispose()
    typer.echo(json.dumps(result))


def register(app: typer.Typer) -> None:
    """Mount the governance commands on the ``warden`` CLI."""
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
    app.command("purge")(purge)
