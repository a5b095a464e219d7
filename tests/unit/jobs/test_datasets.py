from datetime import UTC, datetime, timedelta

import pytest

from contracts.jobs import DatasetSpec
from jobs.artifacts import ArtifactStore
from jobs.datasets import DatasetRow, DatasetTooSmall, build_snapshot, load_snapshot, select_rows, split_of
from jobs.synthetic import support_history

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _row(i: int, **kw) -> DatasetRow:
    base = dict(event_id=f"e{i}", tenant="acme", model="bot", version="v1", occurred_at=T0 + timedelta(hours=i),
                prompt=f"question {i}", response=f"answer {i}", label="good" if i % 2 else "bad")
    return DatasetRow(**{**base, **kw})


def test_select_filters_time_version_labels_and_dedupes():
    rows = [_row(i) for i in range(10)] + [_row(3)] + [_row(20, tenant="other")] + [_row(21, label=None)]
    rows.append(_row(22, version="v2"))
    spec = DatasetSpec(since=T0 + timedelta(hours=2), until=T0 + timedelta(hours=8), versions=["v1"], labels=["good"])
    got = select_rows(rows, "acme", "bot", spec)
    assert [r.event_id for r in got] == ["e3", "e5", "e7"]
    assert [r.event_id for r in select_rows(rows, "acme", "bot", DatasetSpec(max_rows=2))] == ["e9", "e22"]


def test_split_is_stable_and_near_the_fraction():
    ids = [f"evt-{i}" for i in range(4000)]
    first = [split_of(i, 0.2) for i in ids]
    assert first == [split_of(i, 0.2) for i in ids]
    assert 0.17 < first.count("eval") / len(ids) < 0.23
    assert first != [split_of(i, 0.2, seed=1) for i in ids]


def test_snapshot_is_versioned_by_content_with_lineage_and_redaction(tmp_path):
    store = ArtifactStore(tmp_path)
    rows = support_history(200, seed=1)
    rows.append(_row(999, tenant="acme", model="support-bot", prompt="mail me at jane.doe@example.com",
                     response="call 4111 1111 1111 1111", label="refund"))
    snap = build_snapshot(rows, tenant="acme", model="support-bot", spec=DatasetSpec(), store=store, job_id="j1")
    again = build_snapshot(list(reversed(rows)) + rows[:5], tenant="acme", model="support-bot", spec=DatasetSpec(),
                           store=store)
    assert snap.version == again.version and snap.rows == 201 == snap.train_rows + snap.eval_rows
    data = load_snapshot(store, snap.version)
    assert len(data.lineage) == 201 and set(data.lineage) == {r.event_id for r in rows}
    assert data.meta["rows"] == 201 and data.meta["labels"] == snap.labels
    text = (store.open("dataset", snap.version) / "train.jsonl").read_text() + \
        (store.open("dataset", snap.version) / "eval.jsonl").read_text()
    assert "jane.doe@example.com" not in text and "4111 1111 1111 1111" not in text
    assert "<EMAIL_ADDRESS>" in text
    grown = build_snapshot(rows + support_history(20, seed=2, id_prefix="new"), tenant="acme", model="support-bot",
                           spec=DatasetSpec(), store=store)
    assert grown.version != snap.version
    old_eval = {r["event_id"] for r in data.eval}
    assert old_eval <= {r["event_id"] for r in load_snapshot(store, grown.version).eval}


def test_too_few_rows_is_refused(tmp_path):
    with pytest.raises(DatasetTooSmall):
        build_snapshot([_row(1)], tenant="acme", model="bot", spec=DatasetSpec(min_rows=2), store=ArtifactStore(tmp_path))
