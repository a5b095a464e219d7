"""Health and metrics (no authentication: probes and Prometheus scrape these)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

router = APIRouter()


def _db_ok(engine) -> bool:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return True


@router.get("/healthz", tags=["health"])
async def healthz(request: Request) -> JSONResponse:
    """Every role of the deployment: 200 ``ok``, or 503 ``degraded`` with the ``reasons``.

    Checked: the database and the broker (from this process), the stream workers' heartbeats (a worker
    silent longer than ``WARDEN_HEALTH_WORKER_STALE_S``; none at all when ``WARDEN_HEALTH_EXPECT_WORKER``),
    consumer lag of the workers' group and of the governance consumer (``WARDEN_HEALTH_MAX_LAG``), the
    governance consumer's connection, and alert notifications overdue in the outbox. ``warnings`` name
    what does not degrade the service but someone should know: alert routes without a destination (their
    alerts are recorded, not delivered), an agent restarted after a crash."""
    state = request.app.state
    reasons: list[str] = []
    db: dict[str, object] = {"dialect": state.engine.dialect.name}
    try:
        db["ok"] = await asyncio.wait_for(asyncio.to_thread(_db_ok, state.engine), timeout=5)
    except Exception as exc:
        db.update(ok=False, error=type(exc).__name__)
        reasons.append(f"the database is not reachable ({type(exc).__name__})")
    broker: dict[str, object] = {"bootstrap": state.config.bootstrap}
    try:
        await asyncio.wait_for(state.producer.client.fetch_all_metadata(), timeout=5)
        broker["ok"] = True
    except Exception as exc:
        broker.update(ok=False, error=type(exc).__name__)
        reasons.append(f"the broker is not reachable ({type(exc).__name__})")
    broker["consumer_connected"] = bool(state.consumer.connected)
    body: dict[str, Any] = {"broker": broker, "database": db}
    warnings: list[str] = []
    unrouted = list(getattr(state, "unrouted_routes", []))
    if unrouted:
        warnings.append("alert routes without a destination (alerts recorded, nobody notified): " + ", ".join(unrouted))
    body["alerting"] = {"unrouted_routes": unrouted}
    monitor = getattr(state, "monitor", None)
    if monitor is not None:
        report = monitor.report(consumer_connected=bool(state.consumer.connected))
        reasons += report.reasons
        warnings += report.warnings
        body.update(report.details)
    ok = not reasons
    return JSONResponse({"status": "ok" if ok else "degraded", "reasons": reasons, "warnings": warnings, **body},
                        status_code=200 if ok else 503)


@router.get("/metrics", tags=["health"])
def metrics() -> Response:
    """Prometheus exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
