"""Request bodies for each destination type, and the webhook signature.

* PagerDuty Events API v2: ``trigger`` (with ``payload``: summary, source, severity, timestamp,
  component, group, class, custom_details; ``links``), ``acknowledge`` and ``resolve`` — all keyed by
  ``dedup_key`` (the alert id: stable, unique per tenant and dedup key, ≤ 255 characters).
* Slack incoming webhooks: ``text`` plus ``blocks``.
* Generic webhooks: JSON ``{"version": 1, "delivery_id", "alerts": [...]}`` signed with HMAC-SHA256
  over ``"{timestamp}.{body}"``: headers ``X-Warden-Timestamp`` and ``X-Warden-Signature: v1=<hex>``.

Severity mapping to PagerDuty: info→info, low/medium→warning, high→error, critical→critical.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

TIMESTAMP_HEADER = "X-Warden-Timestamp"
SIGNATURE_HEADER = "X-Warden-Signature"
DELIVERY_HEADER = "X-Warden-Delivery"
EVENT_HEADER = "X-Warden-Event"
SIGNATURE_VERSION = "v1"

PAGERDUTY_SEVERITY = {"info": "info", "low": "warning", "medium": "warning", "high": "error", "critical": "critical"}
PAGERDUTY_ACTIONS = {"trigger": "trigger", "acknowledge": "acknowledge", "resolve": "resolve"}
_SLACK_ICON = {"trigger": ":rotating_light:", "acknowledge": ":eyes:", "resolve": ":white_check_mark:"}


def pagerduty_severity(severity: str) -> str:
    """Warden severity name → PagerDuty severity."""
    return PAGERDUTY_SEVERITY.get(severity, "error")


def _links(n: Mapping[str, Any], url_template: str | None) -> list[dict[str, str]]:
    if not url_template:
        return []
    return [{"href": url_template.format(alert_id=n["alert_id"], tenant=n["tenant"]), "text": "Open in Warden"}]


def pagerduty_event(n: Mapping[str, Any], routing_key: str, *, url_template: str | None = None) -> dict[str, Any]:
    """A PagerDuty Events v2 body for one notification."""
    action = PAGERDUTY_ACTIONS[n["event"]]
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action, "dedup_key": n["alert_id"]}
    if action != "trigger":
        return body
    details = {k: n.get(k) for k in ("tenant", "model", "policy_id", "dedup_key", "count", "first_seen", "last_seen",
                                     "episode", "labels", "reason", "escalation_step") if n.get(k) is not None}
    body["payload"] = {
        "summary": str(n["summary"])[:1024] or n["dedup_key"],
        "source": f"warden/{n['tenant']}/{n['model']}",
        "severity": pagerduty_severity(n["severity"]),
        "timestamp": n.get("last_seen") or n.get("first_seen"),
        "component": n["model"],
        "group": n["tenant"],
        "class": n["policy_id"],
        "custom_details": details,
    }
    body["client"] = "Warden"
    links = _links(n, url_template)
    if links:
        body["links"] = links
        body["client_url"] = links[0]["href"]
    return body


def slack_message(ns: Sequence[Mapping[str, Any]], *, url_template: str | None = None) -> dict[str, Any]:
    """A Slack incoming-webhook message for one notification or a group of them."""
    lines = []
    for n in ns:
        icon = _SLACK_ICON.get(n["event"], "")
        what = {"trigger": "FIRING", "acknowledge": f"acknowledged by {n.get('actor', '?')}",
                "resolve": f"resolved by {n.get('actor', '?')}"}[n["event"]]
        link = _links(n, url_template)
        title = f"<{link[0]['href']}|{n['summary']}>" if link else n["summary"]
        lines.append(f"{icon} *[{n['severity'].upper()}] {what}* {title} — {n['tenant']}/{n['model']} "
                     f"(`{n['policy_id']}`, ×{n.get('count', 1)})")
    text = "\n".join(lines)
    head = f"Warden: {len(ns)} alert notifications" if len(ns) > 1 else lines[0]
    return {"text": head if len(ns) > 1 else text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]}


def webhook_body(ns: Sequence[Mapping[str, Any]], delivery_id: str, *, url_template: str | None = None) -> dict[str, Any]:
    """The generic webhook body: one delivery holding one or more notifications."""
    alerts = []
    for n in ns:
        a = dict(n)
        links = _links(n, url_template)
        if links:
            a["url"] = links[0]["href"]
        alerts.append(a)
    return {"version": 1, "delivery_id": delivery_id, "alerts": alerts}


def encode(body: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={mac}"


def signed_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers of a webhook request."""
    ts = str(int(now if now is not None else time.time()))
    return {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(secret, ts, body)}


def verify_signature(secrets: str | Iterable[str], body: bytes, timestamp: str | None, signature: str | None, *,
                     tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """Check a webhook request as a receiver should: a fresh timestamp (± ``tolerance_s``) and a
    signature, compared in constant time, made with one of ``secrets`` (rotation). The header may
    hold several comma-separated ``v1=`` values."""
    if not timestamp or not signature:
        return False
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_s:
        return False
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    offered = [s.strip() for s in signature.split(",") if s.strip().startswith(SIGNATURE_VERSION + "=")]
    return any(hmac.compare_digest(sign(k, timestamp, body), o) for k in keys for o in offered)
