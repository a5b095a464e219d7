"""The one settings object. Every value comes from an env var prefixed ``WARDEN_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    embedded_broker_port: int = 9092
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    max_event_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger payloads go to the DLQ")

    worker_id: str = "worker"
    consumer_group: str = "warden-worker"
    governance_group: str = "warden-governance"
    session_timeout_s: float = Field(default=10.0, description="Kafka consumer-group session timeout")
    worker_web_port: int = 6066

    latency_slo_ms: float = Field(default=5000.0, description="rule detector: latency above this is a finding")
    alert_min_severity: str = Field(default="high", description="minimal policy: alert at or above this")

    artifact_root: Path | None = Field(default=None, description="job artifacts; unset → <data_dir>/artifacts")

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
