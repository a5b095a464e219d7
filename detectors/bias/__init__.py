"""Bias and fairness: cohort disparities on live traffic, bias benchmark scores from evaluations.

- :mod:`detectors.bias.fairness` — :class:`~detectors.bias.fairness.CohortFairnessMonitor` (per model and window);
- :mod:`detectors.bias.metrics` / :mod:`detectors.bias.stats` — disparity metrics, intervals and tests;
- :mod:`detectors.bias.outcomes` / :mod:`detectors.bias.refusal` — what counts as a favourable outcome;
- :mod:`detectors.bias.bbq` — BBQ bias-score regressions between model versions.
"""
