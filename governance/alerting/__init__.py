"""Alerts, from the decision that raises one to the notification that reaches a person.

- :mod:`governance.alerting.lifecycle` — triggered → acknowledged → resolved, history, the outbox writes;
- :mod:`governance.alerting.routes` — where alerts go and how often (:class:`AlertingConfig`, passed explicitly);
- :mod:`governance.alerting.silences` — label matchers that hold notifications back;
- :mod:`governance.alerting.sweeper` — time-driven transitions (auto-resolve, re-notify, escalate);
- :mod:`governance.alerting.outbox` — the dispatcher's side of the outbox (claim, record attempts);
- :mod:`governance.alerting.delivery` — PagerDuty, Slack and signed-webhook destinations and the dispatcher.

The tables are in :mod:`store.models`.
"""

from governance.alerting.lifecycle import (
    AUTO_RESOLVE_ACTOR,
    MANUAL_RESOLVE_PREFIXES,
    SYSTEM_ACTOR,
    AlertConflict,
    AlertNotFound,
    Enqueued,
    acknowledge,
    alert_history,
    alert_labels,
    alert_state,
    enqueue_notifications,
    notification,
    resolve,
)
from governance.alerting.routes import AlertingConfig, EscalationStep, RoutePolicy
from governance.alerting.silences import (
    Matcher,
    create_silence,
    expire_silence,
    list_silences,
    matching_silences,
    parse_matchers,
    silence_active,
    silence_view,
)
from governance.alerting.sweeper import Swept, sweep

__all__ = [
    "AUTO_RESOLVE_ACTOR", "MANUAL_RESOLVE_PREFIXES", "SYSTEM_ACTOR", "AlertConflict", "AlertNotFound",
    "AlertingConfig", "Enqueued", "EscalationStep", "Matcher", "RoutePolicy", "Swept", "acknowledge",
    "alert_history", "alert_labels", "alert_state", "create_silence", "enqueue_notifications", "expire_silence",
    "list_silences", "matching_silences", "notification", "parse_matchers", "resolve", "silence_active",
    "silence_view", "sweep",
]
