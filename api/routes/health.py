"""Health and metrics (no authentication: probes and Prometheus scrape these)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api import metrics
from api.lag import LagProbe

log = logging.getLogger("warden.api")
router = APIRouter()


def _db_ok(engine: Engine) -> bool:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return True


def lag_probe(state: Any) -> LagProbe:
    """The process's :class:`LagProbe` (made on first use; the app's lifespan closes it)."""
    probe: LagProbe | None = getattr(state, "lag_probe", None)
    if probe is None:
        probe = state.lag_probe = LagProbe(state.config.bootstrap)
    return probe


async def health_report(state: Any) -> tuple[bool, dict[str, Any]]:
    """What ``/healthz`` answers (and the console's overview shows): database, broker, the governance
    consumer, and the state and lag of the stream workers' and the governance consumer's groups.
    ``ok`` is false when the database or the broker is down."""
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
    consumer = state.consumer
    broker["consumer_connected"] = bool(consumer.connected)
    last = getattr(consumer, "last_batch_at", None)
    broker["consumer_last_batch_s_ago"] = round(time.time() - last, 1) if last else None
    groups: dict[str, Any] = {"ok": False, "error": "broker down", "groups": []}
    if broker["ok"]:
        groups = await lag_probe(state).groups([state.config.worker_group, state.config.governance_group])
    ok = bool(db["ok"]) and bool(broker["ok"])
    return ok, {"status": "ok" if ok else "degraded", "broker": broker, "database": db, "consumer_groups": groups}


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> JSONResponse:
    """Broker and database status (503 when either is down), with the workers' and the governance
    consumer's group state and lag."""
    ok, body = await health_report(request.app.state)
    return JSONResponse(body, status_code=200 if ok else 503)


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
