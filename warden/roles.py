"""Entry points of Warden's long-running roles (one process each): worker, api."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from contracts.topics import STATE_TABLES, changelog_topic
from streams.admin import TopicSpec, ensure_topics
from warden.logs import configure_logging
from warden.metrics import serve as serve_metrics
from warden.settings import Settings

log = logging.getLogger("warden")


def prepare_topics(settings: Settings, *, report_every_s: float = 15.0) -> None:
    """Create the topic catalogue and the stream app's table changelog.

    Waits for the broker as long as it takes, saying so every ``report_every_s``: a deployment may start its
    roles before Kafka, or restart one while Kafka is away, and a role that gave up would only be restarted
    into the same wait by its supervisor (``warden up`` backs off up to 30 s between restarts)."""
    spec = TopicSpec(settings.topic_partitions, settings.topic_replication)
    compacted = tuple(changelog_topic(settings.consumer_group, t) for t in STATE_TABLES)
    started = time.monotonic()
    while True:
        try:
            created = asyncio.run(ensure_topics(settings.bootstrap, spec, compacted=compacted,
                                                timeout_s=report_every_s))
            break
        except RuntimeError as exc:  # not reachable within report_every_s
            log.warning("waiting for Kafka", extra={"bootstrap": settings.bootstrap, "error": str(exc)[:200],
                                                    "waited_s": round(time.monotonic() - started)})
    if created:
        log.info("created topics", extra={"topics": created})


def build_worker(app: Any, settings: Settings) -> Any:
    """The faust worker that runs ``app``. Its start-up spinner writes cursor escapes (``\\e[?25l``,
    ``\\e[?25h``) even when stdout is a file, so it is switched off unless stdout is a terminal."""
    import faust

    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False,
                          override_logging=False)
    if not worker.stdout.isatty():
        worker.spinner = None
    return worker


def run_worker(settings: Settings) -> None:
    """Run the faust stream worker until SIGINT/SIGTERM."""
    import gc

    from streams.app import create_app
    from streams.pipeline import Pipeline

    configure_logging("worker", settings.log_level, settings.log_json)
    prepare_topics(settings)
    pipeline = Pipeline(settings.pipeline_config(), settings.policy_engine())
    # load the models before joining the group, not on the first batch (the text stage processes load their own)
    pipeline.warm_up(text_stage=settings.worker_text_processes == 0)
    app = create_app(settings.worker_config(), pipeline)
    serve_metrics(settings.worker_web_port)
    gc.freeze()  # models, vocabularies and policies live as long as the process: full collections skip them
    build_worker(app, settings).execute_from_commandline()


def run_api(settings: Settings) -> None:
    """Run the governance service (FastAPI + its Kafka consumer) until SIGINT/SIGTERM."""
    import uvicorn

    from api.app import create_app

    configure_logging("api", settings.log_level, settings.log_json)
    prepare_topics(settings)
    uvicorn.run(
        create_app(settings.api_config()),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
    )
