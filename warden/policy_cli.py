"""``warden policy``: validate policy files and dry-run them over stored findings (no side effects)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Optional

import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from detectors.finding import Finding, Severity, Subject, Window
from store.models import assume_utc
from warden.settings import get_settings

app = typer.Typer(help="Validate policies and replay stored findings through them.", no_args_is_help=True,
                  rich_markup_mode=None)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """A point in time from ``--since``: a duration back from now (``30s``, ``10m``, ``2h``, ``7d``, ``1w``)
    or an ISO 8601 date or time (``2026-11-26``, ``2026-11-26T12:00``, ``…Z`` or ``…+01:00``; UTC if no zone)."""
    now = now or datetime.now(UTC)
    m = _DURATION.match(value)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2).lower()])
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither a duration (10m, 2h, 7d) nor an ISO 8601 time (2026-11-26T12:00Z)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def stored_findings(engine: Engine, since: datetime | None = None, batch: int = 5000) -> Iterator[Finding]:
    """Findings from the store in event-time order (streamed in batches)."""
    from store.models import FindingRow

    stmt = select(FindingRow).order_by(col(FindingRow.occurred_at), col(FindingRow.finding_id))
    if since is not None:
        stmt = stmt.where(col(FindingRow.occurred_at) >= since)
    with Session(engine) as session:
        row: FindingRow
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
    since: Optional[str] = typer.Option(None, help="replay findings from this long ago (10m, 2h, 7d) or from this "
                                        "time (ISO 8601)"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    show: int = typer.Option(20, help="decisions to list"),
) -> None:
    """Replay stored findings through candidate policies and print what would fire (nothing is sent or stored)."""
    from rich.console import Console

    from policies import PolicyError, dry_run, load_policies
    from store.db import init_db, make_engine

    try:
        policies = load_policies([str(f) for f in files])
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    start = parse_since(since) if since else None
    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    init_db(engine)  # a store nothing has written to yet replays nothing, rather than failing
    console = Console(stderr=True)
    with console.status("replaying stored findings …"):
        report = dry_run(policies, stored_findings(engine, start), since=start)
    engine.dispose()
    typer.echo(json.dumps(report.to_dict(), indent=2, default=str) if as_json else report.to_text(show=show))
