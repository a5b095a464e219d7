"""Alert lifecycle in the governance store: history, silences, grouping, the notification outbox.

An alert (``store.models.AlertRow``, one per tenant and dedup key) moves
``triggered → acknowledged → resolved``; a new firing of a resolved alert reopens it (a new episode).
Every transition is an :class:`AlertEventRow` (the alert's history) and, for a person's or the
system's action, an audit entry. Notifications are rows of a *transactional outbox*
(:class:`OutboxRow`) written in the same transaction as the change they announce, so a commit
either holds both or neither; ``api.delivery.dispatcher`` sends them and logs every attempt
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

Tables carry no foreign keys: retention (``store.lifecycle``) may purge an alert before its history.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Column, DateTime, Index, insert, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel

from detectors.finding import Severity, stable_id
from store import audit
from store.models import AlertRow, utcnow
from store.models import to_utc as as_utc  # re-exported: callers use alerting.as_utc

if TYPE_CHECKING:
    from contracts.decision import Decision

SYSTEM_ACTOR = "system:alerting"
AUTO_RESOLVE_ACTOR = "system:auto-resolve"
#: dedup-key prefixes of alerts only a person resolves (the sweeper never auto-resolves them): a promotion
#: block stands until someone lifts it, however long it stays quiet
MANUAL_RESOLVE_PREFIXES: tuple[str, ...] = ("block-promotion:",)
EVENTS = ("trigger", "acknowledge", "resolve")


def _tsf(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index))


def _now_field(index: bool = False) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), default=utcnow, nullable=False,
                                                           index=index))




# ---------------------------------------------------------------- tables


class AlertTrackRow(SQLModel, table=True):
    """Lifecycle bookkeeping of one alert beside ``alerts``: labels, episode, who was notified,
    when to re-notify and escalate, and whether a trigger is held back by a silence."""

    __tablename__ = "alert_tracking"
    __table_args__ = (
        Index("ix_alert_tracking_renotify", "next_renotify_at"),
        Index("ix_alert_tracking_escalation", "next_escalation_at"),
        Index("ix_alert_tracking_suppressed", "suppressed"),
    )

    alert_id: str = Field(primary_key=True, max_length=64)
    tenant: str = Field(max_length=200)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    episode: int = 1
    destinations: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    suppressed: bool = False
    notified_at: datetime | None = _tsf()
    escalation_step: int = 0
    next_renotify_at: datetime | None = _tsf()
    next_escalation_at: datetime | None = _tsf()
    updated_at: datetime = _now_field()


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
        return {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]


class AlertEventRow(SQLModel, table=True):
    """One entry of an alert's history (``seq`` orders them)."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_alert_seq", "alert_id", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(max_length=64)
    tenant: str = Field(max_length=200)
    at: datetime = _now_field()
    kind: str = Field(max_length=32)
    actor: str = Field(max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SilenceRow(SQLModel, table=True):
    """A silence: alerts of ``tenant`` whose labels match every matcher notify nobody in
    ``[starts_at, ends_at)`` (or until expired by hand)."""

    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_tenant_ends", "tenant", "ends_at"),)

    silence_id: str = Field(primary_key=True, max_length=64)
    tenant: str = Field(max_length=200)
    matchers: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    starts_at: datetime = _now_field()
    ends_at: datetime = _now_field()
    created_by: str = Field(max_length=200)
    reason: str = ""
    created_at: datetime = _now_field()
    expired_at: datetime | None = _tsf()
    expired_by: str | None = Field(default=None, max_length=200)


class AlertGroupRow(SQLModel, table=True):
    """Flush times of one notification group of one destination."""

    __tablename__ = "alert_groups"

    destination: str = Field(primary_key=True, max_length=200)
    group_key: str = Field(primary_key=True, max_length=500)
    next_flush_at: datetime | None = _tsf()
    last_flush_at: datetime | None = _tsf()


class OutboxRow(SQLModel, table=True):
    """One notification to one destination. ``status``: pending → sending → delivered | failed
    (a 4xx other than 429) | expired (still failing after the destination's max age).

    ``delivery_id`` stays the same over retries (receivers may use it as an idempotency key)."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        Index("ix_alert_outbox_due", "destination", "status", "next_attempt_at"),
        Index("ix_alert_outbox_order", "destination", "alert_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(max_length=64, unique=True)
    destination: str = Field(max_length=200)
    alert_id: str = Field(max_length=64)
    tenant: str = Field(max_length=200)
    event: str = Field(max_length=16)
    group_key: str | None = Field(default=None, max_length=500)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    created_at: datetime = _now_field()
    next_attempt_at: datetime = _now_field()
    lease_until: datetime | None = _tsf()
    delivered_at: datetime | None = _tsf()
    last_status_code: int | None = None
    last_error: str | None = None


class DeliveryLogRow(SQLModel, table=True):
    """One delivery attempt (outcome ``delivered | retry | failed | expired``)."""

    __tablename__ = "alert_delivery_log"
    __table_args__ = (
        Index("ix_alert_delivery_log_destination", "destination", "seq"),
        Index("ix_alert_delivery_log_outbox", "outbox_id"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    outbox_id: int
    delivery_id: str = Field(max_length=64)
    destination: str = Field(max_length=200)
    alert_id: str = Field(max_length=64)
    tenant: str = Field(max_length=200)
    event: str = Field(max_length=16)
    attempt: int
    at: datetime = _now_field()
    outcome: str = Field(max_length=16)
    status_code: int | None = None
    error: str | None = None
    latency_ms: float = 0.0


ALERTING_TABLES: tuple[type[SQLModel], ...] = (
    AlertTrackRow, AlertEventRow, SilenceRow, AlertGroupRow, OutboxRow, DeliveryLogRow,
)


def ensure_alerting_tables(engine: Engine) -> None:
    """Create the alerting tables where missing (tests and benchmarks before the migration lands;
    ``store.alerting_migration`` is what ``init_db`` runs once it is wired)."""
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in ALERTING_TABLES])  # type: ignore[attr-defined]


# ---------------------------------------------------------------- configuration (plain data)


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """While unacknowledged ``after_s`` seconds after the first notification, also notify ``to``."""

    after_s: float
    to: str


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """How alerts routed to one destination are grouped, repeated and escalated."""

    group_by: tuple[str, ...] = ()
    group_wait_s: float = 0.0
    group_interval_s: float = 300.0
    repeat_interval_s: float | None = None
    escalation: tuple[EscalationStep, ...] = ()


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    """Destinations by route name (``pagerduty:ml-oncall``, ``webhook:ml-ops``, ``default`` …) and
    lifecycle timings. A route without a destination falls back to ``default_route``; the route
    ``log`` means record only."""

    routes: Mapping[str, RoutePolicy] = field(default_factory=dict)
    default_route: str | None = "default"
    resolve_after_s: float | None = None

    def destination_for(self, route: str | None) -> str | None:
        """The destination an alert of ``route`` is sent to (None: record only)."""
        if route == "log":
            return None
        if route and route in self.routes:
            return route
        if self.default_route and self.default_route in self.routes:
            return self.default_route
        return None

    def policy(self, destination: str) -> RoutePolicy:
        return self.routes.get(destination) or RoutePolicy()


_active = AlertingConfig()


def set_alerting_config(config: AlertingConfig) -> None:
    """Install the process-wide configuration :func:`enqueue_notifications` uses by default."""
    global _active
    _active = config


def alerting_config() -> AlertingConfig:
    """The process-wide configuration (empty until the service installs one: record only)."""
    return _active


# ---------------------------------------------------------------- labels and silences


def alert_labels(alert: AlertRow, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """An alert's labels: the policy's labels, then the built-in ones (which win)."""
    labels = {str(k): str(v) for k, v in (extra or {}).items()}
    labels.update({
        "alertname": alert.policy_id, "policy_id": alert.policy_id, "tenant": alert.tenant, "model": alert.model,
        "severity": Severity(alert.severity).name, "route": alert.route or "", "dedup_key": alert.dedup_key,
    })
    return labels


MATCH_OPS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher as in Prometheus Alertmanager; regexes match the whole value."""

    name: str
    value: str
    op: str = "="

    def __post_init__(self) -> None:
        if self.op not in MATCH_OPS:
            raise ValueError(f"matcher op must be one of {MATCH_OPS}, not {self.op!r}")
        if not self.name:
            raise ValueError("matcher name must not be empty")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"bad regex {self.value!r}: {exc}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = re.fullmatch(self.value, got) is not None
        return hit if self.op == "=~" else not hit

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "op": self.op}


def parse_matchers(raw: Iterable[Mapping[str, Any]]) -> list[Matcher]:
    """Matchers from plain dicts ``{name, value, op}``; at least one is required."""
    out = [Matcher(name=str(m["name"]), value=str(m.get("value", "")), op=str(m.get("op", "="))) for m in raw]
    if not out:
        raise ValueError("a silence needs at least one matcher")
    return out


def silence_active(s: SilenceRow, now: datetime) -> bool:
    starts, ends = as_utc(s.starts_at), as_utc(s.ends_at)
    return s.expired_at is None and starts is not None and ends is not None and starts <= now < ends


def matching_silences(silences: Iterable[SilenceRow], tenant: str, labels: Mapping[str, str],
                      now: datetime) -> list[SilenceRow]:
    """The active silences of ``tenant`` whose matchers all match ``labels``."""
    return [s for s in silences if s.tenant == tenant and silence_active(s, now)
            and all(Matcher(**m).matches(labels) for m in s.matchers)]


def _active_silences(session: Session, tenants: Iterable[str], now: datetime) -> list[SilenceRow]:
    tenants = sorted(set(tenants))
    if not tenants:
        return []
    stmt = select(SilenceRow).where(SilenceRow.tenant.in_(tenants), SilenceRow.expired_at.is_(None),  # type: ignore[attr-defined]
                                    SilenceRow.starts_at <= now, SilenceRow.ends_at > now)
    return list(session.execute(stmt).scalars())


def _silenced_by(session_silences: list[SilenceRow], alert: AlertRow, labels: Mapping[str, str],
                 now: datetime) -> list[str]:
    ids = [s.silence_id for s in matching_silences(session_silences, alert.tenant, labels, now)]
    until = as_utc(alert.silenced_until)
    if until is not None and until > now:
        ids.append(f"alert:{until.isoformat()}")
    return ids


# ---------------------------------------------------------------- history


def _event(alert_id: str, tenant: str, kind: str, actor: str, now: datetime, **detail: Any) -> dict[str, Any]:
    return {"alert_id": alert_id, "tenant": tenant, "at": now, "kind": kind, "actor": actor,
            "detail": {k: v for k, v in detail.items() if v is not None}}


def _write_events(session: Session, events: list[dict[str, Any]]) -> None:
    if events:
        session.execute(insert(AlertEventRow.__table__), events)  # type: ignore[attr-defined]


def alert_history(session: Session, alert_id: str) -> list[AlertEventRow]:
    """Every recorded event of an alert, oldest first."""
    stmt = select(AlertEventRow).where(AlertEventRow.alert_id == alert_id).order_by(AlertEventRow.seq)
    return list(session.execute(stmt).scalars())


# ---------------------------------------------------------------- the outbox (writes)


def notification(alert: AlertRow, track: AlertTrackRow, event: str, **extra: Any) -> dict[str, Any]:
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
    stmt = select(AlertGroupRow).where(AlertGroupRow.destination == destination,
                                       AlertGroupRow.group_key == group_key).with_for_update()
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


class _Outbox:
    """Collects the outbox rows and history events of one transaction."""

    def __init__(self, session: Session, config: AlertingConfig, now: datetime) -> None:
        self.session, self.config, self.now = session, config, now
        self.rows: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def add(self, alert: AlertRow, track: AlertTrackRow, destination: str, event: str, **extra: Any) -> None:
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
            self.session.execute(insert(OutboxRow.__table__), self.rows)  # type: ignore[attr-defined]
        _write_events(self.session, self.events)
        self.rows, self.events = [], []


def _page(out: _Outbox, alert: AlertRow, track: AlertTrackRow, silences: list[SilenceRow], kind: str) -> None:
    """Notify the alert's destination of a (re)trigger unless a silence holds it back."""
    now = out.now
    destination = out.config.destination_for(alert.route)
    if destination is None:
        out.events.append(_event(alert.alert_id, alert.tenant, "not_routed", SYSTEM_ACTOR, now, route=alert.route))
        return
    held = _silenced_by(silences, alert, track.labels, now)
    if held:
        track.suppressed = True
        out.events.append(_event(alert.alert_id, alert.tenant, "suppressed", SYSTEM_ACTOR, now, silences=held,
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
    out.events.append(_event(alert.alert_id, alert.tenant, "notification_queued", SYSTEM_ACTOR, now,
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
    stmt = select(AlertRow).where(AlertRow.alert_id.in_(ids)).with_for_update()  # type: ignore[attr-defined]
    return {a.alert_id: a for a in session.execute(stmt).scalars()}


def enqueue_notifications(session: Session, decisions: Sequence[Decision], *, config: AlertingConfig | None = None,
                          now: datetime | None = None) -> Enqueued:
    """Record the lifecycle effect of freshly stored alert decisions and queue their notifications,
    inside the caller's transaction (call it right after ``_touch_alerts`` upserted the alerts).

    A first firing triggers the alert, a firing of a resolved alert reopens it (new episode), both
    notify the route's destination unless silenced; a firing of an open alert only counts (dedup).
    Calling it twice with the same decisions changes nothing the second time.
    """
    config = config or _active
    now = now or datetime.now(timezone.utc)
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
    tracks = {t.alert_id: t for t in session.execute(
        select(AlertTrackRow).where(AlertTrackRow.alert_id.in_(ids))).scalars()}  # type: ignore[attr-defined]
    silences = _active_silences(session, {a.tenant for a in alerts.values()}, now)
    box = _Outbox(session, config, now)
    new_tracks: list[_NewTrack] = []
    for aid in ids:
        alert, d = alerts.get(aid), latest[aid]
        if alert is None:  # the alert upsert did not run in this transaction: nothing to track
            continue
        track: AlertTrackRow | _NewTrack | None = tracks.get(aid)
        if track is None:
            track = _NewTrack(alert_id=aid, tenant=alert.tenant, labels=alert_labels(alert, d.labels), updated_at=now)
            new_tracks.append(track)
            box.events.append(_event(aid, alert.tenant, "triggered", SYSTEM_ACTOR, now, decision_id=d.decision_id,
                                     severity=Severity(alert.severity).name, episode=1))
            out.triggered += 1
            _page(box, alert, track, silences, "triggered")
        elif alert.status == "resolved" and d.created_at > (as_utc(alert.resolved_at) or now):
            track.episode += 1
            track.destinations, track.labels, track.updated_at = [], alert_labels(alert, d.labels), now
            alert.status, alert.acknowledged_at, alert.acknowledged_by = "triggered", None, None
            alert.resolved_at, alert.resolved_by = None, None
            session.add(alert)
            box.events.append(_event(aid, alert.tenant, "reopened", SYSTEM_ACTOR, now, decision_id=d.decision_id,
                                     episode=track.episode))
            out.reopened += 1
            _page(box, alert, track, silences, "reopened")
        else:
            out.repeated += 1
            continue
        out.suppressed += int(track.suppressed)
        if isinstance(track, AlertTrackRow):
            session.add(track)
    if new_tracks:
        session.execute(insert(AlertTrackRow.__table__), [t.row() for t in new_tracks])  # type: ignore[attr-defined]
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
    alert = session.execute(select(AlertRow).where(AlertRow.alert_id == alert_id).with_for_update()).scalar_one_or_none()
    if alert is None or (tenants is not None and alert.tenant not in tenants):
        raise AlertNotFound(alert_id)
    track = session.get(AlertTrackRow, alert_id)
    if track is None:  # an alert stored before lifecycle tracking existed
        track = AlertTrackRow(alert_id=alert_id, tenant=alert.tenant, labels=alert_labels(alert))
    return alert, track


def _close(session: Session, alert: AlertRow, track: AlertTrackRow, box: _Outbox, event: str, actor: str,
           reason: str) -> None:
    for destination in track.destinations:
        box.add(alert, track, destination, event, actor=actor, reason=reason or None)
    track.next_renotify_at = track.next_escalation_at = None
    track.updated_at = box.now
    session.add(track)


def acknowledge(session: Session, alert_id: str, *, actor: str, reason: str = "", tenants: Sequence[str] | None = None,
                config: AlertingConfig | None = None, now: datetime | None = None) -> AlertRow:
    """Acknowledge a triggered alert: stops re-notification and escalation and tells every
    destination that was notified. Idempotent on an acknowledged alert; refuses a resolved one."""
    now = now or datetime.now(timezone.utc)
    alert, track = _get_locked(session, alert_id, tenants)
    if alert.status == "resolved":
        raise AlertConflict("the alert is already resolved")
    if alert.status == "acknowledged":
        return alert
    before = alert_state(alert)
    alert.status, alert.acknowledged_at, alert.acknowledged_by = "acknowledged", now, actor
    session.add(alert)
    box = _Outbox(session, config or _active, now)
    _close(session, alert, track, box, "acknowledge", actor, reason)
    box.events.append(_event(alert_id, alert.tenant, "acknowledged", actor, now, reason=reason or None,
                             notified=list(track.destinations)))
    box.flush()
    session.flush()
    audit.append(session, actor=actor, action="alert.acknowledged", tenant=alert.tenant, target_type="alert",
                 target_id=alert_id, before=before, after={**alert_state(alert), "reason": reason}, at=now)
    return alert


def resolve(session: Session, alert_id: str, *, actor: str, reason: str = "", tenants: Sequence[str] | None = None,
            config: AlertingConfig | None = None, now: datetime | None = None, auto: bool = False) -> AlertRow:
    """Resolve an alert (by hand, or ``auto`` when its condition cleared) and tell every destination
    that was notified. Idempotent on a resolved alert."""
    now = now or datetime.now(timezone.utc)
    alert, track = _get_locked(session, alert_id, tenants)
    if alert.status == "resolved":
        return alert
    before = alert_state(alert)
    if alert.acknowledged_at is None and not auto:
        alert.acknowledged_at, alert.acknowledged_by = now, actor
    alert.status, alert.resolved_at, alert.resolved_by = "resolved", now, actor
    session.add(alert)
    track.suppressed = False
    box = _Outbox(session, config or _active, now)
    _close(session, alert, track, box, "resolve", actor, reason)
    box.events.append(_event(alert_id, alert.tenant, "auto_resolved" if auto else "resolved", actor, now,
                             reason=reason or None, notified=list(track.destinations)))
    box.flush()
    session.flush()
    audit.append(session, actor=actor, action="alert.auto_resolved" if auto else "alert.resolved", tenant=alert.tenant,
                 target_type="alert", target_id=alert_id, before=before, after={**alert_state(alert), "reason": reason},
                 at=now)
    return alert


# ---------------------------------------------------------------- silences (CRUD)


def create_silence(session: Session, *, tenant: str, matchers: Iterable[Mapping[str, Any]], ends_at: datetime,
                   created_by: str, reason: str = "", starts_at: datetime | None = None,
                   now: datetime | None = None) -> SilenceRow:
    """Create a silence (audited); raises ValueError on bad matchers or times."""
    now = now or datetime.now(timezone.utc)
    parsed = parse_matchers(matchers)
    starts = as_utc(starts_at) or now
    ends = as_utc(ends_at)
    assert ends is not None
    if ends <= starts:
        raise ValueError("ends_at must be after starts_at")
    row = SilenceRow(silence_id=uuid.uuid4().hex, tenant=tenant, matchers=[m.as_dict() for m in parsed],
                     starts_at=starts, ends_at=ends, created_by=created_by, reason=reason, created_at=now)
    session.add(row)
    session.flush()
    audit.append(session, actor=created_by, action="silence.created", tenant=tenant, target_type="silence",
                 target_id=row.silence_id, after=silence_view(row), at=now)
    return row


def expire_silence(session: Session, silence_id: str, *, actor: str, tenants: Sequence[str] | None = None,
                   now: datetime | None = None) -> SilenceRow:
    """End a silence now (audited); idempotent. Held-back triggers go out at the next sweep."""
    now = now or datetime.now(timezone.utc)
    row = session.get(SilenceRow, silence_id, with_for_update=True)
    if row is None or (tenants is not None and row.tenant not in tenants):
        raise LookupError(silence_id)
    if row.expired_at is None:
        before = silence_view(row)
        row.expired_at, row.expired_by = now, actor
        session.add(row)
        session.flush()
        audit.append(session, actor=actor, action="silence.expired", tenant=row.tenant, target_type="silence",
                     target_id=silence_id, before=before, after=silence_view(row), at=now)
    return row


def list_silences(session: Session, *, tenants: Sequence[str] | None = None, active_only: bool = False,
                  now: datetime | None = None, limit: int = 500) -> list[SilenceRow]:
    """Silences, newest first; ``active_only`` keeps those in force now."""
    now = now or datetime.now(timezone.utc)
    stmt = select(SilenceRow)
    if tenants is not None:
        stmt = stmt.where(SilenceRow.tenant.in_(list(tenants)))  # type: ignore[attr-defined]
    if active_only:
        stmt = stmt.where(SilenceRow.expired_at.is_(None), SilenceRow.starts_at <= now,  # type: ignore[union-attr]
                          SilenceRow.ends_at > now)
    stmt = stmt.order_by(SilenceRow.created_at.desc(), SilenceRow.silence_id.desc()).limit(limit)  # type: ignore[attr-defined]
    return list(session.execute(stmt).scalars())


def silence_view(row: SilenceRow, now: datetime | None = None) -> dict[str, Any]:
    """A silence as plain JSON-able data (with whether it is in force ``now``)."""
    now = now or datetime.now(timezone.utc)
    return {"silence_id": row.silence_id, "tenant": row.tenant, "matchers": list(row.matchers),
            "starts_at": as_utc(row.starts_at), "ends_at": as_utc(row.ends_at), "created_by": row.created_by,
            "reason": row.reason, "created_at": as_utc(row.created_at), "expired_at": as_utc(row.expired_at),
            "expired_by": row.expired_by, "active": silence_active(row, now)}


# ---------------------------------------------------------------- the periodic sweep


@dataclass(slots=True)
class Swept:
    """What one :func:`sweep` did."""

    auto_resolved: int = 0
    renotified: int = 0
    escalated: int = 0
    released: int = 0


def _skip_locked(stmt: Any, engine: Engine) -> Any:
    return stmt.with_for_update(skip_locked=True) if engine.dialect.name == "postgresql" else stmt


def sweep(engine: Engine, *, config: AlertingConfig | None = None, now: datetime | None = None,
          limit: int = 200) -> Swept:
    """Time-driven transitions, each batch in its own transaction (safe to run in several processes
    on PostgreSQL: rows are claimed with ``FOR UPDATE SKIP LOCKED``):

    * auto-resolve open alerts not seen for ``config.resolve_after_s`` (except those only a person
      resolves: :data:`MANUAL_RESOLVE_PREFIXES`);
    * re-notify unacknowledged alerts every ``repeat_interval_s`` of their destination;
    * escalate unacknowledged alerts step by step;
    * send triggers held back by a silence that has ended.
    """
    config = config or _active
    now = now or datetime.now(timezone.utc)
    out = Swept()
    if config.resolve_after_s:
        cutoff = now - timedelta(seconds=config.resolve_after_s)
        with Session(engine) as session:
            stmt = _skip_locked(select(AlertRow.alert_id).where(
                AlertRow.status.in_(("triggered", "acknowledged")), AlertRow.last_seen < cutoff,  # type: ignore[attr-defined]
                *(~AlertRow.dedup_key.startswith(p) for p in MANUAL_RESOLVE_PREFIXES),  # type: ignore[attr-defined]
            ).limit(limit), engine)
            for aid in list(session.execute(stmt).scalars()):
                resolve(session, aid, actor=AUTO_RESOLVE_ACTOR, reason=f"not seen for {config.resolve_after_s:g} s",
                        config=config, now=now, auto=True)
                out.auto_resolved += 1
            session.commit()
    with Session(engine) as session:
        stmt = _skip_locked(select(AlertTrackRow).where(or_(
            AlertTrackRow.next_renotify_at <= now, AlertTrackRow.next_escalation_at <= now,  # type: ignore[operator]
            AlertTrackRow.suppressed.is_(True),  # type: ignore[attr-defined]
        )).order_by(AlertTrackRow.alert_id).limit(limit), engine)
        tracks = list(session.execute(stmt).scalars())
        alerts = {a.alert_id: a for a in session.execute(
            select(AlertRow).where(AlertRow.alert_id.in_([t.alert_id for t in tracks]))).scalars()}  # type: ignore[attr-defined]
        silences = _active_silences(session, {t.tenant for t in tracks}, now)
        box = _Outbox(session, config, now)
        for track in tracks:
            alert = alerts.get(track.alert_id)
            if alert is None or alert.status != "triggered":
                track.next_renotify_at = track.next_escalation_at = None
                track.suppressed = False
            elif track.suppressed:
                if not _silenced_by(silences, alert, track.labels, now):
                    box.events.append(_event(alert.alert_id, alert.tenant, "silence_ended", SYSTEM_ACTOR, now))
                    _page(box, alert, track, silences, "silence_ended")
                    out.released += 1
            else:
                _due_renotify(box, alert, track, silences, now, out)
            session.add(track)
        box.flush()
        session.commit()
    return out


def _due_renotify(box: _Outbox, alert: AlertRow, track: AlertTrackRow, silences: list[SilenceRow], now: datetime,
                  out: Swept) -> None:
    home = box.config.destination_for(alert.route)
    policy = box.config.policy(home) if home else RoutePolicy()
    muted = bool(_silenced_by(silences, alert, track.labels, now))
    renotify = as_utc(track.next_renotify_at)
    if renotify is not None and renotify <= now:
        track.next_renotify_at = now + timedelta(seconds=policy.repeat_interval_s) if policy.repeat_interval_s else None
        if not muted and home is not None and home in track.destinations:
            box.add(alert, track, home, "trigger", reason="renotify")
            box.events.append(_event(alert.alert_id, alert.tenant, "renotified", SYSTEM_ACTOR, now, destination=home))
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
            box.events.append(_event(alert.alert_id, alert.tenant, "escalated", SYSTEM_ACTOR, now, to=step.to,
                                     step=track.escalation_step))
            out.escalated += 1
