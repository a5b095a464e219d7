"""A governance API and one stream worker as real processes on the suite's broker and store, for the Kafka tests
that read results back through the API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.kafka import KafkaBroker

#: the admin key the stacks are started with
KEY = "test-admin-key"


@dataclass
class WorkerStack:
    kafka: KafkaBroker
    base: str
    env: dict[str, str]
    logs: Path
    worker: Any
    api: Any

    def get(self, path: str, **params: Any) -> httpx.Response:
        """GET ``path`` with the admin key."""
        return httpx.get(f"{self.base}{path}", params=params, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)

    def all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paginated listing (``/v1/findings``, ``/v1/dlq``), following its cursor."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            body = self.get(path, limit=1000, **params, **({"cursor": cursor} if cursor else {})).json()
            items += body["items"]
            cursor = body.get("next_cursor")
            if not cursor:
                return items

    def health(self) -> dict[str, Any]:
        """``/healthz``'s body; its status code must agree with it (200 ok, 503 otherwise)."""
        r = httpx.get(f"{self.base}/healthz", timeout=10)
        body: dict[str, Any] = r.json()
        assert r.status_code == (200 if body["status"] == "ok" else 503)
        return body
