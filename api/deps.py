"""Dependencies every route shares: the service's configuration, the store, a database session.

Routes take what they need as annotated parameters (``engine: EngineDep``, ``session: SessionDep``,
``config: ConfigDep``) instead of reaching into ``request.app.state``; the caller is
``Depends(allow(...))`` from :mod:`api.auth`, which also states the roles a route admits.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.config import ApiConfig


def get_config(request: Request) -> ApiConfig:
    """The service's configuration (built once at start-up)."""
    config: ApiConfig = request.app.state.config
    return config


def get_engine(request: Request) -> Engine:
    """The store's engine (created by the app's lifespan)."""
    engine: Engine = request.app.state.engine
    return engine


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A session for one request, closed afterwards (commit explicitly)."""
    with Session(engine) as session:
        yield session


def get_producer(request: Request) -> Any:
    """The Kafka producer the service publishes events and job requests with."""
    return request.app.state.producer


ConfigDep = Annotated[ApiConfig, Depends(get_config)]
EngineDep = Annotated[Engine, Depends(get_engine)]
SessionDep = Annotated[Session, Depends(get_session)]
ProducerDep = Annotated[Any, Depends(get_producer)]
