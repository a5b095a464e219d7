"""The training history in the store: redacted samples and feedback labels, and the dataset rows they make.

The governance consumer writes what the stream publishes on ``warden.samples`` (``contracts.samples``):
idempotent inserts by event id, so a re-delivered batch changes nothing. :class:`StoreHistory` is the
:class:`jobs.datasets.HistorySource` that retraining jobs read: each sample joined with the latest label
its feedback gave (a later verdict overrides an earlier one).

Texts here are the redacted ones; the store never sees the raw prompt or response.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text, select
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

from jobs.datasets import DatasetRow
from contracts.jobs import DatasetSpec
from store.models import assume_utc
from store.repository import insert_new
from contracts.samples import Label, Sample


def _ts(index: bool = False) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=index))


class SampleRow(SQLModel, table=True):
    """One inference event's redacted prompt and response."""

    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_model_time", "tenant", "model", "occurred_at"),)

    event_id: str = Field(primary_key=True, max_length=200)
    tenant: str = Field(max_length=200)
    model: str = Field(max_length=200)
    version: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = _ts()
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    response: str = Field(sa_column=Column(Text, nullable=False))
    user_hash: str | None = Field(default=None, index=True, max_length=64)


class SampleLabelRow(SQLModel, table=True):
    """One feedback event's label for a sample (the sample may arrive after it)."""

    __tablename__ = "sample_labels"
    __table_args__ = (Index("ix_sample_labels_target", "target_event_id", "occurred_at"),)

    feedback_id: str = Field(primary_key=True, max_length=200)
    target_event_id: str = Field(max_length=200)
    tenant: str = Field(max_length=200, index=True)
    model: str = Field(max_length=200)
    occurred_at: datetime = _ts()
    label: str | None = Field(default=None, max_length=200)
    score: float | None = None


def store_history(engine: Engine, records: Sequence[Sample | Label]) -> int:
    """Insert samples and labels in one transaction (ids already stored are skipped); returns how many were new."""
    samples = [r.model_dump(exclude={"kind"}) for r in records if isinstance(r, Sample)]
    labels = [r.model_dump(exclude={"kind"}) for r in records if isinstance(r, Label)]
    with Session(engine) as session:
        new = (len(insert_new(session, engine, SampleRow, "event_id", samples))
               + len(insert_new(session, engine, SampleLabelRow, "feedback_id", labels)))
        session.commit()
    return new


class StoreHistory:
    """The stream's stored history as dataset rows (a ``jobs.datasets.HistorySource``)."""

    def __init__(self, engine: Engine, *, chunk: int = 2000) -> None:
        self.engine = engine
        self.chunk = chunk

    def rows(self, tenant: str, model: str, spec: DatasetSpec) -> Iterator[DatasetRow]:
        """Labelled samples of ``tenant``'s ``model`` in the spec's time range and versions, oldest first."""
        stmt = select(SampleRow).where(SampleRow.tenant == tenant, SampleRow.model == model)
        if spec.since is not None:
            stmt = stmt.where(SampleRow.occurred_at >= spec.since)  # type: ignore[operator]
        if spec.until is not None:
            stmt = stmt.where(SampleRow.occurred_at < spec.until)  # type: ignore[operator]
        if spec.versions:
            stmt = stmt.where(SampleRow.version.in_(spec.versions))  # type: ignore[union-attr]
        stmt = stmt.order_by(SampleRow.occurred_at, SampleRow.event_id)
        with Session(self.engine) as session:
            batch: list[SampleRow] = []
            for sample in session.execute(stmt).scalars():
                batch.append(sample)
                if len(batch) >= self.chunk:
                    yield from self._labelled(session, batch)
                    batch = []
            yield from self._labelled(session, batch)

    @staticmethod
    def _labelled(session: Session, samples: list[SampleRow]) -> Iterable[DatasetRow]:
        if not samples:
            return []
        labels: dict[str, str] = {}
        scores: dict[str, float] = {}
        stmt = (select(SampleLabelRow)
                .where(SampleLabelRow.target_event_id.in_([s.event_id for s in samples]),  # type: ignore[attr-defined]
                       SampleLabelRow.tenant == samples[0].tenant)  # another tenant's feedback never labels these
                .order_by(SampleLabelRow.occurred_at, SampleLabelRow.feedback_id))
        for lab in session.execute(stmt).scalars():
            if lab.label is not None:  # the latest verdict wins; a score-only feedback keeps the label
                labels[lab.target_event_id] = lab.label
            if lab.score is not None:
                scores[lab.target_event_id] = lab.score
        return [DatasetRow(event_id=s.event_id, tenant=s.tenant, model=s.model, version=s.version,
                           occurred_at=assume_utc(s.occurred_at), prompt=s.prompt, response=s.response,
                           label=labels[s.event_id], score=scores.get(s.event_id))
                for s in samples if s.event_id in labels]
