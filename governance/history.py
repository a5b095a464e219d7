"""The training history in the store: redacted samples and feedback labels.

The governance consumer writes what the stream publishes on ``warden.samples`` (``contracts.samples``):
idempotent inserts by event id, so a re-delivered batch changes nothing. Retraining jobs read it back
through :class:`jobs.history_store.StoreHistory`.

Texts here are the redacted ones; the store never sees the raw prompt or response.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Engine
from sqlmodel import Session

from contracts.samples import Label, Sample
from store.models import SampleLabelRow, SampleRow
from store.repository import insert_new


def store_history(engine: Engine, records: Sequence[Sample | Label]) -> int:
    """Insert samples and labels in one transaction (ids already stored are skipped); returns how many were new."""
    samples = [r.model_dump(exclude={"kind"}) for r in records if isinstance(r, Sample)]
    labels = [r.model_dump(exclude={"kind"}) for r in records if isinstance(r, Label)]
    with Session(engine) as session:
        new = (len(insert_new(session, engine, SampleRow, "event_id", samples))
               + len(insert_new(session, engine, SampleLabelRow, "feedback_id", labels)))
        session.commit()
    return new
