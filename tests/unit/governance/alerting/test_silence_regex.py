"""Silence regexes match in linear time (RE2): a catastrophic pattern cannot stall the alert pipeline."""

from __future__ import annotations

import pytest

from governance.alerting.silences import MAX_PATTERN, Matcher


@pytest.mark.timeout(60)
def test_a_catastrophic_pattern_matches_in_linear_time() -> None:
    # with backtracking regexes, (a+)+$ against 64 a's and a '!' takes ~2^64 steps and never returns
    for op, expected in (("=~", False), ("!~", True)):
        assert Matcher("model", "(a+)+$", op).matches({"model": "a" * 64 + "!"}) is expected
        assert Matcher("model", "(a|aa)+", op).matches({"model": "a" * 5000 + "b"}) is expected


def test_usual_patterns_still_match_the_whole_value() -> None:
    assert Matcher("model", "support-.*", "=~").matches({"model": "support-bot"})
    assert not Matcher("model", "support", "=~").matches({"model": "support-bot"})
    assert Matcher("severity", "high|critical", "=~").matches({"severity": "critical"})
    assert Matcher("severity", "high|critical", "!~").matches({"severity": "low"})


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)b", "(?<!x)y", "(", "x" * (MAX_PATTERN + 1)])
def test_patterns_without_a_linear_time_match_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        Matcher("model", pattern, "=~")
