"""Alerts never go nowhere silently: a route without a destination leaves a delivery record saying why,
and a file destination (``warden up``'s default) delivers where a person can read it."""

from __future__ import annotations

import json
from pathlib import Path

from governance.alerting import AlertingConfig
from governance.alerting.delivery.destinations import load_destinations, local_file_destinations
from governance.alerting.delivery.dispatcher import Dispatcher
from governance.alerting.outbox import delivery_log
from policies import alert_routes, load_pack
from tests.integration.test_alert_delivery import FAST, alert_id, decision, make_store, persist, run_until, settled
from tests.integration.test_governance_harness import make_gov


def test_an_alert_whose_route_has_no_destination_leaves_a_not_routed_record(tmp_path: Path) -> None:
    engine = make_store(f"sqlite:///{tmp_path / 'warden.db'}")
    persist(engine, [decision(1, "k-unrouted", route="webhook:ml-ops"), decision(2, "k-log", route="log")],
            AlertingConfig())
    rows = delivery_log(engine)
    assert [(r.destination, r.outcome, r.alert_id) for r in rows] == [
        ("webhook:ml-ops", "not_routed", alert_id("k-unrouted"))]  # the route 'log' records by design
    assert "webhook:ml-ops" in (rows[0].error or "") and "WARDEN_ALERT_DESTINATIONS" in (rows[0].error or "")
    engine.dispose()


def test_the_api_lists_not_routed_records_in_deliveries(tmp_path: Path) -> None:
    gov = make_gov(f"sqlite:///{tmp_path / 'warden.db'}", with_keys=False)
    persist(gov.engine, [decision(3, "k-api", route="pagerduty:ml-oncall")], AlertingConfig())
    items = gov.client.get("/v1/deliveries", headers=gov.admin).json()["items"]
    assert [(i["destination"], i["outcome"]) for i in items] == [("pagerduty:ml-oncall", "not_routed")]
    gov.engine.dispose()


async def test_a_file_destination_delivers_every_route_to_a_json_lines_file(tmp_path: Path) -> None:
    engine = make_store(f"sqlite:///{tmp_path / 'warden.db'}")
    path = tmp_path / "alerts" / "alerts.jsonl"
    dests = load_destinations(local_file_destinations(path))
    config = dests.alerting_config()
    assert config.unrouted(alert_routes(load_pack())) == []  # the default route catches every route
    persist(engine, [decision(i, f"k-{i}", route=r) for i, r in enumerate(["webhook:ml-ops", "pagerduty:ml-oncall"])],
            config)
    await run_until(Dispatcher(engine, dests, FAST, alerting=config), settled(engine))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(n["dedup_key"] for n in lines) == ["k-0", "k-1"] and {n["event"] for n in lines} == {"trigger"}
    assert path.stat().st_mode & 0o077 == 0
    assert {(r.destination, r.outcome) for r in delivery_log(engine)} == {("local", "delivered")}
    engine.dispose()


def test_unrouted_routes_of_the_builtin_pack_are_named() -> None:
    routes = alert_routes(load_pack())
    assert "webhook:ml-ops" in routes and "pagerduty:ml-oncall" in routes  # what make run does not configure
    assert AlertingConfig().unrouted(routes) == sorted(set(routes) - {"log"})
