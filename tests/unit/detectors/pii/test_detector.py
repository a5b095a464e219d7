"""Tests of the PII detector end to end (pattern scanners + the ONNX tagger, loaded once per process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from detectors.finding import Severity, Subject
from detectors.pii.detector import PiiConfig, PiiDetector, PiiResult, merge_spans, pii_finding
from detectors.pii.patterns import Span

RAW = {
    "name": "Maria Lopez",
    "city": "Lisbon",
    "phone": "449 4898",
    "email": "maria.lopez@example.com",
    "card": "4111 1111 1111 1111",
    "ssn": "123-45-6780",
}
TEXT = (
    f"Hi, I'm {RAW['name']} and I moved to {RAW['city']} last year. Call me at {RAW['phone']} or write to "
    f"{RAW['email']}. My card {RAW['card']} was charged twice; my SSN is {RAW['ssn']}."
)
SUBJECT = Subject(tenant="acme", model="chat", version="1")


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    det = PiiDetector(PiiConfig(redaction="hash", hmac_key="test-key"))
    det.warm_up()
    return det


def test_finds_and_redacts_every_kind(detector: PiiDetector) -> None:
    res = detector.analyze(TEXT)
    types = {e.type for e in res.entities}
    assert {"PERSON", "LOCATION", "PHONE_NUMBER", "EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN"} <= types
    for value in RAW.values():
        assert value not in res.redacted
    for e in res.entities:
        assert 0 <= e.start < e.end <= len(TEXT) and 0.4 <= e.score <= 1.0
    email = next(e for e in res.entities if e.type == "EMAIL_ADDRESS")
    assert TEXT[email.start : email.end] == RAW["email"]


def test_hash_tokens_join_across_texts(detector: PiiDetector) -> None:
    a = detector.analyze(f"write to {RAW['email']} today")
    b = detector.analyze(f"{RAW['email']} is my address")
    token = a.redacted.split()[2]
    assert token.startswith("<EMAIL_ADDRESS:") and token in b.redacted


def test_batch_matches_single_and_caches(detector: PiiDetector) -> None:
    texts = [TEXT, "Write a haiku about autumn.", TEXT, "Server 10.1.2.3 is down."]
    before = detector.stats["cache_hits"]
    batch = detector.analyze_batch(texts)
    assert batch[0] == batch[2] == detector.analyze(TEXT)
    assert batch[1] == PiiResult("Write a haiku about autumn.")
    assert [e.type for e in batch[3].entities] == ["IP_ADDRESS"]
    assert detector.stats["cache_hits"] > before


def test_plain_chat_stays_clean(detector: PiiDetector) -> None:
    texts = ["Please summarize these notes in three bullet points.", "Convert 72 F to C.",
             "Why does my Docker container keep restarting after the Kafka upgrade?", "thanks, that worked!"]
    assert [r.entities for r in detector.analyze_batch(texts)] == [(), (), (), ()]


def test_runtime_imports_neither_presidio_nor_spacy_nor_torch() -> None:
    code = ("import sys; from detectors.pii.detector import PiiDetector; "
            "r = PiiDetector().analyze('I am Maria Lopez from Lisbon, call +351 912 345 678'); "
            "assert r.has_pii; heavy = [m for m in sys.modules if m.split('.')[0] in ('presidio_analyzer', 'spacy', 'torch')]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_thresholds_and_entity_list() -> None:
    det = PiiDetector(PiiConfig(entities=("PHONE_NUMBER", "EMAIL_ADDRESS"), thresholds={"PHONE_NUMBER": 0.99}))
    res = det.analyze(TEXT)
    assert [e.type for e in res.entities] == ["EMAIL_ADDRESS"]
    with pytest.raises(ValueError):
        PiiConfig(entities=("NOT_A_TYPE",))
    with pytest.raises(ValueError):
        PiiConfig(redaction="hash")


def test_finding_has_types_counts_and_no_raw_values(detector: PiiDetector) -> None:
    prompt = detector.analyze(TEXT)
    response = detector.analyze("Sure, I will email you.")
    f = pii_finding(SUBJECT, "evt-1", {"messages[0].content": prompt, "response": response})
    assert f is not None and f.detector == "pii" and f.kind == "pii_detected"
    assert f.severity == Severity.high and f.event_id == "evt-1"
    assert f.evidence["counts"]["EMAIL_ADDRESS"] == 1 and "response" not in f.evidence["fields"]
    dumped = f.model_dump_json()
    for value in RAW.values():
        assert value not in dumped
    again = pii_finding(SUBJECT, "evt-1", {"messages[0].content": prompt, "response": response})
    assert again is not None and again.finding_id == f.finding_id
    assert pii_finding(SUBJECT, "evt-2", {"response": response}) is None
    only_mail = pii_finding(SUBJECT, "evt-3", {"p": detector.analyze(f"mail {RAW['email']}")})
    assert only_mail is not None and only_mail.severity == Severity.medium


PLANTED = ["Marguerite Oyelaran", "Priya Natarajan", "Emily Clarke", "José García-López", "Cormac O'Flaherty",
           "Nguyễn Thị Lan", "Julia Johnson"]
TEMPLATES = ["Hi, I'm {n}; mail me at a@b.org", "My name is {n} and I need help.", "Thanks {n}, noted.", "Regards,\n{n}",
             "Can you write a birthday message for my friend {n}?", "I spoke with {n} from your support team yesterday."]


@pytest.mark.parametrize("name", PLANTED)
def test_no_part_of_a_planted_full_name_remains(detector: PiiDetector, name: str) -> None:
    texts = [t.format(n=name) for t in TEMPLATES]
    for text, res in zip(texts, detector.analyze_batch(texts)):
        leaked = [tok for tok in name.split() if tok in res.redacted]
        assert not leaked, (text, res.redacted)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Please send the contract to Сазонов Арсений in Москва.", ["Сазонов", "Арсений", "Москва"]),
        ("The parcel for 木村 陽一 is waiting in 東京.", ["木村", "陽一"]),
        ("Ask Πυθαγόρας Χατζηκύρκος about the invoice.", ["Πυθαγόρας", "Χατζηκύρκος"]),
        ("Thank you מיכל כהן for the update.", ["מיכל", "כהן"]),
        ("MY NAME IS JOHN SMITH AND I LIVE IN BERLIN", ["JOHN", "SMITH", "BERLIN"]),
        ("i met maria lopez in madrid yesterday lol", ["maria", "lopez", "madrid"]),
        ("omg rihanna and drake in toronto tonight", ["rihanna", "drake", "toronto"]),
    ],
)
def test_other_scripts_all_caps_and_lower_case_are_redacted(detector: PiiDetector, text: str, values: list[str]) -> None:
    red = detector.analyze(text).redacted
    assert not [v for v in values if v in red], red


def test_addresses_in_both_street_orders_are_redacted_whole(detector: PiiDetector) -> None:
    cases = {
        "Ship it to 703 Manuel Divide Apt. 696, Mayerton, NC 32535 please.": ["703", "Manuel", "696", "Mayerton", "32535"],
        "Meine Adresse ist Sieringstraße 71, 90743 Hersbruck.": ["Sieringstraße", "71", "90743", "Hersbruck"],
        "My new address is Rue de la Sarthe 421, 75008 Paris, France": ["Sarthe", "421", "75008", "Paris"],
    }
    for text, res in zip(cases, detector.analyze_batch(list(cases))):
        assert "ADDRESS" in {e.type for e in res.entities}, res.redacted
        assert not [v for v in cases[text] if v in res.redacted], res.redacted


def test_hard_negatives_stay_clean(detector: PiiDetector) -> None:
    texts = ["Dear Customer, your ticket has been updated.", "Customer Success reviewed the renewal on Friday.",
             "Max Retries should be set to 5.", "I use Cassandra and Kafka with Julia.",
             "Best Practices for Docker images are in the wiki."]
    for text, res in zip(texts, detector.analyze_batch(texts)):
        assert not [e for e in res.entities if e.type in ("PERSON", "LOCATION")], (text, res.redacted)


def _cover(text: str, spans: list[Span]) -> list[tuple[str, str]]:
    return [(s.type, text[s.start : s.end]) for s in spans]


def test_merge_joins_address_parts_and_absorbs_places_inside() -> None:
    text = "Ship to 12 Rue Oberkampf, 75011 Paris, France today"
    street = Span(8, 24, "ADDRESS", 0.7)
    code = Span(26, 37, "ADDRESS", 0.5)
    city = Span(32, 37, "LOCATION", 0.8)
    country = Span(39, 45, "LOCATION", 0.9)
    merged = merge_spans(text, [city, street, code, country])
    assert _cover(text, merged) == [("ADDRESS", "12 Rue Oberkampf, 75011 Paris"), ("LOCATION", "France")]


def test_merge_lets_structured_values_cut_tagged_regions_without_leaving_gaps() -> None:
    text = "Contact: Ana Lima +351 912 345 678 Lisbon"
    tagged = Span(9, 41, "PERSON", 0.6)  # a tagger span running over the phone number
    phone = Span(18, 34, "PHONE_NUMBER", 0.75)
    merged = merge_spans(text, [tagged, phone])
    assert _cover(text, merged) == [("PERSON", "Ana Lima"), ("PHONE_NUMBER", "+351 912 345 678"), ("PERSON", "Lisbon")]
    covered = {i for s in merged for i in range(s.start, s.end)}
    assert all(i in covered for i in range(9, 41) if text[i].isalnum())


def test_merge_keeps_every_character_of_overlapping_names_and_places() -> None:
    text = "Dr. Aiko Tanaka Osaka"
    merged = merge_spans(text, [Span(4, 15, "PERSON", 0.7), Span(9, 15, "PERSON", 0.9), Span(9, 21, "LOCATION", 0.6)])
    assert _cover(text, merged) == [("PERSON", "Aiko Tanaka"), ("LOCATION", "Osaka")]


def test_tagged_names_lose_function_words_and_single_letters(detector: PiiDetector) -> None:
    from detectors.pii.detector import _strip_function_words

    text = "Have you been to a Sierra concert in the Netherlands or IN?"
    assert _strip_function_words(text, text.index("a Sierra"), text.index(" concert")) == (text.index("Sierra"), text.index(" concert"))
    s = text.index("the Netherlands")
    assert _strip_function_words(text, s, s + len("the Netherlands")) == (s + 4, s + len("the Netherlands"))
    assert _strip_function_words(text, text.index("IN?"), text.index("?")) is not None  # a state code stays
    assert _strip_function_words("72 F", 3, 4) is None


def test_merge_never_overlaps_and_never_uncovers_a_letter_or_digit() -> None:
    """Property check on random span soups: the output is redactable (sorted, disjoint) and covers every
    letter or digit any input span covered."""
    import random

    rng = random.Random(17)
    kinds = ["PERSON", "LOCATION", "ADDRESS", "PHONE_NUMBER", "EMAIL_ADDRESS", "US_SSN"]
    for _ in range(3000):
        text = "".join(rng.choice("ab ,\n1") for _ in range(40))
        spans = []
        for _ in range(rng.randint(1, 7)):
            a = rng.randrange(40)
            spans.append(Span(a, min(40, a + rng.randint(1, 12)), rng.choice(kinds), rng.random()))
        out = merge_spans(text, spans)
        assert all(out[i].end <= out[i + 1].start for i in range(len(out) - 1)), (text, spans, out)
        wanted = {i for s in spans for i in range(s.start, s.end) if text[i].isalnum()}
        assert wanted <= {i for s in out for i in range(s.start, s.end)}, (text, spans, out)


def test_a_text_gets_the_same_answer_alone_or_in_any_batch(detector: PiiDetector) -> None:
    texts = [TEXT, "i met maria lopez in madrid", "Ship it to Rue de la Sarthe 421, 75008 Paris",
             "MY NAME IS JOHN SMITH", "x" * 300 + " Call Ana Lima on 0359791907"]
    fresh = PiiDetector(PiiConfig(redaction="hash", hmac_key="test-key", cache_size=0))
    together = fresh.analyze_batch(texts)
    assert together == [fresh.analyze(t) for t in texts] == fresh.analyze_batch(texts[::-1])[::-1]


def test_long_texts_are_tagged_to_the_end(detector: PiiDetector) -> None:
    filler = "We reviewed the quarterly numbers and the roadmap again today. " * 60  # ~3,800 characters
    text = filler + "Please send the signed copy to Marguerite Oyelaran in Lisbon."
    red = detector.analyze(text).redacted
    assert "Oyelaran" not in red and "Lisbon" not in red


def test_a_lone_word_needs_more_than_its_form_to_be_a_name_place_or_address() -> None:
    """Attribute values, dict keys and parameter names reach the detector as one token without context."""
    det = PiiDetector()
    kept = ["lr", "adamw", "optimizer", "cosine", "bleu", "gpt-4o", "us-east-1", "de"]
    assert [t for t in kept if det.analyze(t).has_pii] == []
    redacted = {"john": "PERSON", "Mia": "PERSON", "Berlin": "LOCATION", "lisbon": "LOCATION"}
    assert {t: [e.type for e in det.analyze(t).entities] for t in redacted} == {t: [v] for t, v in redacted.items()}
    assert det.analyze("John Smith").counts() == {"PERSON": 1}  # two words: the tagger decides as before
