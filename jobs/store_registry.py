"""The job workers' :class:`~jobs.registry_port.RegistryPort` bound to the governance store's registry.

Versions a job registers and alias switches it makes (promotion, rollback) land in the same
tables, alias history and audit chain as changes made through the API. The store has no column
for a version's task, so it is kept in the version's metrics under ``"task"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance import registry as reg
from jobs.registry_port import AliasAction, AliasChange, ModelVersion
from store.models import AliasRow, ModelVersionRow

TASK_KEY = "task"


def _version(row: ModelVersionRow) -> ModelVersion:
    metrics = {k: v for k, v in (row.metrics or {}).items() if k != TASK_KEY}
    return ModelVersion(tenant=row.tenant, model=row.model, version=row.version, artifact_uri=row.artifact_uri,
                        task=(row.metrics or {}).get(TASK_KEY, "classification"), metrics=metrics,
                        parent_version=row.parent_version, dataset_version=row.dataset_ref, job_id=row.job_id,
                        created_at=row.created_at.isoformat() if row.created_at else "")


class StoreRegistry:
    """RegistryPort over ``governance.registry`` (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, actor: str = "jobs") -> None:
        self.engine = engine
        self.actor = actor

    def get_version(self, tenant: str, model: str, version: str) -> ModelVersion | None:
        with Session(self.engine) as session:
            row = session.get(ModelVersionRow, (tenant, model, version))
            return _version(row) if row else None

    def versions(self, tenant: str, model: str) -> list[ModelVersion]:
        return [_version(r) for r in reversed(reg.list_versions(self.engine, tenant, model))]

    def alias_version(self, tenant: str, model: str, alias: str = "production") -> str | None:
        with Session(self.engine) as session:
            row = session.get(AliasRow, (tenant, model, alias))
            return row.version if row else None

    def alias_history(self, tenant: str, model: str, alias: str = "production") -> list[AliasChange]:
        rows = reversed(reg.alias_history(self.engine, tenant, model, alias))  # oldest first
        return [AliasChange(tenant=r.tenant, model=r.model, alias=r.alias, version=r.to_version,
                            previous_version=r.from_version, action=cast(AliasAction, r.action), actor=r.actor, reason=r.reason or None,
                            at=r.switched_at.isoformat()) for r in rows]

    def register_version(self, tenant: str, model: str, *, artifact_uri: str, task: str,
                         metrics: dict[str, float], parent_version: str | None = None,
                         dataset_version: str | None = None, job_id: str | None = None) -> ModelVersion:
        """A new version ``v<n>``; a job that registers again (a re-run) gets its earlier version back."""
        with Session(self.engine, expire_on_commit=False) as session:
            if job_id:
                done = session.execute(select(ModelVersionRow).where(
                    col(ModelVersionRow.tenant) == tenant, col(ModelVersionRow.model) == model,
                    col(ModelVersionRow.job_id) == job_id)).scalars().first()
                if done is not None:
                    return _version(done)
            existing: Sequence[str] = session.execute(select(col(ModelVersionRow.version)).where(
                col(ModelVersionRow.tenant) == tenant, col(ModelVersionRow.model) == model)).scalars().all()
            n = 1 + max((int(v[1:]) for v in existing if v[:1] == "v" and v[1:].isdigit()), default=0)
            row = reg.register_version(session, tenant=tenant, model=model, version=f"v{n}",
                                       artifact_uri=artifact_uri, actor=f"job:{job_id}" if job_id else self.actor,
                                       parent_version=parent_version, dataset_ref=dataset_version,
                                       metrics={**metrics, TASK_KEY: task}, source="job" if job_id else "manual",
                                       job_id=job_id)
            session.commit()
            return _version(row)

    def set_alias(self, tenant: str, model: str, alias: str, version: str, *, action: AliasAction,
                  actor: str, reason: str | None = None, job_id: str | None = None) -> AliasChange:
        with Session(self.engine, expire_on_commit=False) as session:
            hist = reg.switch_alias(session, tenant=tenant, model=model, alias=alias, version=version, actor=actor,
                                    reason=reason or (f"job {job_id}" if job_id else ""), action=action)
            session.commit()
        return AliasChange(tenant=tenant, model=model, alias=alias, version=version,
                           previous_version=hist.from_version, action=action, actor=actor, reason=reason,
                           job_id=job_id, at=hist.switched_at.isoformat())
