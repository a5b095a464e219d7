"""Issue 24's fault harness (``bench/faults.py``), reduced: steady load on Apache Kafka, PostgreSQL, the API,
stream workers and a signed-webhook receiver as real processes; faults injected while it runs; every valid
event's finding stored once, every malformed event in the DLQ with its reason, every alert delivered and no
notification shown twice — read from the store, the topics and the receiver's log.

* the PostgreSQL outage runs in the default suite (about two minutes): the governance consumer holds its batch
  and retries, ``/healthz`` names the database, nothing is lost or stored twice;
* every fault in a row (worker kills, one right after a checkpoint, the broker away with a worker restarted
  meanwhile, PostgreSQL away, the API killed mid-batch, the receiver refusing then slow, the SQLite disk full)
  is ``slow``.

Each run starts its own broker and cluster (it stops and restarts them), so it disturbs no other test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faults import Options, Row, run_faults

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _assert_nothing_lost(rows: list[Row], table: str) -> None:
    assert rows, table
    for row in rows:
        assert row.lost == 0 and row.duplicated == 0, f"{row.fault}\n{table}"
        assert row.sent > 0 and row.findings_expected > 0 and row.dlq_expected > 0, f"{row.fault}: no load\n{table}"
        assert row.alerts_expected > 0, f"{row.fault}: no alert\n{table}"
        assert row.health_ok, f"{row.fault}: /healthz did not name the dependency, or did not come back ok\n{table}"
        assert not row.dead_after and row.recovery_s is not None, f"{row.fault}\n{table}"
    assert table.splitlines()[-1] == "lost=0 duplicated=0"


def test_postgresql_outage_under_load_loses_nothing_and_health_names_the_database(tmp_path: Path) -> None:
    rows, table = run_faults(Options(rate=40, workers=1, models=4, faults=("postgres",), outage_s=10, warm_s=6,
                                     tail_s=2, settle_s=150, baseline=False, workdir=tmp_path / "faults"))
    _assert_nothing_lost(rows, table)
    [row] = rows
    assert "degraded(database" in row.health, table


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_every_fault_in_a_row_under_load_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    rows, table = run_faults(Options(rate=60, worker_kills=1, outage_s=15, refuse_s=25, slow_s=10, warm_s=6,
                                     tail_s=3, settle_s=240, workdir=tmp_path / "faults"))
    _assert_nothing_lost(rows, table)
    assert [r.fault for r in rows] == [
        "baseline (no fault)", "worker SIGKILL #1", "worker SIGKILL at checkpoint", "Kafka down 15 s",
        "PostgreSQL down 15 s", "API SIGKILL mid-batch", "receiver refuses 25 s, then slow", "SQLite disk full"]
