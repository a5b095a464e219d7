"""Compliance reports per tenant and period: findings, alerts with response times, jobs, alias switches.

:func:`build_report` returns plain data (JSON-ready); :func:`report_csv` flattens it to
``section,group,metric,value`` rows and :func:`report_html` renders a printable page.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from governance.audit import as_utc, seq_range
from store import rollups
from store.models import (
    AlertRow,
    AliasHistoryRow,
    AuditRow,
    DecisionRow,
    FindingRow,
    JobRow,
    RegisteredModelRow,
    SampleRow,
)

SEVERITY = {0: "info", 1: "low", 2: "medium", 3: "high", 4: "critical"}
CATEGORIES = ("pii", "drift", "anomaly", "bias")




def _stats(seconds: list[float]) -> dict[str, float | int | None]:
    if not seconds:
        return {"n": 0, "mean_s": None, "median_s": None, "p90_s": None, "max_s": None}
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"n": len(ordered), "mean_s": round(statistics.fmean(ordered), 3),
            "median_s": round(statistics.median(ordered), 3), "p90_s": round(p90, 3), "max_s": round(ordered[-1], 3)}


#: the tenant column of each table whose rows name a tenant Warden knows (one row in any is enough)
_TENANT_COLUMNS = tuple(col(table.tenant) for table in (
    FindingRow, DecisionRow, AlertRow, JobRow, RegisteredModelRow, SampleRow, AuditRow))


def tenant_known(engine: Engine, tenant: str) -> bool:
    """Whether the store holds anything of ``tenant`` (findings, decisions, alerts, jobs, registered models,
    training samples or audit entries)."""
    with Session(engine) as session:
        return any(session.execute(select(column).where(column == tenant).limit(1)).first()
                   for column in _TENANT_COLUMNS)


def _first_seen(alert: AlertRow) -> datetime:
    return as_utc(alert.first_seen)


def build_report(engine: Engine, tenant: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The compliance report of ``tenant`` for the period [start, end)."""
    start, end = as_utc(start), as_utc(end)
    out: dict[str, Any] = {"tenant": tenant, "period": {"from": start.isoformat(), "to": end.isoformat()},
                           "generated_at": datetime.now(UTC).isoformat()}
    with Session(engine) as s:
        conn = s.connection()
        # counts of findings and PII entities from the daily rollups (store.rollups), exact for any period
        pii_by: dict[str, dict[str, int]] = defaultdict(dict)
        for (_, model, etype), n in rollups.PII_ENTITIES.totals(conn, start, end, [tenant]).items():
            pii_by[model][etype] = n
        counted = rollups.DAILY.totals(conn, start, end, [tenant])
        detectors: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (_, model, det, kind, sev), n in sorted(counted.items(), key=lambda kv: (kv[0][2], kv[0][3], kv[0][1], kv[0][4])):
            detectors[det].append({"kind": kind, "model": model, "severity": SEVERITY.get(sev, str(sev)), "count": n})
        out["pii"] = {"findings": sum(r["count"] for r in detectors.get("pii", [])),
                      "entities_by_model": {m: dict(sorted(c.items())) for m, c in sorted(pii_by.items())}}
        # drift, anomaly, bias (and every other detector): counts by detector, kind, model, severity
        out["findings"] = {d: {"total": sum(r["count"] for r in detectors.get(d, [])), "by": detectors.get(d, [])}
                           for d in sorted(set(CATEGORIES) | set(detectors))}
        # alerts first seen in the period, with time to acknowledge and to resolve
        alerts: list[AlertRow] = list(s.execute(select(AlertRow).where(
            col(AlertRow.tenant) == tenant, col(AlertRow.first_seen) >= start, col(AlertRow.first_seen) < end)).scalars())
        to_ack = [(as_utc(a.acknowledged_at) - as_utc(a.first_seen)).total_seconds()
                  for a in alerts if a.acknowledged_at]
        to_res = [(as_utc(a.resolved_at) - as_utc(a.first_seen)).total_seconds()
                  for a in alerts if a.resolved_at]
        out["alerts"] = {
            "opened": len(alerts),
            "by_status": dict(sorted(Counter(a.status for a in alerts).items())),
            "by_severity": dict(sorted(Counter(SEVERITY.get(a.severity, str(a.severity)) for a in alerts).items())),
            "time_to_acknowledge": _stats(to_ack),
            "time_to_resolve": _stats(to_res),
            "items": [{"alert_id": a.alert_id, "model": a.model, "severity": SEVERITY.get(a.severity, str(a.severity)),
                       "status": a.status, "summary": a.summary, "first_seen": as_utc(a.first_seen).isoformat(),
                       "acknowledged_at": as_utc(a.acknowledged_at).isoformat() if a.acknowledged_at else None,
                       "resolved_at": as_utc(a.resolved_at).isoformat() if a.resolved_at else None}
                      for a in sorted(alerts, key=_first_seen)],
        }
        # jobs: requested by policy decisions, and job state changes recorded in the audit trail
        job_decisions: list[tuple[dict[str, Any] | None, str]] = list(s.execute(
            select(col(DecisionRow.job), col(DecisionRow.model)).where(
                col(DecisionRow.tenant) == tenant, col(DecisionRow.created_at) >= start,
                col(DecisionRow.created_at) < end, col(DecisionRow.action) == "job")).tuples())
        # the audit trail's period as a seq range (``at`` never decreases along ``seq``): an index range
        seqs = seq_range(conn, start, end) or (0, -1)
        audit_counts = s.execute(select(col(AuditRow.action), func.count()).where(
            col(AuditRow.tenant) == tenant, col(AuditRow.seq).between(*seqs)).group_by(col(AuditRow.action))).all()
        job_audit = [(a, n) for a, n in audit_counts if str(a).startswith("job.")]
        out["jobs"] = {
            "requested_by_policy": len(job_decisions),
            "by_kind": dict(sorted(Counter(str(j.get("kind", "unknown") if j else "unknown") for j, _ in job_decisions).items())),
            "audited_state_changes": {a: n for a, n in sorted(job_audit)},
        }
        switches: list[AliasHistoryRow] = list(s.execute(select(AliasHistoryRow).where(
            col(AliasHistoryRow.tenant) == tenant, col(AliasHistoryRow.switched_at) >= start,
            col(AliasHistoryRow.switched_at) < end).order_by(col(AliasHistoryRow.switched_at))).scalars())
        out["alias_switches"] = [
            {"model": h.model, "alias": h.alias, "from_version": h.from_version, "to_version": h.to_version,
             "action": h.action, "actor": h.actor, "reason": h.reason, "at": as_utc(h.switched_at).isoformat()}
            for h in switches]
        out["audit"] = {"entries_by_action": {a: n for a, n in sorted(audit_counts)}}
    return out


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """The report flattened to ``(section, group, metric, value)`` rows."""
    rows: list[tuple[str, str, str, Any]] = [("pii", "", "findings", report["pii"]["findings"])]
    for model, ents in report["pii"]["entities_by_model"].items():
        rows += [("pii", model, etype, n) for etype, n in ents.items()]
    for det, block in report["findings"].items():
        rows.append(("findings", det, "total", block["total"]))
        rows += [("findings", det, f"{r['kind']}|{r['model']}|{r['severity']}", r["count"]) for r in block["by"]]
    al = report["alerts"]
    rows.append(("alerts", "", "opened", al["opened"]))
    rows += [("alerts", "status", k, v) for k, v in al["by_status"].items()]
    rows += [("alerts", "severity", k, v) for k, v in al["by_severity"].items()]
    for which in ("time_to_acknowledge", "time_to_resolve"):
        rows += [("alerts", which, k, v) for k, v in al[which].items()]
    jobs = report["jobs"]
    rows.append(("jobs", "", "requested_by_policy", jobs["requested_by_policy"]))
    rows += [("jobs", "kind", k, v) for k, v in jobs["by_kind"].items()]
    rows += [("jobs", "audit", k, v) for k, v in jobs["audited_state_changes"].items()]
    rows += [("alias_switches", f"{h['model']}:{h['alias']}", h["at"], f"{h['from_version']}->{h['to_version']} "
              f"({h['action']} by {h['actor']}: {h['reason']})") for h in report["alias_switches"]]
    rows += [("audit", "action", k, v) for k, v in report["audit"]["entries_by_action"].items()]
    return rows


def report_csv(report: dict[str, Any]) -> str:
    """CSV: ``section,group,metric,value`` (tenant and period in the first rows)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["section", "group", "metric", "value"])
    w.writerow(["report", "", "tenant", report["tenant"]])
    w.writerow(["report", "", "from", report["period"]["from"]])
    w.writerow(["report", "", "to", report["period"]["to"]])
    for row in report_rows(report):
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def report_html(report: dict[str, Any]) -> str:
    """A self-contained printable HTML page (every value escaped)."""
    e = html.escape

    def table(headers: list[str], rows: list[list[Any]]) -> str:
        if not rows:
            return "<p class='none'>None in this period.</p>"
        head = "".join(f"<th>{e(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{e('' if c is None else str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    al = report["alerts"]
    pii_rows = [[m, t, n] for m, ents in report["pii"]["entities_by_model"].items() for t, n in ents.items()]
    det_rows = [[d, r["kind"], r["model"], r["severity"], r["count"]]
                for d, b in report["findings"].items() for r in b["by"]]
    resp = [[k.replace("_", " "), *[al[k][m] for m in ("n", "mean_s", "median_s", "p90_s", "max_s")]]
            for k in ("time_to_acknowledge", "time_to_resolve")]
    alert_rows = [[a["alert_id"], a["model"], a["severity"], a["status"], a["summary"], a["first_seen"],
                   a["acknowledged_at"], a["resolved_at"]] for a in al["items"]]
    switch_rows = [[h["at"], h["model"], h["alias"], h["from_version"], h["to_version"], h["action"], h["actor"],
                    h["reason"]] for h in report["alias_switches"]]
    jobs = report["jobs"]
    job_rows = [["requested by policy", jobs["requested_by_policy"]]] + [[f"kind: {k}", v] for k, v in jobs["by_kind"].items()] \
        + [[k, v] for k, v in jobs["audited_state_changes"].items()]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Warden compliance report — {e(report['tenant'])}</title>
<style>
body {{ font: 11pt/1.4 system-ui, sans-serif; margin: 2em; color: #111; }}
h1 {{ font-size: 18pt; }} h2 {{ font-size: 13pt; margin-top: 1.6em; border-bottom: 1px solid #999; }}
table {{ border-collapse: collapse; width: 100%; margin: .5em 0; }}
th, td {{ border: 1px solid #bbb; padding: 3px 6px; text-align: left; font-size: 9.5pt; }}
th {{ background: #eee; }} .none {{ color: #666; font-style: italic; }}
@media print {{ body {{ margin: 0; }} h2 {{ page-break-after: avoid; }} tr {{ page-break-inside: avoid; }} }}
</style></head><body>
<h1>Compliance report — tenant {e(report['tenant'])}</h1>
<p>Period: {e(report['period']['from'])} to {e(report['period']['to'])} (end excluded).
Generated {e(report['generated_at'])}.</p>
<h2>PII findings by model and entity type ({report['pii']['findings']} findings)</h2>
{table(['model', 'entity type', 'count'], pii_rows)}
<h2>Drift, anomaly, bias and other findings</h2>
{table(['detector', 'kind', 'model', 'severity', 'count'], det_rows)}
<h2>Alerts ({al['opened']} opened)</h2>
{table(['measure', 'n', 'mean (s)', 'median (s)', 'p90 (s)', 'max (s)'], resp)}
{table(['alert', 'model', 'severity', 'status', 'summary', 'first seen', 'acknowledged', 'resolved'], alert_rows)}
<h2>Jobs</h2>
{table(['what', 'count'], job_rows)}
<h2>Alias switches</h2>
{table(['at', 'model', 'alias', 'from', 'to', 'action', 'actor', 'reason'], switch_rows)}
<h2>Audit entries</h2>
{table(['action', 'count'], [[k, v] for k, v in report['audit']['entries_by_action'].items()])}
</body></html>
"""
