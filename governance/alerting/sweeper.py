"""The periodic sweep: auto-resolve, re-notify, escalate, release triggers held back by ended silences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from governance.alerting.lifecycle import (
    AUTO_RESOLVE_ACTOR,
    MANUAL_RESOLVE_PREFIXES,
    SYSTEM_ACTOR,
    OutboxWriter,
    history_event,
    notify_trigger,
    resolve,
)
from governance.alerting.routes import AlertingConfig, RoutePolicy
from governance.alerting.silences import active_silences, silenced_by
from store.models import AlertRow, AlertTrackRow, SilenceRow
from store.models import to_utc as as_utc


@dataclass(slots=True)
class Swept:
    """What one :func:`sweep` did."""

    auto_resolved: int = 0
    renotified: int = 0
    escalated: int = 0
    released: int = 0


_Query = TypeVar("_Query", bound=Select[Any])


def _skip_locked(stmt: _Query, engine: Engine) -> _Query:
    return stmt.with_for_update(skip_locked=True) if engine.dialect.name == "postgresql" else stmt


def sweep(engine: Engine, *, config: AlertingConfig, now: datetime | None = None,
          limit: int = 200) -> Swept:
    """Time-driven transitions, each batch in its own transaction (safe to run in several processes
    on PostgreSQL: rows are claimed with ``FOR UPDATE SKIP LOCKED``):

    * auto-resolve open alerts not seen for ``config.resolve_after_s`` (except those only a person
      resolves: :data:`MANUAL_RESOLVE_PREFIXES`);
    * re-notify unacknowledged alerts every ``repeat_interval_s`` of their destination;
    * escalate unacknowledged alerts step by step;
    * send triggers held back by a silence that has ended.
    """
    now = now or datetime.now(UTC)
    out = Swept()
    if config.resolve_after_s:
        cutoff = now - timedelta(seconds=config.resolve_after_s)
        with Session(engine) as session:
            stmt = _skip_locked(select(col(AlertRow.alert_id)).where(
                col(AlertRow.status).in_(("triggered", "acknowledged")), col(AlertRow.last_seen) < cutoff,
                *(~col(AlertRow.dedup_key).startswith(p) for p in MANUAL_RESOLVE_PREFIXES),
            ).limit(limit), engine)
            for aid in list(session.scalars(stmt)):
                resolve(session, aid, actor=AUTO_RESOLVE_ACTOR, reason=f"not seen for {config.resolve_after_s:g} s",
                        config=config, now=now, auto=True)
                out.auto_resolved += 1
            session.commit()
    with Session(engine) as session:
        track_stmt = _skip_locked(select(AlertTrackRow).where(or_(
            col(AlertTrackRow.next_renotify_at) <= now, col(AlertTrackRow.next_escalation_at) <= now,
            col(AlertTrackRow.suppressed).is_(True),
        )).order_by(col(AlertTrackRow.alert_id)).limit(limit), engine)
        tracks = list(session.scalars(track_stmt))
        alerts = {a.alert_id: a for a in session.scalars(
            select(AlertRow).where(col(AlertRow.alert_id).in_([t.alert_id for t in tracks])))}
        silences = active_silences(session, {t.tenant for t in tracks}, now)
        box = OutboxWriter(session, config, now)
        for track in tracks:
            alert = alerts.get(track.alert_id)
            if alert is None or alert.status != "triggered":
                track.next_renotify_at = track.next_escalation_at = None
                track.suppressed = False
            elif track.suppressed:
                if not silenced_by(silences, alert, track.labels, now):
                    box.events.append(history_event(alert.alert_id, alert.tenant, "silence_ended", SYSTEM_ACTOR, now))
                    notify_trigger(box, alert, track, silences, "silence_ended")
                    out.released += 1
            else:
                _due_renotify(box, alert, track, silences, now, out)
            session.add(track)
        box.flush()
        session.commit()
    return out


def _due_renotify(box: OutboxWriter, alert: AlertRow, track: AlertTrackRow, silences: list[SilenceRow], now: datetime,
                  out: Swept) -> None:
    home = box.config.destination_for(alert.route)
    policy = box.config.policy(home) if home else RoutePolicy()
    muted = bool(silenced_by(silences, alert, track.labels, now))
    renotify = as_utc(track.next_renotify_at)
    if renotify is not None and renotify <= now:
        track.next_renotify_at = now + timedelta(seconds=policy.repeat_interval_s) if policy.repeat_interval_s else None
        if not muted and home is not None and home in track.destinations:
            box.add(alert, track, home, "trigger", reason="renotify")
            box.events.append(history_event(alert.alert_id, alert.tenant, "renotified", SYSTEM_ACTOR, now, destination=home))
            out.renotified += 1
    escalate = as_utc(track.next_escalation_at)
    if escalate is not None and escalate <= now:
        step = policy.escalation[track.escalation_step] if track.escalation_step < len(policy.escalation) else None
        track.escalation_step += 1
        nxt = policy.escalation[track.escalation_step] if track.escalation_step < len(policy.escalation) else None
        notified = as_utc(track.notified_at) or now
        track.next_escalation_at = max(now, notified + timedelta(seconds=nxt.after_s)) if nxt else None
        if step is not None and not muted:
            if step.to not in track.destinations:
                track.destinations = sorted(set(track.destinations) | {step.to})
            box.add(alert, track, step.to, "trigger", reason="escalation", escalation_step=track.escalation_step)
            box.events.append(history_event(alert.alert_id, alert.tenant, "escalated", SYSTEM_ACTOR, now, to=step.to,
                                     step=track.escalation_step))
            out.escalated += 1
