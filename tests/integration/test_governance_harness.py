"""Harness of the governance tests: the API in-process on a real database, keys of every role.

The app is built by ``create_app`` and driven by Starlette's TestClient without its lifespan, so no
broker is needed: ``app.state.producer`` is a :class:`RecordingProducer` that keeps what the API
publishes (one test in test_governance_registry.py publishes to a real Kafka broker instead).
This module holds no tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from governance.alerting import AlertingConfig
from store.db import init_db, make_engine
from warden.settings import Settings

ADMIN_KEY = "bootstrap-admin-key-for-tests"
PII_KEY = "test-pii-key-0123456789"
TENANTS = ("acme", "globex")


class _Metadata:
    async def fetch_all_metadata(self) -> None:
        return None


class _NoConsumer:
    connected = False

    def stop(self) -> None:
        return None


@contextlib.asynccontextmanager
async def _no_lifespan(_app: Any) -> AsyncIterator[None]:
    yield


class RecordingProducer:
    """Stands in for AIOKafkaProducer: records (topic, value, key); ``fail`` makes sends raise, ``hang`` makes
    them wait for ever (a broker that is away: the real producer waits for it up to its request time-out)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.fail = False
        self.hang = False
        self.client = _Metadata()

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        if self.hang:
            await asyncio.Event().wait()
        self.sent.append((topic, value, key))

    async def stop(self) -> None:
        return None


@dataclass
class Gov:
    """A running governance API and the keys made for it (``keys[(role, tenant)]``)."""

    client: TestClient
    engine: Engine
    producer: RecordingProducer
    keys: dict[tuple[str, str], str] = field(default_factory=dict)

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.auth(ADMIN_KEY)

    def as_(self, role: str, tenant: str = "acme") -> dict[str, str]:
        return self.auth(self.keys[(role, tenant)])

    def request(self, method: str, path: str, key: str | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        headers = self.auth(key) if key else self.admin
        return self.client.request(method, path, headers=headers, **kw)


def make_gov(database_url: str, *, with_keys: bool = True, **settings: Any) -> Gov:
    """Build the app on ``database_url`` (migrated), with a key per role for each tenant and ``*``."""
    s = Settings(admin_key=ADMIN_KEY, database_url=database_url, pii_key=PII_KEY, kafka_bootstrap="127.0.0.1:1",
                 **settings)
    app = create_app(s.api_config(), consume=False)
    app.router.lifespan_context = _no_lifespan  # state is set below; no broker to start
    engine = make_engine(database_url)
    init_db(engine)
    app.state.engine = engine
    producer = RecordingProducer()
    app.state.producer = producer
    app.state.consumer = _NoConsumer()
    app.state.alerting = AlertingConfig()  # record only: no destination is configured
    gov = Gov(TestClient(app), engine, producer)
    if with_keys:
        for role in ("admin", "operator", "auditor", "producer"):
            for tenant in (*TENANTS, "*"):
                r = gov.client.post("/v1/keys", headers=gov.admin,
                                    json={"role": role, "tenants": [tenant], "name": f"{role}-{tenant}"})
                assert r.status_code == 201, r.text
                gov.keys[(role, tenant)] = r.json()["key"]
    return gov
