"""Unit tests for the fast PII scanners (no Presidio, no spaCy)."""

from __future__ import annotations

import pytest

from detectors.pii.patterns import iban_valid, luhn_valid, scan


def found(text: str, etype: str) -> list[str]:
    return [text[s.start : s.end] for s in scan(text) if s.type == etype and s.score >= 0.4]


@pytest.mark.parametrize(
    "phone",
    ["449 4898", "151.081.7740x2347", "+44 20 7946 0958", "(415) 555-2671", "001-415-555-2671x123", "415.555.2671",
     "+1-202-555-0143", "020 7946 0958", "+49 30 1234567"],
)
def test_phone_formats_presidio_misses_are_found(phone: str) -> None:
    text = f"You can reach me at {phone} tomorrow."
    assert found(text, "PHONE_NUMBER") == [phone]


@pytest.mark.parametrize("text", ["Released on 2024-05-12.", "Python 3.11.4 is out", "It costs 1,299.00 USD", "step 3 of 10"])
def test_phone_ignores_dates_versions_prices(text: str) -> None:
    assert found(text, "PHONE_NUMBER") == []


def test_card_requires_luhn() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert found("card 4111 1111 1111 1111 ok", "CREDIT_CARD") == ["4111 1111 1111 1111"]
    assert found("card 4111 1111 1111 1112 ok", "CREDIT_CARD") == []


def test_ssn_ranges_and_itin() -> None:
    assert found("SSN 123-45-6780.", "US_SSN") == ["123-45-6780"]
    assert found("SSN 000-45-6780 or 666-12-3456 or 123-00-4567", "US_SSN") == []
    assert found("ITIN 912-70-1234", "US_ITIN") == ["912-70-1234"]


def test_ip_v4_v6_validated() -> None:
    text = "hosts 10.0.0.1, 2001:db8::1 and 999.1.1.1; meeting at 12:30:45"
    assert found(text, "IP_ADDRESS") == ["10.0.0.1", "2001:db8::1"]


def test_iban_checksum_and_grouping() -> None:
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    text = "IBAN DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432 OK"
    assert found(text, "IBAN_CODE") == ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]
    assert found("IBAN DE89 3704 0044 0532 0130 01", "IBAN_CODE") == []


def test_email_not_inside_url_credentials() -> None:
    text = "mail a.b+c@example.co.uk or postgres://app:pw1234%@db.internal:5432/x"
    assert found(text, "EMAIL_ADDRESS") == ["a.b+c@example.co.uk"]
    assert found(text, "PASSWORD") == ["pw1234%"]


def test_secrets() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
    text = f"k=AKIAIOSFODNN7EXAMPLE t={jwt}\n{key}\npassword: hunter22 and ghp_{'a1' * 18}"
    assert found(text, "API_KEY") == ["AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1" * 18]
    assert found(text, "JWT") == [jwt]
    assert found(text, "PRIVATE_KEY") == [key]
    assert found(text, "PASSWORD") == ["hunter22"]


def test_password_words_are_not_secrets() -> None:
    assert found("Use a password manager; the token is expired; api key rotation", "PASSWORD") == []
    assert found("Use a password manager; the token is expired; api key rotation", "API_KEY") == []


def test_addresses_are_locations() -> None:
    text = "Ship to 703 Manuel Divide Apt. 696, Mayerton, NC 32535 please, or USNS Smith\nFPO AP 12345."
    locs = found(text, "LOCATION")
    assert "703 Manuel Divide Apt. 696, Mayerton, NC 32535" in locs
    assert "USNS Smith\nFPO AP 12345" in locs


def test_context_bound_ids_need_context() -> None:
    assert found("My driver's license number is X1234567.", "US_DRIVER_LICENSE") == ["X1234567"]
    assert found("Part X1234567 is back in stock.", "US_DRIVER_LICENSE") == []
