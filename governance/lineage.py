"""Lineage of a model version and the promotion blocks on it, read from the governance store.

The chain is assembled from rows the store already holds, joined on the run id and the version:

    training run  ← the ``run_started`` / ``run_finished`` info findings of detector ``training``
                    (the stream files ``run_finished`` under the version the run produced)
      → dataset   ← reference and content hash from the run's evidence
      → version   ← the registry row (artifact, parent, dataset_ref, job)
      → deployments ← alias history rows that switched an alias to this version
      → drift reference ← the drift findings of this version (reference source / pinned_at)

Each step carries its findings: the run's training findings (loss, gradients; matched by run id),
the version's ``eval_regression`` (detector training) / ``pii_in_training_data`` (detector pii) findings, its drift findings.

A version is *blocked from promotion* while an enforce-mode decision tagged ``block-promotion``
exists for it and the alert those decisions raise (dedup key :func:`block_dedup_key`) has not been
resolved by a person after the latest such decision (an automatic resolution does not lift it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from detectors.finding import Severity, stable_id
from governance.alerting import AUTO_RESOLVE_ACTOR, MANUAL_RESOLVE_PREFIXES
from store.models import AlertRow, AliasHistoryRow, DecisionRow, FindingRow, ModelVersionRow
from store.models import assume_utc as _utc

#: kinds of the info findings that record a training run
RUN_KINDS = ("run_started", "run_finished")
#: findings of the version (not of the run's steps) shown on the model-version step
VERSION_KINDS = ("eval_regression", "pii_in_training_data")
#: the detectors that file them (training and pii), so the lookup uses the per-detector index
VERSION_DETECTORS = ("training", "pii")
#: the tag of a decision that blocks promotion
BLOCK_TAG = "block-promotion"
#: most findings returned per step (newest first)
MAX_STEP_FINDINGS = 200


def block_dedup_key(tenant: str, model: str, version: str | None) -> str:
    """The dedup key of the alert that goes with a promotion block (the built-in pack uses it)."""
    return f"{MANUAL_RESOLVE_PREFIXES[0]}{tenant}:{model}:{version}"




def _finding(row: FindingRow) -> dict[str, Any]:
    return {
        "finding_id": row.finding_id, "detector": row.detector, "kind": row.kind, "version": row.version,
        "severity": Severity(row.severity).name, "score": row.score, "summary": row.summary,
        "evidence": {k: v for k, v in row.evidence.items() if k != "samples"},  # report rows stay in the drift report
        "event_id": row.event_id, "occurred_at": _utc(row.occurred_at),
    }


def _evidence_col(field: str) -> Any:
    """A string field of the evidence, extracted in SQL."""
    return col(FindingRow.evidence)[field].as_string()


def _run_id_col() -> Any:
    return _evidence_col("run_id")


def _findings(session: Session, *where: Any, limit: int = MAX_STEP_FINDINGS) -> list[FindingRow]:
    stmt = (select(FindingRow).where(*where)
            .order_by(col(FindingRow.occurred_at).desc(), col(FindingRow.finding_id))
            .limit(limit))
    return list(session.execute(stmt).scalars())


def _run(session: Session, tenant: str, model: str, version: str, *, findings: bool = True) -> dict[str, Any] | None:
    """The run that produced ``version`` (its latest ``run_finished``), merged with its ``run_started``;
    ``findings=False`` counts the run's step findings instead of listing them."""
    base = (col(FindingRow.tenant) == tenant, col(FindingRow.model) == model, col(FindingRow.detector) == "training")
    finished = _findings(session, *base, col(FindingRow.kind) == "run_finished", col(FindingRow.version) == version,
                         # a run that produced nothing is not this one's
                         _evidence_col("output_version") == version, limit=1)
    if not finished:
        return None
    end = finished[0]
    run_id = str(end.evidence.get("run_id"))
    started = _findings(session, *base, col(FindingRow.kind) == "run_started", _run_id_col() == run_id, limit=1)
    start = started[0] if started else None
    ev: dict[str, Any] = {**(start.evidence if start else {}), **{k: v for k, v in end.evidence.items() if v not in (None, {}, "")}}
    of_steps: tuple[Any, ...] = (*base, _run_id_col() == run_id, col(FindingRow.kind).not_in((*RUN_KINDS, *VERSION_KINDS)))
    steps = [_finding(f) for f in _findings(session, *of_steps)] if findings else []
    return {
        "run_id": run_id, "base_version": ev.get("base_version"), "status": ev.get("status"),
        "params": ev.get("params") or {}, "output_version": ev.get("output_version") or version,
        "started_at": _utc(start.occurred_at) if start else None, "finished_at": _utc(end.occurred_at),
        "dataset": ev.get("dataset"), "dataset_hash": ev.get("dataset_hash"),
        "findings": steps,
        "findings_count": len(steps) if findings else int(session.execute(
            select(func.count()).select_from(select(col(FindingRow.finding_id)).where(*of_steps)
                                             .limit(MAX_STEP_FINDINGS).subquery())).scalar_one()),
    }


def _drift_references(session: Session, tenant: str, model: str, version: str) -> list[tuple[Any, Any]]:
    """(reference_source, reference_pinned_at) of the version's latest drift findings, newest first."""
    stmt = (select(_evidence_col("reference_source"), _evidence_col("reference_pinned_at"))
            .where(col(FindingRow.tenant) == tenant, col(FindingRow.model) == model, col(FindingRow.detector) == "drift",
                   col(FindingRow.version) == version)
            .order_by(col(FindingRow.occurred_at).desc(), col(FindingRow.finding_id))
            .limit(MAX_STEP_FINDINGS))
    return [(r[0], r[1]) for r in session.execute(stmt)]


def version_lineage(engine: Engine, tenant: str, model: str, version: str, *,
                    findings: bool = True) -> dict[str, Any] | None:
    """The chain run → dataset → version → deployments → drift reference, each with its findings;
    ``None`` when the store knows neither a registry row nor a finished run for the version.

    ``findings=False`` (the console's model page) leaves the findings lists empty, gives the run's
    ``findings_count`` only, and reads just the drift findings' reference fields."""
    with Session(engine) as session:
        row = session.get(ModelVersionRow, (tenant, model, version))
        run = _run(session, tenant, model, version, findings=findings)
        if row is None and run is None:
            return None
        base = (col(FindingRow.tenant) == tenant, col(FindingRow.model) == model)
        version_findings: list[FindingRow] = []
        if findings:
            version_findings = _findings(session, *base, col(FindingRow.detector).in_(VERSION_DETECTORS),
                                         col(FindingRow.kind).in_(VERSION_KINDS),
                                         col(FindingRow.version) == version)
        if findings and run is not None:  # PII in the run's data sample, filed under whatever version the sample named
            seen = {f.finding_id for f in version_findings}
            version_findings += [f for f in _findings(session, *base, col(FindingRow.kind) == "pii_in_training_data",
                                                      _run_id_col() == run["run_id"]) if f.finding_id not in seen]
        drift = _findings(session, *base, col(FindingRow.detector) == "drift", col(FindingRow.version) == version) \
            if findings else []
        pairs = [(f.evidence.get("reference_source"), f.evidence.get("reference_pinned_at")) for f in drift] \
            if findings else _drift_references(session, tenant, model, version)
        deployments: list[AliasHistoryRow] = list(session.execute(
            select(AliasHistoryRow).where(col(AliasHistoryRow.tenant) == tenant, col(AliasHistoryRow.model) == model,
                                          col(AliasHistoryRow.to_version) == version)
            .order_by(col(AliasHistoryRow.switched_at))).scalars())
        blocks = promotion_blocks(session, tenant, model, version)
    references: dict[tuple[Any, Any], dict[str, Any]] = {}
    for key in pairs:
        if key != (None, None) and key not in references:
            references[key] = {"source": key[0], "pinned_at": key[1]}
    dataset = None
    if run is not None or (row is not None and row.dataset_ref):
        dataset = {"reference": (run or {}).get("dataset") or (row.dataset_ref if row else None),
                   "hash": (run or {}).get("dataset_hash")}
    return {
        "tenant": tenant, "model": model, "version": version,
        "run": run,
        "dataset": dataset,
        "model_version": {
            "registered": row is not None,
            "row": _dump(row) if row is not None else None,
            "parent_version": row.parent_version if row is not None else (run or {}).get("base_version"),
            "findings": [_finding(f) for f in version_findings],
            "promotion_blocked": bool(blocks),
            "blocks": blocks,
        },
        "deployments": [_dump(h) for h in deployments],
        "drift_reference": {
            "references": list(references.values()),
            "findings": [_finding(f) for f in drift],
        },
    }


def _dump(row: Any) -> dict[str, Any]:
    return {k: (_utc(v) if isinstance(v, datetime) else v) for k, v in row.model_dump().items()}


def promotion_blocks(session: Session, tenant: str, model: str, version: str) -> list[dict[str, Any]]:
    """The enforce-mode ``block-promotion`` decisions that still block ``version`` (empty: free to promote)."""
    # 'tag' inline, not a bound parameter: the partial index ix_decisions_tags (action = 'tag') then serves
    # every plan, a prepared one included
    decisions: Sequence[DecisionRow] = session.execute(select(DecisionRow).where(
        col(DecisionRow.tenant) == tenant, col(DecisionRow.model) == model, col(DecisionRow.version) == version,
        col(DecisionRow.mode) == "enforce", col(DecisionRow.action) == literal("tag", literal_execute=True))
    ).scalars().all()
    rows = [d for d in decisions if BLOCK_TAG in (d.tags or [])]
    if not rows:
        return []
    alert = session.get(AlertRow, stable_id("alert", tenant, block_dedup_key(tenant, model, version)))
    resolved_at = _utc(alert.resolved_at) if alert is not None and alert.status == "resolved" \
        and alert.resolved_by != AUTO_RESOLVE_ACTOR else None
    if resolved_at is not None:
        rows = [d for d in rows if _utc(d.created_at) > resolved_at]  # type: ignore[operator]
    ids = sorted({i for d in rows for i in d.finding_ids})
    named: Sequence[FindingRow] = session.execute(
        select(FindingRow).where(col(FindingRow.finding_id).in_(ids))).scalars().all() if ids else []
    found = {f.finding_id: f.summary for f in named}
    return [{"decision_id": d.decision_id, "policy_id": d.policy_id, "policy_version": d.policy_version,
             "summary": "; ".join(found[i] for i in d.finding_ids if i in found) or d.summary,
             "detector": d.detector, "finding_ids": d.finding_ids, "created_at": _utc(d.created_at)} for d in rows]
