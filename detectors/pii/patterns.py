"""Fast pattern scanners for structured PII and secrets (pure Python, no Presidio import).

Each scanner is one or two compiled regular expressions plus a cheap validator
(Luhn, IBAN mod-97, SSN ranges, ``ipaddress``) and a context check on the few
characters before a match. They replace Presidio's slower or weaker recognizers
(the ``phonenumbers`` matcher runs eight regional passes and misses ``449 4898``
or ``151.081.7740x2347``) and add what Presidio lacks: secrets (provider API keys,
JWTs, private-key blocks, passwords in URLs and assignments) and street addresses.

:data:`SCANNERS` maps an entity type to the function that finds it;
:mod:`detectors.pii.detector` runs them with the tagger and merges the spans.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from detectors.resources import read_words

__all__ = [
    "SCANNERS",
    "SECRET_TYPES",
    "Span",
    "iban_valid",
    "luhn_valid",
    "scan",
]


@dataclass(frozen=True, slots=True)
class Span:
    """One match: half-open character offsets into the scanned text, a type and a score."""

    start: int
    end: int
    type: str
    score: float


Scanner = Callable[[str], list[Span]]

SECRET_TYPES = frozenset({"API_KEY", "JWT", "PRIVATE_KEY", "PASSWORD"})


def _context(text: str, start: int, end: int, words: re.Pattern[str], before: int = 48, after: int = 16) -> bool:
    """True when a context word occurs shortly before (or just after) ``text[start:end]``."""
    return words.search(text, max(0, start - before), start) is not None or (
        after > 0 and words.search(text, end, min(len(text), end + after)) is not None
    )


# --------------------------------------------------------------------------- e-mail
_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)


def _in_url_userinfo(text: str, start: int) -> bool:
    """Is ``start`` the password of a URL's ``user:password@host`` (a PASSWORD secret, not an e-mail)?"""
    scheme = text.rfind("//", 0, start)
    if scheme < 0:
        return False
    userinfo = text[scheme + 2 : start]
    return ":" in userinfo and not any(c in userinfo for c in "/@ \t\r\n")


def scan_email(text: str) -> list[Span]:
    """E-mail addresses (RFC-ish local part, dotted domain, alphabetic TLD), also right after ``mailto:``,
    ``email:`` or a path's ``/``; not the password part of a URL's credentials (the secrets scanner's)."""
    if "@" not in text:
        return []
    return [Span(m.start(), m.end(), "EMAIL_ADDRESS", 1.0) for m in _EMAIL.finditer(text)
            if not _in_url_userinfo(text, m.start())]


# --------------------------------------------------------------------------- credit cards
_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){11,18}\d(?![\w]|-\d)")
_CARD_CONTEXT = re.compile(r"(?i)card|visa|master|amex|american express|discover|jcb|diners|maestro|\bcc\b|payment")


def luhn_valid(digits: str) -> bool:
    """Luhn checksum of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_prefix_ok(digits: str) -> bool:
    first = digits[0]
    if first == "4":  # Visa
        return len(digits) in (13, 16, 19)
    if first == "5":  # Mastercard (51-55) / Maestro
        return True
    if first == "2":  # Mastercard 2-series
        return 2221 <= int(digits[:4]) <= 2720 and len(digits) == 16
    if first == "3":  # Amex, Diners, JCB
        return (digits[:2] in ("34", "37") and len(digits) == 15) or digits[:2] in ("30", "35", "36", "38", "39")
    return first == "6"  # Discover, UnionPay, Maestro


def scan_credit_card(text: str) -> list[Span]:
    """Card numbers: 13-19 digits, optional space/dash groups, Luhn-valid with a known prefix."""
    out: list[Span] = []
    for m in _CARD.finditer(text):
        raw = m.group()
        digits = raw.replace(" ", "").replace("-", "")
        if not 12 <= len(digits) <= 19 or len(set(digits)) < 2:
            continue
        if len(digits) == 12 and digits[:2] not in ("50", "56", "57", "58", "63", "67"):
            continue  # 12 digits: Maestro only
        seps = {c for c in raw if c in " -"}
        if len(seps) > 1:
            continue
        if not luhn_valid(digits):
            continue
        score = 1.0 if _card_prefix_ok(digits) else 0.5
        if len(digits) == 12:
            score = 0.6
        if score < 1.0 and _context(text, m.start(), m.end(), _CARD_CONTEXT):
            score = 0.9
        out.append(Span(m.start(), m.end(), "CREDIT_CARD", score))
    return out


# --------------------------------------------------------------------------- US SSN / ITIN
_SSN = re.compile(r"(?<![\w-])(\d{3})([- .]?)(\d{2})\2(\d{4})(?![\w]|-\d)")
_SSN_CONTEXT = re.compile(r"(?i)\bssn|social security|\bss#|\bssa\b|social sec")
_ITIN_CONTEXT = re.compile(r"(?i)\bitin\b|taxpayer|tax id|\btin\b")


def scan_us_ssn(text: str) -> list[Span]:
    """US social security numbers (and ITINs, which start with 9): ``123-45-6789``, ``123 45 6789``, bare with context."""
    out: list[Span] = []
    for m in _SSN.finditer(text):
        area, sep, group, serial = m.group(1), m.group(2), m.group(3), m.group(4)
        if group == "00" or serial == "0000" or area == "000" or area == "666":
            continue
        digits = area + group + serial
        if len(set(digits)) == 1 or digits in ("123456789", "078051120", "219099999"):
            continue
        if area[0] == "9":
            g = int(group)
            if not (50 <= g <= 65 or 70 <= g <= 88 or 90 <= g <= 92 or 94 <= g <= 99):
                continue
            etype, ctx = "US_ITIN", _ITIN_CONTEXT
        else:
            etype, ctx = "US_SSN", _SSN_CONTEXT
        score = {"-": 0.85, " ": 0.6, ".": 0.5, "": 0.3}[sep]
        if _context(text, m.start(), m.end(), ctx):
            score = min(1.0, score + 0.4)
        out.append(Span(m.start(), m.end(), etype, score))
    return out


# --------------------------------------------------------------------------- phone numbers
_PSEP = r"(?:[ \t]?[-./][ \t]?|[ \t])"
_PHONE = re.compile(
    r"(?<![\w+/.,-])"
    # country or trunk prefix: +44, + 44, +44(0), (+358), +(370), 0044, 8 (495)
    r"(?P<prefix>\+?\(\+?\d{1,3}\)" + _PSEP + r"?|\+[ \t]?\d{1,3}(?:[ \t]?\(0\))?" + _PSEP + r"?|\b00\d{1,3}" + _PSEP + r"?|\b\d[ \t]?(?=\(\d))?"
    # area code in parentheses: (415), (0114), (07)
    r"(?P<area>\(0?\d{1,5}\)" + _PSEP + r"?)?"
    # digit groups in any grouping: 415-555-2671, 020 7946 0958, 06 12 34 56 78, 027 896 92 86, 0359791907
    r"(?P<body>\d{1,14}(?:" + _PSEP + r"\d{1,14}){0,6})"
    r"(?P<ext>[ \t]*(?:x|ext\.?|extension|#)[ \t]*\d{1,6})?"
    r"(?![\w]|[.,/-]\d|:\d)"
)
_PHONE_CONTEXT = re.compile(
    r"(?i)phone|\btel\b|tel[:.]|telefon|call|cell|mobile|\bmob\b|fax|\btext\b|sms|whats ?app|reach|contact|"
    r"number|dial|ring|\bph\b|\bno\.|\bnr\.?|extension|hotline|landline"
)
_PHONE_NOT_CONTEXT = re.compile(
    r"(?i)(?:isbn|issn|version|\bv|release|build|invoice|order|ref|reference|\bid|ticket|case|serial|sku|part|model|"
    r"patent|doi|arxiv|pages?|pp\.?)[\s:#.-]*$"
)
_DATE_LIKE = re.compile(r"^(?:\d{4}[ ./-]\d{1,2}[ ./-]\d{1,2}|\d{1,2}[ ./-]\d{1,2}[ ./-](?:\d{4}|\d{2}))$")
_IPV4_LIKE = re.compile(r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:([ ,.])\d{3})+$")
_MONEY_BEFORE = re.compile(r"[$€£¥₹]\s*$|(?i:usd|eur|gbp|chf|rs\.?)\s*$")
_QUANTITY_AFTER = re.compile(
    r"\s*(?:[$€£¥₹%]|(?i:usd|eur|dollars?|euros?|pounds?|km|kg|mi|miles|people|users|units|items|times|rows|years)\b)"
)
_DIGIT_GROUPS = re.compile(r"\d+")


def scan_phone(text: str) -> list[Span]:
    """Phone numbers in any national or international grouping.

    A run of 7-15 digits in groups separated by single spaces, dots, dashes or slashes, with an
    optional country prefix (``+44``, ``0044``, ``(+358)``, ``+49(0)``), an area code in parentheses and
    an extension (``x123``). Dates, IPv4-like quads, thousands (``1,250,000``, ``$1 234 567``) and numbers
    after ISBN/version/order/invoice are not phones. Scores: prefixed or parenthesised 0.75, grouped 0.6,
    two short groups or an SSN shape 0.4-0.45, bare digits 0.35-0.5; +0.3 after a phone word.
    """
    out: list[Span] = []
    for m in _PHONE.finditer(text):
        s, e = m.start(), m.end()
        prefix, area, body = m.group("prefix"), m.group("area"), m.group("body")
        core = text[s : m.end("body")]
        ndig = sum(c.isdigit() for c in core)
        if not 7 <= ndig <= 15 or _PHONE_NOT_CONTEXT.search(text, max(0, s - 16), s):
            continue
        context = _PHONE_CONTEXT.search(text, max(0, s - 40), s) is not None
        if prefix or area:
            score = 0.75
        else:
            if _DATE_LIKE.match(body) or _IPV4_LIKE.match(body):
                continue
            groups = _DIGIT_GROUPS.findall(body)
            if len(groups) == 1:  # bare digits: a trunk 0 / leading 1 with 9-13 digits, or any after a phone word
                if context:
                    score = 0.4
                elif not 9 <= ndig <= 13:
                    continue
                else:
                    score = 0.5 if body[0] in "01" else 0.35
            else:
                if len(groups) == 2 and max(map(len, groups)) > 5 and ndig < 9:
                    continue
                tm = _THOUSANDS.match(body)
                if tm and (tm.group(1) in ",." or _MONEY_BEFORE.search(text, max(0, s - 6), s) or _QUANTITY_AFTER.match(text, e)):
                    continue
                if len(groups) == 2 and ndig < 9 and "-" not in body and " " in body:
                    score = 0.4  # "449 4898"
                elif [len(g) for g in groups] == [3, 2, 4] and "-" in body:
                    score = 0.45  # SSN shape: the SSN scanner scores it higher
                else:
                    score = 0.6
        if m.group("ext"):
            score = max(score, 0.75)
        if context:
            score = min(1.0, score + 0.3)
        out.append(Span(s, e, "PHONE_NUMBER", score))
    return out


# --------------------------------------------------------------------------- IP addresses
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?:/\d{{1,2}})?(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
_VERSION_CONTEXT = re.compile(r"(?i)version|\bv$|\bv\.?\s*$|release|build")


def scan_ip(text: str) -> list[Span]:
    """IPv4 (octet-validated, optional CIDR) and IPv6 (validated by :mod:`ipaddress`)."""
    out: list[Span] = []
    if "." in text:
        for m in _IPV4.finditer(text):
            score = 0.95
            if _VERSION_CONTEXT.search(text, max(0, m.start() - 12), m.start()):
                score = 0.3
            out.append(Span(m.start(), m.end(), "IP_ADDRESS", score))
    if text.count(":") >= 2:
        for m in _IPV6.finditer(text):
            cand = m.group()
            if len(cand) < 6 or cand.count(":") < 2:
                continue
            try:
                ipaddress.IPv6Address(cand)
            except ValueError:
                continue
            if not any(c.isalnum() for c in cand):
                continue
            out.append(Span(m.start(), m.end(), "IP_ADDRESS", 0.95))
    return out


# --------------------------------------------------------------------------- IBAN
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})(\d{2})[ -]?[A-Z0-9]")


def iban_valid(iban: str) -> bool:
    """ISO 13616 mod-97 check of a compact IBAN (no spaces)."""
    if len(iban) < 15 or not iban[:2].isalpha() or not iban[2:4].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    num = "".join(str(int(c, 36)) for c in rearranged)
    return int(num) % 97 == 1


def scan_iban(text: str) -> list[Span]:
    """IBANs (compact or grouped by spaces), length checked per country and mod-97 validated."""
    out: list[Span] = []
    n = len(text)
    for m in _IBAN.finditer(text):
        want = IBAN_LENGTHS.get(m.group(1))
        if want is None:
            continue
        chars: list[str] = []
        i = m.start()
        end = i
        while i < n and len(chars) < want:
            c = text[i]
            if c.isalnum() and c.isascii():
                chars.append(c.upper())
                end = i + 1
            elif c in " -" and chars and i + 1 < n and text[i + 1].isalnum():
                pass
            else:
                break
            i += 1
        if len(chars) != want or (end < n and text[end].isalnum()):
            continue
        if iban_valid("".join(chars)):
            out.append(Span(m.start(), end, "IBAN_CODE", 1.0))
    return out


# --------------------------------------------------------------------------- context-bound IDs
_DL_CONTEXT = re.compile(r"(?i)driv(?:er|ing)'?s?\s*licen[cs]e|\bDL\s*(?:#|no|num|number)?\b|licen[cs]e\s*(?:#|no|num|number)|\bD\.L\.")
_DL = re.compile(
    r"(?<![\w-])(?:[A-Z]\d{3}-\d{3}-\d{2}-\d{3}-\d|[A-Z]{1,2}[- ]?\d{4,14}|[A-Z]\d{2}-\d{2}-\d{4}|\d{7,12}|"
    r"\d{3}[- ]\d{3}[- ]\d{3}|[A-Z]\d{3}[- ]\d{4}[- ]\d{4}|\d{2}[A-Z]{3}\d{5}|[A-Z]{3}\d{2}[A-Z]\d{5})(?![\w-])"
)
_PASSPORT_CONTEXT = re.compile(r"(?i)passport")
_PASSPORT = re.compile(r"(?<![\w-])(?:[A-Z]\d{8}|\d{9}|[A-Z]{2}\d{7})(?![\w-])")
_BANK_CONTEXT = re.compile(r"(?i)\b(?:bank|checking|savings|acct|account)\b")
_BANK = re.compile(r"(?<![\w-])\d{8,17}(?![\w-])")


def _scan_with_context(text: str, rx: re.Pattern[str], ctx: re.Pattern[str], etype: str, score: float, before: int) -> list[Span]:
    if ctx.search(text) is None:
        return []
    return [Span(m.start(), m.end(), etype, score) for m in rx.finditer(text) if _context(text, m.start(), m.end(), ctx, before=before, after=0)]


def scan_us_driver_license(text: str) -> list[Span]:
    """US driver's licence numbers; only near a context word (the formats alone are too ambiguous)."""
    return _scan_with_context(text, _DL, _DL_CONTEXT, "US_DRIVER_LICENSE", 0.85, before=60)


def scan_us_passport(text: str) -> list[Span]:
    """US passport numbers near the word "passport"."""
    return _scan_with_context(text, _PASSPORT, _PASSPORT_CONTEXT, "US_PASSPORT", 0.65, before=60)


def scan_us_bank_number(text: str) -> list[Span]:
    """Bank account numbers (8-17 digits) near "account"/"bank"/"acct"."""
    return _scan_with_context(text, _BANK, _BANK_CONTEXT, "US_BANK_NUMBER", 0.6, before=40)


# --------------------------------------------------------------------------- secrets
_API_KEY = re.compile(
    r"(?<![\w-])(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}"  # AWS access key id
    r"|sk-ant-[a-z]{3,6}\d{2}-[A-Za-z0-9_-]{20,}"  # Anthropic
    r"|sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}"  # OpenAI
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,255}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{22,255}"
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|ya29\.[0-9A-Za-z_-]{20,}"  # Google OAuth access token
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|npm_[A-Za-z0-9]{36}"  # npm
    r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"  # SendGrid
    r"|SK[0-9a-f]{32}"  # Twilio
    r"|AC[0-9a-f]{32}"  # Twilio account SID
    r"|dop_v1_[a-f0-9]{64}"  # DigitalOcean
    r"|shpat_[a-fA-F0-9]{32}"  # Shopify
    r"|pypi-[A-Za-z0-9_-]{50,}"  # PyPI
    r")(?![\w-])"
    r"|https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}"
)
_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,-]*)"
)
_URL_PASSWORD = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s:/@]+:([^\s/@]+)@")
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b(password|passwd|pwd|passcode|pass phrase|passphrase|secret(?:[_ -]?key)?|client[_ -]?secret|"
    r"api[_ -]?key|apikey|access[_ -]?token|auth[_ -]?token|bearer|token)"
    r"(?:\s*(?:is|was|=|:|:=|=>)\s*|\s+)[\"'`]?([^\s\"'`,;]{6,128})"
)
_NOT_A_SECRET = re.compile(r"(?i)^(?:\*+|x+|\.+|<[^>]*>|\{[^}]*\}|\$\{?\w+\}?|null|none|true|false|required|"
                           r"protected|reset|manager|field|hash|hashing|policy|strength|please|changed|expired|"
                           r"authentication|based|again|here|below|above|every|should|must|will|would|could|"
                           r"which|that|this|with|from|into|using|instead)$")


def scan_secrets(text: str) -> list[Span]:
    """Provider API keys, JWTs, private-key blocks, passwords in URLs and ``password = ...`` assignments."""
    out: list[Span] = []
    for m in _API_KEY.finditer(text):
        out.append(Span(m.start(), m.end(), "API_KEY", 0.95))
    if "eyJ" in text:
        for m in _JWT.finditer(text):
            out.append(Span(m.start(), m.end(), "JWT", 0.95))
    if "PRIVATE KEY" in text:
        for m in _PRIVATE_KEY.finditer(text):
            end = m.end()
            while end > m.start() and text[end - 1].isspace():
                end -= 1
            out.append(Span(m.start(), end, "PRIVATE_KEY", 1.0))
    if "://" in text:
        for m in _URL_PASSWORD.finditer(text):
            out.append(Span(m.start(1), m.end(1), "PASSWORD", 0.9))
    for m in _ASSIGNED_SECRET.finditer(text):
        value = m.group(2)
        if _NOT_A_SECRET.match(value):
            continue
        sep = text[m.end(1) : m.start(2)]
        plain_word = value.isalpha() and (value.islower() or value.istitle())
        if plain_word and not any(c in sep for c in "=:\"'`"):
            continue  # "password manager", "token is expired", "api key rotation"
        key = m.group(1).lower()
        etype = "PASSWORD" if key.startswith("pass") or key == "pwd" else "API_KEY"
        out.append(Span(m.start(2), m.end(2), etype, 0.75))
    return out


# --------------------------------------------------------------------------- street addresses (ADDRESS)
_STREET_SUFFIX = (
    "Alley|Aly|Annex|Arcade|Avenue|Ave|Bayou|Beach|Bend|Bluffs?|Bottom|Boulevard|Blvd|Branch|Bridge|Brooks?|Burgs?|"
    "Bypass|Camp|Canyon|Cape|Causeway|Centers?|Center|Ctr|Circles?|Cir|Cliffs?|Club|Common|Corners?|Course|Courts?|Ct|"
    "Coves?|Creek|Crescent|Crest|Crossing|Crossroad|Curve|Dale|Dam|Divide|Drives?|Dr|Estates?|Expressway|Expy|"
    "Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|Freeway|Fwy|Gardens?|Gateway|Glens?|"
    "Greens?|Groves?|Harbors?|Haven|Heights|Hts|Highway|Hwy|Hills?|Hollow|Inlet|Islands?|Isle|Junctions?|Keys?|"
    "Knolls?|Lakes?|Land|Landing|Lane|Ln|Light|Lights|Loaf|Locks?|Lodge|Loop|Mall|Manors?|Meadows?|Mews|Mills?|"
    "Mission|Motorway|Mount|Mountains?|Neck|Orchard|Oval|Overpass|Park|Parks|Parkway|Parkways|Pkwy|Pass|Passage|"
    "Path|Pike|Pines?|Place|Pl|Plains?|Plaza|Points?|Ports?|Prairie|Radial|Ramp|Ranch|Rapids?|Rest|Ridges?|River|"
    "Road|Roads|Rd|Route|Row|Rue|Run|Shoals?|Shores?|Skyway|Springs?|Spurs?|Squares?|Sq|Station|Stravenue|Stream|"
    "Streets?|St|Summit|Terrace|Ter|Throughway|Trace|Track|Trafficway|Trail|Trl|Trailer|Tunnel|Turnpike|Underpass|"
    "Unions?|Valleys?|Viaduct|Views?|Villages?|Ville|Vista|Walks?|Wall|Way|Ways|Wells?|Close|Gate|Gr|Hill|Ave\\.?|"
    "Strasse|Straße|Str"
)
_UNIT_WORDS = r"(?:Apt|Apartment|Suite|Ste|Unit|Flat|Room|Rm|Floor|Fl|Bldg|Building|Piso|App|Appt|#)"
_UNIT = r"(?:,?[ \t]+" + _UNIT_WORDS + r"\.?[ \t]*#?[A-Za-z0-9-]{1,6})?"
_CITY_STATE_ZIP = r"(?:,?\s+[A-Z][a-zA-Z.'-]+(?:[ \t][A-Z][a-zA-Z.'-]+){0,3},?[ \t]+[A-Z]{2}\.?[ \t]+\d{5}(?:-\d{4})?)?"
# number first (US, UK, AU, FR): "703 Manuel Divide Apt. 696, Mayerton, NC 32535"
_ADDRESS = re.compile(
    r"(?<![\w-])\d{1,6}[A-Za-z]?[ \t]+(?:[NSEW]\.?[ \t]+|(?:North|South|East|West)[ \t]+)?"
    r"(?:[A-Z0-9][a-zA-Z0-9'-]*\.?[ \t]+){0,4}(?:" + _STREET_SUFFIX + r")\b\.?"
    + _UNIT
    + _CITY_STATE_ZIP
)
_W = r"[^\W\d_][\w'’.-]*"
# street word first, number after (Europe, Latin America): "Rue de la Sarthe 421", "ul. Franciszkańska 12", "Calle Mayor 5"
_STREET_FIRST = re.compile(
    r"(?i)(?<![\w.])(?:rue|calle|via|viale|vicolo|corso|piazza|largo|strada|avenida|avda\.?|av\.|rua|travessa|praça|"
    r"carrer|camino|paseo|plaza|ulica|ul\.|aleja|al\.|chemin|allée|impasse|boulevard|bd\.?|stra[dţ]a|str\.|ulitsa|"
    r"prospekt|sokak|cadde(?:si)?|jalan|jl\.)[ \t]+(?:" + _W + r"[ \t]+){0,4}?\d{1,5}[A-Za-z]?(?:[-/]\d{1,4})?(?![\w])"
    + _UNIT
)
# a street word (or a name ending in one) then the number: "Sieringstraße 7170", "Hegedűs Gyula utca 76.",
# "margrethes plads 17", "Willem Barentszweg 177", "Fitjabraut 85"; the words before it are added in Python
_STREET_SUFFIXES = tuple(
    "straße strasse str gasse weg allee platz damm ufer vej gade plads stræde gata gatan vägen väg gränd katu kuja "
    "polku utca út tér körút straat laan plein gracht kade singel braut vegur veien gaten ulice náměstí třída cesta "
    "trg".split()
)
_NUMBER_AFTER_SPACE = re.compile(r"(?<=[ \t])\d{1,5}[A-Za-z]?(?:[-/]\d{1,4})?(?![\w])\.?")
_UNIT_AFTER = re.compile(_UNIT)
_WORD_BEFORE = re.compile(r"([^\W\d_][\w'’.-]*)[ \t]+$")


def _street_name_start(text: str, start: int) -> int:
    """Start of the street name that ends in the street word at ``start``: the rest of a compound word
    ("Siering|straße"), or the word before a separate street word ("margrethes plads"), plus up to two
    capitalised words before that ("Willem Barentszweg", "Hegedűs Gyula utca")."""
    s = start
    while s > 0 and (text[s - 1].isalpha() or text[s - 1] in "'’-"):
        s -= 1
    taken = 0
    if s == start:  # a separate street word needs a name before it
        m = _WORD_BEFORE.search(text, max(0, s - 40), s)
        if m is None:
            return -1
        s = m.start(1)
        taken = 1
    while taken < 3:
        m = _WORD_BEFORE.search(text, max(0, s - 40), s)
        if m is None or not m.group(1)[0].isupper():
            break
        s = m.start(1)
        taken += 1
    return s


_STREET_FIRST_WORDS = ("rue", "calle", "via", "vicolo", "corso", "piazza", "largo", "strada", "av", "rua", "travessa", "praça",
                       "carrer", "camino", "paseo", "plaza", "ul", "al.", "aleja", "chemin", "allée", "impasse", "boulevard",
                       "bd", "straţa", "strada", "str.", "ulitsa", "prospekt", "sokak", "cadde", "jalan", "jl.")
_UNIT_ALONE_WORDS = ("apt", "apartment", "suite", "ste", "flat", "unit", "piso", "appt")
# a unit alone: "Apt. 977", "Suite 574", "Flat 3B"
_UNIT_ALONE = re.compile(r"(?<![\w#])(?:Apt|Apartment|Suite|Ste|Flat|Unit|Piso|Appt)\.?[ \t]*#?[ \t]*\d{1,5}[A-Za-z]?(?![\w])", re.I)
# a postal code next to a place: "75008 Paris", "00-950 Warszawa", "1012 AB Amsterdam", "113 51 Stockholm", "01310-100 São Paulo"
_POSTCODE_PLACE = re.compile(
    r"(?<![\w.,/-])(?:\d{5}(?:-\d{3,4})?|\d{2}-\d{3}|\d{4}[ \t]?[A-Z]{2}|\d{3}[ \t]\d{2})[ \t]+"
    r"[A-ZÀ-ÖØ-ÞĀ-Ž][\w'’-]+(?:[ \t-][A-ZÀ-ÖØ-ÞĀ-Ž][\w'’-]+){0,2}"
)
_MILITARY = re.compile(
    r"\b(?:(?:USNS|USS|USNV|USCGC)[ \t]+[A-Z][a-z]+|PSC[ \t]+\d{3,5},?[ \t]+Box[ \t]+\d{3,5}|Unit[ \t]+\d{3,5}[ \t]+Box[ \t]+\d{3,5})"
    r"\s+(?:FPO|APO|DPO)[ \t]+(?:AA|AE|AP)[ \t]+\d{5}"
)
_PO_BOX = re.compile(r"(?i)\b(?:P\.?[ \t]?O\.?[ \t]+Box|Postfach|Apartado|Caixa Postal)[ \t]+\d{1,6}" + _CITY_STATE_ZIP)
_US_STATES = frozenset(read_words("detectors.pii", "data/us_states.txt"))
_CITY_ZIP = re.compile(r"\b[A-Z][a-zA-Z.'-]+(?:[ \t][A-Z][a-zA-Z.'-]+){0,3},[ \t]+([A-Z]{2})[ \t]+\d{5}(?:-\d{4})?\b")


def scan_address(text: str) -> list[Span]:
    """Street addresses in both orders, units, postal codes next to a place, PO boxes and military addresses.

    ``<number> <name> <street word>`` (US, UK, AU: USPS suffixes, unit, ``City, ST 12345``);
    ``<street word> <name> <number>`` (``Rue``, ``Calle``, ``Via``, ``ul.``, ...) and ``<name><suffix> <number>``
    (``-straße``, ``-weg``, ``-vej``, ``utca``, ...) as across Europe and Latin America; ``Apt./Suite/Flat N``;
    postal code + capitalised place (``75008 Paris``, ``00-950 Warszawa``, ``1012 AB Amsterdam``).
    """
    out: list[Span] = []
    if _DIGIT.search(text) is None:
        return out
    lower = text.lower()
    for rx, score, words in ((_ADDRESS, 0.8, None), (_STREET_FIRST, 0.7, _STREET_FIRST_WORDS), (_MILITARY, 0.9, ("PO",)),
                             (_PO_BOX, 0.8, ("box", "postfach", "apartado", "caixa")), (_UNIT_ALONE, 0.6, _UNIT_ALONE_WORDS),
                             (_POSTCODE_PLACE, 0.5, None)):
        if words is not None and not any(w in (text if rx is _MILITARY else lower) for w in words):
            continue  # the pattern needs one of these words (a substring test is much cheaper than the regex scan)
        for m in rx.finditer(text):
            full = m.end() - m.start() > 25 and ("," in m.group() or "\n" in m.group())
            out.append(Span(m.start(), m.end(), "ADDRESS", 0.9 if full else score))
    for m in _NUMBER_AFTER_SPACE.finditer(text):
        w = _WORD_BEFORE.search(text, max(0, m.start() - 40), m.start())
        if w is None or not w.group(1).lower().rstrip(".").endswith(_STREET_SUFFIXES):
            continue
        word = w.group(1).rstrip(".")
        suffix = next(x for x in _STREET_SUFFIXES if word.lower().endswith(x))
        start = _street_name_start(text, w.start(1) + len(word) - len(suffix))
        if start >= 0:
            unit = _UNIT_AFTER.match(text, m.end())
            out.append(Span(start, unit.end() if unit else m.end(), "ADDRESS", 0.7))
    if out or "," in text:
        for m in _CITY_ZIP.finditer(text):
            if m.group(1) in _US_STATES:
                out.append(Span(m.start(), m.end(), "ADDRESS", 0.7))
    return out


# --------------------------------------------------------------------------- titled names (PERSON)
_TITLED_NAME = re.compile(
    r"\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Madam)\.?[ \t]+((?:[A-Z][a-z]+(?:[-'][A-Z]?[a-z]+)?[ \t]?){1,3})"
)


def scan_titled_name(text: str) -> list[Span]:
    """Names after a courtesy title (``Dr. Jane Roe``): a cheap PERSON signal that needs no NER."""
    out = []
    for m in _TITLED_NAME.finditer(text):
        s, e = m.start(1), m.end(1)
        while e > s and text[e - 1] in " \t":
            e -= 1
        out.append(Span(s, e, "PERSON", 0.7))
    return out


SCANNERS: dict[str, Scanner] = {
    "EMAIL_ADDRESS": scan_email,
    "CREDIT_CARD": scan_credit_card,
    "US_SSN": scan_us_ssn,
    "US_ITIN": scan_us_ssn,
    "PHONE_NUMBER": scan_phone,
    "IP_ADDRESS": scan_ip,
    "IBAN_CODE": scan_iban,
    "US_DRIVER_LICENSE": scan_us_driver_license,
    "US_PASSPORT": scan_us_passport,
    "US_BANK_NUMBER": scan_us_bank_number,
    "API_KEY": scan_secrets,
    "JWT": scan_secrets,
    "PRIVATE_KEY": scan_secrets,
    "PASSWORD": scan_secrets,
    "ADDRESS": scan_address,
    "PERSON": scan_titled_name,
}
"""Entity type → scanner. Several types may share one scanner (it returns all of them)."""


_DIGIT = re.compile(r"\d")
_SECRET_LITERALS = (
    "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "sk-", "sk_", "rk_", "pk_", "ghp_", "gho_", "ghu_",
    "ghs_", "ghr_", "github_pat_", "glpat-", "xox", "AIza", "ya29.", "hf_", "npm_", "SG.", "SK", "AC", "dop_v1_",
    "shpat_", "pypi-", "hooks.slack.com", "eyJ", "PRIVATE KEY", "://",
)
_SECRET_WORDS = ("pass", "pwd", "secret", "api", "token", "bearer")
_TITLES = ("Mr", "Ms", "Mx", "Miss", "Dr", "Prof", "Sir", "Dame", "Madam")


def could_match(scanner: Scanner, text: str, lower: str, digits: int) -> bool:
    """A necessary condition for ``scanner`` to find anything in ``text`` (cheap string tests, no regex scan).

    Each test is implied by the scanner's own patterns (an e-mail needs "@", a phone 7 digits, a card 12,
    a secret one of its literal prefixes or key words, ...), so skipping a scanner when it fails never
    loses a match; ``tests/unit/detectors/pii/test_patterns.py`` checks that on a mixed corpus.
    """
    if scanner is scan_email:
        return "@" in text
    if scanner is scan_phone:
        return digits >= 7
    if scanner is scan_credit_card:
        return digits >= 12
    if scanner is scan_us_ssn:
        return digits >= 9
    if scanner is scan_ip:
        return (digits >= 4 and "." in text) or text.count(":") >= 2
    if scanner is scan_iban:
        return digits >= 6
    if scanner is scan_us_driver_license:
        return digits >= 4 and ("licen" in lower or "dl" in lower or "d.l" in lower)
    if scanner is scan_us_passport:
        return digits >= 7 and "passport" in lower
    if scanner is scan_us_bank_number:
        return digits >= 8 and any(w in lower for w in ("bank", "checking", "savings", "acct", "account"))
    if scanner is scan_secrets:
        return any(w in text for w in _SECRET_LITERALS) or any(w in lower for w in _SECRET_WORDS)
    if scanner is scan_address:
        return digits >= 1
    if scanner is scan_titled_name:
        return any(w in text for w in _TITLES)
    return True


def scan(text: str, entities: Iterable[str] | None = None) -> list[Span]:
    """Run every scanner relevant to ``entities`` (all when None) once and keep the requested types.

    Scanners whose necessary condition (:func:`could_match`) fails are skipped.
    """
    wanted = set(SCANNERS) if entities is None else set(entities)
    seen: set[Scanner] = set()
    out: list[Span] = []
    lower = text.lower()
    digits = len(_DIGIT.findall(text))
    for etype in wanted:
        fn = SCANNERS.get(etype)
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if could_match(fn, text, lower, digits):
            out.extend(s for s in fn(text) if s.type in wanted)
    return out
