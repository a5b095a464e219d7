"""The ``warden`` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Optional

import typer

from warden.settings import get_settings

app = typer.Typer(help="Warden: monitor and govern LLMs in production.", no_args_is_help=True, rich_markup_mode=None)


@app.command()
def up(
    demo: bool = typer.Option(False, "--demo", help="also send demo traffic"),
    rate: float = typer.Option(20.0, help="demo events per second"),
) -> None:
    """Start everything on this machine: embedded broker (unless WARDEN_KAFKA_BOOTSTRAP), worker, API."""
    from warden.logs import configure_logging
    from warden.runtime import run_up

    settings = get_settings()
    configure_logging("up", settings.log_level, settings.log_json)
    raise typer.Exit(run_up(settings, demo=demo, rate=rate))


@app.command()
def worker() -> None:
    """Run a stream worker (faust; scale with more workers and partitions)."""
    from warden.roles import run_worker

    run_worker(get_settings())


@app.command()
def api() -> None:
    """Run the governance service (FastAPI + its Kafka consumer)."""
    from warden.roles import run_api

    run_api(get_settings())


@app.command()
def jobs() -> None:
    """Run a job worker (retrain, evaluate, rollback; a consumer group on warden.jobs — one per GPU)."""
    from jobs.history_store import StoreHistory
    from jobs.runner import run_worker as run_jobs
    from jobs.store_registry import StoreRegistry
    from store.db import init_db, make_engine
    from warden.logs import configure_logging
    from warden.metrics import serve as serve_metrics

    settings = get_settings()
    configure_logging("jobs", settings.log_level, settings.log_json)
    engine = make_engine(settings.effective_database_url)
    init_db(engine)  # the registry and the training history live in the governance store
    serve_metrics(settings.jobs_metrics_port)
    # datasets are built from the samples and feedback labels the governance service stored
    run_jobs(settings.jobs_config(), registry=StoreRegistry(engine), history=StoreHistory(engine))


@app.command()
def demo(
    rate: float = typer.Option(20.0, help="events per second (0 = as fast as possible)"),
    duration: Optional[float] = typer.Option(None, help="seconds to run (default: until stopped)"),
    total: Optional[int] = typer.Option(None, help="number of events to send"),
    seed: Optional[int] = typer.Option(None, help="random seed (deterministic event ids)"),
) -> None:
    """Send realistic demo traffic (several tenants and models; failing, slow and malformed calls)."""
    from rich.console import Console

    from warden.demo import run_demo
    from warden.roles import prepare_topics

    settings = get_settings()
    prepare_topics(settings)
    console = Console(stderr=True)
    with console.status(f"sending demo traffic to {settings.bootstrap} at {rate:g} events/s …"):
        try:
            stats = asyncio.run(run_demo(settings.bootstrap, rate=rate, duration_s=duration, total=total,
                                         seed=seed, slo_ms=settings.latency_slo_ms))
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
    console.print(f"sent {stats.sent} events ({stats.errors} failing, {stats.slow} slow, "
                  f"{stats.malformed} malformed) in {stats.seconds:.1f}s")


@app.command()
def schema(out: Optional[Path] = typer.Option(None, help="write to this file instead of stdout")) -> None:
    """Print the JSON Schema of the event envelope."""
    from contracts.events import event_json_schema, write_json_schema

    if out:
        write_json_schema(str(out))
    else:
        json.dump(event_json_schema(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")


@app.command("topics")
def topics_cmd() -> None:
    """Create the topic catalogue on the configured broker."""
    from warden.roles import prepare_topics

    prepare_topics(get_settings())
    typer.echo("topics ready")


from warden.policy_cli import app as policy_app  # noqa: E402

app.add_typer(policy_app, name="policy")

from warden.cli_governance import register  # noqa: E402

register(app)


def main() -> None:
    app()
