"""A role started while Kafka is away waits for it (saying so) instead of exiting after a minute."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from warden import roles
from warden.settings import Settings


def test_prepare_topics_waits_for_the_broker_and_says_so(monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    calls: list[float] = []

    async def broker_away_for_a_while(bootstrap: str, spec: Any, *, compacted: tuple[str, ...] = (),
                                      timeout_s: float = 60.0) -> list[str]:
        calls.append(timeout_s)
        if len(calls) <= 3:
            raise RuntimeError(f"Kafka at {bootstrap} is not reachable: KafkaConnectionError")
        return ["warden.inference"]

    monkeypatch.setattr(roles, "ensure_topics", broker_away_for_a_while)
    caplog.set_level(logging.INFO, logger="warden")
    roles.prepare_topics(Settings(kafka_bootstrap="127.0.0.1:1"), report_every_s=0.01)
    assert len(calls) == 4 and set(calls) == {0.01}
    waits = [r for r in caplog.records if r.getMessage() == "waiting for Kafka"]
    assert len(waits) == 3 and all(r.__dict__["bootstrap"] == "127.0.0.1:1" for r in waits)
    assert any(r.getMessage() == "created topics" for r in caplog.records)


def test_prepare_topics_does_not_hide_other_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(*_: Any, **__: Any) -> list[str]:
        raise PermissionError("topic authorization failed")

    monkeypatch.setattr(roles, "ensure_topics", refused)
    with pytest.raises(PermissionError):
        roles.prepare_topics(Settings(kafka_bootstrap="127.0.0.1:1"), report_every_s=0.01)
