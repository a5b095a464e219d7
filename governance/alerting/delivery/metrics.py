"""Prometheus metrics of alert delivery (the dispatcher runs in the governance service).

``destination`` is a configured destination name, so the label stays bounded."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ATTEMPTS = Counter("warden_alert_delivery_attempts_total",
                   "Notifications attempted, by destination and outcome (delivered, retry, failed, expired)",
                   ["destination", "outcome"])
SEND_SECONDS = Histogram("warden_alert_delivery_seconds", "Time of one HTTP delivery request", ["destination"],
                         buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
