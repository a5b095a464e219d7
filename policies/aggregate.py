"""A pure, event-time window aggregator per group key: count, rate or ratio over a window.

Time is cut into buckets of ``step`` seconds aligned on the Unix epoch; a window is ``k`` consecutive
buckets (``k = window / step``; ``k = 1`` is a tumbling window). Each :meth:`WindowAggregator.add`
puts one matching finding into the bucket of its timestamp and evaluates the window that *ends* with
that bucket. :meth:`WindowAggregator.observe_event` counts the denominator of a ratio (one call per
inference event). Only event time counts, never the wall clock, so replaying the same input in the
same order gives the same firings.

One firing per window: after a window fires, the next firing of that group must come from a window
that does not overlap it (for tumbling windows: the next window). The state is bounded: per group at
most ``k`` buckets (an item older than the oldest kept bucket is dropped and counted in
``late_dropped``), at most ``max_groups`` groups (the least recently updated group goes first), and
at most ``max_distinct`` remembered keys per bucket when counting distinct keys (past it, items count
without de-duplication). ``snapshot()`` / ``restore()`` use plain JSON-ready data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from hashlib import blake2b
from typing import Any, Literal

Function = Literal["count", "rate", "ratio"]
GroupKey = tuple[str, ...]
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """What to aggregate and when to fire (see :class:`policies.schema.AggregateSpec`)."""

    function: Function
    window_s: float
    step_s: float
    op: Literal["gt", "gte"] = "gt"
    threshold: float = 0.0
    min_events: int = 1
    max_groups: int = 10_000
    max_distinct: int = 50_000

    @property
    def buckets(self) -> int:
        return max(1, int(round(self.window_s / self.step_s)))


@dataclass(frozen=True, slots=True)
class Firing:
    """One window of one group that met the threshold."""

    group: GroupKey
    window_start: float
    window_end: float
    value: float
    numerator: int
    denominator: int | None


def key_hash(key: str) -> int:
    """A stable 48-bit hash of a distinct key (process-independent, unlike ``hash()``)."""
    return int.from_bytes(blake2b(key.encode("utf-8", "surrogatepass"), digest_size=6).digest(), "big")


class _Group:
    __slots__ = ("buckets", "max_b", "next_ok")

    def __init__(self, max_b: int, next_ok: int) -> None:
        # bucket index -> [numerator count, denominator count, set of key hashes | None]
        self.buckets: dict[int, list[Any]] = {}
        self.max_b = max_b
        self.next_ok = next_ok


class WindowAggregator:
    """Sliding or tumbling window aggregates per group key; see the module docstring."""

    def __init__(self, config: WindowConfig) -> None:
        self.config = config
        self._k = config.buckets
        self._step = config.step_s
        self._groups: dict[GroupKey, _Group] = {}
        #: items that arrived after their bucket had left every window kept
        self.late_dropped = 0
        #: groups dropped to respect ``max_groups``
        self.evicted_groups = 0

    # ------------------------------------------------------------ updates

    def _group(self, group: GroupKey, b: int) -> _Group:
        groups = self._groups
        g = groups.pop(group, None)
        if g is None:
            g = _Group(b, b)
            if len(groups) >= self.config.max_groups:
                del groups[next(iter(groups))]
                self.evicted_groups += 1
        groups[group] = g  # most recently updated last
        return g

    def _cell(self, g: _Group, b: int) -> list[Any] | None:
        """The bucket ``b`` of ``g`` (created if needed), or None when ``b`` is too old."""
        if b > g.max_b:
            g.max_b = b
            oldest = b - self._k + 1
            stale = [i for i in g.buckets if i < oldest]
            for i in stale:
                del g.buckets[i]
        elif b <= g.max_b - self._k:
            self.late_dropped += 1
            return None
        cell = g.buckets.get(b)
        if cell is None:
            cell = g.buckets[b] = [0, 0, None]
        return cell

    def observe_event(self, group: GroupKey, ts: float, count: int = 1) -> None:
        """Count ``count`` events of ``group`` at ``ts`` (epoch seconds) in a ratio's denominator."""
        b = int(ts // self._step)
        cell = self._cell(self._group(group, b), b)
        if cell is not None:
            cell[1] += count

    def add(self, group: GroupKey, ts: float, key: str | None = None) -> Firing | None:
        """Count one matching finding; return a :class:`Firing` when its window crosses the threshold.

        With ``key`` (the value of the ``distinct`` field), an item whose key was already counted in
        the same bucket changes nothing.
        """
        b = int(ts // self._step)
        g = self._group(group, b)
        cell = self._cell(g, b)
        if cell is None:
            return None
        if key is not None:
            ids = cell[2]
            if ids is None:
                ids = cell[2] = set()
            h = key_hash(key)
            if h in ids:
                return None
            if len(ids) < self.config.max_distinct:
                ids.add(h)
        cell[0] += 1
        if b < g.next_ok:
            return None
        value, num, den = self._measure(g, b)
        if value is None:
            return None
        cfg = self.config
        if value > cfg.threshold if cfg.op == "gt" else value >= cfg.threshold:
            g.next_ok = b + self._k
            start = (b - self._k + 1) * self._step
            return Firing(group, start, start + cfg.window_s, value, num, den)
        return None

    # ------------------------------------------------------------ reading

    def _measure(self, g: _Group, end_b: int) -> tuple[float | None, int, int | None]:
        num = den = 0
        buckets = g.buckets
        if len(buckets) <= self._k:
            lo = end_b - self._k
            for i, cell in buckets.items():
                if lo < i <= end_b:
                    num += cell[0]
                    den += cell[1]
        else:  # more buckets than k: restored under a shorter window
            for i in range(end_b - self._k + 1, end_b + 1):
                got = buckets.get(i)
                if got:
                    num += got[0]
                    den += got[1]
        fn = self.config.function
        if fn == "count":
            return float(num), num, None
        if fn == "rate":
            return num / (self.config.window_s / 60.0), num, None
        if den < self.config.min_events or den == 0:
            return None, num, den
        return num / den, num, den

    def value(self, group: GroupKey, ts: float) -> tuple[float | None, int, int | None]:
        """``(value, numerator, denominator)`` of the window ending with ``ts``'s bucket (no update).

        ``value`` is None for a ratio below ``min_events``; an unknown group reads as empty.
        """
        g = self._groups.get(group)
        b = int(ts // self._step)
        if g is None:
            g = _Group(b, b)
        return self._measure(g, b)

    @property
    def groups(self) -> list[GroupKey]:
        """Group keys held, least recently updated first."""
        return list(self._groups)

    def __len__(self) -> int:
        return len(self._groups)

    # ------------------------------------------------------------ state

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-ready state (a faust table value or a checkpoint)."""
        return {
            "version": SNAPSHOT_VERSION,
            "config": asdict(self.config),
            "late_dropped": self.late_dropped,
            "evicted_groups": self.evicted_groups,
            "groups": [[list(key), *_encode_group(g)] for key, g in self._groups.items()],
        }

    def group_state(self, group: GroupKey) -> list[Any] | None:
        """One group's state as plain data (None when the aggregator holds nothing for it): what a
        keyed store (a faust table) keeps per group when groups live where their key is routed."""
        g = self._groups.get(group)
        return None if g is None else _encode_group(g)

    def set_group_state(self, group: GroupKey, state: list[Any] | None) -> None:
        """Replace one group's state with :meth:`group_state` output (None forgets the group)."""
        self._groups.pop(group, None)
        if state is not None:
            self._groups[group] = _decode_group(state)
            while len(self._groups) > self.config.max_groups:
                del self._groups[next(iter(self._groups))]
                self.evicted_groups += 1

    @classmethod
    def restore(cls, state: dict[str, Any], config: WindowConfig | None = None) -> WindowAggregator:
        """Rebuild from :meth:`snapshot` output; ``config`` overrides the stored one (same shape)."""
        if not isinstance(state, dict) or state.get("version") != SNAPSHOT_VERSION:
            raise ValueError("not a window aggregator snapshot of a supported version")
        agg = cls(config or WindowConfig(**state["config"]))
        agg.late_dropped = int(state.get("late_dropped", 0))
        agg.evicted_groups = int(state.get("evicted_groups", 0))
        for key, *group in state["groups"]:
            agg._groups[tuple(str(k) for k in key)] = _decode_group(group)
        while len(agg._groups) > agg.config.max_groups:
            del agg._groups[next(iter(agg._groups))]
            agg.evicted_groups += 1
        return agg


def _encode_group(g: _Group) -> list[Any]:
    return [g.max_b, g.next_ok,
            [[i, c[0], c[1], None if c[2] is None else sorted(c[2])] for i, c in sorted(g.buckets.items())]]


def _decode_group(state: list[Any]) -> _Group:
    max_b, next_ok, buckets = state
    g = _Group(int(max_b), int(next_ok))
    for i, num, den, ids in buckets:
        g.buckets[int(i)] = [int(num), int(den), None if ids is None else set(ids)]
    return g
