"""Tests of the PII detector end to end (Presidio + spaCy NER, loaded once per module)."""

from __future__ import annotations

import json
import os

import pytest

from detectors.finding import Severity, Subject
from detectors.pii.detector import PiiConfig, PiiDetector, PiiResult, pii_finding

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


def test_plain_text_never_loads_presidio() -> None:
    det = PiiDetector()
    res = det.analyze_batch(["Please summarize these notes in three bullet points.", "Convert 72 F to C."])
    assert all(not r.has_pii for r in res)
    assert det._analyzer is None and det.stats["skipped"] == 2


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


def test_snapshot_restore_roundtrip(detector: PiiDetector) -> None:
    detector.analyze_batch([f"The Grafana board and Zorblax tool again {i}." for i in range(4)])
    state = json.loads(json.dumps(detector.snapshot()))
    other = PiiDetector(PiiConfig(redaction="hash", hmac_key="test-key")).restore(state)
    assert other.snapshot()["memory"] == state["memory"]


def test_offline_configuration(detector: PiiDetector) -> None:
    import tldextract.tldextract as tld

    assert os.environ.get("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS") == ""
    assert tld.TLD_EXTRACTOR.suffix_list_urls == ()
