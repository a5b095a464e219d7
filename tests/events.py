"""Event builders shared by the tests."""

from __future__ import annotations

import json
from typing import Any

MINIMAL: dict[str, Any] = {
    "schema_version": "1", "event_id": "7f1c2d9e-0000-4000-8000-000000000001", "type": "inference",
    "occurred_at": "2026-11-26T12:00:00Z", "tenant": "acme", "model": {"name": "support-bot", "version": "3"},
    "inference": {"messages": [{"role": "user", "content": "Where is my order?"}],
                  "response": {"content": "It ships tomorrow.", "finish_reason": "stop"},
                  "usage": {"input_tokens": 12, "output_tokens": 40},
                  "latency_ms": 850, "status": "ok",
                  "user": {"id": "u-1", "attributes": {"age_band": "18-25"}}},
}


def inference(event_id: str, *, status: str = "ok", latency_ms: float = 850, tenant: str = "acme",
              model: str = "support-bot", **body: Any) -> dict[str, Any]:
    ev = json.loads(json.dumps(MINIMAL))
    ev.update(event_id=event_id, tenant=tenant)
    ev["model"]["name"] = model
    ev["inference"].update(status=status, latency_ms=latency_ms, **body)
    if status == "error":
        ev["inference"]["error"] = "upstream_timeout"
    return ev


def feedback(event_id: str, target: str, *, tenant: str = "acme", model: str = "support-bot",
             **body: Any) -> dict[str, Any]:
    """A feedback event judging ``target`` (body fields: thumbs, label, category, score, comment)."""
    return {"schema_version": "1", "event_id": event_id, "occurred_at": "2026-01-05T10:00:00Z", "tenant": tenant,
            "model": {"name": model, "version": "v1"}, "type": "feedback",
            "feedback": {"target_event_id": target, **body}}


def raw(ev: dict[str, Any]) -> bytes:
    return json.dumps(ev).encode()


#: one payload per kind of bad input, with the rejection code it must get
BAD_INPUTS: dict[str, tuple[bytes, str]] = {
    "malformed_json": (b'{"schema_version": "1", "event_id": ', "malformed_json"),
    "invalid_utf8": (b'{"schema_version": "1", "tenant": "\xff\xfe"}', "invalid_utf8"),
    "not_an_object": (b'["inference"]', "not_an_object"),
    "unknown_schema_version": (raw({**MINIMAL, "schema_version": "2"}), "unsupported_schema_version"),
    "unknown_type": (raw({**MINIMAL, "type": "telemetry"}), "unknown_type"),
    "wrong_types": (raw({**MINIMAL, "inference": {**MINIMAL["inference"], "latency_ms": "slow",
                                                   "messages": "hello"}}), "validation_error"),
    "missing_field": (raw({k: v for k, v in MINIMAL.items() if k != "tenant"}), "validation_error"),
    "oversized": (raw({**MINIMAL, "inference": {**MINIMAL["inference"],
                                                "messages": [{"role": "user", "content": "x" * (1024 * 1024)}]}}),
                  "payload_too_large"),
}
