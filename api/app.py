"""The governance service's FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib.metadata import version as _package_version
from importlib.resources import files

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, StatementError

from api import console, metrics
from api.config import ApiConfig
from api.consumer import GovernanceConsumer
from api.monitor import HealthMonitor
from api.routes import (
    alert_lifecycle,
    audit,
    drift,
    events,
    health,
    jobs,
    keys,
    lifecycle,
    lineage,
    otlp,
    records,
    registry,
    reports,
)
from governance import audit as audit_trail
from governance.alerting.delivery.destinations import load_destinations
from governance.alerting.delivery.dispatcher import Dispatcher, DispatcherConfig
from store.db import init_db, make_engine

log = logging.getLogger("warden.api")


async def _start_producer(bootstrap: str, attempts: int = 120) -> AIOKafkaProducer:
    for attempt in range(attempts):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        try:
            await producer.start()
            return producer
        except Exception:
            await producer.stop()
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


def _invalid_input_handlers(app: FastAPI) -> None:
    """Inputs that pass validation but not the calendar or the database are the caller's error (422)."""

    async def out_of_range(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": {"error": "invalid", "detail": f"value out of range: {exc}"}}, status_code=422)

    async def db_refused(request: Request, exc: Exception) -> JSONResponse:
        orig = getattr(exc, "orig", None)
        if isinstance(exc, DataError) or isinstance(orig, (ValueError, OverflowError)):
            return JSONResponse({"detail": {"error": "invalid", "detail": "a value cannot be stored (e.g. a NUL "
                                            "character or an out-of-range number or date)"}}, status_code=422)
        log.error("database error", exc_info=exc, extra={"path": request.url.path})
        return JSONResponse({"detail": "Internal Server Error"}, status_code=500)

    app.add_exception_handler(OverflowError, out_of_range)
    app.add_exception_handler(StatementError, db_refused)


DOCS_ASSETS = "/docs-assets"


def _local_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` served with their assets from this process, not a CDN: the
    ``fastapi-offline`` package ships them, so the pages work offline and behind a firewall."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")

    async def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} — Swagger UI",
                                   swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png")

    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} — ReDoc",
                              redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png", with_google_fonts=False)

    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


async def _verify_audit_periodically(engine: Engine, interval_s: float) -> None:
    """Verify the whole audit hash chain every ``interval_s`` and record the result (the metric
    ``warden_audit_chain_valid`` and the console's audit page follow it)."""
    while True:
        try:
            result = await asyncio.to_thread(audit_trail.verify_full, engine, by="periodic verification")
            metrics.observe_audit(result.ok, result.checked, result.seconds)
            if not result.ok:
                log.error("audit chain verification failed", extra={"first_broken_seq": result.first_broken_seq,
                                                                     "reason": result.reason})
        except Exception:
            log.exception("audit chain verification could not run")
        await asyncio.sleep(interval_s)


def create_app(config: ApiConfig, *, consume: bool = True) -> FastAPI:
    """Build the app; ``consume=False`` leaves the Kafka consumer out (for tests of the routes)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(config.database_url)
        await asyncio.to_thread(init_db, engine)
        app.state.engine = engine
        destinations = load_destinations(config.alert_destinations)
        destinations.check_secrets()
        alerting = destinations.alerting_config(resolve_after_s=config.alert_resolve_after_s)
        app.state.alerting = alerting
        app.state.unrouted_routes = alerting.unrouted(config.policy_routes)
        if app.state.unrouted_routes:
            log.warning("alert routes without a destination: their alerts are recorded but nobody is notified; "
                        "configure WARDEN_ALERT_DESTINATIONS (a default_route catches every route)",
                        extra={"routes": app.state.unrouted_routes})
        app.state.dispatcher = Dispatcher(engine, destinations,
                                          DispatcherConfig(poll_interval_s=config.alert_dispatch_poll_s),
                                          alerting=alerting)
        dispatch_task = asyncio.create_task(app.state.dispatcher.run())
        app.state.producer = await _start_producer(config.bootstrap)
        consumer = GovernanceConsumer(
            config.bootstrap, config.governance_group, engine, session_timeout_s=config.session_timeout_s,
            alerting=alerting, producer=app.state.producer,
        )
        app.state.consumer = consumer
        task = asyncio.create_task(consumer.run()) if consume else None
        monitor = HealthMonitor(config.bootstrap, engine, config.health, governance_group=config.governance_group,
                                consuming=consume)
        app.state.monitor = monitor
        monitor_task = asyncio.create_task(monitor.run())
        verifier = (asyncio.create_task(_verify_audit_periodically(engine, config.audit_verify_interval_s))
                    if config.audit_verify_interval_s > 0 else None)
        log.info("governance service started", extra={"port": config.port, "database": engine.dialect.name})
        try:
            yield
        finally:
            monitor.stop()
            monitor_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await monitor_task
            consumer.stop()
            for background in (task, verifier):
                if background:
                    background.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await background
            await app.state.producer.stop()
            app.state.dispatcher.stop()
            probe = getattr(app.state, "lag_probe", None)
            if probe is not None:
                await probe.close()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await dispatch_task
            engine.dispose()

    app = FastAPI(
        title="Warden governance API",
        version=_package_version("warden"),
        description="Findings, decisions, alerts and dead letters of Warden's LLM monitoring streams; API keys "
        "with roles and tenants, the hash-chained audit trail, the model registry, compliance reports and "
        "data lifecycle.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    _local_docs(app)
    app.state.config = config
    app.state.otlp_inflight = 0
    app.add_middleware(metrics.RequestMetrics)
    _invalid_input_handlers(app)
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(otlp.router)
    app.include_router(records.router)
    app.include_router(alert_lifecycle.router)
    app.include_router(keys.router)
    app.include_router(audit.router)
    app.include_router(registry.router)
    app.include_router(lineage.router)
    app.include_router(reports.router)
    app.include_router(lifecycle.router)
    app.include_router(jobs.router)
    app.include_router(drift.router)
    console.mount(app)
    return app
