"""Consumer-group health and lag, as the governance service sees them from the broker.

For each watched group (the stream workers' and the governance consumer's): its state, how many
members it has, and per topic how many records are not yet committed (end offset − committed offset).
One admin client and one group-less consumer are kept per process; answers are cached for a few
seconds so a page or probe that asks often costs the broker nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient


class LagProbe:
    """Reads group states and lags from the broker at ``bootstrap`` (started on first use)."""

    def __init__(self, bootstrap: str, *, ttl_s: float = 5.0, timeout_s: float = 3.0) -> None:
        self.bootstrap = bootstrap
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._admin: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._cache: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def _start(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=int(self.timeout_s * 1000))
            offsets = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                       request_timeout_ms=int(self.timeout_s * 1000) + 1000)
            try:
                await admin.start()
                await offsets.start()
            except Exception:
                with contextlib.suppress(Exception):
                    await admin.close()
                with contextlib.suppress(Exception):
                    await offsets.stop()
                raise
            self._admin, self._offsets = admin, offsets
        return self._admin, self._offsets

    async def _group(self, admin: AIOKafkaAdminClient, offsets: AIOKafkaConsumer, group: str) -> dict[str, Any]:
        described = (await admin.describe_consumer_groups([group]))[0].to_object()["groups"][0]
        state = described.get("state") or "Unknown"
        members = len(described.get("members") or []) if described.get("error_code") == 0 else 0
        committed = await admin.list_consumer_group_offsets(group)
        known = {tp: m.offset for tp, m in committed.items() if m.offset >= 0}
        ends = await offsets.end_offsets(list(known)) if known else {}
        lag: dict[str, int] = defaultdict(int)
        for tp, at in known.items():
            lag[tp.topic] += max(0, int(ends.get(tp, at)) - at)
        return {"group": group, "state": state, "members": members, "lag": dict(sorted(lag.items())),
                "total_lag": sum(lag.values())}

    async def groups(self, groups: list[str]) -> dict[str, Any]:
        """``{"ok", "groups": [...], "at"}`` for ``groups`` (cached ``ttl_s``); ``ok`` false with ``error``
        when the broker could not be asked."""
        async with self._lock:
            now = time.monotonic()
            if self._cache is not None and now - self._cache[0] < self.ttl_s:
                return self._cache[1]
            try:
                admin, offsets = await asyncio.wait_for(self._start(), self.timeout_s)
                found = [await asyncio.wait_for(self._group(admin, offsets, g), self.timeout_s) for g in groups]
                out: dict[str, Any] = {"ok": True, "groups": found, "at": time.time()}
            except Exception as exc:
                out = {"ok": False, "error": type(exc).__name__, "groups": [], "at": time.time()}
                await self.close()
            self._cache = (now, out)
            return out

    async def close(self) -> None:
        admin, offsets, self._admin, self._offsets = self._admin, self._offsets, None, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
        if offsets is not None:
            with contextlib.suppress(Exception):
                await offsets.stop()
