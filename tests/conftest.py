"""Shared fixtures: a real Apache Kafka broker, a real PostgreSQL cluster, SQLite files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kafka import KafkaBroker, start_kafka
from tests.support.postgres import PostgresCluster, start_postgres


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaBroker]:
    """Apache Kafka 4.x, KRaft single node, started from Maven-resolved jars for this session."""
    broker = start_kafka()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A PostgreSQL URL: WARDEN_TEST_POSTGRES_URL, or a throwaway cluster started for this session."""
    if os.environ.get("WARDEN_TEST_POSTGRES_URL"):
        yield os.environ["WARDEN_TEST_POSTGRES_URL"]
        return
    cluster: PostgresCluster = start_postgres()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL (a fresh database each time)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warden.db'}"
    base: str = request.getfixturevalue("postgres")
    import uuid

    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    """A process builds its settings once (``warden.settings.get_settings``); tests that change ``WARDEN_*``
    variables between CLI invocations in this one process need that cache emptied around each test."""
    from warden.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
