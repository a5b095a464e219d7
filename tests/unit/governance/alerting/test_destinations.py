"""Destination config from the settings value: inline JSON, JSON/YAML files, secrets from env."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from governance.alerting import EscalationStep
from governance.alerting.delivery.destinations import PAGERDUTY_EVENTS_URL, load_destinations

SPEC = {
    "destinations": {
        "pagerduty:ml-oncall": {"type": "pagerduty", "routing_key_env": "PD_KEY", "repeat_interval_s": 600,
                                "escalation": [{"after_s": 900, "to": "slack:leads"}]},
        "webhook:ml-ops": {"type": "webhook", "url": "https://ops.test/hook", "secret": "s", "group_by": ["model"],
                           "group_wait_s": 30, "timeout_s": 2},
        "slack:leads": {"type": "slack", "url": "https://hooks.slack.test/T/B/x"},
    },
    "default_route": "webhook:ml-ops",
}


def test_inline_json_yaml_and_json_files_give_the_same_destinations(tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text(json.dumps(SPEC))
    import yaml

    (tmp_path / "d.yaml").write_text(yaml.safe_dump(SPEC))
    loaded = [load_destinations(json.dumps(SPEC)), load_destinations(str(tmp_path / "d.json")),
              load_destinations(tmp_path / "d.yaml"), load_destinations(SPEC)]
    assert all(d == loaded[0] for d in loaded)
    d = loaded[0]
    pd = d.get("pagerduty:ml-oncall")
    assert pd is not None and pd.url == PAGERDUTY_EVENTS_URL and pd.resolved_routing_key({"PD_KEY": "rk"}) == "rk"
    cfg = d.alerting_config(resolve_after_s=3600)
    assert cfg.destination_for("pagerduty:ml-oncall") == "pagerduty:ml-oncall"
    assert cfg.destination_for("pagerduty:unknown") == "webhook:ml-ops"  # the default route
    assert cfg.destination_for("log") is None
    assert cfg.routes["pagerduty:ml-oncall"].escalation == (EscalationStep(after_s=900, to="slack:leads"),)
    assert cfg.routes["webhook:ml-ops"].group_by == ("model",) and cfg.resolve_after_s == 3600


def test_a_bare_mapping_of_routes_and_empty_values() -> None:
    d = load_destinations('{"default": {"type": "slack", "url": "https://hooks.slack.test/x"}}')
    assert list(d.destinations) == ["default"] and d.alerting_config().destination_for(None) == "default"
    assert load_destinations(None).destinations == {} and load_destinations("  ").destinations == {}
    assert load_destinations(None).alerting_config().destination_for("pagerduty:x") is None


def test_secrets_are_not_printed_and_missing_ones_are_reported() -> None:
    d = load_destinations(SPEC)
    assert "s" not in repr(d.get("webhook:ml-ops").secret)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="PD_KEY"):
        d.check_secrets({})
    d.check_secrets({"PD_KEY": "rk"})


@pytest.mark.parametrize("bad,message", [
    ({"x": {"type": "pagerduty"}}, "routing_key"),
    ({"x": {"type": "webhook", "url": "https://a.test"}}, "secret"),
    ({"x": {"type": "slack"}}, "needs a url"),
    ({"x": {"type": "slack", "url": "ftp://a"}}, "http"),
    ({"x": {"type": "email", "url": "https://a.test"}}, "type"),
    ({"x": {"type": "slack", "url": "https://a.test", "escalation": [{"after_s": 5, "to": "nope"}]}}, "unknown"),
    ({"x": {"type": "slack", "url": "https://a.test", "timeout": 3}}, "timeout"),
])
def test_invalid_destinations_are_refused(bad: dict, message: str) -> None:
    with pytest.raises((ValidationError, ValueError), match=message):
        load_destinations(bad)
