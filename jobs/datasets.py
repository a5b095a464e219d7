"""Dataset snapshots: redacted prompt/response pairs with feedback labels → a versioned artifact.

:func:`build_snapshot` selects the rows of one tenant's model that the job's :class:`DatasetSpec` names
(time range, versions, labels), drops duplicates (the stream is at-least-once), re-checks that no
structured PII survived redaction, splits train/eval by a hash of each event id (stable: a row never
moves between splits when the history grows) and stores ``train.jsonl``, ``eval.jsonl`` and
``lineage.txt`` (the source event ids) as a ``dataset`` artifact. The artifact digest is the dataset's
version; the manifest carries the row counts, labels, time range and a digest of the lineage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, field_validator

from contracts.jobs import DatasetSpec
from jobs.artifacts import ArtifactRef, ArtifactStore

DATASET_KIND = "dataset"


class DatasetRow(BaseModel):
    """One redacted prompt/response pair of the history, with the feedback label it received."""

    model_config = ConfigDict(extra="ignore")

    event_id: str
    tenant: str
    model: str
    version: str | None = None
    occurred_at: datetime
    prompt: str
    response: str = ""
    label: str | None = None
    score: float | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class HistorySource(Protocol):
    """Where the stream's history comes from (the lead binds it to the store; tests use a list or a file)."""

    def rows(self, tenant: str, model: str, spec: DatasetSpec) -> Iterable[DatasetRow]:
        """Rows of ``tenant``'s ``model``; may return more than the spec selects (it is filtered again)."""
        ...


@dataclass
class ListHistory:
    """An in-memory history."""

    items: list[DatasetRow] = field(default_factory=list)

    def rows(self, tenant: str, model: str, spec: DatasetSpec) -> Iterable[DatasetRow]:
        return [r for r in self.items if r.tenant == tenant and r.model == model]


@dataclass
class JsonlHistory:
    """A history kept as JSON lines (one :class:`DatasetRow` per line)."""

    path: Path

    def rows(self, tenant: str, model: str, spec: DatasetSpec) -> Iterator[DatasetRow]:
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    row = DatasetRow.model_validate_json(line)
                    if row.tenant == tenant and row.model == model:
                        yield row

    @staticmethod
    def write(path: Path, rows: Iterable[DatasetRow]) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(row.model_dump_json() + "\n")


def pattern_redactor(text: str) -> str:
    """Replace any structured PII the fast pattern scanners find by ``<TYPE>`` (defence in depth)."""
    from detectors.pii.patterns import scan
    from detectors.pii.redaction import redact, resolve_overlaps

    spans = scan(text)
    if not spans:
        return text
    return redact(text, resolve_overlaps(sorted(spans, key=lambda s: (s.start, -s.end))))


def split_of(event_id: str, eval_fraction: float, seed: int = 0) -> str:
    """``"eval"`` or ``"train"``, from a hash of the event id: stable as the history grows."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{event_id}".encode()).digest()[:8], "big")
    return "eval" if h / 2**64 < eval_fraction else "train"


def select_rows(rows: Iterable[DatasetRow], tenant: str, model: str, spec: DatasetSpec) -> list[DatasetRow]:
    """The labelled rows the spec names, deduplicated by event id, in (time, id) order."""
    labels = set(spec.labels)
    versions = set(spec.versions)
    seen: dict[str, DatasetRow] = {}
    for r in rows:
        if r.tenant != tenant or r.model != model or r.label is None:
            continue
        if spec.since and r.occurred_at < spec.since:
            continue
        if spec.until and r.occurred_at >= spec.until:
            continue
        if versions and r.version not in versions:
            continue
        if labels and r.label not in labels:
            continue
        seen.setdefault(r.event_id, r)
    out = sorted(seen.values(), key=lambda r: (r.occurred_at, r.event_id))
    if spec.max_rows is not None and len(out) > spec.max_rows:
        out = out[-spec.max_rows:]  # the most recent rows
    return out


@dataclass(frozen=True)
class DatasetSnapshot:
    """A stored dataset version and what the training step needs from it."""

    ref: ArtifactRef
    rows: int
    train_rows: int
    eval_rows: int
    labels: list[str]
    lineage_digest: str

    @property
    def version(self) -> str:
        """The dataset's version: its content digest."""
        return self.ref.digest

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.ref.uri, "version": self.version, "rows": self.rows, "train_rows": self.train_rows,
                "eval_rows": self.eval_rows, "labels": self.labels, "lineage_digest": self.lineage_digest}


class DatasetTooSmall(ValueError):
    """Fewer rows than the job's ``min_rows``."""


def _record(r: DatasetRow, redactor: Callable[[str], str]) -> dict[str, Any]:
    return {"event_id": r.event_id, "version": r.version, "occurred_at": r.occurred_at.isoformat(),
            "prompt": redactor(r.prompt), "response": redactor(r.response), "label": r.label, "score": r.score}


def build_snapshot(
    rows: Iterable[DatasetRow],
    *,
    tenant: str,
    model: str,
    spec: DatasetSpec,
    store: ArtifactStore,
    redactor: Callable[[str], str] | None = pattern_redactor,
    job_id: str | None = None,
) -> DatasetSnapshot:
    """Select, redact, split and store a dataset; returns its snapshot (same content → same version)."""
    chosen = select_rows(rows, tenant, model, spec)
    if len(chosen) < spec.min_rows:
        raise DatasetTooSmall(f"{len(chosen)} labelled rows for {tenant}/{model}; the job needs {spec.min_rows}")
    red = redactor or (lambda t: t)
    splits: dict[str, list[str]] = {"train": [], "eval": []}
    for r in chosen:
        splits[split_of(r.event_id, spec.eval_fraction, spec.split_seed)].append(json.dumps(_record(r, red), sort_keys=True))
    if not splits["train"] or not splits["eval"]:
        raise DatasetTooSmall(f"{len(chosen)} rows leave an empty train or eval split")
    lineage = "\n".join(r.event_id for r in chosen) + "\n"
    lineage_digest = hashlib.sha256(lineage.encode()).hexdigest()
    labels = sorted({r.label for r in chosen if r.label is not None})
    meta = {
        "tenant": tenant, "model": model, "rows": len(chosen), "train_rows": len(splits["train"]),
        "eval_rows": len(splits["eval"]), "labels": labels, "lineage_digest": lineage_digest,
        "first_event_at": chosen[0].occurred_at.isoformat(), "last_event_at": chosen[-1].occurred_at.isoformat(),
        "spec": spec.model_dump(mode="json"), "job_id": job_id,
    }
    ref = store.put_files({
        "train.jsonl": ("\n".join(splits["train"]) + "\n").encode(),
        "eval.jsonl": ("\n".join(splits["eval"]) + "\n").encode(),
        "lineage.txt": lineage.encode(),
    }, DATASET_KIND, meta)
    return DatasetSnapshot(ref, len(chosen), len(splits["train"]), len(splits["eval"]), labels, lineage_digest)


@dataclass
class LoadedDataset:
    """A verified dataset artifact, read back."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    meta: dict[str, Any]
    lineage: list[str]


def load_snapshot(store: ArtifactStore, digest: str) -> LoadedDataset:
    """Read a dataset artifact after verifying its checksums."""
    folder = store.open(DATASET_KIND, digest)
    meta = store.manifest(DATASET_KIND, digest)["meta"]

    def read(name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in (folder / name).read_text().splitlines() if line.strip()]

    return LoadedDataset(read("train.jsonl"), read("eval.jsonl"), meta,
                         (folder / "lineage.txt").read_text().split())
