"""Training history in the store: samples and labels from the stream become a dataset snapshot
(SQLite and PostgreSQL), idempotently, per tenant, with retention and erasure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from contracts.jobs import DatasetSpec
from governance import retention
from governance.history import store_history
from jobs.artifacts import ArtifactStore
from jobs.datasets import build_snapshot, load_snapshot
from jobs.history_store import StoreHistory
from store.db import init_db, make_engine
from store.models import SampleLabelRow, SampleRow
from streams.pipeline import Outcome, Pipeline, PipelineConfig, RawItem
from tests.events import feedback, inference, raw

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INTENTS = {"billing": "I was charged twice for my plan, refund please",
           "shipping": "where is my parcel, it has not arrived yet",
           "account": "I cannot log in to my account, reset my password"}


def _history(n: int, *, tenant: str = "acme") -> list[bytes]:
    """``n`` inference events (every third with an e-mail address in it) and one feedback per event."""
    out = []
    for i in range(n):
        intent = list(INTENTS)[i % 3]
        prompt = INTENTS[intent] + (f" - write to jane.roe{i}@example.com" if i % 3 == 0 else "")
        ev = inference(f"{tenant}-e{i}", tenant=tenant, messages=[{"role": "user", "content": prompt}],
                       user={"id": f"user-{i % 4}"})
        ev["occurred_at"] = (T0 + timedelta(minutes=i)).isoformat()
        ev["model"]["version"] = "v1" if i < n // 2 else "v2"
        out.append(raw(ev))
        fb = feedback(f"{tenant}-f{i}", f"{tenant}-e{i}", tenant=tenant, category=intent)
        fb["occurred_at"] = (T0 + timedelta(minutes=i + 1)).isoformat()
        out.append(raw(fb))
    return out


def _process(pipe: Pipeline, payloads: list[bytes]) -> list[Outcome]:
    return pipe.process_batch([RawItem(p, "warden.inference") for p in payloads])


def _store(url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    init_db(engine)
    return engine


def _count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def test_stream_history_becomes_a_redacted_labelled_dataset(database_url: str, tmp_path: Path) -> None:
    engine = _store(database_url)
    pipe = Pipeline(PipelineConfig(drift=None, user_key="k" * 32))
    records = [o.history for o in _process(pipe, _history(30) + _history(6, tenant="globex"))]
    records = [r for r in records if r is not None]
    assert len(records) == 72
    assert store_history(engine, records) == 72
    assert store_history(engine, records[:40]) == 0  # a re-delivered batch changes nothing
    # a later verdict replaces an earlier one; a score-only feedback keeps the label
    late = [o.history for o in _process(pipe, [
        raw({**feedback("acme-f0-late", "acme-e0", category="account"), "occurred_at": "2026-01-06T00:00:00Z"}),
        raw({**feedback("acme-f1-score", "acme-e1", score=0.1), "occurred_at": "2026-01-06T00:00:00Z"}),
        raw(feedback("globex-steal", "acme-e2", tenant="globex", category="spam")),  # another tenant's verdict
    ])]
    assert store_history(engine, [r for r in late if r is not None]) == 3

    spec = DatasetSpec(min_rows=8, eval_fraction=0.25)
    rows = list(StoreHistory(engine, chunk=7).rows("acme", "support-bot", spec))
    assert [r.event_id for r in rows] == [f"acme-e{i}" for i in range(30)]  # oldest first, across chunks
    by_id = {r.event_id: r for r in rows}
    assert by_id["acme-e0"].label == "account" and by_id["acme-e1"].label == "shipping"
    assert by_id["acme-e1"].score == 0.1 and by_id["acme-e2"].label == "account"
    assert all("@example.com" not in r.prompt for r in rows)
    assert "<EMAIL_ADDRESS>" in by_id["acme-e3"].prompt
    v2 = list(StoreHistory(engine).rows("acme", "support-bot", DatasetSpec(versions=["v2"])))
    assert [r.event_id for r in v2] == [f"acme-e{i}" for i in range(15, 30)]
    window = DatasetSpec(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=10))
    assert [r.event_id for r in StoreHistory(engine).rows("acme", "support-bot", window)] == \
        [f"acme-e{i}" for i in range(5, 10)]

    artifacts = ArtifactStore(tmp_path / "artifacts")
    snap = build_snapshot(StoreHistory(engine).rows("acme", "support-bot", spec), tenant="acme",
                          model="support-bot", spec=spec, store=artifacts, job_id="job-1")
    assert snap.rows == 30 and snap.train_rows + snap.eval_rows == 30 and snap.eval_rows > 0
    assert snap.labels == ["account", "billing", "shipping"]
    again = build_snapshot(StoreHistory(engine).rows("acme", "support-bot", spec), tenant="acme",
                           model="support-bot", spec=spec, store=artifacts, job_id="job-1")
    assert again.version == snap.version  # same history, same dataset version
    loaded = load_snapshot(artifacts, snap.version)
    assert {r["event_id"] for r in loaded.train + loaded.eval} == set(by_id)
    assert "@example.com" not in json.dumps(loaded.train + loaded.eval)
    engine.dispose()


def test_samples_follow_retention_and_user_erasure(database_url: str) -> None:
    engine = _store(database_url)
    pipe = Pipeline(PipelineConfig(drift=None, user_key="k" * 32))
    store_history(engine, [o.history for o in _process(pipe, _history(12)) if o.history is not None])
    assert _count(engine, SampleRow) == 12 and _count(engine, SampleLabelRow) == 12
    erased = retention.erase_user(engine, pii_key="k" * 32, user_id="user-1", actor="test", tenants=["globex"])
    assert erased["deleted"]["samples"] == 0  # another tenant's admin cannot reach acme's samples
    erased = retention.erase_user(engine, pii_key="k" * 32, user_id="user-1", actor="test")
    assert erased["deleted"]["samples"] == 3  # events 1, 5, 9
    now = T0 + timedelta(days=30, minutes=6)  # the first 6 events are older than 30 days
    result = retention.purge(engine, retention.Retention(samples_days=30), actor="test", now=now)
    # samples e0..e5 are past it (e1, e5 already erased); labels come a minute after: f0..f4
    assert result["deleted"]["samples"] == 4 and result["deleted"]["sample_labels"] == 5
    assert _count(engine, SampleRow) == 5 and _count(engine, SampleLabelRow) == 7
    engine.dispose()


def test_a_retrain_job_learns_from_the_stored_stream_history(tmp_path: Path) -> None:
    """Events and feedback through the stream pipeline → the store → a tiny retrain job's dataset."""
    torch = pytest.importorskip("torch")
    from contracts.jobs import JobSpec, TrainSpec
    from jobs.executor import JobContext, JobExecutor
    from jobs.registry_port import InMemoryRegistry
    from jobs.synthetic import LABELS, support_history

    engine = _store(f"sqlite:///{tmp_path / 'warden.db'}")
    payloads = []
    for row in support_history(300, style="old", seed=3):
        ev = inference(row.event_id, messages=[{"role": "user", "content": row.prompt}],
                       response={"content": row.response, "finish_reason": "stop"})
        ev["occurred_at"] = row.occurred_at.isoformat()
        payloads += [raw(ev), raw(feedback(f"fb-{row.event_id}", row.event_id, category=row.label))]
    pipe = Pipeline(PipelineConfig(drift=None))
    for start in range(0, len(payloads), 100):
        store_history(engine, [o.history for o in _process(pipe, payloads[start:start + 100]) if o.history])
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        registry = InMemoryRegistry()
        executor = JobExecutor(registry=registry, artifacts=ArtifactStore(tmp_path / "artifacts"),
                               history=StoreHistory(engine), publish_deployment=lambda _: None)
        job = JobSpec(job_id="from-history", kind="retrain", tenant="acme", model="support-bot",
                      train=TrainSpec(task="classification", base="tiny", epochs=4, batch_size=32,
                                      learning_rate=3e-3, max_length=32))
        result = executor.run(job, JobContext(report=lambda *_: None))
    finally:
        torch.set_num_threads(before)
    assert result["dataset"]["rows"] == 300
    assert result["challenger"]["accuracy"] > 2 / len(LABELS)  # learned from the stored labels, not chance
    version = registry.get_version("acme", "support-bot", result["candidate_version"])
    assert version.dataset_version == result["dataset"]["version"]
    engine.dispose()
