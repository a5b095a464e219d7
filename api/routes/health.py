"""Health and metrics (no authentication: probes and Prometheus scrape these)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api import metrics

log = logging.getLogger("warden.api")
router = APIRouter()


def _db_ok(engine) -> bool:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return True


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> JSONResponse:
    """Broker and database status; 503 when either is down."""
    state = request.app.state
    db: dict[str, object] = {"dialect": state.engine.dialect.name}
    try:
        db["ok"] = await asyncio.wait_for(asyncio.to_thread(_db_ok, state.engine), timeout=5)
    except Exception as exc:
        db.update(ok=False, error=type(exc).__name__)
    broker: dict[str, object] = {"bootstrap": state.config.bootstrap}
    try:
        await asyncio.wait_for(state.producer.client.fetch_all_metadata(), timeout=5)
        broker["ok"] = True
    except Exception as exc:
        broker.update(ok=False, error=type(exc).__name__)
    broker["consumer_connected"] = bool(state.consumer.connected)
    ok = bool(db["ok"]) and bool(broker["ok"])
    return JSONResponse({"status": "ok" if ok else "degraded", "broker": broker, "database": db},
                        status_code=200 if ok else 503)


@router.get("/metrics", tags=["health"])
def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition (the outbox gauges are read from the store on each scrape)."""
    state = request.app.state
    dispatcher = getattr(state, "dispatcher", None)
    try:
        metrics.refresh_outbox(state.engine, list(dispatcher.destinations.destinations) if dispatcher else [])
    except Exception as exc:  # a scrape still answers while the database is down (healthz reports it)
        log.warning("outbox metrics not refreshed", extra={"error": type(exc).__name__})
    consumer = getattr(state, "consumer", None)
    metrics.CONSUMER_CONNECTED.set(1 if consumer is not None and consumer.connected else 0)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
