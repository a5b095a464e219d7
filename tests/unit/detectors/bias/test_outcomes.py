"""Mapping event signals to fairness outcomes."""

from detectors.bias.outcomes import decision_outcome, feedback_outcome, protected_groups, refusal_outcome


def test_refusal_outcome():
    assert refusal_outcome("I'm sorry, but I can't help with that.") is False
    assert refusal_outcome("Sure, here you go.") is True
    assert refusal_outcome("") is None and refusal_outcome(None) is None


def test_feedback_and_decisions():
    assert feedback_outcome(score=5) is True and feedback_outcome(score=2) is False
    assert feedback_outcome(score=2, thumbs="up") is True
    assert feedback_outcome() is None
    assert decision_outcome("Approved") is True and decision_outcome("denied") is False
    assert decision_outcome(1) is True and decision_outcome(0) is False and decision_outcome("maybe") is None


def test_protected_groups_keeps_only_configured_attributes():
    attrs = {"gender": "f", "email": "a@b.c", "age_band": 65, "region": ""}
    assert protected_groups(attrs, ["gender", "age_band", "region"]) == {"gender": "f", "age_band": "65"}
    assert protected_groups(None, ["gender"]) == {}
