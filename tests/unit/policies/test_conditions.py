"""Match conditions: operators, severity order, absent values, combinators, detector index, limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from detectors.finding import Finding, Subject
from policies.conditions import MAX_REGEX_CHARS, compile_condition, compile_match
from policies.errors import CompileError


def _f(**kw) -> Finding:
    base = dict(
        detector="pii",
        kind="pii_detected",
        subject=Subject(tenant="acme", model="chat", version="3"),
        severity="medium",
        score=0.5,
        summary="email in response",
        evidence={"entities": {"EMAIL_ADDRESS": 2}, "fields": ["response"], "note": "x" * 50},
        event_id="e1",
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    base.update(kw)
    return Finding.create(**base)


def m(cond, f=None) -> bool:
    return compile_condition(cond)(f or _f())


def test_shorthand_eq_and_in():
    assert m({"detector": "pii"})
    assert not m({"detector": "drift"})
    assert m({"kind": ["x", "pii_detected"]})
    assert not m({"kind": ["x", "y"]})
    assert m({"model": "chat", "tenant": "acme", "version": 3})  # aliases; int version means "3"


@pytest.mark.parametrize(
    "cond,expected",
    [
        ({"severity": {"gte": "medium"}}, True),
        ({"severity": {"gt": "medium"}}, False),
        ({"severity": {"lt": "high"}}, True),
        ({"severity": {"lte": "low"}}, False),
        ({"severity": {"in": ["high", "critical"]}}, False),
        ({"severity": {"not_in": ["high", "critical"]}}, True),
        ({"severity": "MEDIUM"}, True),
        ({"score": {"gt": 0.4, "lt": 0.6}}, True),
        ({"score": {"gt": 0.4, "lt": 0.45}}, False),
        ({"score": {"ne": 0.5}}, False),
        ({"evidence.entities.EMAIL_ADDRESS": {"gte": 2}}, True),
        ({"evidence.entities.EMAIL_ADDRESS": {"gt": 2}}, False),
        ({"evidence.entities.US_SSN": {"exists": True}}, False),
        ({"evidence.entities.US_SSN": {"exists": False}}, True),
        ({"evidence.fields.0": "response"}, True),
        ({"evidence.fields": {"contains": "response"}}, True),
        ({"evidence.entities": {"contains": "US_SSN"}}, False),
        ({"summary": {"regex": "^email"}}, True),
        ({"summary": {"regex": "^pii"}}, False),
        ({"summary": {"contains": "response"}}, True),
        ({"occurred_at": {"gte": "2024-12-31T00:00:00Z"}}, True),
        ({"occurred_at": {"lt": "2024-12-31T00:00:00+00:00"}}, False),
        ({"window.n": {"exists": False}}, True),
    ],
)
def test_operators(cond, expected):
    assert m(cond) is expected


def test_absent_values_fail_every_operator_but_exists_false():
    for op, arg in [("eq", 1), ("ne", 1), ("gt", 0), ("lt", 10), ("in", [1]), ("not_in", [1]), ("regex", "."), ("contains", "a")]:
        assert not m({"evidence.missing": {op: arg}}), op
    assert m({"not": {"evidence.missing": {"ne": 1}}})


def test_type_mismatch_is_false_not_an_error():
    f = _f(evidence={"v": "text", "d": {"a": 1}})
    assert not m({"evidence.v": {"gt": 3}}, f)
    assert not m({"evidence.d": {"in": ["a"]}}, f)  # unhashable value
    assert m({"evidence.d": {"not_in": ["a"]}}, f)
    assert not m({"evidence.v": {"regex": "x", "contains": 3}}, f)


def test_combinators():
    assert m({"any": [{"detector": "drift"}, {"score": {"gte": 0.5}}]})
    assert not m({"all": [{"detector": "pii"}, {"score": {"gt": 0.5}}]})
    assert m({"not": {"tenant": "other"}})
    assert not m({"not": {"any": [{"tenant": "acme"}, {"tenant": "x"}]}})
    many = {"all": [{"score": {"gt": 0.1 * i}} for i in range(5)]}
    assert m(many) and not m({"all": [*many["all"], {"score": {"gt": 0.9}}]})


def test_regex_is_searched_only_in_a_prefix_of_long_text():
    f = _f(summary="a" * 20_000 + "needle")
    assert not m({"summary": {"regex": "needle"}}, f)
    assert m({"summary": {"regex": "needle"}}, _f(summary="hay needle"))


@pytest.mark.parametrize(
    "cond,where,fragment",
    [
        ({"severity": {"gte": "hgh"}}, "severity.gte", "unknown severity"),
        ({"score": {"gt": "high"}}, "score.gt", "is a number"),
        ({"kind": {"like": "x"}}, "kind.like", "unknown operator"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"subject.region": "eu"}, "subject.region", "unknown subject field"),
        ({"summary": {"regex": "("}}, "summary.regex", "invalid regex"),
        ({"summary": {"regex": "a" * (MAX_REGEX_CHARS + 1)}}, "summary.regex", "longer than"),
        ({"score": {"regex": "1"}}, "score.regex", "text fields"),
        ({"kind": None}, "kind", "exists: false"),
        ({"kind": {"in": []}}, "kind.in", "non-empty list"),
        ({"any": {"kind": "x"}}, "any", "non-empty list"),
        ({"not": ["x"]}, "not", "must be a mapping"),
        ({"evidence": 1}, "evidence", "needs a key"),
        ({"exists": {"kind": True}}, "exists", "unknown field"),
    ],
)
def test_errors_name_the_location(cond, where, fragment):
    with pytest.raises(CompileError) as e:
        compile_condition(cond, ("match",))
    assert e.value.loc[1:] and ".".join(str(x) for x in e.value.loc[1:]) == where
    assert fragment in e.value.message


def test_detector_index_is_extracted_and_dropped_from_the_predicate():
    cm = compile_match({"detector": ["pii", "rule"], "severity": {"gte": "high"}})
    assert cm.detectors == {"pii", "rule"}
    assert cm.predicate(_f(detector="drift", severity="high"))  # detector left to the index
    assert not cm.predicate(_f(severity="low"))
    assert compile_match({"detector": {"eq": "pii", "in": ["pii", "x"]}}).detectors == {"pii"}
    assert compile_match({"any": [{"detector": "pii"}]}).detectors is None
    assert compile_match({"detector": {"ne": "pii"}}).detectors is None
    assert compile_match({}).predicate(_f())


def test_subject_predicate_covers_only_top_level_subject_conditions():
    cm = compile_match({"detector": "pii", "tenant": "acme", "subject.model": {"in": ["chat"]}, "score": {"gt": 0.9}})
    assert cm.subject_predicate is not None

    class View:
        subject = Subject(tenant="acme", model="chat")

    assert cm.subject_predicate(View())
    View.subject = Subject(tenant="acme", model="other")
    assert not cm.subject_predicate(View())
    assert compile_match({"detector": "pii"}).subject_predicate is None
