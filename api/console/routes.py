"""The console's pages and forms.

Reads that the JSON API serves are served by calling the API's own route functions with the signed-in
key's principal (same tenant checks, same errors); acts (acknowledge, resolve, silence, approve, cancel,
create and revoke keys) likewise, so the console cannot allow what the API refuses, and every act writes
the audit entry the API writes, under the key's name. Aggregates only a page needs are in
:mod:`api.console.queries`.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import secrets
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlmodel import Session

import api.console.queries as queries
import api.console.sessions as sessions
from api import deps
from api.auth import ADMIN, ADMIN_OPERATOR, AUDIT_ROLES, READ_ROLES, Principal, principal_of_key
from api.console.charts import Point, bars, intervals, time_series
from api.console.deps import Act, Form, page, read_form
from api.console.deps import action as act
from api.console.render import render
from api.routes import alert_lifecycle, audit, drift, jobs, keys, records, reports
from api.routes.health import health_report
from contracts.jobs import JobState
from detectors.finding import Severity, stable_id
from governance import alerting, lineage, registry
from governance import audit as audit_trail
from store.models import AlertRow, AlertTrackRow, FindingRow, to_utc

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50
PRE_COOKIE = "warden_console_pre"


# ---------------------------------------------------------------- helpers


def _when(value: str | None, field: str) -> datetime | None:
    """A date or datetime typed in a form (``datetime-local`` or ISO 8601), as UTC; 422 when unreadable."""
    if not value:
        return None
    try:
        at = datetime.fromisoformat(value.strip())
    except ValueError:
        raise HTTPException(422, {"error": "invalid", "detail": f"{field}: not a date or time ({value[:40]!r})"}) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _blank(value: str | None) -> str | None:
    return value.strip() if value and value.strip() else None


def _redirect(path: str, **params: str) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(path + (f"?{query}" if query else ""), status_code=303)


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console"


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


T = TypeVar("T")


def _in_session(request: Request, route: Callable[..., T], /, **kwargs: Any) -> T:
    """Call an API route function that takes a ``session``, with the session its dependency gives
    (:func:`api.deps.get_session`); run it in a thread, like FastAPI runs the sync route."""
    with contextmanager(deps.get_session)(deps.get_engine(request)) as session:
        return route(session=session, **kwargs)


# ---------------------------------------------------------------- sign-in / sign-out


@router.get("/signin")
async def signin_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form (public). A pre-session token in a cookie and the form guards the sign-in itself."""
    found = await asyncio.to_thread(sessions.viewer, request)
    if found is not None:
        return _redirect(_safe_next(next))
    pre = secrets.token_urlsafe(24)
    response = render(request, "signin.html", None, next=_safe_next(next), pre=pre, error=None,
                      expired=request.cookies.get(sessions.COOKIE) is not None)
    response.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict", secure=_cookie_secure(request),
                        path="/console", max_age=3600)
    if request.cookies.get(sessions.COOKIE) is not None:  # an expired or ended session: forget it
        response.delete_cookie(sessions.COOKIE, path="/console")
    return response


def _audit_session(request: Request, principal: Principal, action: str, session_hint: str) -> None:
    with Session(request.app.state.engine) as session:
        audit_trail.append(session, actor=principal.actor, action=action, target_type="console_session",
                           target_id=session_hint, tenant=principal.tenants[0] if principal.tenants and
                           len(principal.tenants) == 1 else None,
                           after={"role": principal.role, "user_agent": request.headers.get("user-agent", "")[:200]})
        session.commit()


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Sign in with an API key: a server-side session, an HttpOnly SameSite=Strict cookie, an audit entry."""
    form: Form = await read_form(request)
    next_path = _safe_next(form.get("next"))
    pre = request.cookies.get(PRE_COOKIE)
    if not pre or not hmac.compare_digest(pre.encode(), form.get("pre").encode()):
        raise HTTPException(403, {"error": "csrf", "detail": "the sign-in form expired: load it again"})
    presented = form.get("key").strip()
    principal = await asyncio.to_thread(principal_of_key, request, presented) if presented else None
    error = None
    if principal is None:
        error = "That key is not valid, has expired or was revoked."
    elif principal.role not in READ_ROLES:
        error = f"A {principal.role} key cannot use the console (it may only send events)."
    if error is not None or principal is None:
        response = render(request, "signin.html", None, next=next_path, pre=pre, error=error, expired=False,
                          status_code=401)
        return response
    ttl = request.app.state.config.console_session_ttl_s
    token, row = await asyncio.to_thread(sessions.start, request.app.state.engine, principal, presented, ttl)
    await asyncio.to_thread(_audit_session, request, principal, "console.signed_in", row.session_id[:16])
    response = _redirect(next_path)
    response.set_cookie(sessions.COOKIE, token, httponly=True, samesite="strict", secure=_cookie_secure(request),
                        path="/console", max_age=int(ttl))
    response.delete_cookie(PRE_COOKIE, path="/console")
    return response


@router.post("/signout")
async def signout(request: Request, posted: Act = Depends(act(*READ_ROLES))) -> Response:
    """Sign out: the session row is deleted (the cookie is worthless from now on) and audited."""
    token = request.cookies.get(sessions.COOKIE, "")
    await asyncio.to_thread(sessions.end, request.app.state.engine, token)
    await asyncio.to_thread(_audit_session, request, posted.viewer.principal, "console.signed_out",
                            sessions.digest(token)[:16])
    response = _redirect("/console/signin")
    response.delete_cookie(sessions.COOKIE, path="/console")
    return response


# ---------------------------------------------------------------- overview


@router.get("")
async def overview(request: Request, period: str = "7d", who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """Open alerts by severity and tenant, findings per detector over time, dead letters, worker health and lag."""
    if period not in queries.PERIODS:
        period = "7d"
    p = who.principal
    scope = p.scope(None)
    engine = request.app.state.engine
    alerts_by, (series, totals), dead, (_, health) = await asyncio.gather(  # side by side
        asyncio.to_thread(queries.open_alerts_by, engine, scope),
        asyncio.to_thread(queries.findings_over_time, engine, scope, period),
        asyncio.to_thread(queries.dead_letters_since, engine, scope, datetime.now(UTC) - timedelta(hours=24)),
        health_report(request.app.state))
    chart = time_series(f"Findings per detector, last {period}",
                        {d: [Point(at, n) for at, n in pts] for d, pts in series.items()}, y_label="findings")
    return render(request, "overview.html", who, period=period, periods=list(queries.PERIODS), alerts=alerts_by,
                  sev_chart=bars("Open alerts by severity", alerts_by["by_severity"]), findings_chart=chart,
                  totals=totals, dead=dead, health=health)


# ---------------------------------------------------------------- alerts


@router.get("/alerts")
async def alerts_page(request: Request, tenant: str | None = None, status: str | None = None,
                      severity: str | None = None, model: str | None = None, cursor: str | None = None,
                      who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """Alerts with filters and cursor pages (the API's ``GET /v1/alerts``)."""
    filters = {"tenant": _blank(tenant), "status": _blank(status), "severity": _blank(severity),
               "model": _blank(model)}
    if filters["status"] not in (None, "triggered", "acknowledged", "resolved"):
        raise HTTPException(422, {"error": "invalid", "detail": "status is triggered, acknowledged or resolved"})
    if filters["severity"] is not None and filters["severity"] not in Severity.__members__:
        raise HTTPException(422, {"error": "invalid", "detail": "unknown severity"})
    result = await asyncio.to_thread(records.list_alerts, deps.get_engine(request), tenant=filters["tenant"],
                                     model=filters["model"], status=filters["status"], cursor=_blank(cursor),
                                     limit=PAGE_SIZE, severity=filters["severity"], principal=who.principal)
    return render(request, "alerts.html", who, items=result.items, next_cursor=result.next_cursor,
                  filters=filters, severities=[s.name for s in reversed(Severity)])


def _alert_row(request: Request, principal: Principal, alert_id: str) -> tuple[AlertRow, AlertTrackRow | None]:
    with Session(request.app.state.engine) as session:
        row = session.get(AlertRow, alert_id)
        if row is None or not principal.allows(row.tenant):
            raise HTTPException(404, {"error": "not_found", "detail": f"no alert {alert_id!r}"})
        return row, session.get(AlertTrackRow, alert_id)


def _silences_of(request: Request, alert: AlertRow, track: AlertTrackRow | None) -> list[dict[str, Any]]:
    labels = track.labels if track is not None else alerting.alert_labels(alert)
    now = datetime.now(UTC)
    with Session(request.app.state.engine) as session:
        rows = alerting.list_silences(session, tenants=[alert.tenant], active_only=True, now=now)
    return [alerting.silence_view(s, now) for s in alerting.matching_silences(rows, alert.tenant, labels, now)]


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: str, done: str | None = None,
                     who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """One alert: its state, history, deliveries, silences in force and the findings behind it."""
    history = await asyncio.to_thread(_in_session, request, alert_lifecycle.alert_history, alert_id=alert_id,
                                      principal=who.principal)
    row, track = await asyncio.to_thread(_alert_row, request, who.principal, alert_id)
    deliveries = await asyncio.to_thread(alert_lifecycle.list_deliveries, deps.get_engine(request), destination=None,
                                         alert_id=alert_id, tenant=None, before_seq=None, limit=100,
                                         principal=who.principal)
    decisions, findings = await asyncio.to_thread(queries.behind_alert, request.app.state.engine, row)
    silences = await asyncio.to_thread(_silences_of, request, row, track)
    return render(request, "alert.html", who, alert=history.alert, history=history.items,
                  deliveries=deliveries.items, decisions=decisions, findings=findings, silences=silences,
                  done=done, labels=(track.labels if track else alerting.alert_labels(row)))


async def _transition(request: Request, alert_id: str, posted: Act, route: Callable[..., Any], done: str) -> Response:
    """Run an alert lifecycle route of the API (audited, whoever was paged is told) with the form's reason."""
    body = alert_lifecycle.AlertAction(reason=posted.form.get("reason")[:2000])
    await asyncio.to_thread(_in_session, request, route, config=deps.get_alerting(request),
                            wake=await deps.get_dispatcher_wake(request), alert_id=alert_id, body=body,
                            principal=posted.viewer.principal)
    return _redirect(f"/console/alerts/{alert_id}", done=done)


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(request: Request, alert_id: str, posted: Act = Depends(act(*ADMIN_OPERATOR))) -> Response:
    """Acknowledge (the API's route: audited, whoever was paged is told)."""
    return await _transition(request, alert_id, posted, alert_lifecycle.acknowledge_alert, "acknowledged")


@router.post("/alerts/{alert_id}/resolve")
async def resolve(request: Request, alert_id: str, posted: Act = Depends(act(*ADMIN_OPERATOR))) -> Response:
    """Resolve (the API's route: audited, whoever was paged is told)."""
    return await _transition(request, alert_id, posted, alert_lifecycle.resolve_alert, "resolved")


@router.post("/alerts/{alert_id}/silence")
async def silence(request: Request, alert_id: str, posted: Act = Depends(act(*ADMIN_OPERATOR))) -> Response:
    """Silence this alert (a silence matching its dedup key) with a reason until an expiry."""
    row, _ = await asyncio.to_thread(_alert_row, request, posted.viewer.principal, alert_id)
    reason = posted.form.get("reason").strip()
    if not reason:
        raise HTTPException(422, {"error": "invalid", "detail": "a silence needs a reason"})
    ends = _when(posted.form.get("ends_at"), "ends at")
    if ends is None:
        try:
            hours = float(posted.form.get("hours") or "nan")
        except ValueError:
            hours = math.nan
        if not (0 < hours <= 24 * 90):
            raise HTTPException(422, {"error": "invalid", "detail": "a silence lasts between a minute and 90 days"})
        ends = datetime.now(UTC) + timedelta(hours=hours)
    body = alert_lifecycle.SilenceIn(tenant=row.tenant, ends_at=ends, reason=reason[:2000],
                                     matchers=[alert_lifecycle.MatcherIn(name="dedup_key", value=row.dedup_key[:1000])])
    await asyncio.to_thread(_in_session, request, alert_lifecycle.create_silence, body=body,
                            principal=posted.viewer.principal)
    return _redirect(f"/console/alerts/{alert_id}", done="silenced")


@router.post("/silences/{silence_id}/expire")
async def expire(request: Request, silence_id: str, posted: Act = Depends(act(*ADMIN_OPERATOR))) -> Response:
    """End a silence now (the API's route: audited)."""
    out = await asyncio.to_thread(_in_session, request, alert_lifecycle.expire_silence,
                                  wake=await deps.get_dispatcher_wake(request), silence_id=silence_id,
                                  principal=posted.viewer.principal)
    back = _safe_next(posted.form.get("back")) if posted.form.get("back") else "/console/alerts"
    return _redirect(back, done="silence_expired" if out else "")


# ---------------------------------------------------------------- findings


@router.get("/findings")
async def findings_page(request: Request, tenant: str | None = None, model: str | None = None,
                        version: str | None = None, detector: str | None = None, severity: str | None = None,
                        since: str | None = None, until: str | None = None, event_id: str | None = None,
                        cursor: str | None = None, who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """Findings with filters and cursor pages (the API's ``GET /v1/findings``)."""
    filters = {"tenant": _blank(tenant), "model": _blank(model), "version": _blank(version),
               "detector": _blank(detector), "severity": _blank(severity), "since": _blank(since),
               "until": _blank(until), "event_id": _blank(event_id)}
    if filters["severity"] is not None and filters["severity"] not in Severity.__members__:
        raise HTTPException(422, {"error": "invalid", "detail": "unknown severity"})
    result = await asyncio.to_thread(
        records.list_findings, deps.get_engine(request), event_id=filters["event_id"], detector=filters["detector"],
        model=filters["model"], tenant=filters["tenant"], since=_when(filters["since"], "since"), until=_when(filters["until"], "until"),
        cursor=_blank(cursor), limit=PAGE_SIZE, version=filters["version"], severity=filters["severity"],
        principal=who.principal)
    return render(request, "findings.html", who, items=result.items, next_cursor=result.next_cursor,
                  filters=filters, severities=[s.name for s in reversed(Severity)],
                  detectors=("pii", "rule", "drift", "anomaly", "bias", "security", "training"))


def _finding(request: Request, principal: Principal, finding_id: str) -> FindingRow:
    with Session(request.app.state.engine) as session:
        row = session.get(FindingRow, finding_id)
    if row is None or not principal.allows(row.tenant):
        raise HTTPException(404, {"error": "not_found", "detail": f"no finding {finding_id!r}"})
    return row


@router.get("/findings/{finding_id}")
async def finding_page(request: Request, finding_id: str,
                       who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """One finding: its redacted evidence, its event, the policy decisions that named it and their alerts."""
    row = await asyncio.to_thread(_finding, request, who.principal, finding_id)
    decisions = await asyncio.to_thread(queries.decisions_of_finding, request.app.state.engine, row)
    alert_ids = {d.decision_id: stable_id("alert", d.tenant, d.dedup_key or d.decision_id)
                 for d in decisions if d.action == "alert" and d.mode == "enforce"}
    evidence = {k: v for k, v in (row.evidence or {}).items() if k != "samples"}
    return render(request, "finding.html", who, f=row, evidence=evidence, decisions=decisions, alert_ids=alert_ids,
                  has_samples="samples" in (row.evidence or {}))


# ---------------------------------------------------------------- models


@router.get("/models")
async def models_page(request: Request, who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """Models the registry, alerts and jobs know, per tenant."""
    items = await asyncio.to_thread(queries.known_models, request.app.state.engine, who.principal.scope(None))
    return render(request, "models.html", who, items=items)


@router.get("/models/open")
async def open_model(tenant: str = "", model: str = "", who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """The model form's target: on to that model's page."""
    if not tenant.strip() or not model.strip():
        raise HTTPException(422, {"error": "invalid", "detail": "name a tenant and a model"})
    return RedirectResponse(f"/console/models/{quote(tenant.strip(), safe='')}/{quote(model.strip(), safe='')}",
                            status_code=303)


#: the evidence fields each chart of the model page reads (nothing else of the evidence is fetched)
DRIFT_FIELDS = ("features", "alpha")
FAIRNESS_FIELDS = ("outcome_kind", "attribute", "metric", "groups")
OPS_FIELDS = ("metric", "value", "expected_low", "expected_high")


def _drift_series(rows: list[queries.FindingView]) -> dict[str, list[Point]]:
    series: dict[str, list[Point]] = {}
    for f in rows:
        if f.kind != "distribution_drift":
            continue
        at = to_utc(f.window_end) or to_utc(f.occurred_at)
        for feature, res in (f.evidence.get("features") or {}).items():
            p = res.get("p_value") if isinstance(res, dict) else None
            if isinstance(p, (int, float)):
                series.setdefault(feature, []).append(Point(at, max(float(p), 1e-300), bool(res.get("drifted"))))  # type: ignore[arg-type]
    return dict(sorted(series.items())[:9])


def _fairness(rows: list[queries.FindingView]) -> list[dict[str, Any]]:
    """The latest disparity finding per (outcome, attribute, metric), with each cohort's rate and interval."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for f in rows:  # newest first
        ev = f.evidence or {}
        if f.kind == "fairness_window" or "groups" not in ev:
            continue
        key = (ev.get("outcome_kind"), ev.get("attribute"), ev.get("metric", f.kind))
        if key in seen:
            continue
        cohorts = []
        for g, info in sorted((ev.get("groups") or {}).items()):
            ci = info.get("ci") or [None, None]
            if isinstance(info.get("rate"), (int, float)) and None not in ci:
                cohorts.append((f"{g} (n={info.get('n')})", float(info["rate"]), float(ci[0]), float(ci[1])))
        seen[key] = {"finding": f, "outcome": key[0], "attribute": key[1], "metric": key[2], "cohorts": cohorts,
                     "chart": intervals(f"{key[2]} on {key[1]} ({key[0]}): rate per cohort with its interval",
                                        cohorts)}
    return list(seen.values())[:6]


def _ops_series(rows: list[queries.FindingView]) -> dict[str, dict[str, list[Point]]]:
    out: dict[str, dict[str, list[Point]]] = {}
    for f in rows:
        ev = f.evidence or {}
        metric, value = ev.get("metric"), ev.get("value")
        if not isinstance(metric, str) or not isinstance(value, (int, float)):
            continue
        low, high = ev.get("expected_low"), ev.get("expected_high")
        at = to_utc(f.window_end) or to_utc(f.occurred_at)
        out.setdefault(metric, {}).setdefault(metric, []).append(Point(
            at, float(value), True, float(low) if isinstance(low, (int, float)) else None,  # type: ignore[arg-type]
            float(high) if isinstance(high, (int, float)) else None))
    return dict(sorted(out.items()))


@router.get("/models/{tenant}/{model}")
async def model_page(request: Request, tenant: str, model: str, version: str | None = None,
                     alias: str | None = None, at: str | None = None,
                     who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """A model: versions, aliases and their history (and which version an alias named at a date), drift
    tests over time per version, fairness by cohort, ops-metric anomalies, training runs and lineage."""
    who.principal.require_tenant(tenant)
    engine = request.app.state.engine
    when = _when(at, "at") if _blank(alias) and _blank(at) else None
    # the independent reads run side by side (each on its own pooled connection): the page waits for the
    # slowest, not for their sum; charts are drawn in the worker threads, off the event loop
    reg, (ops_rows, ops_charts), fairness, runs = await asyncio.gather(
        asyncio.to_thread(_registry_view, engine, tenant, model, _blank(alias), when),
        asyncio.to_thread(_ops_view, engine, tenant, model),
        asyncio.to_thread(_fairness_view, engine, tenant, model),
        asyncio.to_thread(queries.model_findings, engine, tenant, model, "training", fields=("run_id",),
                          kinds=lineage.RUN_KINDS, limit=40))
    versions, aliases = reg["versions"], reg["aliases"]
    production = next((a.version for a in aliases if a.alias == "production"), None)
    chosen = _blank(version) or production or (versions[0].version if versions else None)
    (drift_rows, drift_chart), chain = await asyncio.gather(
        asyncio.to_thread(_drift_view, engine, tenant, model, chosen),
        asyncio.to_thread(lineage.version_lineage, engine, tenant, model, chosen, findings=False) if chosen
        else asyncio.sleep(0, None))
    return render(request, "model.html", who, tenant=tenant, model=model, versions=versions, aliases=aliases,
                  histories=reg["histories"], asked=reg["asked"], chosen=chosen, drift_rows=drift_rows[:20],
                  drift_chart=drift_chart, fairness=fairness, ops_charts=ops_charts, ops_rows=ops_rows[:20], runs=runs,
                  lineage=chain, version_names=[v.version for v in versions])


def _registry_view(engine: Any, tenant: str, model: str, alias: str | None, when: datetime | None) -> dict[str, Any]:
    """Versions, aliases, every alias's history, and (asked) which version ``alias`` named at ``when``."""
    versions = registry.list_versions(engine, tenant, model)
    aliases = registry.list_aliases(engine, tenant, model)
    histories = {a.alias: registry.alias_history(engine, tenant, model, a.alias) for a in aliases}
    asked = None
    if alias is not None and when is not None:
        asked = {"alias": alias, "at": when, "version": registry.alias_at(engine, tenant, model, alias, when)}
    return {"versions": versions, "aliases": aliases, "histories": histories, "asked": asked}


def _drift_view(engine: Any, tenant: str, model: str, chosen: str | None) -> tuple[list[queries.FindingView], str]:
    rows = queries.model_findings(engine, tenant, model, "drift", version=chosen, fields=DRIFT_FIELDS, limit=300)
    chart = time_series(f"Drift tests of version {chosen}: p-value per feature (marked: drifted)", _drift_series(rows),
                        log_y=True, y_label="p-value", hline_label="alpha",
                        hline=float((rows[0].evidence or {}).get("alpha") or 0.05) if rows else None)
    return rows, chart


def _ops_view(engine: Any, tenant: str, model: str) -> tuple[list[queries.FindingView], dict[str, str]]:
    rows = queries.model_findings(engine, tenant, model, "anomaly", fields=OPS_FIELDS, limit=300)
    charts = {m: time_series(f"{m}: anomalous intervals with their expected range", s, y_label=m, lines=False)
              for m, s in _ops_series(rows).items()}
    return rows, charts


def _fairness_view(engine: Any, tenant: str, model: str) -> list[dict[str, Any]]:
    return _fairness(queries.model_findings(engine, tenant, model, "bias", fields=FAIRNESS_FIELDS, limit=200))


@router.get("/models/{tenant}/{model}/drift-report")
async def drift_report(request: Request, tenant: str, model: str, version: str | None = None,
                       who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """Evidently's drift report of the latest drifted window (the API's route, as HTML)."""
    report = await asyncio.to_thread(drift.drift_report, deps.get_engine(request), model, tenant=tenant,
                                     version=_blank(version), format="html", principal=who.principal)
    assert isinstance(report, HTMLResponse)
    return report


# ---------------------------------------------------------------- jobs


@router.get("/jobs")
async def jobs_page(request: Request, state: str | None = None, cursor: str | None = None,
                    who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """Jobs awaiting approval, then every job (filter by state), newest first."""
    engine = deps.get_engine(request)
    pending = await asyncio.to_thread(jobs.list_jobs, engine, tenant=None, model=None, state="awaiting_approval",
                                      cursor=None, limit=100, principal=who.principal)
    wanted = _blank(state)
    known: JobState | None = wanted if wanted in get_args(JobState) else None  # type: ignore[assignment]
    listed = await asyncio.to_thread(jobs.list_jobs, engine, tenant=None, model=None, state=known,
                                     cursor=_blank(cursor), limit=PAGE_SIZE, principal=who.principal)
    return render(request, "jobs.html", who, pending=pending.items, items=listed.items,
                  next_cursor=listed.next_cursor, state=_blank(state))


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: str, done: str | None = None,
                   who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """A job: its spec, statuses, and its evaluation against the champion."""
    job = await asyncio.to_thread(jobs.get_job, deps.get_engine(request), job_id, principal=who.principal)
    result = job.result or {}
    gate = result.get("gate") if isinstance(result, dict) else None
    return render(request, "job.html", who, job=job, gate=gate, result=result, done=done)


@router.post("/jobs/{job_id}/approve")
async def approve_job(request: Request, job_id: str, posted: Act = Depends(act(*ADMIN_OPERATOR))) -> Response:
    """Approve a job waiting for approval (the API's route: audited, then published to the workers)."""
    await jobs.approve(deps.get_engine(request), deps.get_producer(request), job_id, principal=posted.viewer.principal)
    return _redirect(f"/console/jobs/{job_id}", done="approved")


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: str, posted: Act = Depends(act(*ADMIN_OPERATOR))) -> Response:
    """Ask the workers to cancel a job, with a reason (the API's route: audited)."""
    reason = posted.form.get("reason").strip()[:2000] or None
    await jobs.cancel(deps.get_engine(request), deps.get_producer(request), job_id, principal=posted.viewer.principal,
                      reason=reason)
    return _redirect(f"/console/jobs/{job_id}", done="cancel_requested")


# ---------------------------------------------------------------- audit and reports


def _entries(request: Request, principal: Principal, filters: dict[str, str | None],
             before: int | None) -> tuple[list[dict[str, Any]], int | None]:
    rows, nxt = audit_trail.list_entries(
        request.app.state.engine, tenants=principal.scope(filters["tenant"]), actor=filters["actor"],
        action=filters["action"], target_id=filters["target_id"], since=_when(filters["since"], "since"),
        until=_when(filters["until"], "until"), before_seq=before, limit=PAGE_SIZE)
    return [audit_trail.entry_view(r) for r in rows], nxt


@router.get("/audit")
async def audit_page(request: Request, actor: str | None = None, action: str | None = None,
                     tenant: str | None = None, target_id: str | None = None, since: str | None = None,
                     until: str | None = None, cursor: str | None = None, verify: str | None = None,
                     full: str | None = None, who: sessions.Viewer = Depends(page(*AUDIT_ROLES))) -> Response:
    """The audit trail with filters and pages, the chain's head and what its last full verification found;
    ``verify=1`` verifies the entries appended since the last verified checkpoint (fast; a full
    verification is the form that posts to ``/console/audit/verify``)."""
    filters = {"actor": _blank(actor), "action": _blank(action), "tenant": _blank(tenant),
               "target_id": _blank(target_id), "since": _blank(since), "until": _blank(until)}
    before = None
    if _blank(cursor):
        if not str(cursor).isdigit() or len(str(cursor)) > 18:
            raise HTTPException(400, {"error": "bad_cursor", "detail": "malformed cursor"})
        before = int(str(cursor))
    entries, nxt = await asyncio.to_thread(_entries, request, who.principal, filters, before)
    engine = deps.get_engine(request)
    verified = await asyncio.to_thread(audit.verify_audit, engine, new=True, principal=who.principal) \
        if verify else None
    head = await asyncio.to_thread(audit.audit_head, engine, who.principal)
    return render(request, "audit.html", who, entries=entries, next_cursor=nxt, filters=filters, verified=verified,
                  head=head, status=head.verification, tenants=who.principal.tenants, full_done=full == "done")


@router.post("/audit/verify")
async def verify_full(request: Request, posted: Act = Depends(act(*AUDIT_ROLES))) -> Response:
    """Walk the whole chain now (the API's ``GET /v1/audit/verify``: recorded as the last full verification,
    which the audit page then shows with its result and time)."""
    await asyncio.to_thread(audit.verify_audit, deps.get_engine(request), new=False, principal=posted.viewer.principal)
    return _redirect("/console/audit", full="done")


@router.get("/audit/export")
async def audit_export(request: Request, format: str = "jsonl", from_: str | None = None, to: str | None = None,
                       who: sessions.Viewer = Depends(page(*AUDIT_ROLES))) -> Response:
    """Export a period with its chain facts (the API's ``GET /v1/audit/export``)."""
    if format not in ("jsonl", "csv"):
        raise HTTPException(422, {"error": "invalid", "detail": "format is jsonl or csv"})
    params = request.query_params
    return await asyncio.to_thread(audit.export_audit, deps.get_engine(request),
                                   from_=_when(params.get("from"), "from"), to=_when(params.get("to"), "to"),
                                   format=format, principal=who.principal)  # type: ignore[arg-type]


@router.get("/reports")
async def reports_page(request: Request, who: sessions.Viewer = Depends(page(*READ_ROLES))) -> Response:
    """The compliance report form; ``format=html|csv|json`` with a tenant returns the API's report."""
    params = request.query_params
    tenant = _blank(params.get("tenant"))
    fmt = params.get("format") or "html"
    if tenant is None:
        return render(request, "reports.html", who, tenants=who.principal.tenants,
                      today=datetime.now(UTC).date().isoformat(),
                      month_ago=(datetime.now(UTC) - timedelta(days=30)).date().isoformat())
    if fmt not in ("html", "csv", "json"):
        raise HTTPException(422, {"error": "invalid", "detail": "format is html, csv or json"})
    report = await asyncio.to_thread(reports.compliance_report, deps.get_engine(request), tenant,
                                     from_=_when(params.get("from"), "from"), to=_when(params.get("to"), "to"),
                                     format=fmt, principal=who.principal)  # type: ignore[arg-type]
    if isinstance(report, Response):
        return report
    return JSONResponse(report.model_dump(mode="json", by_alias=True))


# ---------------------------------------------------------------- keys


@router.get("/keys")
async def keys_page(request: Request, who: sessions.Viewer = Depends(page("admin", "auditor"))) -> Response:
    """API keys (no secrets); admins create and revoke them here."""
    listed = await asyncio.to_thread(keys.list_keys, deps.get_engine(request), principal=who.principal)
    return render(request, "keys.html", who, items=listed.items, issued=None)


@router.post("/keys")
async def create_key(request: Request, posted: Act = Depends(act(*ADMIN))) -> Response:
    """Create a key; the page that answers shows its secret once (never stored, never shown again)."""
    f = posted.form
    expires = _when(f.get("expires_at"), "expires at")
    try:
        body = keys.KeyCreate(role=f.get("role"), tenants=[t for t in f.get("tenants").replace(",", " ").split() if t],
                              name=f.get("name")[:200], expires_at=expires)
    except ValueError as exc:
        raise HTTPException(422, {"error": "invalid", "detail": str(exc).splitlines()[0]}) from None
    issued = await asyncio.to_thread(_in_session, request, keys.create_key, body=body,
                                     principal=posted.viewer.principal)
    listed = await asyncio.to_thread(keys.list_keys, deps.get_engine(request), principal=posted.viewer.principal)
    response = render(request, "keys.html", posted.viewer, items=listed.items, issued=issued, status_code=201)
    return response


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: str, posted: Act = Depends(act(*ADMIN))) -> Response:
    """Revoke a key (the API's route: audited; the key's console sessions end with it)."""
    await asyncio.to_thread(_in_session, request, keys.revoke_key, key_id=key_id, principal=posted.viewer.principal)
    return _redirect("/console/keys")
