"""Benchmark: finding → first delivery latency of alerts at 1,000 findings/s (goal: p99 ≤ 1 s).

Run: ``.venv/bin/python -m bench.alerts [--rate 1000] [--seconds 10] [--database-url URL]``.

The path measured is the service's: findings are made (and time-stamped) by a producer process,
standing for the stream worker, and evaluated there by the policy engine (a bench policy that alerts
on every finding with its own dedup key, so with ``--fold 1`` *every* finding opens an alert and needs
a delivery — the worst case; real packs fold most findings into a few alerts); the batches are handed
over as JSON, parsed and persisted like the governance consumer does (findings, decisions, alert
upserts and outbox rows in one transaction), then claimed and sent by the dispatcher to a
signed-webhook receiver running in another process (aiohttp). The receiver stamps each alert's
arrival; latency = arrival − the finding's creation. It also counts duplicates and checks
signatures. Default store: a SQLite file (the embedded mode); pass a PostgreSQL URL to measure
that. A baseline measured in the same run — a bare HTTP round trip to the same receiver —
puts the figures in context. Last line: the headline figure against the goal.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import socket
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from contracts.decision import Decision
from detectors.finding import Finding, Subject
from governance.alerting.delivery.destinations import parse_destinations
from governance.alerting.delivery.dispatcher import Dispatcher, DispatcherConfig
from governance.alerting.outbox import outbox_counts
from governance.ingest import persist_batch
from policies.engine import PolicyEngine
from policies.loader import parse_policies
from store.db import init_db, make_engine
from store.models import ensure_alerting_tables

GOAL_MS = 1000.0
SECRET = "bench-secret"
BENCH_POLICY = """
policies:
  - id: bench-every-finding
    version: 1
    match: {detector: rule}
    actions:
      - alert:
          severity: high
          summary: "bench alert {event_id} on {subject.tenant}/{subject.model}"
          route: webhook:bench
          dedup_key: "bench:{evidence.alert_key}"
"""


# ---------------------------------------------------------------- the receiver (another process)


def _receiver(port: int, ready: Any, conn: Any) -> None:
    from aiohttp import web

    from governance.alerting.delivery.payloads import verify_signature

    arrivals: dict[str, float] = {}
    stats = {"duplicates": 0, "bad_signatures": 0, "requests": 0}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        stats["requests"] += 1
        now = time.time()
        if not verify_signature(SECRET, body, request.headers.get("X-Warden-Timestamp"),
                                request.headers.get("X-Warden-Signature")):
            stats["bad_signatures"] += 1
        import json

        for a in json.loads(body)["alerts"]:
            if a["dedup_key"] in arrivals:
                stats["duplicates"] += 1
            else:
                arrivals[a["dedup_key"]] = now
        return web.Response(text="ok")

    async def ping(_: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        app.router.add_post("/ping", ping)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        conn.send({"arrivals": arrivals, **stats})
        await runner.cleanup()

    asyncio.run(main())


# ---------------------------------------------------------------- the stream side (another process)


#: the subjects bench findings spread over
SUBJECTS = [Subject(tenant=f"t{i % 5}", model=f"m{i % 4}", version="1") for i in range(20)]


def bench_finding(run: str, n: int, fold: int) -> Finding:
    """The ``n``-th bench finding of ``run``: ``fold`` consecutive findings share one alert key (and subject)."""
    key = f"{run}-a{n // fold:07d}"
    return Finding.create(detector="rule", kind="error_status", subject=SUBJECTS[(n // fold) % len(SUBJECTS)],
                          severity="high", score=1.0, summary="call failed", evidence={"alert_key": key},
                          event_id=f"{run}-e{n:07d}", occurred_at=datetime.now(UTC))


def _stream_side(rate: float, seconds: float, fold: int, batch_every_s: float, conn: Any, run: str) -> None:
    """Make findings at ``rate``, evaluate the bench policy, and send each batch as JSON with the time each
    new alert's first finding was made. Ids carry ``run``, so runs against one database never collide."""
    policy = PolicyEngine(parse_policies(BENCH_POLICY))
    n_total = int(rate * seconds)
    start = time.time()
    made = 0
    while made < n_total:
        due = int(min(n_total, (time.time() - start) * rate + 1))
        batch: list[Finding] = []
        opened: dict[str, float] = {}
        while made < due:
            f = bench_finding(run, made, fold)
            opened.setdefault(f"bench:{f.evidence['alert_key']}", time.time())  # the finding that opens the alert
            batch.append(f)
            made += 1
        if batch:
            decisions = policy.evaluate_many(batch)
            conn.send((start, opened, [f.model_dump_json() for f in batch], [d.model_dump_json() for d in decisions]))
        time.sleep(batch_every_s)
    conn.send(None)


# ---------------------------------------------------------------- the governance side


async def _baseline(url: str, n: int = 300) -> list[float]:
    async with httpx.AsyncClient() as client:
        out = []
        for _ in range(n):
            t = time.perf_counter()
            await client.post(url, content=b"{}")
            out.append((time.perf_counter() - t) * 1000)
    return out


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


async def run(rate: float, seconds: float, database_url: str | None, batch_every_s: float,
              fold: int = 1) -> dict[str, Any]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    ready = mp.get_context("spawn").Event()
    parent, child = mp.get_context("spawn").Pipe()
    proc = mp.get_context("spawn").Process(target=_receiver, args=(port, ready, child), daemon=True)
    proc.start()
    assert ready.wait(30), "receiver did not start"
    base = await _baseline(f"http://127.0.0.1:{port}/ping")

    tmp = tempfile.mkdtemp(prefix="warden-bench-alerts-")
    url = database_url or f"sqlite:///{Path(tmp) / 'warden.db'}"
    engine = make_engine(url)
    init_db(engine)
    ensure_alerting_tables(engine)
    dests = parse_destinations({"webhook:bench": {"type": "webhook", "url": f"http://127.0.0.1:{port}/hook",
                                                  "secret": SECRET, "max_in_flight": 8, "timeout_s": 5}})
    config = dests.alerting_config()
    dispatcher = Dispatcher(engine, dests, DispatcherConfig(poll_interval_s=0.05), alerting=config)
    dispatch = asyncio.create_task(dispatcher.run())
    # the stream side (findings made and evaluated at the offered rate) runs in its own process, like the
    # stream worker; batches reach this process as JSON, like the governance consumer reads them from Kafka
    stream_end, stream_conn = mp.get_context("spawn").Pipe()
    run_id = uuid.uuid4().hex[:8]
    maker = mp.get_context("spawn").Process(
        target=_stream_side, args=(rate, seconds, fold, batch_every_s, stream_conn, run_id), daemon=True)
    maker.start()
    created: dict[str, float] = {}
    committed: dict[str, float] = {}
    persist_ms: list[float] = []
    n_total = int(rate * seconds)
    pending_persist: asyncio.Task[int] | None = None
    start: float | None = None
    while True:
        msg = await asyncio.to_thread(stream_end.recv)
        if msg is None:
            break
        started_at, opened, finding_docs, decision_docs = msg
        start = start if start is not None else started_at
        for k, v in opened.items():
            created.setdefault(k, v)  # a folded alert's first finding may sit in an earlier batch
        batch = [Finding.model_validate_json(doc) for doc in finding_docs]
        decisions = [Decision.model_validate_json(doc) for doc in decision_docs]
        if pending_persist is not None:
            await pending_persist  # one writer, like the consumer's batches
        t0 = time.perf_counter()

        async def _persist(b: list[Finding] = batch, d: list[Any] = decisions, t: float = t0) -> int:
            n = (await asyncio.to_thread(persist_batch, engine, b, d, alerting=config)).alerts_touched
            persist_ms.append((time.perf_counter() - t) * 1000)
            now = time.time()
            for f in b:
                committed.setdefault(f"bench:{f.evidence['alert_key']}", now)
            dispatcher.wake()
            return n

        pending_persist = asyncio.create_task(_persist())
    maker.join(10)
    assert start is not None, "the stream side made nothing"
    if pending_persist is not None:
        await pending_persist
    offered_s = time.time() - start
    deadline = time.time() + 60
    while time.time() < deadline:
        c = await asyncio.to_thread(outbox_counts, engine)
        if c.get("pending", 0) == 0 and c.get("sending", 0) == 0:
            break
        await asyncio.sleep(0.1)
    dispatcher.stop()
    await dispatch
    parent.send("stop")
    got = parent.recv()
    proc.join(10)
    counts = outbox_counts(engine)
    engine.dispose()

    arrivals: dict[str, float] = got["arrivals"]
    lat = [(arrivals[k] - created[k]) * 1000 for k in created if k in arrivals]
    out_lat = [(arrivals[k] - committed[k]) * 1000 for k in committed if k in arrivals]
    return {"offered": n_total, "alerts": len(created), "offered_rate": n_total / offered_s, "delivered": len(arrivals),
            "lost": len(set(created) - set(arrivals)), "duplicates": got["duplicates"],
            "bad_signatures": got["bad_signatures"], "requests": got["requests"], "outbox": counts,
            "p50": statistics.median(lat) if lat else float("nan"), "p99": _pct(lat, 99) if lat else float("nan"),
            "max": max(lat) if lat else float("nan"), "outbox_p50": statistics.median(out_lat),
            "outbox_p99": _pct(out_lat, 99), "persist_p50": statistics.median(persist_ms),
            "persist_p99": _pct(persist_ms, 99), "baseline_p50": statistics.median(base),
            "baseline_p99": _pct(base, 99), "store": url.split(":", 1)[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="findings per second offered")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--database-url", default=None, help="default: a SQLite file in a temp dir")
    ap.add_argument("--fold", type=int, default=1,
                    help="findings per alert (1: every finding opens an alert, the worst case; 10: 9 of 10 fold)")
    ap.add_argument("--batch-every-s", type=float, default=0.05, help="how often the consumer persists a batch")
    args = ap.parse_args()
    r = asyncio.run(run(args.rate, args.seconds, args.database_url, args.batch_every_s, args.fold))
    print(f"store: {r['store']}; offered {r['offered']} findings at {r['offered_rate']:.0f}/s "
          f"({r['alerts']} alerts, so {r['alerts']} first deliveries due)")
    print(f"baseline (bare HTTP round trip to the receiver): p50 {r['baseline_p50']:.2f} ms, "
          f"p99 {r['baseline_p99']:.2f} ms")
    print(f"persist batch (findings+decisions+alerts+outbox, one transaction): p50 {r['persist_p50']:.1f} ms, "
          f"p99 {r['persist_p99']:.1f} ms")
    print(f"delivered {r['delivered']} in {r['requests']} requests; lost {r['lost']}; duplicates {r['duplicates']}; "
          f"bad signatures {r['bad_signatures']}; outbox {r['outbox']}")
    print(f"outbox commit -> delivery (the dispatcher's share): p50 {r['outbox_p50']:.1f} ms, "
          f"p99 {r['outbox_p99']:.1f} ms")
    print(f"finding -> first delivery: p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms "
          f"(p99/baseline p99 = {r['p99'] / r['baseline_p99']:.0f}x)")
    verdict = "meets" if r["p99"] <= GOAL_MS and r["lost"] == 0 and r["duplicates"] == 0 else "MISSES"
    print(f"finding->first delivery p99 = {r['p99']:.0f} ms at {r['offered_rate']:.0f} findings/s "
          f"(goal <= {GOAL_MS:.0f} ms, 0 lost, 0 duplicates): {verdict}")


if __name__ == "__main__":
    main()
