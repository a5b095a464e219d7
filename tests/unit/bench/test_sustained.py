"""bench.sustained reads the worker's event-loop delay histogram right."""

from __future__ import annotations

from bench.sustained import bucket_quantile, loop_delay_buckets


def test_loop_delay_quantiles_come_from_the_cumulative_buckets() -> None:
    samples = {'warden_worker_loop_delay_seconds_bucket{le="0.001"}': 50.0,
               'warden_worker_loop_delay_seconds_bucket{le="0.01"}': 98.0,
               'warden_worker_loop_delay_seconds_bucket{le="0.1"}': 100.0,
               'warden_worker_loop_delay_seconds_bucket{le="+Inf"}': 100.0,
               'warden_worker_loop_delay_seconds_count': 100.0,
               'warden_worker_stage_seconds_bucket{stage="pii",le="0.1"}': 7.0}
    buckets = loop_delay_buckets(samples)
    assert buckets == {0.001: 50.0, 0.01: 98.0, 0.1: 100.0, float("inf"): 100.0}
    assert bucket_quantile(buckets, 0.5) == 0.001
    assert bucket_quantile(buckets, 0.98) == 0.01
    assert bucket_quantile(buckets, 0.99) == 0.1
    assert bucket_quantile({}, 0.5) is None
