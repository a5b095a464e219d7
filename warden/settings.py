"""The one settings object. Every value comes from an env var prefixed ``WARDEN_``."""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:  # the role configurations are imported where they are built (the CLI stays light)
    from api.config import ApiConfig
    from governance.retention import Retention
    from jobs.config import JobsConfig
    from policies import Policy, PolicyEngine
    from streams.config import WorkerConfig
    from streams.pipeline import PipelineConfig


class Settings(BaseSettings):
    """Warden's configuration (env vars ``WARDEN_<FIELD>``, e.g. ``WARDEN_KAFKA_BOOTSTRAP``)."""

    model_config = SettingsConfigDict(env_prefix="WARDEN_", extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None, description="host:port[,host:port] of a Kafka cluster; unset → the embedded broker"
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; unset → SQLite file under data_dir"
    )
    data_dir: Path = Field(default=Path(".warden"), description="where the embedded mode keeps its files")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    admin_key: str | None = Field(default=None, description="the first admin API key (Bearer)")
    pii_key: str | None = Field(
        default=None, description="secret for keyed hashes (HMAC-SHA256): user ids in the store, and the 'hash' PII redaction"
    )
    retention_findings_days: int | None = Field(default=90, ge=1, description="default retention of findings")
    retention_decisions_days: int | None = Field(default=90, ge=1, description="default retention of decisions")
    retention_alerts_days: int | None = Field(default=365, ge=1, description="default retention of alerts")
    retention_dead_letters_days: int | None = Field(default=30, ge=1, description="default retention of DLQ records")
    retention_samples_days: int | None = Field(default=90, ge=1, description="default retention of training samples")

    embedded_broker_port: int = 9092
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    max_event_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger payloads go to the DLQ")

    worker_id: str = "worker"
    consumer_group: str = "warden-worker"
    governance_group: str = "warden-governance"
    session_timeout_s: float = Field(default=10.0, description="Kafka consumer-group session timeout")
    worker_web_port: int = Field(default=6066, ge=0, le=65535,
                                 description="the stream worker's HTTP port: Prometheus /metrics (0: none)")
    worker_batch_max: int = Field(default=500, ge=1, description="events a worker handles per batch")
    worker_batch_within_s: float = Field(default=0.05, gt=0, description="longest wait to fill a batch")
    worker_fast_path: bool = Field(default=True, description=(
        "decide on failed and slow calls and operational-metric anomalies in an agent of their own, without "
        "waiting for PII, embeddings and the other detectors"))
    worker_text_processes: int = Field(default=1, ge=0, description=(
        "child processes of a worker running PII, embeddings and security scans (0: on the worker's event loop)"))
    worker_batches_in_flight: int = Field(default=2, ge=1, description=(
        "batches a worker's full path has in flight: while the text processes work on one, the event loop runs "
        "the detectors and policies of another (1: one batch at a time)"))
    worker_heartbeat_s: float = Field(default=5.0, gt=0, description=(
        "how often a stream worker publishes a heartbeat on warden.heartbeats (read by /healthz)"))
    health_expect_worker: bool = Field(default=False, description=(
        "/healthz is degraded while no stream worker reports (warden up sets it; set it on an API whose "
        "deployment runs workers elsewhere, e.g. compose). A worker that did report and went silent is "
        "reported either way"))
    health_worker_stale_s: float = Field(default=30.0, gt=0, description=(
        "a worker silent this long (no heartbeat) makes /healthz degraded"))
    health_max_lag: int = Field(default=10_000, ge=0, description=(
        "messages behind (the stream workers' group on the input topics, or the governance consumer on the "
        "stream's outputs) beyond which /healthz is degraded"))
    health_outbox_max_age_s: float = Field(default=300.0, gt=0, description=(
        "an alert notification due this long ago and still not delivered makes /healthz degraded"))
    health_startup_grace_s: float = Field(default=180.0, ge=0, description=(
        "after the API starts, how long an expected worker that never reported counts as starting"))

    latency_slo_ms: float = Field(default=5000.0, description="rule detector: latency above this is a finding")
    pii_enabled: bool = Field(default=True, description="analyse and redact every prompt and response")
    pii_redaction: str = Field(default="replace", pattern="^(replace|mask|hash|drop)$")
    pii_recognizers: Path | None = Field(default=None, description=(
        "a YAML file of extra Presidio recognizers (patterns, deny lists) whose entity types are also redacted"))
    state_checkpoint_s: float = Field(default=15.0, gt=0, description=(
        "how often (per model, in processing time) a worker checkpoints its detector state (drift, ops metrics, "
        "fairness) to a changelogged table, so a restart or rebalance resumes it"))
    sample_fraction: float = Field(default=1.0, ge=0, le=1, description=(
        "share of inference events kept (redacted) as training history for retraining jobs; 0 keeps none. "
        "Kept only while pii_enabled (redaction on)"))
    protected_attributes: list[str] = Field(default_factory=lambda: ["age_band", "gender"],
                                            description="user.attributes watched for cohort fairness")
    anomaly_interval_s: float = Field(default=60.0, gt=0, description="ops-metrics aggregation interval")
    drift_enabled: bool = Field(default=True, description="per-model drift against a pinned reference")
    drift_embeddings: bool = Field(default=True, description="also test MiniLM prompt/response embeddings (MMD)")
    drift_embedding_fraction: float = Field(default=0.5, gt=0, le=1,
                                            description="share of events embedded (by event id; MMD needs tens per window)")
    drift_embedding_rate: float = Field(default=0.2, ge=0, description=(
        "embedded events per second per model at most (0: no limit): the MMD tests compare bounded samples, so "
        "the embedding cost follows the number of models, not the event rate"))
    security_enabled: bool = Field(default=True, description="prompt-injection and toxicity detectors")
    security_injection_threshold: float = Field(default=0.7, ge=0, le=1,
                                                description="flag injections at this calibrated score")
    security_toxicity_threshold: float = Field(default=0.5, ge=0, le=1,
                                               description="flag toxic text at this calibrated score")
    security_embed_gate: float = Field(default=0.1, ge=0, le=1,
                                       description="embed a text the drift stage did not embed when its lexical "
                                                   "security score reaches this")
    security_toxicity_embed_gate: float = Field(default=0.3, ge=0, le=1,
                                                description="the same gate for the lexical toxicity score")
    security_context_roles: list[str] = Field(default=["tool", "function"],
                                              description="message roles scanned for injections besides the "
                                                          "last user message")
    security_window_s: float = Field(default=900.0, gt=0, description="security window (attack/toxic rates)")
    drift_reference_size: int = Field(default=500, ge=50, description="first events of a version pinned as reference")
    drift_window: int = Field(default=200, ge=50, description="events per current window")
    policy_files: list[Path] = Field(default_factory=list, description="policy YAML files; empty → built-in pack")

    artifact_root: Path | None = Field(default=None, description="job artifacts; unset → <data_dir>/artifacts")
    jobs_group: str = Field(default="warden-jobs", description="consumer group of the job workers")
    jobs_worker_id: str | None = Field(default=None, description="a job worker's id (unset: jobs-<host>-<pid>)")
    jobs_history_path: Path | None = Field(default=None, description=(
        "a JSON-lines dataset history for job workers that run without the store (unset: the store's)"))
    jobs_registry_path: Path | None = Field(default=None, description="job workers' model registry file")
    jobs_lease_s: float = Field(default=5.0, gt=0, description="a running job re-announces itself this often")
    jobs_torch_threads: int | None = Field(default=None, ge=1, description="torch CPU threads of a job worker")
    jobs_device: str | None = Field(default=None, description="cuda, cpu… (unset: cuda when available)")

    alert_destinations: str | None = Field(
        default=None, description="alert destinations: a JSON/YAML file path or inline JSON (route name → "
        "{type: pagerduty|slack|webhook, url, routing_key[_env], secret[_env], timeout_s, group_by, group_wait_s, "
        "group_interval_s, repeat_interval_s, escalation})")
    alert_resolve_after_s: float | None = Field(default=3600.0, gt=0,
                                                description="auto-resolve an open alert not seen for this long")
    alert_dispatch_poll_s: float = Field(default=0.05, gt=0, description="outbox poll interval")

    console_session_ttl_s: float = Field(default=8 * 3600.0, gt=0,
                                         description="how long a web-console sign-in lasts")
    otlp_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024,
                                description="largest OTLP trace export (POST /v1/traces), after decompression")
    otlp_max_inflight: int = Field(default=32, ge=1, description="trace exports handled at once (more get 429)")
    publish_timeout_s: float = Field(default=5.0, gt=0, description=(
        "POST /v1/events waits this long for Kafka to take an event before answering 503 with Retry-After"))
    otlp_publish_timeout_s: float = Field(default=10.0, gt=0,
                                          description="a trace export waits this long for Kafka before a 503")
    audit_verify_interval_s: float = Field(default=3600.0, ge=0, description=(
        "how often the governance service verifies the audit hash chain (metric warden_audit_chain_valid); 0: never"))
    jobs_metrics_port: int = Field(default=9103, ge=0, le=65535,
                                   description="a job worker's Prometheus /metrics port (0: none)")

    log_level: str = "INFO"
    log_json: bool = True

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'warden.db').resolve()}"

    @property
    def bootstrap(self) -> str:
        """Kafka bootstrap servers; the embedded broker's address when none is configured."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.embedded_broker_port}"


    # ---- typed configurations of the roles (each package knows only its own)

    def pipeline_config(self) -> PipelineConfig:
        """The stream pipeline's configuration."""
        from detectors.anomaly.opsmetrics import OpsMetricsConfig
        from detectors.bias.fairness import FairnessConfig
        from detectors.drift.monitor import DriftConfig
        from detectors.features.embeddings import EmbedderConfig
        from detectors.pii.detector import PiiConfig
        from detectors.rules import RuleConfig
        from detectors.security import SecurityConfig, SecurityWindowConfig
        from streams.pipeline import PipelineConfig

        return PipelineConfig(
            max_event_bytes=self.max_event_bytes,
            rules=RuleConfig(latency_slo_ms=self.latency_slo_ms),
            pii=PiiConfig(redaction=self.pii_redaction, hmac_key=self.pii_key, recognizers=self.pii_recognizers)
            if self.pii_enabled else None,
            ops=OpsMetricsConfig(interval_s=self.anomaly_interval_s),
            fairness=FairnessConfig(protected_attributes=tuple(self.protected_attributes))
            if self.protected_attributes else None,
            drift=DriftConfig(reference_size=self.drift_reference_size, window_size=self.drift_window,
                              step=max(1, self.drift_window // 2))
            if self.drift_enabled else None,
            embeddings=EmbedderConfig.fast_cpu() if self.drift_enabled and self.drift_embeddings else None,
            embedding_fraction=self.drift_embedding_fraction,
            embedding_rate=self.drift_embedding_rate or None,
            fast_path=self.worker_fast_path,
            sample_fraction=self.sample_fraction,
            security=SecurityConfig(injection_threshold=self.security_injection_threshold,
                                    toxicity_threshold=self.security_toxicity_threshold,
                                    embed_gate=self.security_embed_gate,
                                    toxicity_embed_gate=self.security_toxicity_embed_gate,
                                    context_roles=tuple(self.security_context_roles))
            if self.security_enabled else None,
            security_windows=SecurityWindowConfig(
                window_s=self.security_window_s,
                cohort_attributes=tuple(self.protected_attributes) or SecurityWindowConfig().cohort_attributes),
            route_aggregates=True,
            user_key=self.pii_key,
        )

    def policies(self) -> list[Policy]:
        """The configured policies (the built-in pack unless policy files are set)."""
        from policies import load_pack, load_policies

        return load_policies([str(p) for p in self.policy_files]) if self.policy_files else load_pack()

    def policy_engine(self) -> PolicyEngine:
        """The engine of the configured policies."""
        from policies import PolicyEngine

        return PolicyEngine(self.policies())

    def worker_config(self) -> WorkerConfig:
        """The stream worker's configuration."""
        from streams.config import WorkerConfig

        return WorkerConfig(
            bootstrap=self.bootstrap, consumer_group=self.consumer_group, data_dir=self.data_dir,
            topic_partitions=self.topic_partitions, topic_replication=self.topic_replication,
            session_timeout_s=self.session_timeout_s, state_checkpoint_s=self.state_checkpoint_s,
            batch_max=self.worker_batch_max, batch_within_s=self.worker_batch_within_s, web_port=self.worker_web_port,
            text_processes=self.worker_text_processes, batches_in_flight=self.worker_batches_in_flight,
            instance=f"{self.worker_id}@{socket.gethostname()}", heartbeat_s=self.worker_heartbeat_s,
        )

    def api_config(self) -> ApiConfig:
        """The governance API's configuration."""
        from api.config import ApiConfig, HealthConfig
        from policies import alert_routes

        return ApiConfig(
            database_url=self.effective_database_url, bootstrap=self.bootstrap,
            governance_group=self.governance_group, worker_group=self.consumer_group,
            session_timeout_s=self.session_timeout_s, console_session_ttl_s=self.console_session_ttl_s,
            admin_key=self.admin_key, pii_key=self.pii_key, max_event_bytes=self.max_event_bytes,
            alert_destinations=self.alert_destinations, alert_resolve_after_s=self.alert_resolve_after_s,
            alert_dispatch_poll_s=self.alert_dispatch_poll_s, retention=self.retention(), port=self.api_port,
            otlp_max_bytes=self.otlp_max_bytes, otlp_max_inflight=self.otlp_max_inflight,
            otlp_publish_timeout_s=self.otlp_publish_timeout_s, publish_timeout_s=self.publish_timeout_s, audit_verify_interval_s=self.audit_verify_interval_s,
            policy_routes=tuple(alert_routes(self.policies())),
            health=HealthConfig(expect_worker=self.health_expect_worker, worker_stale_s=self.health_worker_stale_s, max_lag=self.health_max_lag,
                                outbox_max_age_s=self.health_outbox_max_age_s,
                                startup_grace_s=self.health_startup_grace_s),
        )

    def retention(self) -> Retention:
        """The default retention (``WARDEN_RETENTION_<KIND>_DAYS``), used until one is stored."""
        from governance.retention import Retention

        return Retention(**{f: getattr(self, f"retention_{f}") for f in Retention.model_fields})

    def jobs_config(self) -> JobsConfig:
        """A job worker's configuration."""
        from jobs.config import JobsConfig

        return JobsConfig(
            bootstrap=self.bootstrap, group_id=self.jobs_group,
            worker_id=self.jobs_worker_id or f"jobs-{os.uname().nodename}-{os.getpid()}",
            artifact_root=self.artifact_root or self.data_dir / "artifacts",
            registry_path=self.jobs_registry_path or self.data_dir / "registry.json",
            history_path=self.jobs_history_path, session_timeout_s=self.session_timeout_s, lease_s=self.jobs_lease_s,
            torch_threads=self.jobs_torch_threads, device=self.jobs_device,
        )


@cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment (every command and role uses this one)."""
    return Settings()
