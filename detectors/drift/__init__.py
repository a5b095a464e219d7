"""Drift of live traffic against a pinned reference, per (tenant, model, version).

- :mod:`detectors.drift.monitor` — :class:`~detectors.drift.monitor.DriftMonitor` and its configuration;
- :mod:`detectors.drift.stats` — KS / chi-square tests and Holm's procedure;
- :mod:`detectors.drift.mmd` — the MMD test on embeddings (permutation null);
- :mod:`detectors.drift.report` — the Evidently report for people.

Features (lengths, tokens, latency, cost, embeddings) come from :mod:`detectors.features`.
"""
