"""The one state protocol of stateful detectors.

Every detector that learns keeps bounded state that round-trips through plain data (JSON types only),
so a faust table, a checkpoint or a test can hold it:

* :class:`Stateful` — one detector, one state: ``snapshot()`` → plain data, ``Class.restore(data)`` → an
  equal detector (its configuration travels inside the snapshot). A snapshot of an older format restores
  where the detector says so in its docstring, else ``restore`` raises ``ValueError``.
* :class:`PerModelState` — a detector that holds state for many (tenant, model) pairs (a worker sees
  many models; a model's events all reach one worker). ``model_state`` is the plain data of one pair
  (``None``: nothing held), ``restore_model`` loads it unless the pair already has state here (newer
  state wins) and returns how many parts it loaded, ``forget_model`` drops the pair (its events moved to
  another worker).

The stream pipeline checkpoints every :class:`PerModelState` component of a model in one loop
(:meth:`streams.pipeline.Pipeline.model_state`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, Self, runtime_checkable


@runtime_checkable
class Stateful(Protocol):
    """A detector whose whole state is plain data."""

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON-serialisable plain data (configuration included)."""
        ...

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> Self:
        """A detector equal to the one that made ``data``."""
        ...


@runtime_checkable
class PerModelState(Protocol):
    """A detector keeping state per (tenant, model), checkpointed model by model."""

    def model_state(self, tenant: str, model: str) -> Any | None:
        """The pair's state as plain data (None: nothing held for it)."""
        ...

    def restore_model(self, tenant: str, model: str, state: Any) -> int:
        """Load :meth:`model_state` output unless the pair has state here already; how many parts it loaded."""
        ...

    def forget_model(self, tenant: str, model: str) -> None:
        """Drop the pair's state."""
        ...
