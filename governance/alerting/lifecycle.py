"""Alert lifecycle in the governance store: history, silences, grouping, the notification outbox.

An alert (``store.models.AlertRow``, one per tenant and dedup key) moves
``triggered → acknowledged → resolved``; a new firing of a resolved alert reopens it (a new episode).
Every transition is an :class:`AlertEventRow` (the alert's history) and, for a person's or the
system's action, an audit entry. Notifications are rows of a *transactional outbox*
(:class:`OutboxRow`) written in the same transaction as the change they announce, so a commit
either holds both or neither; ``governance.alerting.delivery.dispatcher`` sends them and logs every attempt
(:class:`DeliveryLogRow`).

Plain rules, no I/O besides the caller's session:

* dedup: decisions fold into one alert by key (``store.repository._touch_alerts``);
  :func:`enqueue_notifications` notifies only the first firing of an episode;
* grouping: a destination's ``group_by`` labels put alerts into groups; the first notification of
  a group waits ``group_wait_s`` (to collect its companions), later ones wait until
  ``group_interval_s`` after the group's previous flush; the dispatcher sends a group in one request;
* silences: label matchers (``=``, ``!=``, ``=~``, ``!~``, regexes anchored) with a start, an end, an
  author and a reason hold back triggers (a trigger held back is sent when the silence ends and the
  alert is still unacknowledged); acknowledgements and resolutions always reach whoever was paged;
* re-notification every ``repeat_interval_s`` and escalation steps (``after_s`` → another
  destination) while an alert stays unacknowledged; auto-resolve after ``resolve_after_s`` without a
  firing — all three by :func:`sweep`, which the dispatcher runs every second.

Tables carry no foreign keys: retention (``governance.retention``) may purge an alert before its history.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlmodel import Session, col

from detectors.finding import Severity, stable_id
from governance import audit
from governance.alerting.routes import AlertingConfig, RoutePolicy
from governance.alerting.silences import active_silences, silenced_by
from store.models import (
    AlertEventRow,
    AlertGroupRow,
    AlertRow,
    AlertTrackRow,
    DeliveryLogRow,
    OutboxRow,
    SilenceRow,
)
from store.models import to_utc as as_utc

if TYPE_CHECKING:
    from contracts.decision import Decision

SYSTEM_ACTOR = "system:alerting"
AUTO_RESOLVE_ACTOR = "system:auto-resolve"
#: dedup-key prefixes of alerts only a person resolves (the sweeper never auto-resolves them): a promotion
#: block stands until someone lifts it, however long it stays quiet
MANUAL_RESOLVE_PREFIXES: tuple[str, ...] = ("block-promotion:",)
EVENTS = ("trigger", "acknowledge", "resolve")


# ---------------------------------------------------------------- labels


def alert_labels(alert: AlertRow, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """An alert's labels: the policy's labels, then the built-in ones (which win)."""
    labels = {str(k): str(v) for k, v in (extra or {}).items()}
    labels.update({
        "alertname": alert.policy_id, "policy_id": alert.policy_id, "tenant": alert.tenant, "model": alert.model,
        "severity": Severity(alert.severity).name, "route": alert.route or "", "dedup_key": alert.dedup_key,
    })
    return labels


@dataclass(slots=True)
class _NewTrack:
    """The tracking row of an alert's first firing, before it is inserted.

    Plain data with :class:`AlertTrackRow`'s fields: ``enqueue_notifications`` inserts these with one
    executemany, where building SQLModel instances cost ≈ 0.8 ms each (pydantic inspects every default
    factory) — most of a batch's time in an alert storm of new alerts.
    """

    alert_id: str
    tenant: str
    labels: dict[str, str]
    updated_at: datetime
    episode: int = 1
    destinations: list[str] = field(default_factory=list)
    suppressed: bool = False
    notified_at: datetime | None = None
    escalation_step: int = 0
    next_renotify_at: datetime | None = None
    next_escalation_at: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


#: an alert's tracking: its stored row, or the one a first firing is about to insert
Track = AlertTrackRow | _NewTrack


# ---------------------------------------------------------------- history


def history_event(alert_id: str, tenant: str, kind: str, actor: str, now: datetime, **detail: Any) -> dict[str, Any]:
    return {"alert_id": alert_id, "tenant": tenant, "at": now, "kind": kind, "actor": actor,
            "detail": {k: v for k, v in detail.items() if v is not None}}


def write_history(session: Session, events: list[dict[str, Any]]) -> None:
    if events:
        session.execute(insert(AlertEventRow.__table__), events)  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared


def alert_history(session: Session, alert_id: str) -> list[AlertEventRow]:
    """Every recorded event of an alert, oldest first."""
    stmt = select(AlertEventRow).where(col(AlertEventRow.alert_id) == alert_id).order_by(col(AlertEventRow.seq))
    return list(session.execute(stmt).scalars())


# ---------------------------------------------------------------- the outbox (writes)


def notification(alert: AlertRow, track: Track, event: str, **extra: Any) -> dict[str, Any]:
    """What a destination needs to render one notification (JSON-serialisable, no raw PII:
    summaries and labels come from policies over redacted findings)."""
    first, last = as_utc(alert.first_seen), as_utc(alert.last_seen)
    body = {
        "alert_id": alert.alert_id, "dedup_key": alert.dedup_key, "tenant": alert.tenant, "model": alert.model,
        "policy_id": alert.policy_id, "severity": Severity(alert.severity).name, "summary": alert.summary,
        "status": alert.status, "count": alert.count, "route": alert.route, "episode": track.episode,
        "labels": dict(track.labels), "first_seen": first.isoformat() if first else None,
        "last_seen": last.isoformat() if last else None, "event": event,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def _group_key(alert: AlertRow, labels: Mapping[str, str], policy: RoutePolicy) -> str | None:
    if not policy.group_by:
        return None
    return "|".join([alert.tenant] + [f"{k}={labels.get(k, '')}" for k in policy.group_by])[:500]


def _due_at(session: Session, destination: str, group_key: str | None, policy: RoutePolicy,
            now: datetime) -> datetime:
    """When a new notification of a group may go: after ``group_wait`` for a new group, with the
    pending flush if one is waiting, else ``group_interval`` after the previous flush."""
    if group_key is None:
        return now
    stmt = select(AlertGroupRow).where(col(AlertGroupRow.destination) == destination,
                                       col(AlertGroupRow.group_key) == group_key).with_for_update()
    group = session.execute(stmt).scalar_one_or_none()
    if group is None:
        due = now + timedelta(seconds=policy.group_wait_s)
        session.add(AlertGroupRow(destination=destination, group_key=group_key, next_flush_at=due))
        session.flush()
        return due
    pending, last = as_utc(group.next_flush_at), as_utc(group.last_flush_at)
    if pending is not None:
        return pending
    due = max(now, last + timedelta(seconds=policy.group_interval_s)) if last else now
    group.next_flush_at = due
    session.add(group)
    return due


class OutboxWriter:
    """Collects the outbox rows and history events of one transaction."""

    def __init__(self, session: Session, config: AlertingConfig, now: datetime) -> None:
        self.session, self.config, self.now = session, config, now
        self.rows: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.log_rows: list[dict[str, Any]] = []

    def add(self, alert: AlertRow, track: Track, destination: str, event: str, **extra: Any) -> None:
        policy = self.config.policy(destination)
        group = _group_key(alert, track.labels, policy)
        due = _due_at(self.session, destination, group, policy, self.now) if event != "acknowledge" else self.now
        self.rows.append({
            "delivery_id": uuid.uuid4().hex, "destination": destination, "alert_id": alert.alert_id,
            "tenant": alert.tenant, "event": event, "group_key": group,
            "payload": notification(alert, track, event, **extra), "status": "pending", "attempts": 0,
            "created_at": self.now, "next_attempt_at": due,
        })

    def flush(self) -> None:
        if self.rows:
            self.session.execute(insert(OutboxRow.__table__), self.rows)  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared
        if self.log_rows:
            self.session.execute(insert(DeliveryLogRow.__table__), self.log_rows)  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared
        write_history(self.session, self.events)
        self.rows, self.events, self.log_rows = [], [], []

    def not_routed(self, alert: AlertRow, reason: str) -> None:
        """Record, in the delivery log, that a notification went nowhere and why (outcome ``not_routed``)."""
        self.log_rows.append({
            "outbox_id": 0, "delivery_id": uuid.uuid4().hex, "destination": (alert.route or "default")[:200],
            "alert_id": alert.alert_id, "tenant": alert.tenant, "event": "trigger", "attempt": 0, "at": self.now,
            "outcome": "not_routed", "status_code": None, "error": reason, "latency_ms": 0.0,
        })


def notify_trigger(out: OutboxWriter, alert: AlertRow, track: Track, silences: list[SilenceRow], kind: str) -> None:
    """Notify the alert's destination of a (re)trigger unless a silence holds it back."""
    now = out.now
    destination = out.config.destination_for(alert.route)
    if destination is None:
        reason = out.config.unrouted_reason(alert.route)
        out.events.append(history_event(alert.alert_id, alert.tenant, "not_routed", SYSTEM_ACTOR, now, route=alert.route,
                                        reason=reason))
        if reason is not None:  # the route "log" records by design; anything else is a gap someone must see
            out.not_routed(alert, reason)
        return
    held = silenced_by(silences, alert, track.labels, now)
    if held:
        track.suppressed = True
        out.events.append(history_event(alert.alert_id, alert.tenant, "suppressed", SYSTEM_ACTOR, now, silences=held,
                                 destination=destination))
        return
    policy = out.config.policy(destination)
    track.suppressed = False
    track.notified_at = now
    track.destinations = sorted(set(track.destinations) | {destination})
    track.escalation_step = 0
    track.next_renotify_at = now + timedelta(seconds=policy.repeat_interval_s) if policy.repeat_interval_s else None
    track.next_escalation_at = (now + timedelta(seconds=policy.escalation[0].after_s)) if policy.escalation else None
    out.add(alert, track, destination, "trigger", reason=kind)
    out.events.append(history_event(alert.alert_id, alert.tenant, "notification_queued", SYSTEM_ACTOR, now,
                             destination=destination, notification="trigger"))


@dataclass(slots=True)
class Enqueued:
    """What :func:`enqueue_notifications` did with a batch."""

    triggered: int = 0
    reopened: int = 0
    repeated: int = 0
    notifications: int = 0
    suppressed: int = 0


def _lock_alerts(session: Session, ids: Sequence[str]) -> dict[str, AlertRow]:
    stmt = select(AlertRow).where(col(AlertRow.alert_id).in_(ids)).with_for_update()
    return {a.alert_id: a for a in session.scalars(stmt)}


def enqueue_notifications(session: Session, decisions: Sequence[Decision], *, config: AlertingConfig,
                          now: datetime | None = None) -> Enqueued:
    """Record the lifecycle effect of freshly stored alert decisions and queue their notifications,
    inside the caller's transaction (call it right after ``_touch_alerts`` upserted the alerts).

    A first firing triggers the alert, a firing of a resolved alert reopens it (new episode), both
    notify the route's destination unless silenced; a firing of an open alert only counts (dedup).
    Calling it twice with the same decisions changes nothing the second time.
    """
    now = now or datetime.now(UTC)
    latest: dict[str, Decision] = {}
    for d in decisions:
        if d.action.value != "alert" or d.mode != "enforce":
            continue
        aid = stable_id("alert", d.subject.tenant, d.dedup_key or d.decision_id)
        if aid not in latest or d.created_at >= latest[aid].created_at:
            latest[aid] = d
    out = Enqueued()
    if not latest:
        return out
    ids = sorted(latest)
    alerts = _lock_alerts(session, ids)
    tracks = {t.alert_id: t for t in session.scalars(
        select(AlertTrackRow).where(col(AlertTrackRow.alert_id).in_(ids)))}
    silences = active_silences(session, {a.tenant for a in alerts.values()}, now)
    box = OutboxWriter(session, config, now)
    new_tracks: list[_NewTrack] = []
    for aid in ids:
        alert, d = alerts.get(aid), latest[aid]
        if alert is None:  # the alert upsert did not run in this transaction: nothing to track
            continue
        track: Track | None = tracks.get(aid)
        if track is None:
            track = _NewTrack(alert_id=aid, tenant=alert.tenant, labels=alert_labels(alert, d.labels), updated_at=now)
            new_tracks.append(track)
            box.events.append(history_event(aid, alert.tenant, "triggered", SYSTEM_ACTOR, now, decision_id=d.decision_id,
                                     severity=Severity(alert.severity).name, episode=1))
            out.triggered += 1
            notify_trigger(box, alert, track, silences, "triggered")
        elif alert.status == "resolved" and d.created_at > (as_utc(alert.resolved_at) or now):
            track.episode += 1
            track.destinations, track.labels, track.updated_at = [], alert_labels(alert, d.labels), now
            alert.status, alert.acknowledged_at, alert.acknowledged_by = "triggered", None, None
            alert.resolved_at, alert.resolved_by = None, None
            session.add(alert)
            box.events.append(history_event(aid, alert.tenant, "reopened", SYSTEM_ACTOR, now, decision_id=d.decision_id,
                                     episode=track.episode))
            out.reopened += 1
            notify_trigger(box, alert, track, silences, "reopened")
        else:
            out.repeated += 1
            continue
        out.suppressed += int(track.suppressed)
        if isinstance(track, AlertTrackRow):
            session.add(track)
    if new_tracks:
        session.execute(insert(AlertTrackRow.__table__), [t.row() for t in new_tracks])  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared
    out.notifications = len(box.rows)
    box.flush()
    session.flush()
    return out


# ---------------------------------------------------------------- people's actions


class AlertNotFound(LookupError):
    """No such alert (or not visible to the caller)."""


class AlertConflict(ValueError):
    """The action does not apply to the alert's state (e.g. acknowledging a resolved alert)."""


def alert_state(row: AlertRow) -> dict[str, Any]:
    """The audited part of an alert's state."""
    return {"status": row.status, "acknowledged_at": as_utc(row.acknowledged_at),
            "acknowledged_by": row.acknowledged_by, "resolved_at": as_utc(row.resolved_at),
            "resolved_by": row.resolved_by, "silenced_until": as_utc(row.silenced_until)}


def _get_locked(session: Session, alert_id: str, tenants: Sequence[str] | None) -> tuple[AlertRow, AlertTrackRow]:
    alert = session.execute(select(AlertRow).where(col(AlertRow.alert_id) == alert_id).with_for_update()).scalar_one_or_none()
    if alert is None or (tenants is not None and alert.tenant not in tenants):
        raise AlertNotFound(alert_id)
    track = session.get(AlertTrackRow, alert_id)
    if track is None:  # an alert stored before lifecycle tracking existed
        track = AlertTrackRow(alert_id=alert_id, tenant=alert.tenant, labels=alert_labels(alert))
    return alert, track


def _close(session: Session, alert: AlertRow, track: AlertTrackRow, box: OutboxWriter, event: str, actor: str,
           reason: str) -> None:
    for destination in track.destinations:
        box.add(alert, track, destination, event, actor=actor, reason=reason or None)
    track.next_renotify_at = track.next_escalation_at = None
    track.updated_at = box.now
    session.add(track)


def acknowledge(session: Session, alert_id: str, *, actor: str, reason: str = "", tenants: Sequence[str] | None = None,
                config: AlertingConfig, now: datetime | None = None) -> AlertRow:
    """Acknowledge a triggered alert: stops re-notification and escalation and tells every
    destination that was notified. Idempotent on an acknowledged alert; refuses a resolved one."""
    now = now or datetime.now(UTC)
    alert, track = _get_locked(session, alert_id, tenants)
    if alert.status == "resolved":
        raise AlertConflict("the alert is already resolved")
    if alert.status == "acknowledged":
        return alert
    before = alert_state(alert)
    alert.status, alert.acknowledged_at, alert.acknowledged_by = "acknowledged", now, actor
    session.add(alert)
    box = OutboxWriter(session, config, now)
    _close(session, alert, track, box, "acknowledge", actor, reason)
    box.events.append(history_event(alert_id, alert.tenant, "acknowledged", actor, now, reason=reason or None,
                             notified=list(track.destinations)))
    box.flush()
    session.flush()
    audit.append(session, actor=actor, action="alert.acknowledged", tenant=alert.tenant, target_type="alert",
                 target_id=alert_id, before=before, after={**alert_state(alert), "reason": reason}, at=now)
    return alert


def resolve(session: Session, alert_id: str, *, actor: str, reason: str = "", tenants: Sequence[str] | None = None,
            config: AlertingConfig, now: datetime | None = None, auto: bool = False) -> AlertRow:
    """Resolve an alert (by hand, or ``auto`` when its condition cleared) and tell every destination
    that was notified. Idempotent on a resolved alert."""
    now = now or datetime.now(UTC)
    alert, track = _get_locked(session, alert_id, tenants)
    if alert.status == "resolved":
        return alert
    before = alert_state(alert)
    if alert.acknowledged_at is None and not auto:
        alert.acknowledged_at, alert.acknowledged_by = now, actor
    alert.status, alert.resolved_at, alert.resolved_by = "resolved", now, actor
    session.add(alert)
    track.suppressed = False
    box = OutboxWriter(session, config, now)
    _close(session, alert, track, box, "resolve", actor, reason)
    box.events.append(history_event(alert_id, alert.tenant, "auto_resolved" if auto else "resolved", actor, now,
                             reason=reason or None, notified=list(track.destinations)))
    box.flush()
    session.flush()
    audit.append(session, actor=actor, action="alert.auto_resolved" if auto else "alert.resolved", tenant=alert.tenant,
                 target_type="alert", target_id=alert_id, before=before, after={**alert_state(alert), "reason": reason},
                 at=now)
    return alert


