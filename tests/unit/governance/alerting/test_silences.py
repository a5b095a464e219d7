"""Silence matchers (Prometheus Alertmanager semantics) and which silences hold an alert back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from governance.alerting import Matcher, matching_silences, parse_matchers
from store.models import SilenceRow

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
LABELS = {"tenant": "acme", "model": "bot-7", "severity": "high", "team": "ml"}


def test_matchers_follow_alertmanager_semantics() -> None:
    assert Matcher("model", "bot-7").matches(LABELS) and not Matcher("model", "bot").matches(LABELS)
    assert Matcher("model", "bot-\\d", "=~").matches(LABELS) and not Matcher("model", "bot", "=~").matches(LABELS)
    assert Matcher("team", "web", "!=").matches(LABELS) and Matcher("team", "w.*", "!~").matches(LABELS)
    assert Matcher("missing", "", "=").matches(LABELS)
    with pytest.raises(ValueError):
        Matcher("model", "(", "=~")
    with pytest.raises(ValueError):
        Matcher("model", "x", "==")
    with pytest.raises(ValueError):
        parse_matchers([])


def test_silences_match_only_their_tenant_while_active() -> None:
    def silence(tenant: str, start: float, end: float, expired: bool = False) -> SilenceRow:
        return SilenceRow(silence_id=f"{tenant}{start}{end}{expired}", tenant=tenant, created_by="t",
                          matchers=[{"name": "team", "value": "ml", "op": "="}],
                          starts_at=NOW + timedelta(hours=start), ends_at=NOW + timedelta(hours=end),
                          expired_at=NOW if expired else None)
    rows = [silence("acme", -1, 1), silence("globex", -1, 1), silence("acme", 1, 2), silence("acme", -2, -1),
            silence("acme", -1, 1, expired=True)]
    assert [s.silence_id for s in matching_silences(rows, "acme", LABELS, NOW)] == [rows[0].silence_id]
    assert matching_silences(rows, "acme", {**LABELS, "team": "web"}, NOW) == []
