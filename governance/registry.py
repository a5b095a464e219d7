"""Model registry: models, versions with lineage and metrics, aliases with their full history.

Every alias switch keeps a history row (from, to, who, when, why), so "which version did
``production`` point to on a given day" has an answer (:func:`alias_at`). Writes take the caller's
session and add their audit entries to the same transaction. Publishing the deployment event is
the API's job (the store imports no Kafka).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance import audit
from store.models import AliasHistoryRow, AliasRow, ModelVersionRow, RegisteredModelRow
from store.models import assume_utc as _utc

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")


class RegistryError(ValueError):
    """A registry request that cannot be honoured; ``code`` is ``not_found``, ``conflict`` or ``invalid``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code




def dump(row: Any) -> dict[str, Any]:
    """A row as plain data with UTC datetimes."""
    return {k: (_utc(v) if isinstance(v, datetime) else v) for k, v in row.model_dump().items()}


def _check_name(value: str, what: str, pattern: re.Pattern[str] = NAME) -> None:
    if not pattern.match(value):
        raise RegistryError("invalid", f"invalid {what} {value!r}")


def get_model(session: Session, tenant: str, name: str) -> RegisteredModelRow | None:
    return session.get(RegisteredModelRow, (tenant, name))


def create_model(session: Session, *, tenant: str, name: str, actor: str, description: str = "") -> RegisteredModelRow:
    """Register a model (conflict if it exists)."""
    _check_name(name, "model name")
    if get_model(session, tenant, name) is not None:
        raise RegistryError("conflict", f"model {name!r} already exists")
    row = RegisteredModelRow(tenant=tenant, name=name, description=description, created_by=actor,
                             created_at=datetime.now(UTC))
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, action="model.created", tenant=tenant, target_type="model",
                 target_id=f"{tenant}/{name}", after=dump(row))
    return row


def register_version(
    session: Session,
    *,
    tenant: str,
    model: str,
    version: str,
    artifact_uri: str,
    actor: str,
    parent_version: str | None = None,
    dataset_ref: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    source: str = "manual",
    job_id: str | None = None,
) -> ModelVersionRow:
    """Add a version (the model is created on first use); the parent must exist."""
    _check_name(model, "model name")
    _check_name(version, "version")
    if source not in ("manual", "job"):
        raise RegistryError("invalid", "source must be 'manual' or 'job'")
    if source == "job" and not job_id:
        raise RegistryError("invalid", "a version created by a job names its job_id")
    if get_model(session, tenant, model) is None:
        create_model(session, tenant=tenant, name=model, actor=actor)
    if session.get(ModelVersionRow, (tenant, model, version)) is not None:
        raise RegistryError("conflict", f"version {version!r} of {model!r} already exists")
    if parent_version is not None and session.get(ModelVersionRow, (tenant, model, parent_version)) is None:
        raise RegistryError("invalid", f"parent version {parent_version!r} does not exist")
    row = ModelVersionRow(tenant=tenant, model=model, version=version, artifact_uri=artifact_uri,
                          parent_version=parent_version, dataset_ref=dataset_ref, metrics=dict(metrics or {}),
                          source=source, job_id=job_id, created_by=actor, created_at=datetime.now(UTC))
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, action="model_version.created", tenant=tenant, target_type="model_version",
                 target_id=f"{tenant}/{model}@{version}", after=dump(row))
    return row


def switch_alias(
    session: Session,
    *,
    tenant: str,
    model: str,
    alias: str,
    version: str,
    actor: str,
    reason: str = "",
    action: str | None = None,
    at: datetime | None = None,
) -> AliasHistoryRow:
    """Point ``alias`` at ``version``; records history and audit. ``action`` defaults to ``deploy``
    for a new alias, ``rollback`` when moving to an older version, ``promote`` otherwise."""
    _check_name(alias, "alias", ALIAS)
    target = session.get(ModelVersionRow, (tenant, model, version))
    if target is None:
        raise RegistryError("not_found", f"version {version!r} of model {model!r} does not exist")
    current = session.get(AliasRow, (tenant, model, alias))
    when = at or datetime.now(UTC)
    previous = current.version if current else None
    if action is None:
        if previous is None:
            action = "deploy"
        else:
            prev_row = session.get(ModelVersionRow, (tenant, model, previous))
            older = prev_row is not None and _utc(target.created_at) < _utc(prev_row.created_at)  # type: ignore[operator]
            action = "rollback" if older else "promote"
    if action not in ("deploy", "promote", "rollback"):
        raise RegistryError("invalid", "action must be deploy, promote or rollback")
    if current is None:
        current = AliasRow(tenant=tenant, model=model, alias=alias, version=version, updated_by=actor, updated_at=when)
    else:
        current.version, current.updated_by, current.updated_at = version, actor, when
    session.add(current)
    entry = audit.append(session, actor=actor, action="alias.switched", tenant=tenant, target_type="model_alias",
                         target_id=f"{tenant}/{model}:{alias}", before={"version": previous},
                         after={"version": version, "reason": reason, "action": action,
                                "switched_at": when})
    hist = AliasHistoryRow(switch_id=f"sw_{entry.seq:012d}_{entry.hash[:12]}", tenant=tenant, model=model, alias=alias,
                           from_version=previous, to_version=version, action=action, actor=actor, reason=reason,
                           switched_at=when)
    session.add(hist)
    session.flush()
    return hist


def list_models(engine: Engine, tenant: str) -> list[RegisteredModelRow]:
    with Session(engine) as session:
        return list(session.execute(select(RegisteredModelRow).where(col(RegisteredModelRow.tenant) == tenant)
                                    .order_by(col(RegisteredModelRow.name))).scalars())


def list_versions(engine: Engine, tenant: str, model: str) -> list[ModelVersionRow]:
    with Session(engine) as session:
        return list(session.execute(
            select(ModelVersionRow).where(col(ModelVersionRow.tenant) == tenant, col(ModelVersionRow.model) == model)
            .order_by(col(ModelVersionRow.created_at).desc(), col(ModelVersionRow.version).desc())).scalars())


def list_aliases(engine: Engine, tenant: str, model: str) -> list[AliasRow]:
    with Session(engine) as session:
        return list(session.execute(select(AliasRow).where(col(AliasRow.tenant) == tenant, col(AliasRow.model) == model)
                                    .order_by(col(AliasRow.alias))).scalars())


def alias_history(engine: Engine, tenant: str, model: str, alias: str) -> list[AliasHistoryRow]:
    """Every switch of an alias, newest first."""
    with Session(engine) as session:
        return list(session.execute(
            select(AliasHistoryRow).where(col(AliasHistoryRow.tenant) == tenant, col(AliasHistoryRow.model) == model,
                                          col(AliasHistoryRow.alias) == alias)
            .order_by(col(AliasHistoryRow.switched_at).desc(), col(AliasHistoryRow.switch_id).desc())).scalars())


def alias_at(engine: Engine, tenant: str, model: str, alias: str, at: datetime) -> str | None:
    """The version ``alias`` pointed to at time ``at`` (None if it did not exist yet)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    with Session(engine) as session:
        row = session.execute(
            select(col(AliasHistoryRow.to_version)).where(
                col(AliasHistoryRow.tenant) == tenant, col(AliasHistoryRow.model) == model, col(AliasHistoryRow.alias) == alias,
                col(AliasHistoryRow.switched_at) <= at)
            .order_by(col(AliasHistoryRow.switched_at).desc(), col(AliasHistoryRow.switch_id).desc()).limit(1)).first()
    return row[0] if row else None
