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


@pytest.mark.parametrize(
    "phone",
    [
        "(96) 627-277",  # two-digit area code in parentheses
        "(07) 5331 0577",
        "041-412-293",  # 3-3-3
        "027 896 92 86",  # pairs after a trunk code
        "69 987 88 37",
        "06 12 34 56 78",  # French pairs
        "+33 (0)6 44 83 37 88",
        "+44(0)131 4960979",
        "(+358) 232860129",
        "+(370) 94032699",
        "00420 724 423 046",
        "(06)98/259-7919",  # Hungarian slash
        "08-982 597 91",  # Swedish
        "+55 93 9825-9791",
        "8 (483) 378-87-62",
        "0359791907",  # bare national number with a trunk 0
        "+251787789328",  # bare international number
    ],
)
def test_phone_international_groupings(phone: str) -> None:
    text = f"Please call me at {phone} after six."
    assert found(text, "PHONE_NUMBER") == [phone]


@pytest.mark.parametrize(
    "text",
    [
        "Released on 2024-05-12.", "Python 3.11.4 is out", "It costs 1,299.00 USD", "step 3 of 10",
        "population 1 250 000 people", "I paid $1 234 567 for it", "ISBN 978-3-16-148410-0", "invoice 2023-0042",
        "version 10.0.19045.2965", "host 192.168.10.254 is down", "on 12/05/2023 at 10:30", "we sold 12,345,678 units",
    ],
)
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


def test_us_and_military_addresses() -> None:
    text = "Ship to 703 Manuel Divide Apt. 696, Mayerton, NC 32535 please, or USNS Smith\nFPO AP 12345."
    addresses = found(text, "ADDRESS")
    assert "703 Manuel Divide Apt. 696, Mayerton, NC 32535" in addresses
    assert "USNS Smith\nFPO AP 12345" in addresses


@pytest.mark.parametrize(
    ("text", "street"),
    [
        ("Meine Adresse: Sieringstraße 7170, 90743 Hersbruck.", "Sieringstraße 7170"),
        ("Send it to Rue de la Sarthe 421 please", "Rue de la Sarthe 421"),
        ("The letter went to ul. Franciszkańska 12 last week", "ul. Franciszkańska 12"),
        ("address: calle mayor 5, piso 3", "calle mayor 5, piso 3"),
        ("Hegedűs Gyula utca 76. is the office", "Hegedűs Gyula utca 76."),
        ("margrethes plads 17, løgstør", "margrethes plads 17"),
        ("Willem Barentszweg 177 Suite 574", "Willem Barentszweg 177 Suite 574"),
        ("I live at 12 Baker Street, Flat 3B", "12 Baker Street, Flat 3B"),
    ],
)
def test_street_lines_in_both_orders(text: str, street: str) -> None:
    assert any(street in a for a in found(text, "ADDRESS")), found(text, "ADDRESS")


def test_units_and_postal_codes_next_to_a_place() -> None:
    assert "Apt. 977" in found("She is in Apt. 977 now.", "ADDRESS")
    assert "75008 Paris" in found("Bureau: 75008 Paris, France", "ADDRESS")
    assert "00-950 Warszawa" in found("kod 00-950 Warszawa", "ADDRESS")
    assert "1012 AB Amsterdam" in found("Postcode 1012 AB Amsterdam.", "ADDRESS")


@pytest.mark.parametrize(
    "text",
    ["Joel listed his top 20 songs.", "Zoolander is a 2001 American comedy.", "Dr. Fields is a 50 year old man.",
     "We were 5 people in 3 cars.", "Version 2 of the API ships in 2025."],
)
def test_numbers_in_prose_are_not_addresses(text: str) -> None:
    assert found(text, "ADDRESS") == []


def test_context_bound_ids_need_context() -> None:
    assert found("My driver's license number is X1234567.", "US_DRIVER_LICENSE") == ["X1234567"]
    assert found("Part X1234567 is back in stock.", "US_DRIVER_LICENSE") == []


def test_scanner_guards_never_skip_a_match() -> None:
    """The cheap per-scanner guards of ``scan`` lose nothing: scan == every scanner run unconditionally."""
    import json

    from bench.pii_corpus import labelled_set
    from bench.pii_dev import find_dev_data
    from detectors.pii.patterns import SCANNERS

    texts = [r["text"] for r in labelled_set(400, seed=3, pii_fraction=0.8)]
    dev = find_dev_data()
    for name in ("presidio_dev", "wnut17_dev"):
        if (dev / f"{name}.jsonl").exists():
            texts += [json.loads(line)["text"] for line in (dev / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[:500]]
    texts += ["key AKIAIOSFODNN7EXAMPLE", "DL: X1234567 driver's license", "passport 123456789", "Dr. Jane Roe",
              "acct 12345678", "ip ::1 and fe80::1", "GB82WEST12345698765432", "PSC 1234, Box 5678\nAPO AP 12345"]
    fns = set(SCANNERS.values())
    missed = 0
    for text in texts:
        full = sorted((s.start, s.end, s.type, s.score) for fn in fns for s in fn(text))
        guarded = sorted((s.start, s.end, s.type, s.score) for s in scan(text))
        missed += full != guarded
    assert missed == 0


def test_email_after_a_scheme_colon_or_path_slash() -> None:
    """``mailto:``, ``email:`` and a path segment do not hide an address (they did behind the lookbehind)."""
    text = "write mailto:ana.silva@example.pt, email:bo@ex.com or see s3://bucket/ana.silva@example.pt"
    assert found(text, "EMAIL_ADDRESS") == ["ana.silva@example.pt", "bo@ex.com", "ana.silva@example.pt"]
