"""The governance consumer while the store refuses writes: it holds the batch, retries with back-off, says
why, and commits the batch's offsets only once it is stored.

The store is a real SQLite file whose "disk" fills up: ``PRAGMA max_page_count`` caps the database at its
current size, so SQLite answers ``SQLITE_FULL`` ("database or disk is full") exactly as on a full disk, and
lifting the cap gives the space back. Kafka is replaced by a fake consumer (what is tested is what the
governance consumer does with a batch, not the broker).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from sqlalchemy import event, text

from api.consumer import GovernanceConsumer, store_problem
from contracts import topics
from detectors.finding import Finding, Subject
from governance.alerting import AlertingConfig
from store.db import init_db, make_engine

TP = TopicPartition(topics.FINDINGS, 0)


class Record:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value = offset, value


class FakeKafka:
    """Hands out one batch, then nothing; records every commit."""

    def __init__(self, batch: list[Record]) -> None:
        self.batch: list[Record] | None = batch
        self.commits: list[dict[TopicPartition, int]] = []
        self.polls = 0

    async def getmany(self, timeout_ms: int = 0, max_records: int = 0) -> dict[TopicPartition, list[Record]]:
        self.polls += 1
        batch, self.batch = self.batch, None
        if batch is None:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        return {TP: batch}

    async def commit(self, offsets: dict[TopicPartition, int] | None = None) -> None:
        assert offsets is not None, "commit names the batch's offsets"
        self.commits.append(dict(offsets))


def _finding(i: int) -> Finding:
    return Finding(finding_id=f"f-{i:05d}", detector="rule", kind="latency_slo",
                   subject=Subject(tenant="acme", model="bot", version="1"), severity="medium", score=1.0,
                   summary="latency above the SLO", evidence={"padding": "x" * 2000}, event_id=f"e-{i}")


async def _until(check: Any, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_a_full_disk_holds_the_batch_and_nothing_is_committed_until_it_is_stored(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'warden.db'}")
    init_db(engine)
    cap: dict[str, int | None] = {"pages": None}

    @event.listens_for(engine, "connect")
    def _disk(dbapi_conn: Any, _record: Any) -> None:
        if cap["pages"] is not None:
            dbapi_conn.execute(f"PRAGMA max_page_count = {cap['pages']}")

    with engine.connect() as conn:
        cap["pages"] = int(conn.execute(text("PRAGMA page_count")).scalar_one())
    engine.dispose()  # every connection from now on sees a full disk

    kafka = FakeKafka([Record(100 + i, _finding(i).model_dump_json().encode()) for i in range(300)])
    consumer = GovernanceConsumer("127.0.0.1:1", "g", engine, alerting=AlertingConfig(), retry_initial_s=0.05,
                                  retry_max_s=0.2)
    task = asyncio.create_task(consumer._loop(kafka))  # type: ignore[arg-type]
    try:
        await _until(lambda: consumer.store_error is not None)
        assert consumer.store_error == "the disk holding the store is full"
        await asyncio.sleep(0.5)  # several retries later: still held, nothing committed, nothing more consumed
        assert kafka.commits == [] and kafka.polls == 1 and not task.done()
        assert consumer.store_error_since is not None

        cap["pages"] = None  # space comes back
        engine.dispose()
        await _until(lambda: kafka.commits)
        assert kafka.commits == [{TP: 400}]
        assert consumer.store_error is None and consumer.store_error_since is None
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM findings")).scalar_one() == 300
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 5)
        engine.dispose()


async def test_stopping_while_the_store_is_away_commits_nothing(tmp_path: Path) -> None:
    engine = make_engine("postgresql://warden@127.0.0.1:1/none")  # nothing listens: every write is refused
    kafka = FakeKafka([Record(7, _finding(1).model_dump_json().encode())])
    consumer = GovernanceConsumer("127.0.0.1:1", "g", engine, alerting=AlertingConfig(), retry_initial_s=0.05)
    task = asyncio.create_task(consumer._loop(kafka))  # type: ignore[arg-type]
    await _until(lambda: consumer.store_error is not None)
    assert consumer.store_error.startswith("the database is not reachable")
    consumer.stop()
    await asyncio.wait_for(task, 5)
    assert kafka.commits == []


def test_the_reason_names_the_problem_not_the_statement() -> None:
    from sqlalchemy.exc import OperationalError

    full = OperationalError("INSERT INTO findings VALUES (?)", {"summary": "marguerite@example.org"},
                            Exception("database or disk is full"))
    assert store_problem(full) == "the disk holding the store is full"
    assert store_problem(OSError(28, "No space left on device")) == "the disk holding the store is full"
    other = OperationalError("SELECT 1", {}, Exception("deadlock detected"))
    assert store_problem(other) == "OperationalError" and "marguerite" not in store_problem(full)
