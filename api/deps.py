"""Dependencies every route shares: the service's configuration, the store, a database session, the
Kafka producer, the alerting configuration and dispatcher, the OTLP admission counter.

Routes take what they need as annotated parameters (``engine: EngineDep``, ``session: SessionDep``,
``config: ConfigDep``, ``producer: ProducerDep``) instead of reaching into ``request.app.state``; the
caller is ``Depends(allow(...))`` from :mod:`api.auth`, which also states the roles a route admits.
These functions are the one place that reads the objects the app's lifespan put on ``app.state``.

A route whose work is blocking (the database) is a plain ``def``: FastAPI runs it in its thread pool.
A route that awaits Kafka stays ``async def`` and runs its database calls with ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.config import ApiConfig
from governance.alerting import AlertingConfig


def get_config(request: Request) -> ApiConfig:
    """The service's configuration (built once at start-up)."""
    config: ApiConfig = request.app.state.config
    return config


def get_engine(request: Request) -> Engine:
    """The store's engine (created by the app's lifespan)."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A session for one request, closed afterwards (commit explicitly; what is not committed is rolled
    back). Rows stay readable after the commit, so the response is built from them without a reload."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def get_producer(request: Request) -> Any:
    """The Kafka producer the service publishes events and job requests with."""
    return request.app.state.producer


def get_alerting(request: Request) -> AlertingConfig:
    """The alerting configuration (destinations, routes, escalation) the lifespan loaded."""
    alerting: AlertingConfig = request.app.state.alerting
    return alerting


async def get_dispatcher_wake(request: Request) -> Callable[[], None]:
    """A function that makes the alert dispatcher look for due notifications now.

    Safe to call from any thread (a sync route runs in a worker thread, the dispatcher's event is the
    event loop's); a no-op when the app runs no dispatcher (tests of the routes)."""
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if dispatcher is None:
        return lambda: None
    loop = asyncio.get_running_loop()

    def wake() -> None:
        loop.call_soon_threadsafe(dispatcher.wake)

    return wake


@dataclass
class InFlight:
    """How many requests of one kind are being handled now (a route refuses past its limit)."""

    count: int = 0

    def admit(self, limit: int) -> bool:
        """Count one more request unless ``limit`` are in flight already (then False: refuse it)."""
        if self.count >= limit:
            return False
        self.count += 1
        return True

    def release(self) -> None:
        """An admitted request is done."""
        self.count -= 1


def get_otlp_inflight(request: Request) -> InFlight:
    """The trace exports in flight in this app (``POST /v1/traces``)."""
    inflight: InFlight = request.app.state.otlp_inflight
    return inflight


ConfigDep = Annotated[ApiConfig, Depends(get_config)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
ProducerDep = Annotated[Any, Depends(get_producer)]
AlertingDep = Annotated[AlertingConfig, Depends(get_alerting)]
DispatcherWakeDep = Annotated[Callable[[], None], Depends(get_dispatcher_wake)]
OtlpInFlightDep = Annotated[InFlight, Depends(get_otlp_inflight)]
