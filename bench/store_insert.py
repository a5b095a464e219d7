"""Benchmark: persisting a 50-finding batch on PostgreSQL, unnest inserts against multi-row VALUES.

Run: ``.venv/bin/python -m bench.store_insert [--database-url postgresql://…] [--batches 60]``
(without a URL a throwaway PostgreSQL cluster is started from Debian's packages, as the tests do).

``store.repository.insert_new`` writes findings, decisions and dead letters on PostgreSQL with one
``unnest()`` statement per table (``store.pg_bulk``). The baseline, measured in the same run on the same
database with batches interleaved, is what it did before: SQLAlchemy's multi-row ``VALUES`` insert
(insertmanyvalues), whose text changes with the batch size. Each batch goes through the whole
``persist_batch`` (findings, decisions, alert upserts, outbox rows, history in one transaction) with
the alerting bench policy: ``fold`` findings per alert (1 = every finding opens an alert and queues a
notification, the worst case). Last line: the ratio for fold 10.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from sqlalchemy import Table

import store.repository as repository
from bench.alerts import BENCH_POLICY, SECRET, bench_finding
from governance import ingest
from governance.alerting.delivery.destinations import parse_destinations
from policies.engine import PolicyEngine
from policies.loader import parse_policies
from store.db import init_db, make_engine
from store.models import ensure_alerting_tables


def _values_insert(conn: Any, table: Table, rows: list[dict[str, Any]], key: str) -> set[str]:
    """The baseline: SQLAlchemy's multi-row VALUES insert with RETURNING."""
    stmt = repository.upsert_statement(conn.engine, table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    return {r[0] for r in conn.execute(stmt, rows)}


def measure(url: str, batches: int, folds: tuple[int, ...] = (1, 10)) -> dict[int, tuple[float, float]]:
    """Median persist time (s) of each fold: (baseline, unnest)."""
    engine = make_engine(url)
    init_db(engine)
    ensure_alerting_tables(engine)
    dests = parse_destinations({"webhook:bench": {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": SECRET}})
    alerting = dests.alerting_config()
    policy = PolicyEngine(parse_policies(BENCH_POLICY))
    run = f"{time.time_ns():x}"
    made = 0
    unnest = repository.unnest_insert
    out: dict[int, tuple[float, float]] = {}
    try:
        for fold in folds:
            times: dict[str, list[float]] = {"values": [], "unnest": []}
            for rep in range(batches + 5):
                for name, insert in (("values", _values_insert), ("unnest", unnest)):
                    findings = [bench_finding(f"{run}-{fold}", made + i, fold) for i in range(50)]
                    made += 50
                    decisions = policy.evaluate_many(findings)
                    repository.unnest_insert = insert  # type: ignore[assignment]  # the baseline swapped in
                    t0 = time.perf_counter()
                    ingest.persist_batch(engine, findings, decisions, alerting=alerting)
                    if rep >= 5:  # the first batches warm caches and prepared statements
                        times[name].append(time.perf_counter() - t0)
            out[fold] = (statistics.median(times["values"]), statistics.median(times["unnest"]))
    finally:
        repository.unnest_insert = unnest
        engine.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=None, help="a PostgreSQL URL (default: start a throwaway cluster)")
    ap.add_argument("--batches", type=int, default=60)
    args = ap.parse_args()
    cluster = None
    url = args.database_url
    if url is None:
        from tests.support.postgres import start_postgres

        cluster = start_postgres()
        url = cluster.url
    try:
        res = measure(url, args.batches)
    finally:
        if cluster is not None:
            cluster.stop()
    for fold, (base, new) in res.items():
        print(f"fold {fold:>2}: persist_batch of 50 findings median {base * 1e3:.1f} ms with multi-row VALUES, "
              f"{new * 1e3:.1f} ms with unnest ({base / new:.2f}x)")
    base, new = res[max(res)]
    print(f"unnest speed-up of persist_batch on PostgreSQL, fold {max(res)}: {base / new:.2f}x")


if __name__ == "__main__":
    main()
