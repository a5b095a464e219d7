"""Anomalies on operational metric series (latency, errors, request rate, tokens, cost).

- :mod:`detectors.anomaly.detector` — :class:`~detectors.anomaly.detector.AnomalyDetector`, one series point by point;
- :mod:`detectors.anomaly.kernel` — its compiled scoring kernel;
- :mod:`detectors.anomaly.opsmetrics` — per-(tenant, model) interval metrics, each watched by a detector.
"""
