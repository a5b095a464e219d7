"""The drift monitors of one worker: one :class:`DriftMonitor` per (tenant, model, version), bounded."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from detectors.drift.monitor import DriftConfig, DriftMonitor
from detectors.finding import Subject

#: drift monitors a worker keeps by default; each holds its reference and window samples
MAX_DRIFT_MONITORS = 200


class DriftMonitors:
    """Drift monitors by (tenant, model, version); the least recently used is dropped beyond ``limit``.

    Follows :class:`detectors.base.PerModelState`: a model's state is its versions' snapshots.
    """

    def __init__(self, config: DriftConfig, limit: int = MAX_DRIFT_MONITORS) -> None:
        self.config = config
        self.limit = limit
        self._monitors: OrderedDict[tuple[str, str, str], DriftMonitor] = OrderedDict()

    def get(self, tenant: str, model: str, version: str) -> DriftMonitor | None:
        """The version's monitor, if this worker has one (does not count as a use)."""
        return self._monitors.get((tenant, model, version))

    def monitor(self, subject: Subject) -> DriftMonitor:
        """The monitor of ``subject`` (a new one the first time), marked most recently used."""
        key = (subject.tenant, subject.model, subject.version or "")
        mon = self._monitors.pop(key, None) or DriftMonitor(self.config, subject)
        self._monitors[key] = mon
        self._trim()
        return mon

    def __len__(self) -> int:
        return len(self._monitors)

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        return iter(self._monitors)

    def _trim(self) -> None:
        while len(self._monitors) > self.limit:
            self._monitors.popitem(last=False)

    # ---- PerModelState
    def model_state(self, tenant: str, model: str) -> dict[str, Any] | None:
        """Snapshots of the model's monitors by version (None: none held)."""
        state = {v: m.snapshot() for (t, mo, v), m in self._monitors.items() if t == tenant and mo == model}
        return state or None

    def restore_model(self, tenant: str, model: str, state: Mapping[str, Any]) -> int:
        """Load the versions this worker has no monitor of; returns how many it loaded."""
        loaded = 0
        for version, snapshot in state.items():
            key = (tenant, model, version)
            if key not in self._monitors:
                self._monitors[key] = DriftMonitor.restore(snapshot)
                loaded += 1
        self._trim()
        return loaded

    def forget_model(self, tenant: str, model: str) -> None:
        """Drop the model's monitors."""
        for key in [k for k in self._monitors if k[0] == tenant and k[1] == model]:
            del self._monitors[key]
