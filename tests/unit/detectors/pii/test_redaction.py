"""Unit tests for redaction modes and overlap resolution."""

from __future__ import annotations

import pytest

from detectors.pii.detector import PiiEntity
from detectors.pii.redaction import keyed_hash, redact, redact_with_offsets, resolve_overlaps

TEXT = "mail bob@x.io or call 415-555-2671"
SPANS = [PiiEntity("EMAIL_ADDRESS", 5, 13, 1.0), PiiEntity("PHONE_NUMBER", 22, 34, 0.75)]


def test_replace_and_offsets() -> None:
    red, offs = redact_with_offsets(TEXT, SPANS)
    assert red == "mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>"
    assert [red[s:e] for s, e in offs] == ["<EMAIL_ADDRESS>", "<PHONE_NUMBER>"]


def test_mask_drop_hash() -> None:
    assert redact(TEXT, SPANS, "mask") == "mail ******** or call ************"
    assert redact(TEXT, SPANS, "drop") == "mail  or call "
    red = redact(TEXT, SPANS, "hash", hmac_key=b"k")
    assert "bob@x.io" not in red and "415-555-2671" not in red
    assert f"<EMAIL_ADDRESS:{keyed_hash('bob@x.io', b'k')}>" in red
    # same value, same token (joins stay possible); other key, other token
    assert redact("bob@x.io", [PiiEntity("EMAIL_ADDRESS", 0, 8, 1.0)], "hash", hmac_key=b"k") in red
    assert keyed_hash("bob@x.io", b"k") != keyed_hash("bob@x.io", b"other")
    with pytest.raises(ValueError):
        redact(TEXT, SPANS, "hash")


def test_resolve_overlaps_prefers_priority_then_score() -> None:
    a = PiiEntity("PERSON", 0, 10, 0.85)
    b = PiiEntity("LOCATION", 0, 30, 0.8)
    c = PiiEntity("PHONE_NUMBER", 40, 50, 0.5)
    assert resolve_overlaps([a, b, c]) == [a, c]
    assert resolve_overlaps([a, b, c], priority=lambda s: 1 if s.type == "LOCATION" else 0) == [b, c]
