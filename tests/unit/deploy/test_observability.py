"""The shipped dashboards and alerting rules query only what the roles export.

Exported names are collected from the Prometheus registry after importing every role's metric modules
(api, stream worker, job worker, alert delivery); every PromQL expression in the Grafana dashboards and
the alerting rules is parsed far enough to pull out its metric names and label matchers, and each must
exist (with that label). ``promtool check rules`` runs too where Debian's prometheus package provides it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import api.metrics
import governance.alerting.delivery.metrics
import jobs.metrics
import streams.metrics
from tests.support.procs import ROOT

DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
PROMETHEUS = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
#: labels Prometheus attaches to every scraped series, and the series it makes itself for every target
TARGET_LABELS = {"job", "instance"}
SCRAPE_SERIES = {"up": TARGET_LABELS, "scrape_duration_seconds": TARGET_LABELS}
_ROLE_MODULES = (api.metrics, streams.metrics, jobs.metrics, governance.alerting.delivery.metrics)

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
             "inf", "nan", "atan2"}
_FUNC_OR_AGG = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*\s*\(")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*\"")


def exported() -> dict[str, set[str]]:
    """Every sample name the roles export, with its label names (counters: ``_total``; histograms:
    ``_bucket`` with ``le``, ``_sum``, ``_count``)."""
    names: dict[str, set[str]] = dict(SCRAPE_SERIES)
    for family in REGISTRY.collect():
        labels: set[str] = set()
        samples = list(family.samples)
        for s in samples:
            labels |= set(s.labels)
        declared = set(getattr(REGISTRY._names_to_collectors.get(family.name), "_labelnames", ()) or ())
        labels |= declared | TARGET_LABELS
        labels.discard("le")
        if family.type == "counter":
            names[f"{family.name}_total"] = labels
        elif family.type == "histogram":
            names[f"{family.name}_bucket"] = labels | {"le"}
            names[f"{family.name}_sum"] = labels
            names[f"{family.name}_count"] = labels
        else:
            names[family.name] = labels
    return names


def parse(expr: str) -> tuple[set[str], list[tuple[str | None, str]], set[str]]:
    """(metric names, (metric or None, label) matchers, grouping labels) of a PromQL expression."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, format strings)
    matchers = [(m.group(1), label) for m in _SELECTOR.finditer(text)
                for label, _ in _MATCHER.findall(m.group(2) + ",")]
    grouping = {g.strip() for m in _GROUPING.finditer(text) for g in m.group(2).split(",") if g.strip()}
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = _FUNC_OR_AGG.sub("(", text)  # function and aggregation names
    text = re.sub(r"\$__\w+|\$\w+", " ", text)  # Grafana variables
    tokens = re.findall(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", text)
    names = {t for t in tokens if t not in _KEYWORDS and not re.fullmatch(r"\d+[smhdwy]", t)}
    return names, matchers, grouping


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                yield f"{path.name}: {panel['title']}", target["expr"]


def rule_exprs() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield f"rules: {rule['alert']}", rule["expr"]


def test_the_parser_finds_names_labels_and_groupings() -> None:
    names, matchers, grouping = parse('histogram_quantile(0.95, sum by (le, route) (rate(x_bucket{status=~"5.."}'
                                      '[$__rate_interval]))) / scalar(sum(rate(y_total[5m]))) > 3 * 3600 and '
                                      'time() - max(z) > 0 or absent(up{job="a"} == 1)')
    assert names == {"x_bucket", "y_total", "z", "up"}
    assert matchers == [("x_bucket", "status"), ("up", "job")]
    assert grouping == {"le", "route"}


def test_the_roles_export_the_issue_families() -> None:
    names = exported()
    for family in ("warden_worker_consumer_lag", "warden_worker_events_total", "warden_worker_stage_seconds_bucket",
                   "warden_worker_detector_seconds_bucket", "warden_worker_findings_total",
                   "warden_worker_dead_letters_total", "warden_worker_checkpoint_bytes_bucket",
                   "warden_worker_checkpoint_age_seconds", "warden_worker_batch_size_bucket",
                   "warden_http_request_duration_seconds_bucket", "warden_persist_batch_seconds_bucket",
                   "warden_alert_outbox_depth", "warden_alert_delivery_attempts_total", "warden_jobs",
                   "warden_job_duration_seconds_bucket", "warden_jobs_finished_total", "warden_audit_chain_valid"):
        assert family in names, family
    assert names["warden_worker_consumer_lag"] == {"topic", "partition"} | TARGET_LABELS
    assert names["warden_http_request_duration_seconds_bucket"] == {"method", "route", "status", "le"} | TARGET_LABELS


@pytest.mark.parametrize("where,expr", [*dashboard_exprs(), *rule_exprs()])
def test_every_query_uses_exported_metrics_and_labels(where: str, expr: str) -> None:
    names = exported()
    metrics, matchers, grouping = parse(expr)
    assert metrics, (where, expr)
    unknown = metrics - set(names)
    assert not unknown, f"{where}: {sorted(unknown)} not exported (expr: {expr})"
    for metric, label in matchers:
        assert metric is not None and label in names[metric], f"{where}: {metric} has no label {label!r}"
    available = set().union(*(names[m] for m in metrics))
    assert grouping <= available, f"{where}: groups by {sorted(grouping - available)} which {sorted(metrics)} lack"


def test_every_exported_warden_family_is_on_a_dashboard_or_in_a_rule() -> None:
    used = set().union(*(parse(e)[0] for _, e in [*dashboard_exprs(), *rule_exprs()]))
    families = {n for n in exported() if n.startswith("warden_")}
    # a histogram is covered by any of its series
    covered = {n for n in families if n in used or re.sub(r"_(bucket|sum|count)$", "_bucket", n) in used
               or re.sub(r"_(bucket|sum|count)$", "_sum", n) in used or re.sub(r"_(bucket|sum|count)$", "_count", n) in used}
    assert families - covered == set()


def test_dashboards_are_provisioned_with_the_datasource_they_use() -> None:
    assert {p.stem for p in DASHBOARDS} == {"warden-pipeline", "warden-detectors", "warden-alerts", "warden-jobs"}
    source = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    (ds,) = source["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] == path.stem and board["panels"]
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == ds["uid"]
            assert all(t["datasource"]["uid"] == ds["uid"] for t in panel["targets"])
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/warden.yml").read_text())["providers"][0]
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    mounts = dict(v.split(":")[:2] for v in compose["grafana"]["volumes"] if v.startswith("./"))
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def test_prometheus_loads_the_rules_and_scrapes_every_role() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    mounts = dict(v.split(":")[:2] for v in compose["prometheus"]["volumes"])
    assert mounts["./deploy/prometheus/rules.yml"] in PROMETHEUS["rule_files"]
    jobs = {c["job_name"]: c for c in PROMETHEUS["scrape_configs"]}
    assert set(jobs) == {"warden-api", "warden-worker", "warden-jobs"}
    ports = {"warden-worker": compose["worker"]["environment"]["WARDEN_WORKER_WEB_PORT"],
             "warden-jobs": compose["jobs"]["environment"]["WARDEN_JOBS_METRICS_PORT"]}
    for job, port in ports.items():
        (sd,) = jobs[job]["dns_sd_configs"]
        assert str(sd["port"]) == port and sd["names"] == [job.removeprefix("warden-")]
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {"WardenConsumerLagGrowing", "WardenWorkerDown", "WardenDeadLetterSpike", "WardenAlertDeliveryFailing",
            "WardenAuditChainInvalid"} <= {r["alert"] for r in rules}
    for r in rules:
        assert r["labels"]["severity"] in ("critical", "warning", "info") and r["annotations"]["summary"], r["alert"]


def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    config = tmp_path / "prometheus.yml"  # the config, with the rule file where the container mounts it
    config.write_text(yaml.safe_dump({**PROMETHEUS, "rule_files": [str(RULES)]}))
    result = subprocess.run([promtool, "check", "config", "--syntax-only", str(config)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
