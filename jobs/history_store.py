"""The stream's stored history as dataset rows: the :class:`jobs.datasets.HistorySource` backed by the store.

Each sample joined with the latest label its feedback gave (a later verdict overrides an earlier one).
Texts are the redacted ones; the store never sees the raw prompt or response.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from contracts.jobs import DatasetSpec
from jobs.datasets import DatasetRow
from store.models import SampleLabelRow, SampleRow, assume_utc


class StoreHistory:
    """The stream's stored history as dataset rows (a ``jobs.datasets.HistorySource``)."""

    def __init__(self, engine: Engine, *, chunk: int = 2000) -> None:
        self.engine = engine
        self.chunk = chunk

    def rows(self, tenant: str, model: str, spec: DatasetSpec) -> Iterator[DatasetRow]:
        """Labelled samples of ``tenant``'s ``model`` in the spec's time range and versions, oldest first."""
        stmt = select(SampleRow).where(col(SampleRow.tenant) == tenant, col(SampleRow.model) == model)
        if spec.since is not None:
            stmt = stmt.where(col(SampleRow.occurred_at) >= spec.since)
        if spec.until is not None:
            stmt = stmt.where(col(SampleRow.occurred_at) < spec.until)
        if spec.versions:
            stmt = stmt.where(col(SampleRow.version).in_(spec.versions))
        stmt = stmt.order_by(col(SampleRow.occurred_at), col(SampleRow.event_id))
        with Session(self.engine) as session:
            batch: list[SampleRow] = []
            sample: SampleRow
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
                .where(col(SampleLabelRow.target_event_id).in_([s.event_id for s in samples]),
                       col(SampleLabelRow.tenant) == samples[0].tenant)  # another tenant's feedback never labels these
                .order_by(col(SampleLabelRow.occurred_at), col(SampleLabelRow.feedback_id)))
        lab: SampleLabelRow
        for lab in session.execute(stmt).scalars():
            if lab.label is not None:  # the latest verdict wins; a score-only feedback keeps the label
                labels[lab.target_event_id] = lab.label
            if lab.score is not None:
                scores[lab.target_event_id] = lab.score
        return [DatasetRow(event_id=s.event_id, tenant=s.tenant, model=s.model, version=s.version,
                           occurred_at=assume_utc(s.occurred_at), prompt=s.prompt, response=s.response,
                           label=labels[s.event_id], score=scores.get(s.event_id))
                for s in samples if s.event_id in labels]
