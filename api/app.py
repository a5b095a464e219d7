"""The governance service's FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from api.consumer import GovernanceConsumer
from api.routes import events, health, records
from store.db import init_db, make_engine
from warden import __version__
from warden.settings import Settings

log = logging.getLogger("warden.api")


async def _start_producer(bootstrap: str, attempts: int = 120) -> AIOKafkaProducer:
    for attempt in range(attempts):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        try:
            await producer.start()
            return producer
        except Exception:  # noqa: BLE001 - broker still starting
            await producer.stop()
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


def create_app(settings: Settings, *, consume: bool = True) -> FastAPI:
    """Build the app; ``consume=False`` leaves the Kafka consumer out (for tests of the routes)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.effective_database_url)
        await asyncio.to_thread(init_db, engine)
        app.state.engine = engine
        app.state.producer = await _start_producer(settings.bootstrap)
        consumer = GovernanceConsumer(
            settings.bootstrap, settings.governance_group, engine, session_timeout_s=settings.session_timeout_s
        )
        app.state.consumer = consumer
        task = asyncio.create_task(consumer.run()) if consume else None
        log.info("governance service started", extra={"port": settings.api_port, "database": engine.dialect.name})
        try:
            yield
        finally:
            consumer.stop()
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await app.state.producer.stop()
            engine.dispose()

    app = FastAPI(
        title="Warden governance API",
        version=__version__,
        description="Findings, decisions, alerts and dead letters of Warden's LLM monitoring streams.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(records.router)
    return app
