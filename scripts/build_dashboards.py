"""Write Warden's Grafana dashboards (deploy/grafana/dashboards/*.json) from the panel lists below.

The JSON files are what Grafana provisions (compose.yaml); this script is how they are made, so a
panel is added here and the files rebuilt: ``python scripts/build_dashboards.py``. The unit test
tests/unit/deploy/test_observability.py checks every query against the metrics the roles export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
R = "$__rate_interval"

# (title, unit, [(expr, legend)], kind)
Panel = tuple[str, str, list[tuple[str, str]], str]


def _q(quantile: float, metric: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({quantile}, sum by ({group}) (rate({metric}_bucket[{R}])))"


DASHBOARDS: dict[str, tuple[str, str, list[Panel]]] = {
    "warden-pipeline": ("Warden — pipeline", "Stream workers, ingest (HTTP and OTLP) and the governance consumer", [
        ("Events handled /s", "ops", [(f"sum by (type, outcome) (rate(warden_worker_events_total[{R}]))",
                                       "{{type}} {{outcome}}")], "timeseries"),
        ("Consumer lag", "short", [("sum by (topic, partition) (warden_worker_consumer_lag)",
                                    "{{topic}}/{{partition}}")], "timeseries"),
        ("Dead letters /s by reason", "ops", [(f"sum by (reason) (rate(warden_worker_dead_letters_total[{R}]))",
                                               "{{reason}}")], "timeseries"),
        ("Batch size", "short", [(_q(0.5, "warden_worker_batch_size"), "p50"),
                                 (_q(0.95, "warden_worker_batch_size"), "p95")], "timeseries"),
        ("Stage time per batch (p95)", "s", [(_q(0.95, "warden_worker_stage_seconds", "stage"), "{{stage}}")],
         "timeseries"),
        ("Event-loop delay (p99): what a fast-path batch or a heartbeat waits", "s",
         [(_q(0.99, "warden_worker_loop_delay_seconds"), "p99"), (_q(0.5, "warden_worker_loop_delay_seconds"), "p50")],
         "timeseries"),
        ("Seconds since a worker's last batch", "s",
         [("time() - max by (instance) (warden_worker_last_batch_timestamp_seconds)", "{{instance}}")], "timeseries"),
        ("Detector-state checkpoints /s", "ops", [(f"sum by (outcome) (rate(warden_worker_checkpoints_total[{R}]))",
                                                   "{{outcome}}")], "timeseries"),
        ("Checkpoint size (p95) and oldest unsaved state", "s",
         [(_q(0.95, "warden_worker_checkpoint_bytes"), "p95 bytes"),
          ("max(warden_worker_checkpoint_age_seconds)", "oldest unsaved state (s)"),
          ("sum(warden_worker_models)", "models held")], "timeseries"),
        ("Ingest: POST /v1/events /s", "ops", [(f"sum by (outcome) (rate(warden_http_events_total[{R}]))",
                                                "{{outcome}}")], "timeseries"),
        ("Ingest: OTLP spans /s", "ops", [(f"sum by (kind, outcome) (rate(warden_otlp_spans_total[{R}]))",
                                           "{{kind}} {{outcome}}"),
                                          (f"sum(rate(warden_otlp_throttled_total[{R}]))", "exports throttled (429)")],
         "timeseries"),
        ("API latency p95 by route", "s", [(_q(0.95, "warden_http_request_duration_seconds", "route"), "{{route}}")],
         "timeseries"),
        ("API requests /s by status", "ops",
         [(f"sum by (status) (rate(warden_http_request_duration_seconds_count[{R}]))", "{{status}}")], "timeseries"),
        ("Governance: persisted /s", "ops", [(f"sum by (kind) (rate(warden_persisted_total[{R}]))", "{{kind}}"),
                                             (f"sum by (topic) (rate(warden_records_skipped_total[{R}]))",
                                              "skipped {{topic}}")], "timeseries"),
        ("Governance: persist time and batch size (p95)", "s",
         [(_q(0.95, "warden_persist_batch_seconds"), "persist p95 (s)"),
          (_q(0.95, "warden_governance_batch_records"), "records per batch p95")], "timeseries"),
        ("Governance consumer", "short", [("min(warden_governance_consumer_connected)", "connected"),
                                          ("time() - max(warden_governance_last_batch_timestamp_seconds)",
                                           "seconds since last batch")], "timeseries"),
        ("Targets up", "short", [('up{job=~"warden-.*"}', "{{job}} {{instance}}")], "timeseries"),
    ]),
    "warden-detectors": ("Warden — detectors", "Findings, decisions and the cost of each detector", [
        ("Findings /s by detector and severity", "ops",
         [(f"sum by (detector, severity) (rate(warden_worker_findings_total[{R}]))", "{{detector}} {{severity}}")],
         "timeseries"),
        ("Decisions /s by action", "ops", [(f"sum by (action) (rate(warden_worker_decisions_total[{R}]))",
                                            "{{action}}")], "timeseries"),
        ("Detector time per batch (p95)", "s", [(_q(0.95, "warden_worker_detector_seconds", "detector"),
                                                 "{{detector}}")], "timeseries"),
        ("Detector time per event (mean)", "s",
         [(f"sum by (detector) (rate(warden_worker_detector_seconds_sum[{R}])) / scalar(sum(rate("
           f"warden_worker_batch_size_sum[{R}])))", "{{detector}}")], "timeseries"),
        ("Share of worker time by detector", "percentunit",
         [(f"sum by (detector) (rate(warden_worker_detector_seconds_sum[{R}])) / scalar(sum(rate("
           f"warden_worker_stage_seconds_sum[{R}])))", "{{detector}}")], "timeseries"),
        ("Findings per 1000 events", "short",
         [(f"1000 * sum by (detector) (rate(warden_worker_findings_total[{R}])) / scalar(sum(rate("
           f'warden_worker_events_total{{outcome="processed"}}[{R}])))', "{{detector}}")], "timeseries"),
    ]),
    "warden-alerts": ("Warden — alerts and delivery", "Alert delivery, the outbox and the audit trail", [
        ("Delivery attempts /s", "ops",
         [(f"sum by (destination, outcome) (rate(warden_alert_delivery_attempts_total[{R}]))",
           "{{destination}} {{outcome}}")], "timeseries"),
        ("Delivery latency (p95)", "s", [(_q(0.95, "warden_alert_delivery_seconds", "destination"), "{{destination}}")],
         "timeseries"),
        ("Outbox depth", "short", [("sum by (destination, status) (warden_alert_outbox_depth)",
                                    "{{destination}} {{status}}")], "timeseries"),
        ("Oldest pending notification", "s", [("max by (destination) (warden_alert_outbox_oldest_pending_seconds)",
                                               "{{destination}}")], "timeseries"),
        ("Audit chain valid", "short", [("min(warden_audit_chain_valid)", "valid")], "stat"),
        ("Audit chain", "short", [("max(warden_audit_chain_entries)", "entries"),
                                  ("time() - max(warden_audit_verify_timestamp_seconds)", "seconds since verified"),
                                  (_q(0.95, "warden_audit_verify_duration_seconds"), "verify p95 (s)")], "timeseries"),
    ]),
    "warden-jobs": ("Warden — jobs", "Retraining, evaluation and rollback jobs", [
        ("Open jobs by state", "short", [("sum by (state) (warden_jobs)", "{{state}}")], "timeseries"),
        ("Job outcomes per hour", "short", [("sum by (kind, outcome) (increase(warden_jobs_finished_total[1h]))",
                                             "{{kind}} {{outcome}}")], "timeseries"),
        ("Job duration", "s", [(_q(0.5, "warden_job_duration_seconds", "kind"), "p50 {{kind}}"),
                               (_q(0.95, "warden_job_duration_seconds", "kind"), "p95 {{kind}}")], "timeseries"),
        ("Retries per hour", "short", [("sum by (kind) (increase(warden_jobs_retries_total[1h]))", "{{kind}}")],
         "timeseries"),
        ("Job workers up", "short", [('up{job="warden-jobs"}', "{{instance}}")], "timeseries"),
    ]),
}


def panel(i: int, title: str, unit: str, targets: list[tuple[str, str]], kind: str) -> dict[str, Any]:
    return {
        "id": i + 1, "type": kind, "title": title, "datasource": DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [{"refId": chr(65 + n), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for n, (expr, legend) in enumerate(targets)],
    }


def dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["warden"], "editable": True,
        "schemaVersion": 39, "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
        "timezone": "", "templating": {"list": []}, "annotations": {"list": []},
        "panels": [panel(i, *p) for i, p in enumerate(panels)],
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for uid, (title, description, panels) in DASHBOARDS.items():
        path = OUT / f"{uid}.json"
        path.write_text(json.dumps(dashboard(uid, title, description, panels), indent=2) + "\n")
        print(f"wrote {path} ({len(panels)} panels)")


if __name__ == "__main__":
    main()
