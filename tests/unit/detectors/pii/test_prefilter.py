"""Unit tests for the pre-filter and the benign-term memory."""

from __future__ import annotations

import json

from detectors.pii.prefilter import BenignTermMemory, Prefilter, ner_windows, pattern_triggers


def test_triggers_are_specific() -> None:
    assert pattern_triggers("Write a haiku about autumn leaves.") == set()
    assert "EMAIL_ADDRESS" in pattern_triggers("mail me: a@b.io")
    assert {"PHONE_NUMBER", "CREDIT_CARD", "US_SSN"} <= pattern_triggers("call 415-555-2671")
    assert "IP_ADDRESS" in pattern_triggers("ping 10.0.0.1")
    assert "API_KEY" in pattern_triggers("export KEY=sk-proj-abc")


def test_windows_only_around_name_candidates() -> None:
    text = "Can you explain how this works? My colleague Maria Lopez said it is fine. Thanks!"
    windows, cands = ner_windows(text)
    assert [text[s:e] for s, e in cands] == ["Maria", "Lopez"]
    assert len(windows) == 1
    s, e = windows[0]
    assert "Maria Lopez" in text[s:e] and "Can you explain" not in text[s:e]
    assert ner_windows("Can you explain Python decorators? Thanks, that helps.") == ([], [])


def test_memory_learns_benign_terms_and_snapshots() -> None:
    mem = BenignTermMemory(capacity=3, min_seen=2)
    mem.observe("Jenkins", False)
    assert not mem.is_benign("Jenkins")
    mem.observe("Jenkins", False)
    assert mem.is_benign("Jenkins")
    mem.observe("Paris", True)
    mem.observe("Paris", False)
    assert not mem.is_benign("Paris")  # one hit keeps it interesting
    restored = BenignTermMemory.restore(json.loads(json.dumps(mem.snapshot())))
    assert restored.is_benign("Jenkins") and not restored.is_benign("Paris")
    for t in ("A1", "B1", "C1"):
        mem.observe(t, False)
    assert len(mem) == 3 and not mem.is_benign("Jenkins")  # evicted (bounded)


def test_prefilter_empty_for_plain_chat() -> None:
    pf = Prefilter({"PHONE_NUMBER", "EMAIL_ADDRESS"}, {"PERSON"}, BenignTermMemory())
    assert pf.triage("Please summarize the meeting notes in three bullet points.").empty
    tri = pf.triage("Please call Anna Berg on 415-555-2671.")
    assert not tri.empty and "PHONE_NUMBER" in tri.pattern_types and tri.windows
