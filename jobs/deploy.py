"""Switching an alias and the deployment event that announces it on ``warden.deployments``.

The event is the ordinary deployment envelope of the event contract (``contracts.events.DeploymentEvent``)
with the new version as ``model.version``; the stream worker reacts to it like to any deployment (drift
references follow the version the alias now serves). Its id derives from the job id, so a re-run job
publishes the same event id and consumers deduplicate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.events import DeploymentBody, DeploymentEvent, ModelRef
from detectors.finding import stable_id
from jobs.registry_port import AliasAction, AliasChange, RegistryPort


@dataclass
class Switch:
    """An alias switch and its deployment event."""

    change: AliasChange
    event: DeploymentEvent


def deployment_event(change: AliasChange, *, job_id: str | None = None) -> DeploymentEvent:
    """The deployment event for an alias change."""
    key = job_id or f"{change.previous_version}->{change.version}@{change.at}"
    return DeploymentEvent(
        schema_version="1",
        event_id=stable_id("deployment", change.tenant, change.model, change.alias, change.action, key),
        type="deployment",
        occurred_at=datetime.now(UTC),
        tenant=change.tenant,
        model=ModelRef(name=change.model, version=change.version),
        deployment=DeploymentBody(action=change.action, alias=change.alias, previous_version=change.previous_version,
                                  actor=change.actor, reason=change.reason),
    )


def switch_alias(registry: RegistryPort, tenant: str, model: str, alias: str, version: str, *,
                 action: AliasAction, actor: str, reason: str | None = None, job_id: str | None = None) -> Switch:
    """Point ``alias`` at ``version`` (no new history entry when it already does) and build the event."""
    history = registry.alias_history(tenant, model, alias)
    done = [c for c in history if job_id and c.job_id == job_id]
    if done:  # a re-run of the same job: the switch already happened
        change = done[-1]
    elif history and history[-1].version == version:
        change = history[-1]
    else:
        change = registry.set_alias(tenant, model, alias, version, action=action, actor=actor, reason=reason,
                                    job_id=job_id)
    return Switch(change, deployment_event(change, job_id=job_id))
