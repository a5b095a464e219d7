"""Benchmark of the governance API's audit trail on PostgreSQL.

1. Bulk-load N hash-chained audit entries (default 1,000,000) with COPY into a fresh database
   migrated by ``init_db`` (triggers and indexes in place).
2. Serve the real app with uvicorn (over TCP, in a thread) and time ``GET /v1/audit`` with a mix of
   filters (tenant, action, actor, time window, a tenant-scoped key) and cursor pages: p50/p99.
3. Time ``governance.audit.verify`` over the whole chain (server-side cursor) — and check it is intact.

Goals (issue 8): p99 ≤ 50 ms, verify of 1,000,000 entries ≤ 10 s.

    .venv/bin/python -m bench.api [--rows 1000000] [--requests 400] [--postgres-url URL]

Without ``--postgres-url`` (or ``WARDEN_BENCH_POSTGRES_URL``) a throwaway cluster is started from the
installed PostgreSQL binaries (as the test-suite does). Timings are medians/percentiles of this run;
the machine is shared, so expect noise.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import socket
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

TENANTS = [f"tenant-{i:02d}" for i in range(20)]
ACTIONS = ["alert.acknowledged", "alert.resolved", "alert.silenced", "alias.switched", "job.requested",
           "job.approved", "job.finished", "key.created", "settings.updated", "model_version.created"]
ACTORS = [f"key:{i:08x}" for i in range(50)]
GENESIS = "0" * 64
START = datetime(2025, 1, 1, tzinfo=UTC)


def _entries(n: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """Chained rows ``(seq, at, actor, action, tenant, target_type, target_id, content, prev, ch, h)``."""
    rng = random.Random(seed)
    sha = hashlib.sha256
    dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    prev = GENESIS
    step = 365 * 86400 / n
    for seq in range(1, n + 1):
        at = START + timedelta(seconds=seq * step)
        actor, action, tenant = rng.choice(ACTORS), rng.choice(ACTIONS), rng.choice(TENANTS)
        target = f"{tenant}/obj-{rng.randrange(10_000)}"
        content = dumps({"seq": seq, "at": at.isoformat(), "actor": actor, "action": action, "tenant": tenant,
                         "target_type": action.split(".")[0], "target_id": target,
                         "before": {"status": "triggered"}, "after": {"status": "done", "n": seq % 97}})
        ch = sha(content.encode()).hexdigest()
        h = sha((prev + ch).encode()).hexdigest()
        yield seq, at, actor, action, tenant, action.split(".")[0], target, content, prev, ch, h
        prev = h


def load(url: str, n: int) -> tuple[float, str]:
    """COPY ``n`` chained entries into ``audit_log`` and move the head; returns (seconds, head hash)."""
    import psycopg

    t0 = time.perf_counter()
    last, last_at = GENESIS, START
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY audit_log (seq, at, actor, action, tenant, target_type, target_id, content, prev_hash, "
                      "content_hash, hash) FROM STDIN") as copy:
            for row in _entries(n):
                copy.write_row(row)
                last, last_at = row[-1], row[1]
        cur.execute("UPDATE audit_head SET seq = %s, hash = %s, at = %s WHERE id = 1", (n, last, last_at))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE audit_log")
    return time.perf_counter() - t0, last


@contextlib.contextmanager
def scratch_database(postgres_url: str | None) -> Iterator[str]:
    """A new database for one run: on the server of ``postgres_url`` (dropped afterwards), or on a throwaway
    PostgreSQL cluster started here (stopped afterwards) when no URL is given. Yields its URL."""
    import psycopg

    cluster = None
    base_url = postgres_url
    if not base_url:
        from tests.support.postgres import start_postgres

        cluster = start_postgres()
        base_url = cluster.url
    name = "bench_" + uuid.uuid4().hex[:8]
    try:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        yield base_url.rsplit("/", 1)[0] + "/" + name
    finally:
        if cluster is None:
            with psycopg.connect(base_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            cluster.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(url: str, admin_key: str) -> Iterator[str]:
    """The real app (no Kafka needed for reads) on uvicorn in a thread; yields its base URL."""
    from api.app import create_app
    from store.db import make_engine
    from warden.settings import Settings

    app = create_app(Settings(admin_key=admin_key, database_url=url).api_config(), consume=False)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        engine = make_engine(url)
        app.state.engine = engine
        yield
        engine.dispose()

    app.router.lifespan_context = lifespan
    port = _free_port()
    with run_in_thread(app, port, start_timeout_s=30, stop_timeout_s=10) as base:
        yield base


@contextlib.contextmanager
def run_in_thread(app: Any, port: int, *, start_timeout_s: float, stop_timeout_s: float) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a daemon thread on ``port``; yields its base URL once it has started."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(stop_timeout_s)


def _queries(rng: random.Random, n: int) -> list[dict[str, Any]]:
    """A mix of listing queries (each may then follow its cursor a few pages)."""
    out: list[dict[str, Any]] = []
    for _ in range(n):
        kind = rng.choice(["newest", "tenant", "action", "tenant_action", "actor", "window", "scoped"])
        q: dict[str, Any] = {"limit": rng.choice([50, 100, 100, 200])}
        if kind in ("tenant", "tenant_action"):
            q["tenant"] = rng.choice(TENANTS)
        if kind in ("action", "tenant_action"):
            q["action"] = rng.choice(ACTIONS)
        if kind == "actor":
            q["actor"] = rng.choice(ACTORS)
        if kind == "window":
            since = START + timedelta(days=rng.uniform(0, 360))
            q["since"] = since.isoformat()
            q["until"] = (since + timedelta(hours=rng.choice([1, 24, 24 * 7]))).isoformat()
        out.append({"kind": kind, "params": q, "pages": rng.choice([1, 1, 2, 3, 5])})
    return out


def measure(base: str, admin_key: str, scoped_key: str, requests: int) -> dict[str, Any]:
    import httpx

    rng = random.Random(11)
    lat: list[float] = []
    by_kind: dict[str, list[float]] = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(20):  # warm-up: connection pool, plans, caches
            client.get("/v1/audit", params={"limit": 100}, headers={"Authorization": f"Bearer {admin_key}"})
        done = 0
        for q in _queries(rng, requests):
            key = scoped_key if q["kind"] == "scoped" else admin_key
            params, cursor = dict(q["params"]), None
            for _ in range(q["pages"]):
                if cursor:
                    params["cursor"] = cursor
                t0 = time.perf_counter()
                r = client.get("/v1/audit", params=params, headers={"Authorization": f"Bearer {key}"})
                ms = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200, r.text[:300]
                lat.append(ms)
                by_kind.setdefault(q["kind"] if not cursor else q["kind"] + "+cursor", []).append(ms)
                done += 1
                cursor = r.json()["next_cursor"]
                if not cursor or done >= requests:
                    break
            if done >= requests:
                break
    lat.sort()

    def pct(values: list[float], p: float) -> float:
        s = sorted(values)
        return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]

    return {"n": len(lat), "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "max_ms": lat[-1],
            "by_kind_p50_ms": {k: round(statistics.median(v), 2) for k, v in sorted(by_kind.items())},
            "by_kind_p99_ms": {k: round(pct(v, 0.99), 2) for k, v in sorted(by_kind.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--postgres-url", default=os.environ.get("WARDEN_BENCH_POSTGRES_URL"))
    args = parser.parse_args()

    from governance import audit, keys
    from store.db import init_db, make_engine

    with scratch_database(args.postgres_url) as url:
        engine = make_engine(url)
        init_db(engine)
        load_s, head_hash = load(url, args.rows)
        print(f"loaded {args.rows:,} chained audit entries with COPY in {load_s:.1f}s")
        from sqlmodel import Session

        with Session(engine, expire_on_commit=False) as s:  # a tenant-scoped auditor key (adds one entry)
            scoped = keys.create_key(s, role="auditor", tenants=TENANTS[:3], actor="bench").secret
            s.commit()
        admin_key = "bench-admin-" + uuid.uuid4().hex
        with serve(url, admin_key) as base:
            stats = measure(base, admin_key, scoped, args.requests)
        print(f"GET /v1/audit over {stats['n']} requests (filters + cursors, real HTTP): "
              f"p50 {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, max {stats['max_ms']:.1f} ms")
        print("  p50 by query kind (ms):", json.dumps(stats["by_kind_p50_ms"]))
        print("  p99 by query kind (ms):", json.dumps(stats["by_kind_p99_ms"]))
        times = []
        for _ in range(2):
            result = audit.verify(engine)
            assert result.ok and result.checked == args.rows + 1, result
            times.append(result.seconds)
        verify_s = min(times)
        print(f"verify: {result.checked:,} entries intact in {verify_s:.2f}s (best of {len(times)}: "
              f"{', '.join(f'{t:.2f}' for t in times)}), {result.checked / verify_s:,.0f} entries/s")
        engine.dispose()
        print(f"RESULT rows={args.rows} audit_p50_ms={stats['p50_ms']:.1f} audit_p99_ms={stats['p99_ms']:.1f} "
              f"(goal <= 50) verify_s={verify_s:.2f} (goal <= 10 for 1M) "
              f"p99_goal={'met' if stats['p99_ms'] <= 50 else 'MISSED'} "
              f"verify_goal={'met' if verify_s * 1_000_000 / max(args.rows, 1) <= 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
