"""The registry operations a job worker needs, as a small Protocol, with two implementations.

The worker registers candidate versions, reads the version an alias (``production``) points at, reads
the alias history and switches aliases. The lead binds :class:`RegistryPort` to the governance store's
model registry (issue 8); :class:`InMemoryRegistry` serves the unit tests and :class:`JsonFileRegistry`
(one JSON file, an exclusive ``flock`` around each operation) lets several worker processes share a
registry in the integration tests and the embedded mode until that binding exists.
"""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

AliasAction = Literal["deploy", "promote", "rollback"]


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class ModelVersion:
    """A registered version of a tenant's model, its artifact and metrics."""

    tenant: str
    model: str
    version: str
    artifact_uri: str
    task: str = "classification"
    metrics: dict[str, float] = field(default_factory=dict)
    parent_version: str | None = None
    dataset_version: str | None = None
    job_id: str | None = None
    created_at: str = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AliasChange:
    """One switch of an alias (oldest first in a history)."""

    tenant: str
    model: str
    alias: str
    version: str
    previous_version: str | None
    action: AliasAction
    actor: str
    reason: str | None = None
    job_id: str | None = None
    at: str = field(default_factory=_now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RegistryPort(Protocol):
    """What the job worker needs from the model registry."""

    def get_version(self, tenant: str, model: str, version: str) -> ModelVersion | None: ...

    def alias_version(self, tenant: str, model: str, alias: str = "production") -> str | None: ...

    def alias_history(self, tenant: str, model: str, alias: str = "production") -> list[AliasChange]: ...

    def register_version(self, tenant: str, model: str, *, artifact_uri: str, task: str,
                         metrics: dict[str, float], parent_version: str | None = None,
                         dataset_version: str | None = None, job_id: str | None = None) -> ModelVersion:
        """Register a new version (named ``v<n>``); idempotent by ``job_id``."""
        ...

    def set_alias(self, tenant: str, model: str, alias: str, version: str, *, action: AliasAction,
                  actor: str, reason: str | None = None, job_id: str | None = None) -> AliasChange:
        """Append a switch to the alias history; the registry writes the audit entry."""
        ...


class _DictRegistry:
    """The registry logic over a plain dict state ``{"versions": {...}, "aliases": {...}}``."""

    @contextmanager
    def _state(self, write: bool) -> Iterator[dict[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield {}

    @staticmethod
    def _mkey(tenant: str, model: str) -> str:
        return f"{tenant}\x1f{model}"

    def get_version(self, tenant: str, model: str, version: str) -> ModelVersion | None:
        with self._state(False) as st:
            raw = st["versions"].get(self._mkey(tenant, model), {}).get(version)
        return ModelVersion(**raw) if raw else None

    def versions(self, tenant: str, model: str) -> list[ModelVersion]:
        with self._state(False) as st:
            return [ModelVersion(**v) for v in st["versions"].get(self._mkey(tenant, model), {}).values()]

    def alias_history(self, tenant: str, model: str, alias: str = "production") -> list[AliasChange]:
        with self._state(False) as st:
            return [AliasChange(**c) for c in st["aliases"].get(self._mkey(tenant, model), {}).get(alias, [])]

    def alias_version(self, tenant: str, model: str, alias: str = "production") -> str | None:
        hist = self.alias_history(tenant, model, alias)
        return hist[-1].version if hist else None

    def register_version(self, tenant: str, model: str, *, artifact_uri: str, task: str,
                         metrics: dict[str, float], parent_version: str | None = None,
                         dataset_version: str | None = None, job_id: str | None = None) -> ModelVersion:
        with self._state(True) as st:
            mine = st["versions"].setdefault(self._mkey(tenant, model), {})
            if job_id:
                for raw in mine.values():
                    if raw.get("job_id") == job_id:
                        return ModelVersion(**raw)
            mv = ModelVersion(tenant, model, f"v{len(mine) + 1}", artifact_uri, task, dict(metrics),
                              parent_version, dataset_version, job_id)
            mine[mv.version] = mv.to_dict()
            return mv

    def set_alias(self, tenant: str, model: str, alias: str, version: str, *, action: AliasAction,
                  actor: str, reason: str | None = None, job_id: str | None = None) -> AliasChange:
        with self._state(True) as st:
            if version not in st["versions"].get(self._mkey(tenant, model), {}):
                raise KeyError(f"{tenant}/{model} has no version {version!r}")
            hist = st["aliases"].setdefault(self._mkey(tenant, model), {}).setdefault(alias, [])
            prev = hist[-1]["version"] if hist else None
            change = AliasChange(tenant, model, alias, version, prev, action, actor, reason, job_id)
            hist.append(change.to_dict())
            return change


class InMemoryRegistry(_DictRegistry):
    """A registry in process memory (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._data: dict[str, Any] = {"versions": {}, "aliases": {}}

    @contextmanager
    def _state(self, write: bool) -> Iterator[dict[str, Any]]:
        with self._lock:
            yield self._data


class JsonFileRegistry(_DictRegistry):
    """A registry in one JSON file shared by processes on one machine (``flock`` per operation)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = self.path.with_suffix(self.path.suffix + ".lock")

    @contextmanager
    def _state(self, write: bool) -> Iterator[dict[str, Any]]:
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            try:
                data = json.loads(self.path.read_text()) if self.path.exists() else {"versions": {}, "aliases": {}}
                yield data
                if write:
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(data, sort_keys=True))
                    tmp.replace(self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
