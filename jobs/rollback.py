"""Rollback: switch ``production`` back to the previous version of its alias history, or to a named one.

"Previous" skips the current version and every version the alias was rolled back *from*: after
``v1 → v2 → v3`` and a rollback to ``v2``, a second rollback goes to ``v1``, not back to the bad ``v3``.
"""

from __future__ import annotations

from jobs.deploy import Switch, switch_alias
from jobs.registry_port import AliasChange, RegistryPort


class RollbackError(ValueError):
    """There is nothing to roll back to, or the named version is unknown."""


def previous_version(history: list[AliasChange]) -> str | None:
    """The version to roll back to, from an alias history (oldest first); None if there is none."""
    if not history:
        return None
    current = history[-1].version
    rolled_back_from = {c.previous_version for c in history if c.action == "rollback" and c.previous_version}
    for change in reversed(history[:-1]):
        if change.version != current and change.version not in rolled_back_from:
            return change.version
    return None


def rollback(registry: RegistryPort, tenant: str, model: str, *, alias: str = "production",
             to_version: str | None = None, actor: str, reason: str | None = None,
             job_id: str | None = None) -> Switch:
    """Switch ``alias`` to ``to_version`` (or the previous version) and build the deployment event."""
    history = registry.alias_history(tenant, model, alias)
    done = [c for c in history if job_id and c.job_id == job_id]
    if done:  # a re-run of the same job must not roll back a second step
        return switch_alias(registry, tenant, model, alias, done[-1].version, action="rollback", actor=actor,
                            reason=reason, job_id=job_id)
    target = to_version or previous_version(history)
    if target is None:
        raise RollbackError(f"{tenant}/{model} has no earlier {alias} version to roll back to")
    if registry.get_version(tenant, model, target) is None:
        raise RollbackError(f"{tenant}/{model} has no version {target!r}")
    return switch_alias(registry, tenant, model, alias, target, action="rollback", actor=actor,
                        reason=reason, job_id=job_id)
