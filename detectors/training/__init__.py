"""Training-side detectors: training runs, evaluations, training/serving skew.

- :mod:`detectors.training.monitor` — :class:`~detectors.training.monitor.TrainingRunMonitor` (loss, gradients);
- :mod:`detectors.training.regression` — evaluation regressions against the production version;
- :mod:`detectors.training.metrics` — evaluation metrics (BLEU, ROUGE-L, accuracy, ...).
"""
