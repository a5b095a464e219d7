"""Tests of the PERSON context cues, gazetteer, span cleaning and expansion (detectors.pii.names)."""

from __future__ import annotations

import pytest

from detectors.pii.detector import PiiConfig, PiiDetector
from detectors.pii.names import (
    FIRST_NAMES,
    LAST_NAMES,
    NameScanner,
    clean_person_span,
    expand_person_spans,
    is_gazetteer_name,
    scan_person,
)
from detectors.pii.prefilter import Prefilter, ner_windows


def names(text: str, scanner: NameScanner = scan_person) -> list[str]:
    return [text[s.start : s.end] for s in scanner(text) if s.type == "PERSON"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # self-introductions
        ("My name is Marguerite Oyelaran and I need help.", "Marguerite Oyelaran"),
        ("my name's Tevita Fifita.", "Tevita Fifita"),
        ("Hi, I'm Marguerite Oyelaran; mail me at a@b.org", "Marguerite Oyelaran"),
        ("I am Priya Natarajan, the new lead.", "Priya Natarajan"),
        ("This is Kwame Mensah from accounts.", "Kwame Mensah"),
        ("Call me Siobhan, everyone does.", "Siobhan"),
        # address forms
        ("Dear Zofia Wróblewska-Kania,\nplease sign.", "Zofia Wróblewska-Kania"),
        ("Hi Emily, can you check?", "Emily"),
        ("Hello Ngozi Eze, welcome aboard.", "Ngozi Eze"),
        ("Hey Sefa Tuilagi, could you review?", "Sefa Tuilagi"),
        ("Thanks Emily Clarke, noted.", "Emily Clarke"),
        ("Thank you Cormac O'Flaherty! That fixed it.", "Cormac O'Flaherty"),
        # sign-offs
        ("Regards,\nJosé García-López", "José García-López"),
        ("Best,\nNguyễn Thị Lan", "Nguyễn Thị Lan"),
        ("Cheers,\nAroha Te Whatu", "Aroha Te Whatu"),
        ("Kind regards, Ilse van der Berg", "Ilse van der Berg"),
        # titles, signatures, roles
        ("Dear Mr. O'Brien, your order shipped.", "O'Brien"),
        ("Please ask Dr. Aiko Tanaka to review the scan.", "Aiko Tanaka"),
        ("The contract was signed by Mehmet Karakoç last week.", "Mehmet Karakoç"),
        ("The customer Maria Lopez asked for a refund.", "Maria Lopez"),
        # gazetteer pair, no cue
        ("I had lunch with Emily Clarke yesterday.", "Emily Clarke"),
        ("Forward it to Jon Young please.", "Jon Young"),
    ],
)
def test_cue_families_capture_the_full_name(text: str, expected: str) -> None:
    assert expected in names(text)
    assert all(expected in n or n in expected for n in names(text))


@pytest.mark.parametrize(
    "text",
    [
        "I'm Happy to help with the migration plan.",
        "Thanks Team, great work on the release!",
        "Hi All, the standup moves to 10:15.",
        "Hey There, quick question about the Pro plan.",
        "Dear Customer, your ticket has been updated.",
        "Dear Sir or Madam, I would like to cancel.",
        "This is Important: back up the database first.",
        "This is Python code, not Ruby.",
        "Thank you Everyone for the feedback.",
        "Thanks Monday standup crew.",
        "Hi June, hi July.",
        "Call me Maybe is stuck in my head.",
        "Max Retries should be set to 5 in the Settings panel.",
        "Best Practices for Docker images are in the wiki.",
        "Regards,\nThe Support Team",
        "Thanks Google Cloud support for the fix.",
        "I am Stuck on step 4 of the Terraform tutorial.",
    ],
)
def test_hard_negatives_yield_no_person(text: str) -> None:
    assert names(text) == []


def test_weak_cues_need_the_gazetteer_but_strong_cues_do_not() -> None:
    plain = NameScanner(gazetteer=False)
    assert names("Thanks Emily, noted.", plain) == []  # weak cue, one unknown token
    assert names("Thanks Emily, noted.") == ["Emily"]
    assert names("My name is Oyelaran.", plain) == ["Oyelaran"]  # strong cue
    assert names("I had lunch with Emily Clarke.", plain) == []  # no cue, no gazetteer


def test_gazetteer_has_diverse_names_and_no_common_words() -> None:
    for name in ("Priya", "Kwame", "Siobhan", "Marguerite", "Abiodun"):
        assert name in FIRST_NAMES, name
    for name in ("Natarajan", "Nguyen", "Nguyễn", "O'Brien", "García", "Garcia", "Mensah"):
        assert name in LAST_NAMES, name
    for word in ("Happy", "Team", "Monday", "April", "Will", "Young", "Python", "Customer"):
        assert not is_gazetteer_name(word), word
    assert is_gazetteer_name("Priya's")


def test_expansion_grows_over_adjacent_name_tokens_only() -> None:
    text = "Thanks Priya Natarajan, noted."
    s = text.index("Natarajan")
    assert expand_person_spans(text, [(s, s + 9)]) == [(text.index("Priya"), s + 9)]
    text = "Thanks Priya Natarajan, noted."
    s = text.index("Priya")
    assert expand_person_spans(text, [(s, s + 5)]) == [(s, text.index(",")), ]
    # an unknown sentence-initial word is not pulled in; the same word mid-sentence is
    text = "Zorblax Natarajan called."
    assert expand_person_spans(text, [(8, 17)]) == [(8, 17)]
    text = "We met Zorblax Natarajan today."
    s = text.index("Natarajan")
    assert expand_person_spans(text, [(s, s + 9)]) == [(text.index("Zorblax"), s + 9)]
    # greetings, allow-terms and common words stop it
    text = "Hi Natarajan and Docker Natarajan"
    spans = [(3, 12), (text.rindex("Natarajan"), len(text))]
    assert expand_person_spans(text, spans) == spans
    # a capitalised first name that is also a word/allow-term joins mid-sentence
    text = "Write to my friend Julia Johnson today."
    s = text.index("Johnson")
    assert expand_person_spans(text, [(s, s + 7)]) == [(text.index("Julia"), s + 7)]


def test_clean_person_span_trims_non_name_edges() -> None:
    def clean(text: str) -> str | None:
        got = clean_person_span(text, 0, len(text))
        return None if got is None else text[got[0] : got[1]]

    assert clean("Customer Success") is None
    assert clean("Max Retries") is None
    assert clean("Dora Write") == "Dora"
    assert clean("Tom\nPlease") == "Tom"
    assert clean("Cheers") is None
    assert clean("Jon Young") == "Jon Young"
    assert clean("Priya's") == "Priya"


def test_prefilter_sees_non_ascii_names_and_cues() -> None:
    text = "gửi cho Nguyễn và Łukasz Żółć hôm nay"
    _, cands = ner_windows(text)
    assert {text[s:e] for s, e in cands} >= {"Nguyễn", "Łukasz", "Żółć"}
    probe = Prefilter({"PERSON"}, set(), None, person_probe=scan_person)
    assert "PERSON" in probe.triage("thanks Emily, noted").pattern_types
    assert probe.triage("Thanks Team, noted.").empty


# --------------------------------------------------------------------------- end to end: no leaks


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    det = PiiDetector(PiiConfig())
    det.warm_up()
    return det


PLANTED = [
    "Marguerite Oyelaran",
    "Priya Natarajan",
    "Emily Clarke",
    "José García-López",
    "Cormac O'Flaherty",
    "Nguyễn Thị Lan",
    "Julia Johnson",
]
TEMPLATES = [
    "Hi, I'm {n}; mail me at a@b.org",
    "My name is {n} and I need help.",
    "Thanks {n}, noted.",
    "Regards,\n{n}",
    "Can you write a birthday message for my friend {n}?",
    "I spoke with {n} from your support team yesterday.",
]


@pytest.mark.parametrize("name", PLANTED)
def test_no_part_of_a_planted_full_name_remains(detector: PiiDetector, name: str) -> None:
    for tmpl in TEMPLATES:
        text = tmpl.format(n=name)
        res = detector.analyze(text)
        leaked = [tok for tok in name.split() if tok in res.redacted]
        assert not leaked, (text, res.redacted)
        assert "<PERSON>" in res.redacted


def test_detector_keeps_hard_negatives_clean(detector: PiiDetector) -> None:
    texts = [
        "I'm Happy to help with that.",
        "Thanks Team, great work on Monday.",
        "Dear Customer, your ticket has been updated.",
        "Customer Success reviewed the renewal on Friday.",
        "Max Retries should be set to 5.",
        "I use Cassandra and Kafka with Julia.",
    ]
    for text, res in zip(texts, detector.analyze_batch(texts)):
        assert not [e for e in res.entities if e.type == "PERSON"], (text, res.redacted)


def test_gazetteer_names_are_not_learnt_as_benign() -> None:
    det = PiiDetector(PiiConfig(entities=("PERSON",), benign_min_seen=1))
    for _ in range(3):
        det.analyze_batch([f"The Priya dashboard number {i} is up." for i in range(3)])
    assert not det.memory.is_benign("Priya")
