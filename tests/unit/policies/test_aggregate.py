"""The window aggregator: count / rate / ratio, one firing per window, bounds, snapshot/restore."""

from __future__ import annotations

import json
import random

from policies.aggregate import WindowAggregator, WindowConfig

G = ("acme", "chat")


def agg(**kw) -> WindowAggregator:
    cfg = dict(function="count", window_s=60.0, step_s=60.0, op="gt", threshold=2)
    cfg.update(kw)
    return WindowAggregator(WindowConfig(**cfg))


def test_tumbling_count_fires_once_per_window():
    a = agg(threshold=2)
    fired = [a.add(G, t) for t in (0, 10, 20, 30, 59)]
    assert [f is not None for f in fired] == [False, False, True, False, False]
    f = fired[2]
    assert (f.window_start, f.window_end, f.numerator, f.value) == (0.0, 60.0, 3, 3.0)
    # next window starts empty and fires again on its own third item
    fired = [a.add(G, t) for t in (60, 61, 62)]
    assert [f is not None for f in fired] == [False, False, True]
    assert fired[2].window_start == 60.0


def test_gte_and_groups_are_independent():
    a = agg(op="gte", threshold=2)
    assert a.add(G, 1) is None
    assert a.add(("other", "m"), 2) is None
    assert a.add(G, 3) is not None
    assert a.add(("other", "m"), 4) is not None


def test_sliding_window_counts_the_last_k_buckets_and_does_not_refire_overlapping_windows():
    a = agg(window_s=300.0, step_s=60.0, threshold=3)
    # one item per minute: the 4th item makes 4 > 3 in the window ending at minute 3
    out = [a.add(G, 60 * i + 1) for i in range(12)]
    fired = [i for i, f in enumerate(out) if f]
    assert fired[0] == 3
    assert out[3].window_start == -60.0 and out[3].window_end == 240.0 and out[3].numerator == 4
    # the next firing comes from a window that does not overlap the first (ends >= minute 8)
    assert fired[1] == 8 and out[8].window_start == out[3].window_end
    assert a.value(G, 60 * 11 + 1)[1] == 5  # five buckets of one item each


def test_rate_is_per_minute():
    a = agg(function="rate", window_s=600.0, step_s=600.0, threshold=1.0)
    out = [a.add(G, i) for i in range(11)]
    assert out[9] is None and out[10] is not None  # 11 items / 10 min = 1.1 > 1.0
    assert abs(out[10].value - 1.1) < 1e-12


def test_ratio_needs_min_events_and_uses_the_observed_denominator():
    a = agg(function="ratio", window_s=600.0, step_s=60.0, threshold=0.01, min_events=100)
    for i in range(99):
        a.observe_event(G, i)
    assert a.add(G, 99) is None  # 1/99 but fewer than 100 events: no verdict
    assert a.value(G, 99) == (None, 1, 99)
    a.observe_event(G, 100)
    f = a.add(G, 100)  # 2/100 = 2 % > 1 %
    assert f is not None and (f.numerator, f.denominator) == (2, 100) and abs(f.value - 0.02) < 1e-12
    # low ratio: 1 finding per 200 events never fires
    b = agg(function="ratio", window_s=600.0, step_s=60.0, threshold=0.01, min_events=100)
    hits = 0
    for i in range(5000):
        b.observe_event(G, i * 0.5)
        if i % 200 == 0 and b.add(G, i * 0.5):
            hits += 1
    assert hits == 0


def test_distinct_keys_count_once_per_bucket():
    a = agg(threshold=1)
    assert a.add(G, 1, key="e1") is None
    assert a.add(G, 2, key="e1") is None  # same event again (re-delivery): no change
    assert a.value(G, 2)[1] == 1
    assert a.add(G, 3, key="e2") is not None


def test_late_items_outside_the_kept_buckets_are_dropped():
    a = agg(window_s=120.0, step_s=60.0, threshold=100)
    a.add(G, 600)
    a.add(G, 540)  # previous bucket: still in the window
    assert a.late_dropped == 0 and a.value(G, 600)[1] == 2
    a.add(G, 400)  # too old
    assert a.late_dropped == 1 and a.value(G, 600)[1] == 2


def test_state_is_bounded():
    a = agg(threshold=10**9, max_groups=3, window_s=300.0, step_s=60.0)
    for i in range(10):
        a.add((f"t{i}", "m"), 0)
    assert len(a) == 3 and a.groups == [("t7", "m"), ("t8", "m"), ("t9", "m")] and a.evicted_groups == 7
    for minute in range(100):
        a.add(("t9", "m"), minute * 60)
    assert len(a._groups[("t9", "m")].buckets) <= 5
    d = agg(threshold=10**9, max_distinct=10)
    for i in range(50):
        d.add(G, 1, key=f"e{i}")
    assert d.value(G, 1)[1] == 50  # past the cap items still count
    assert len(d._groups[G].buckets[0][2]) == 10


def test_snapshot_restore_continues_identically():
    rng = random.Random(3)
    stream = []
    for i in range(3000):
        g = (f"t{rng.randrange(3)}", "m")
        t = i * 0.7 + rng.random()
        stream.append(("event", g, t, None) if rng.random() < 0.9 else ("finding", g, t, f"e{rng.randrange(400)}"))
    cfg = dict(function="ratio", window_s=300.0, step_s=60.0, threshold=0.08, min_events=20, max_groups=3)

    def run(items, a):
        out = []
        for kind, g, t, key in items:
            if kind == "event":
                a.observe_event(g, t)
            else:
                f = a.add(g, t, key)
                if f:
                    out.append(f)
        return out

    whole = run(stream, agg(**cfg))
    assert whole  # the scenario does fire
    first = agg(**cfg)
    part1 = run(stream[:1500], first)
    state = json.loads(json.dumps(first.snapshot()))
    part2 = run(stream[1500:], WindowAggregator.restore(state))
    assert part1 + part2 == whole
    # replaying the same input gives the same firings (event time only)
    assert run(stream, agg(**cfg)) == whole
