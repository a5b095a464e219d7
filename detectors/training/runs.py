"""The training runs a worker follows: one :class:`TrainingRunMonitor` per run, and each run's base version."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from detectors.finding import Finding, Subject
from detectors.training.monitor import TrainingRunMonitor

#: training runs whose monitors (and base versions) a worker keeps; the least recently updated go first
MAX_TRAINING_RUNS = 1000


class TrainingRuns:
    """Run monitors by (tenant, model, run id) and the base version each run started from.

    Follows :class:`detectors.base.PerModelState`: a model's state is ``{"runs": [[run_id, snapshot], …],
    "run_base": [[run_id, base_version], …]}``.
    """

    def __init__(self, limit: int = MAX_TRAINING_RUNS) -> None:
        self.limit = limit
        self._runs: OrderedDict[tuple[str, str, str], TrainingRunMonitor] = OrderedDict()
        self._base: OrderedDict[tuple[str, str, str], str] = OrderedDict()

    def started(self, tenant: str, model: str, run_id: str, base_version: str | None) -> None:
        """A run started from ``base_version`` (a later data sample of the run may not name it)."""
        if base_version:
            self._base[(tenant, model, run_id)] = base_version
            _trim(self._base, self.limit)

    def base_of(self, tenant: str, model: str, run_id: str) -> str | None:
        """The base version the run named when it started, if this worker saw it."""
        return self._base.get((tenant, model, run_id))

    def step(self, tenant: str, model: str, run_id: str, version: str, step: int,
             metrics: Mapping[str, float | None], ts: datetime, *, event_id: str | None = None) -> list[Finding]:
        """One logged step of a run (``version``: the run's base version, else the event's)."""
        key = (tenant, model, run_id)
        monitor = self._runs.pop(key, None) or TrainingRunMonitor(run_id, Subject(tenant=tenant, model=model,
                                                                                   version=version))
        self._runs[key] = monitor
        _trim(self._runs, self.limit)
        return monitor.update(step, metrics, ts, event_id=event_id)

    # ---- PerModelState
    def model_state(self, tenant: str, model: str) -> dict[str, Any] | None:
        runs = [[run, m.snapshot()] for (t, mo, run), m in self._runs.items() if t == tenant and mo == model]
        bases = [[run, base] for (t, mo, run), base in self._base.items() if t == tenant and mo == model]
        return {"runs": runs, "run_base": bases} if runs or bases else None

    def restore_model(self, tenant: str, model: str, state: Mapping[str, Any]) -> int:
        loaded = 0
        for run_id, snapshot in state.get("runs") or []:
            key = (tenant, model, run_id)
            if key not in self._runs:
                self._runs[key] = TrainingRunMonitor.restore(snapshot)
                self._runs.move_to_end(key, last=False)  # restored runs are the oldest here
                loaded += 1
        _trim(self._runs, self.limit)
        for run_id, base in state.get("run_base") or []:
            self._base.setdefault((tenant, model, run_id), base)
        _trim(self._base, self.limit)
        return loaded

    def forget_model(self, tenant: str, model: str) -> None:
        for entries in (self._runs, self._base):
            for key in [k for k in entries if k[0] == tenant and k[1] == model]:
                del entries[key]


def _trim(entries: OrderedDict[Any, Any], limit: int) -> None:
    """Drop the oldest entries of an LRU-ordered mapping beyond ``limit``."""
    while len(entries) > limit:
        entries.popitem(last=False)
