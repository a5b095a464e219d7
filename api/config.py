"""What the governance service needs to know (``warden`` maps its settings onto this; see ``warden.settings``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from governance.retention import Retention


@dataclass(frozen=True)
class HealthConfig:
    """What ``/healthz`` checks beyond the API's own database and broker (see ``api.monitor``)."""

    expect_worker: bool = False
    """Degraded while no stream worker reports (a worker that reported and went silent counts regardless)."""
    worker_stale_s: float = 30.0
    max_lag: int = 10_000
    outbox_max_age_s: float = 300.0
    startup_grace_s: float = 180.0
    check_interval_s: float = 5.0
    """How often the outbox is measured (in the background: a probe never waits on a slow query)."""
    forget_after_s: float = 3600.0
    """A worker silent this long is dropped from the report (scaled down, renamed)."""


@dataclass(frozen=True)
class ApiConfig:
    """The governance API's configuration, built once per process."""

    database_url: str
    """SQLAlchemy URL of the store (SQLite file or PostgreSQL)."""
    bootstrap: str
    """Kafka bootstrap servers (the API publishes events and job requests, and consumes the stream's outputs)."""
    governance_group: str = "warden-governance"
    """Consumer group of the governance consumer."""
    worker_group: str = "warden-worker"
    """Consumer group of the stream workers (its state and lag are part of the health report)."""
    session_timeout_s: float = 10.0
    admin_key: str | None = None
    """The bootstrap admin key (``Authorization: Bearer …``), besides the keys in the store."""
    pii_key: str | None = None
    """HMAC key under which the store knows users (erasure by user id needs it)."""
    max_event_bytes: int = 1024 * 1024
    """Larger ``POST /v1/events`` bodies are refused."""
    alert_destinations: str | None = None
    """Alert destinations: a JSON/YAML file path or inline JSON (see the README)."""
    alert_resolve_after_s: float | None = 3600.0
    alert_dispatch_poll_s: float = 0.05
    policy_routes: tuple[str, ...] = ()
    """The alert routes the deployment's policies name: at start-up, those without a destination are
    logged as a warning and shown by ``/healthz`` (their alerts are recorded, not delivered)."""
    health: HealthConfig = field(default_factory=HealthConfig)
    retention: Retention = field(default_factory=Retention)
    """Default retention per kind of record, until one is stored."""
    port: int = 8000
    console_session_ttl_s: float = 8 * 3600.0
    """How long a console sign-in lasts before the person signs in again."""
    otlp_max_bytes: int = 20 * 1024 * 1024
    """Largest ``POST /v1/traces`` body, after decompression (413 above; the OTLP spec recommends 20 MiB)."""
    otlp_max_inflight: int = 32
    """Trace exports handled at once; more get 429 with ``Retry-After``."""
    otlp_publish_timeout_s: float = 10.0
    """How long a trace export waits for Kafka before answering 503 with ``Retry-After``."""
    audit_verify_interval_s: float = 3600.0
    """How often the service verifies the audit hash chain (``warden_audit_chain_valid``); 0: never."""
