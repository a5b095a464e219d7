"""compose.yaml is the production shape; no Docker engine runs here, so check its wiring statically."""

from __future__ import annotations

import re

import yaml

from tests.support.procs import ROOT
from warden.cli import app as cli
from warden.settings import Settings

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _env(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[name]["environment"].items()}


def test_services_and_images() -> None:
    assert {"kafka", "postgres", "worker", "api", "jobs", "prometheus"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:4.")
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert SERVICES["worker"]["deploy"]["replicas"] == 2
    gpu = SERVICES["jobs"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    for role in ("worker", "api", "jobs"):
        assert SERVICES[role]["build"] == "."
    assert (ROOT / "Dockerfile").exists()


def test_role_commands_exist_in_the_cli() -> None:
    commands = {c.name or c.callback.__name__ for c in cli.registered_commands}
    commands |= {g.name for g in cli.registered_groups}
    for role in ("worker", "api", "jobs"):
        assert SERVICES[role]["command"][0] in commands, role


def test_environment_is_wired_to_the_services_and_to_settings() -> None:
    fields = {f"WARDEN_{name.upper()}" for name in Settings.model_fields}
    pg = SERVICES["postgres"]["environment"]
    kafka_port = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].rsplit(":", 1)[1]
    for role in ("worker", "api", "jobs"):
        env = _env(role)
        assert set(env) <= fields, set(env) - fields
        assert env["WARDEN_KAFKA_BOOTSTRAP"] == f"kafka:{kafka_port}"
        m = re.fullmatch(r"postgresql://(\w+):(\w+)@postgres:5432/(\w+)", env["WARDEN_DATABASE_URL"])
        assert m and m.groups() == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
        assert "kafka" in SERVICES[role]["depends_on"]
    api_port = _env("api")["WARDEN_API_PORT"]
    assert SERVICES["api"]["ports"] == [f"{api_port}:{api_port}"]
    assert _env("api")["WARDEN_API_HOST"] == "0.0.0.0"


def test_prometheus_scrapes_the_api() -> None:
    mount = SERVICES["prometheus"]["volumes"][0].split(":")[0]
    config = yaml.safe_load((ROOT / mount).read_text())
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"api:{_env('api')['WARDEN_API_PORT']}"]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"
