"""Prometheus metrics of the governance service."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS_INGESTED = Counter("warden_http_events_total", "Events received on POST /v1/events", ["outcome"])
PERSISTED = Counter("warden_persisted_total", "Records newly written to the store", ["kind"])
RECORDS_SKIPPED = Counter("warden_records_skipped_total", "Governance records that could not be parsed", ["topic"])
PERSIST_SECONDS = Histogram("warden_persist_batch_seconds", "Time to persist one consumed batch")
