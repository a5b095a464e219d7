"""Summary / dedup-key templates: substitution only, escapes, restricted format specs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from detectors.finding import Finding, Subject
from policies.templates import MAX_VALUE_CHARS, compile_template


def _f(**kw) -> Finding:
    base = dict(
        detector="rule",
        kind="latency_slo",
        subject=Subject(tenant="acme", model="chat"),
        severity="high",
        score=0.123456,
        summary="slow",
        evidence={"latency_ms": 9000.0, "nested": {"k": "v"}, "long": "z" * 1000},
        event_id="e1",
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    base.update(kw)
    return Finding.create(**base)


def r(src, f=None, ctx=None, **kw) -> str:
    return compile_template(src, **kw).render(f or _f(), ctx)


def test_fields_and_aliases():
    assert r("{detector}:{subject.tenant}:{model}:{kind}") == "rule:acme:chat:latency_slo"
    assert r("{severity} {evidence.nested.k}") == "high v"
    assert r("v={subject.version}|{evidence.nope}|") == "v=||"  # absent renders empty


def test_format_specs_and_default_float_rendering():
    assert r("{score}") == "0.1235"
    assert r("{score:.2f} {evidence.latency_ms:.0f} {score:.1%}") == "0.12 9000 12.3%"
    assert r("[{kind:>12}]") == "[ latency_slo]"


def test_literal_braces_and_constants():
    assert r("{{x}} {policy.id}", constants={"policy.id": "p1"}) == "{x} p1"
    assert r("no placeholders") == "no placeholders"


def test_values_are_capped():
    assert len(r("{evidence.long}")) == MAX_VALUE_CHARS


def test_aggregate_fields_only_in_aggregate_policies():
    with pytest.raises(ValueError, match="only available in aggregate"):
        compile_template("{aggregate.value}")
    out = r("{aggregate.value:.1%} of {aggregate.denominator}", ctx={"value": 0.05, "denominator": 200}, allow_aggregate=True)
    assert out == "5.0% of 200"
    with pytest.raises(ValueError, match="unknown aggregate field"):
        compile_template("{aggregate.secret}", allow_aggregate=True)


@pytest.mark.parametrize(
    "src,fragment",
    [
        ("{colour}", "unknown field"),
        ("{kind.__class__}", "no sub-fields"),
        ("{score:999999999}", "not allowed"),
        ("{score!r}", "unknown field"),
        ("{", "unmatched"),
        ("a } b", "unmatched"),
        ("{kind}" * 40, "placeholders"),
    ],
)
def test_rejected_templates(src, fragment):
    with pytest.raises(ValueError, match=fragment):
        compile_template(src)


def test_user_text_is_never_a_format_string():
    # literal text full of format syntax stays literal
    assert r("{{0}} {{__class__}} {kind}") == "{0} {__class__} latency_slo"
