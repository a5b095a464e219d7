"""``warden policy``: validate policy files and dry-run them over stored findings (no side effects)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from detectors.finding import Finding, Severity, Subject, Window
from store.models import assume_utc
from warden.settings import get_settings

app = typer.Typer(help="Validate policies and replay stored findings through them.", no_args_is_help=True)


def stored_findings(engine: Engine, since: datetime | None = None, batch: int = 5000) -> Iterator[Finding]:
    """Findings from the store in event-time order (streamed in batches)."""
    from store.models import FindingRow

    stmt = select(FindingRow).order_by(FindingRow.occurred_at, FindingRow.finding_id)
    if since is not None:
        stmt = stmt.where(FindingRow.occurred_at >= since)
    with Session(engine) as session:
        for row in session.execute(stmt.execution_options(yield_per=batch)).scalars():
            window = None
            if row.window_start is not None and row.window_end is not None:
                window = Window(start=assume_utc(row.window_start), end=assume_utc(row.window_end), n=row.window_n or 0)
            yield Finding(
                finding_id=row.finding_id, detector=row.detector, kind=row.kind,
                subject=Subject(tenant=row.tenant, model=row.model, version=row.version),
                severity=Severity(row.severity), score=row.score, summary=row.summary, evidence=row.evidence,
                event_id=row.event_id, window=window, occurred_at=assume_utc(row.occurred_at),
            )


@app.command("validate")
def validate(files: list[Path]) -> None:
    """Check policy files; errors name file, line and field."""
    from policies import PolicyError, load_policies

    try:
        policies = load_policies([str(f) for f in files])
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(policies)} policies OK: " + ", ".join(f"{p.id}@v{p.version}" for p in policies))


@app.command("test")
def test(
    files: list[Path],
    since: Optional[datetime] = typer.Option(None, help="replay findings from this time (ISO 8601)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    show: int = typer.Option(20, help="decisions to list"),
) -> None:
    """Replay stored findings through candidate policies and print what would fire (nothing is sent or stored)."""
    from rich.console import Console

    from policies import PolicyError, dry_run, load_policies
    from store.db import make_engine

    try:
        policies = load_policies([str(f) for f in files])
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    console = Console(stderr=True)
    with console.status("replaying stored findings …"):
        report = dry_run(policies, stored_findings(engine, assume_utc(since)), since=assume_utc(since))
    engine.dispose()
    typer.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else report.to_text(show=show))
