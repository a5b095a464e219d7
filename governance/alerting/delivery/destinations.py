"""Alert destinations, parsed from one settings value (``WARDEN_ALERT_DESTINATIONS``).

The value is a path to a JSON or YAML file, or inline JSON. It maps route names (the ``route`` of a
policy's alert: ``pagerduty:ml-oncall``, ``webhook:ml-ops``, ``slack:ml``, ``default``) to a
destination; either at the top level or under ``destinations:`` beside ``default_route`` and
``alert_url_template``::

    destinations:
      pagerduty:ml-oncall:
        type: pagerduty
        routing_key_env: PD_ML_ONCALL_KEY      # or routing_key: …
        repeat_interval_s: 3600
        escalation: [{after_s: 900, to: "pagerduty:ml-leads"}]
      webhook:ml-ops: {type: webhook, url: "https://ops.example/hooks/warden", secret_env: ML_OPS_SECRET,
                       group_by: [tenant, model], group_wait_s: 30, group_interval_s: 300}
      slack:ml: {type: slack, url: "https://hooks.slack.com/services/…"}
      local: {type: file, path: /var/lib/warden/alerts.jsonl}   # one JSON line per notification
    default_route: slack:ml
    alert_url_template: "https://warden.example/alerts/{alert_id}"

Secrets (``routing_key``, ``secret``) are held as ``SecretStr`` and never printed; ``*_env`` names an
environment variable to read them from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from governance.alerting import AlertingConfig, EscalationStep, RoutePolicy

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


class EscalationConfig(BaseModel):
    """Also notify ``to`` when the alert is still unacknowledged ``after_s`` after the first page."""

    model_config = ConfigDict(extra="forbid")

    after_s: float = Field(gt=0)
    to: str


class Destination(BaseModel):
    """One receiver of notifications."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: Literal["pagerduty", "slack", "webhook", "file"]
    url: str | None = None
    path: str | None = Field(default=None, description="file: the JSON-lines file notifications are appended to")
    routing_key: SecretStr | None = None
    routing_key_env: str | None = None
    secret: SecretStr | None = None
    secret_env: str | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    max_in_flight: int = Field(default=8, ge=1, le=256)
    max_batch: int = Field(default=100, ge=1, le=1000, description=(
        "webhook: notifications due together travel in one signed request of up to this many "
        "(1: one request each); PagerDuty takes one event per request, Slack one message per group"))
    max_age_s: float = Field(default=86_400.0, gt=0, description="retry for this long, then give up (expired)")
    headers: dict[str, str] = Field(default_factory=dict)
    group_by: list[str] = Field(default_factory=list)
    group_wait_s: float = Field(default=0.0, ge=0)
    group_interval_s: float = Field(default=300.0, ge=0)
    repeat_interval_s: float | None = Field(default=None, gt=0)
    escalation: list[EscalationConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> Destination:
        if self.type == "file":
            if not self.path:
                raise ValueError(f"destination {self.name!r}: file needs a path")
            return self
        if self.type == "pagerduty":
            self.url = self.url or PAGERDUTY_EVENTS_URL
            if self.routing_key is None and not self.routing_key_env:
                raise ValueError(f"destination {self.name!r}: pagerduty needs routing_key or routing_key_env")
        elif not self.url:
            raise ValueError(f"destination {self.name!r}: {self.type} needs a url")
        if not str(self.url).startswith(("http://", "https://")):
            raise ValueError(f"destination {self.name!r}: url must be http(s)")
        if self.type == "webhook" and self.secret is None and not self.secret_env:
            raise ValueError(f"destination {self.name!r}: a webhook needs secret or secret_env (requests are signed)")
        return self

    def resolved_routing_key(self, env: Mapping[str, str] | None = None) -> str:
        """The PagerDuty routing key (from ``routing_key`` or the variable ``routing_key_env``)."""
        return _secret(self.routing_key, self.routing_key_env, env, f"{self.name}.routing_key")

    def resolved_secret(self, env: Mapping[str, str] | None = None) -> str:
        """The webhook signing secret."""
        return _secret(self.secret, self.secret_env, env, f"{self.name}.secret")

    def route_policy(self) -> RoutePolicy:
        return RoutePolicy(group_by=tuple(self.group_by), group_wait_s=self.group_wait_s,
                           group_interval_s=self.group_interval_s, repeat_interval_s=self.repeat_interval_s,
                           escalation=tuple(EscalationStep(after_s=e.after_s, to=e.to) for e in self.escalation))


def _secret(value: SecretStr | None, env_name: str | None, env: Mapping[str, str] | None, what: str) -> str:
    if value is not None:
        return value.get_secret_value()
    env = os.environ if env is None else env
    if env_name and env.get(env_name):
        return env[env_name]
    raise ValueError(f"{what}: environment variable {env_name!r} is not set")


class Destinations(BaseModel):
    """Every destination by route name, the fallback route and the link template."""

    model_config = ConfigDict(extra="forbid")

    destinations: dict[str, Destination] = Field(default_factory=dict)
    default_route: str | None = "default"
    alert_url_template: str | None = None

    @model_validator(mode="after")
    def _references(self) -> Destinations:
        for d in self.destinations.values():
            for step in d.escalation:
                if step.to not in self.destinations:
                    raise ValueError(f"destination {d.name!r}: escalation to unknown destination {step.to!r}")
        if self.default_route and self.default_route != "default" and self.default_route not in self.destinations:
            raise ValueError(f"default_route {self.default_route!r} is not a destination")
        return self

    def get(self, name: str) -> Destination | None:
        return self.destinations.get(name)

    def alerting_config(self, *, resolve_after_s: float | None = None) -> AlertingConfig:
        """The store-side view: grouping, repetition and escalation per destination."""
        return AlertingConfig(routes={n: d.route_policy() for n, d in self.destinations.items()},
                              default_route=self.default_route, resolve_after_s=resolve_after_s)

    def check_secrets(self, env: Mapping[str, str] | None = None) -> None:
        """Raise ValueError now if a secret named by ``*_env`` is missing (rather than at first send)."""
        for d in self.destinations.values():
            if d.type == "pagerduty":
                d.resolved_routing_key(env)
            if d.type == "webhook":
                d.resolved_secret(env)


def local_file_destinations(path: Path) -> dict[str, Any]:
    """Destinations that deliver every alert to one JSON-lines file (``warden up``'s default, so alerts reach
    somewhere a person can see before PagerDuty, Slack or a webhook is configured)."""
    return {"destinations": {"local": {"type": "file", "path": str(path)}}, "default_route": "local"}


def parse_destinations(data: Mapping[str, Any] | None) -> Destinations:
    """Destinations from plain data (the mapping of a file or of inline JSON)."""
    data = dict(data or {})
    if "destinations" not in data:
        data = {"destinations": data}
    table = data.get("destinations") or {}
    if not isinstance(table, Mapping):
        raise ValueError("destinations must be a mapping of route name to destination")
    data["destinations"] = {str(name): {**dict(cfg), "name": str(name)} for name, cfg in table.items()}
    return Destinations.model_validate(data)


def load_destinations(value: str | Path | Mapping[str, Any] | None) -> Destinations:
    """Destinations from the settings value: None/empty (none), inline JSON, or a JSON/YAML file path."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return Destinations()
    if isinstance(value, Mapping):
        return parse_destinations(value)
    text = str(value).strip()
    if text.startswith("{"):
        return parse_destinations(json.loads(text))
    path = Path(text).expanduser()
    raw = path.read_text(encoding="utf-8")
    data = json.loads(raw) if path.suffix.lower() == ".json" else yaml.safe_load(raw)
    if data is not None and not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return parse_destinations(data)
