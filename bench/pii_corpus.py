"""Deterministic generator of realistic chat texts with exact PII span labels.

``python -m bench.pii_corpus`` writes ``bench/data/pii_labelled.jsonl`` (lines
``{"id", "text", "spans": [{"start", "end", "type"}]}``). :func:`chat_texts` builds the
benchmark texts (100-1,000 characters, a minority with PII) the same way.

Texts mix chat filler without PII (code, writing, cooking, spreadsheets, support; full of
capitalised product names, versions, prices, dates and times that must *not* be flagged)
with sentences carrying PII from Faker (several locales for phones and addresses) and
synthetic secrets. Labels use Presidio's type names; street addresses are ``LOCATION``.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import unicodedata
from pathlib import Path

from faker import Faker

DATA = Path(__file__).parent / "data"
LABELLED = DATA / "pii_labelled.jsonl"

_FILLER = [
    "Can you explain how Kubernetes schedules pods across nodes when resources are tight?",
    "I'm getting a 502 error from Nginx after upgrading to version 1.25.3, any idea why?",
    "Please rewrite this paragraph so it sounds more professional but still friendly.",
    "What's the difference between a list and a tuple in Python 3.11?",
    "Write a short poem about autumn leaves and the smell of rain.",
    "My React component re-renders every time the parent state changes, how do I stop that?",
    "Summarize the following meeting notes in three bullet points.",
    "How many grams of flour do I need for 12 pancakes?",
    "The Docker build fails at step 7 of 12 with exit code 137.",
    "Is it better to use PostgreSQL or MongoDB for a small inventory app?",
    "Our team ships a release every two weeks, usually on Tuesday afternoon.",
    "Translate 'good morning, how are you' into Spanish and French.",
    "I need a formula in Excel that sums column B when column A equals 'paid'.",
    "The invoice total was $1,299.00 including 20% tax.",
    "Can you give me a 30-minute workout plan I can do at home without equipment?",
    "Explain the CAP theorem like I'm five.",
    "We migrated from AWS Lambda to Google Cloud Run last quarter and latency dropped by 40%.",
    "What does HTTP status 429 mean and how should a client back off?",
    "Thanks, that worked! One more question though.",
    "Draft an email asking my manager for Friday off next week.",
    "The meeting is at 10:30 on 2024-03-14, can you add it to the agenda?",
    "How do I configure GitHub Actions to run tests on every pull request?",
    "My sourdough starter smells like acetone, is that normal?",
    "List five books similar to The Hobbit for a 12-year-old.",
    "In SQL, how do I select the top 3 rows per group?",
    "I ran pip install torch==2.3.1 and it says no matching distribution.",
    "What are good names for a golden retriever puppy?",
    "Convert 72 degrees Fahrenheit to Celsius.",
    "The Jenkins pipeline has been flaky since the Monday update.",
    "Give me a regex that matches hex colours like #1a2b3c.",
    "Our churn rate went from 3.2% to 4.1% in Q2, what could explain that?",
    "Should I learn Rust or Go for backend services?",
    "Please make the tone of this cover letter a bit more confident.",
    "How long should I boil an egg for a runny yolk?",
    "Refactor this function to avoid the nested loops; it runs in O(n^2).",
    "What is the capital gains tax treatment for index funds held over a year?",
    "I bought the Pro plan yesterday but the dashboard still shows the Free tier.",
    "Can you check my grammar: 'Their going to the store tomorrow.'",
    "Kafka consumers in the same group split partitions between them, right?",
    "Write unit tests in pytest for a function that parses ISO dates.",
    "The Slack bot stopped responding after we rotated credentials.",
    "Explain gradient descent with a simple numeric example.",
    "My order #48213 arrived damaged, what are my options?",
    "Help me plan a vegetarian dinner menu for six people.",
    "What's a good way to structure a README for an open-source project?",
    "Use a window of 7 days and a threshold of 0.85 for the alert.",
]

_HARD_NEGATIVES = [
    "I'm Happy to help with the migration plan.",
    "Thanks Team, great work on the release!",
    "Hi All, the standup moves to 10:15 tomorrow.",
    "Dear Customer, your ticket has been updated.",
    "This is Important: back up the database first.",
    "Thank you Everyone for the quick feedback.",
    "Best Practices for Docker images are in the wiki.",
    "Monday Morning Sync notes are attached below.",
    "Hello World in Rust prints a greeting to stdout.",
    "Call me Maybe has been stuck in my head all day.",
    "Max Retries should be set to 5 in the Settings panel.",
    "Hey There, quick question about the Pro plan.",
    "Thanks Google Cloud support for the quick fix.",
    "I am Stuck on step 4 of the Terraform tutorial.",
    "Dear Sir or Madam, I would like to cancel my subscription.",
    "Regards,\nThe Support Team",
    "Cheers,\nThe Platform Team",
    "Customer Success reviewed the renewal on Friday.",
]
"""Capitalised phrases after name cues that are *not* names (precision guards; also filler)."""

_PII_TEMPLATES: list[tuple[str, str]] = [
    ("Hi, my name is {v} and I need help with my account.", "PERSON"),
    ("Please forward this to {v}, she handles billing.", "PERSON"),
    ("I spoke with {v} from your support team yesterday.", "PERSON"),
    ("Regards,\n{v}", "PERSON"),
    ("Can you write a birthday message for my friend {v}?", "PERSON"),
    ("My colleague {v} said the report is due soon.", "PERSON"),
    ("You can reach me at {v} if anything comes up.", "PHONE_NUMBER"),
    ("My phone number is {v}.", "PHONE_NUMBER"),
    ("Call the office on {v} before noon.", "PHONE_NUMBER"),
    ("Text {v} when the package ships.", "PHONE_NUMBER"),
    ("Send the invoice to {v} please.", "EMAIL_ADDRESS"),
    ("My email is {v}, use that for the confirmation.", "EMAIL_ADDRESS"),
    ("Contact {v} for access.", "EMAIL_ADDRESS"),
    ("Charge it to my card {v}, it expires next year.", "CREDIT_CARD"),
    ("The payment failed for card number {v}.", "CREDIT_CARD"),
    ("I paid with {v} but got no receipt.", "CREDIT_CARD"),
    ("My SSN is {v} if you need it for the form.", "US_SSN"),
    ("The form asks for a social security number, mine is {v}.", "US_SSN"),
    ("Applicant {v} was rejected by the background check.", "US_SSN"),
    ("The server at {v} keeps timing out.", "IP_ADDRESS"),
    ("Whitelist {v} in the firewall.", "IP_ADDRESS"),
    ("Requests from {v} were blocked last night.", "IP_ADDRESS"),
    ("Please wire the deposit to IBAN {v}.", "IBAN_CODE"),
    ("My account is {v} for the refund.", "IBAN_CODE"),
    ("Transfer the rent to {v} by the first.", "IBAN_CODE"),
    ("Ship it to {v}.", "ADDRESS"),
    ("My new address is {v}, please update your records.", "ADDRESS"),
    ("The venue is at {v}.", "ADDRESS"),
    ("I'm flying to {v} next month for a conference.", "CITY"),
    ("We moved from {v} last spring.", "CITY"),
    ("What are the best restaurants in {v}?", "CITY"),
    ("My driver's license number is {v}.", "US_DRIVER_LICENSE"),
    ("DL {v}, issued in 2019.", "US_DRIVER_LICENSE"),
    ("Here is my config: OPENAI_API_KEY={v}", "API_KEY"),
    ("Why does AWS reject my access key {v}?", "API_KEY"),
    ("The token {v} stopped working.", "API_KEY"),
    ("Decode this JWT for me: {v}", "JWT"),
    ("Connect with postgres://app:{v}@db.internal:5432/prod", "PASSWORD"),
    ("My password is {v} but it says invalid.", "PASSWORD"),
    ("Is this key safe to share?\n{v}", "PRIVATE_KEY"),
]

_NAME_TEMPLATES: list[tuple[str, str]] = [
    ("Hi, I'm {v} and I'm new to this.", "NAME"),
    ("My name is {v} and I need help.", "NAME"),
    ("Thanks {v}, noted.", "NAME"),
    ("Thank you {v}! That fixed it.", "NAME"),
    ("Dear {v},\nplease find the signed contract attached.", "NAME"),
    ("Hello {v}, welcome to the team.", "NAME"),
    ("Hey {v}, could you review my pull request?", "NAME"),
    ("This is {v} from the accounts team.", "NAME"),
    ("I am {v}, the new project lead.", "NAME"),
    ("Call me {v}, everyone does.", "NAME"),
    ("Best,\n{v}", "NAME"),
    ("Cheers,\n{v}", "NAME"),
    ("Kind regards,\n{v}", "NAME"),
    ("The contract was signed by {v} last week.", "NAME"),
    ("The customer {v} asked for a refund.", "NAME"),
    ("Please ask Dr. {v} to review the scan.", "NAME"),
    ("Ms. {v} will join the call at noon.", "NAME"),
    ("Can you help {v} with her visa application?", "NAME"),
    ("{v} will present the results on Thursday.", "NAME"),
    ("I had lunch with {v} and we talked about the launch.", "NAME"),
]
"""Names in self-introductions, address forms, sign-offs and plain mentions (diverse, non-US names)."""

_NAME_LOCALES = [
    "en_GB", "en_IN", "en_IE", "yo_NG", "ig_NG", "vi_VN", "es_ES", "es_MX", "fr_FR", "de_DE", "it_IT", "pt_BR",
    "pl_PL", "tr_TR", "zu_ZA", "sw", "id_ID", "nl_NL", "ja_JP", "en_US",
]

_HELD_OUT_NAMES = [
    "Marguerite Oyelaran", "Chidinma Okafor-Nwosu", "Thandeka Mthembu", "Oluwaseun Adeyemi-Bakare",
    "Tupac Quispe Mamani", "Aroha Te Whatu", "Kealoha Kahananui", "Bartholomew Featherstonehaugh",
    "Sigríður Jónsdóttir", "Dagny Østergaard", "Zofia Wróblewska-Kania", "Mehmet Karakoç", "Anahí Coaquira",
    "Kofi Boateng-Asante", "Yerlan Nurlanuly", "Altantsetseg Batbayar", "Tevita Fifita", "Lwazi Ngcobo",
    "Xiadani Tzompantzi", "Priyanka Venkataraghavan", "Siddharth Raghunathan", "Hoang Thi Thu", "Phan Minh Khoi",
    "Mirela Dumitrescu", "Tamar Abuladze", "Nino Beridze", "Aylin Çelikkaya", "Youssef Ben Amor",
    "Wanjiku Kamau", "Mwangi Njoroge", "Eitan Ben-David", "Noa Shalev", "Ilse van der Berg", "Pieter de Vries",
    "Joaquín de la Cruz", "Saoirse Ní Bhriain", "Cormac O'Flaherty", "Gaurav Chaturvedi", "Ekaterina Vasilyeva",
    "Bogdan Ciobanu", "Fatima-Zahra Idrissi", "Amani Wanjiru", "Sefa Tuilagi", "Ngaio Whitinui",
]
"""Hand-written names, not drawn from Faker (whose lists also feed the detector's gazetteer)."""

_PHONE_LOCALES = ["en_US"] * 6 + ["en_GB", "en_CA", "de_DE", "fr_FR", "en_AU", "it_IT", "es_ES", "en_IN"]


class _Values:
    """Faker-backed value factory, deterministic for a seed."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.fakers: dict[str, Faker] = {}
        for i, loc in enumerate(sorted(set(_PHONE_LOCALES) | set(_NAME_LOCALES) | {"en_US"})):
            f = Faker(loc)
            f.seed_instance(seed * 1000 + i)
            self.fakers[loc] = f
        self.us = self.fakers["en_US"]

    def _alnum(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def name(self) -> str:
        """A diverse person name: hand-written held-out names or Faker names from many locales."""
        r = self.rng
        if r.random() < 0.35:
            full = r.choice(_HELD_OUT_NAMES)
            return full.split()[0] if r.random() < 0.1 else full
        loc = r.choice(_NAME_LOCALES)
        f = self.fakers[loc]
        if loc == "ja_JP":
            first, last = f.first_romanized_name(), f.last_romanized_name()
        elif loc == "vi_VN":
            first = f.first_name_female() if r.random() < 0.5 else f.first_name_male()
            last = f"{f.last_name()} {f.middle_name()}"
        else:
            first, last = f.first_name(), f.last_name()
        if loc in ("es_ES", "es_MX") and r.random() < 0.4:
            last = f"{last}-{f.last_name()}"
        if r.random() < 0.15:
            out = first
        elif loc == "vi_VN":
            out = f"{last} {first}"  # family, middle, given
        else:
            out = f"{first} {last}"
        if r.random() < 0.2:
            out = "".join(c for c in unicodedata.normalize("NFKD", out) if not unicodedata.combining(c))
        return out

    def make(self, kind: str) -> tuple[str, str]:
        """A (value, label type) for a template kind."""
        r, us = self.rng, self.us
        if kind == "PERSON":
            return (us.name() if r.random() < 0.7 else us.first_name()), "PERSON"
        if kind == "NAME":
            return self.name(), "PERSON"
        if kind == "PHONE_NUMBER":
            return self.fakers[r.choice(_PHONE_LOCALES)].phone_number(), "PHONE_NUMBER"
        if kind == "EMAIL_ADDRESS":
            return (us.email() if r.random() < 0.5 else us.free_email()), "EMAIL_ADDRESS"
        if kind == "CREDIT_CARD":
            num = us.credit_card_number()
            if r.random() < 0.4 and len(num) == 16:
                sep = r.choice([" ", "-"])
                num = sep.join(num[i : i + 4] for i in range(0, 16, 4))
            return num, "CREDIT_CARD"
        if kind == "US_SSN":
            return us.ssn(), "US_SSN"
        if kind == "IP_ADDRESS":
            return (us.ipv4() if r.random() < 0.75 else us.ipv6()), "IP_ADDRESS"
        if kind == "IBAN_CODE":
            iban = self.fakers[r.choice(["en_GB", "de_DE", "fr_FR", "es_ES", "it_IT"])].iban()
            if r.random() < 0.5:
                iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
            return iban, "IBAN_CODE"
        if kind == "ADDRESS":
            addr = us.address()
            if r.random() < 0.5:
                addr = addr.replace("\n", ", ")
            return addr, "LOCATION"
        if kind == "CITY":
            return (us.city() if r.random() < 0.3 else r.choice(_CITIES)), "LOCATION"
        if kind == "US_DRIVER_LICENSE":
            fmt = r.choice(["L#######", "########", "L############", "L###-###-##-###-#", "LL######"])
            out = "".join(r.choice(string.ascii_uppercase) if c == "L" else str(r.randrange(10)) if c == "#" else c for c in fmt)
            return out, "US_DRIVER_LICENSE"
        if kind == "API_KEY":
            style = r.choice(["openai", "aws", "github", "stripe", "slack"])
            val = {
                "openai": "sk-proj-" + self._alnum(40),
                "aws": "AKIA" + self._alnum(16, string.ascii_uppercase + string.digits),
                "github": "ghp_" + self._alnum(36),
                "stripe": "sk_live_" + self._alnum(24),
                "slack": "xoxb-" + "-".join(self._alnum(n, string.digits) for n in (11, 13)) + "-" + self._alnum(24),
            }[style]
            return val, "API_KEY"
        if kind == "JWT":
            b64 = string.ascii_letters + string.digits + "-_"
            return "eyJhbGciOiJIUzI1NiJ9.eyJ" + self._alnum(30, b64) + "." + self._alnum(43, b64), "JWT"
        if kind == "PASSWORD":
            return self._alnum(4, string.ascii_letters) + self._alnum(4, string.digits) + r.choice("!#%&*"), "PASSWORD"
        if kind == "PRIVATE_KEY":
            body = "\n".join(self._alnum(64, string.ascii_letters + string.digits + "+/") for _ in range(3))
            return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----", "PRIVATE_KEY"
        raise ValueError(kind)


_CITIES = [
    "Paris", "Berlin", "Tokyo", "Chicago", "Toronto", "Madrid", "Lisbon", "Seattle", "Denver", "Amsterdam",
    "Nairobi", "Mumbai", "Sydney", "Boston", "Dublin", "Vienna", "Prague", "Austin", "Rome", "Oslo",
]


def _build(rng: random.Random, values: _Values, n_pii: int, min_len: int, max_len: int) -> tuple[str, list[dict]]:
    target = rng.randint(min_len, max_len)
    parts: list[tuple[str, str | None, str | None]] = []  # (template, kind, value placeholder)
    length = 0
    pii_slots = sorted(rng.sample(range(12), k=min(n_pii, 12)))
    i = 0
    while length < target or pii_slots:
        if pii_slots and (pii_slots[0] <= i or length >= target):
            tmpl, kind = rng.choice(_NAME_TEMPLATES if rng.random() < 0.15 else _PII_TEMPLATES)
            pii_slots.pop(0)
            parts.append((tmpl, kind, None))
            length += len(tmpl) + 15
        else:
            s = rng.choice(_HARD_NEGATIVES if rng.random() < 0.08 else _FILLER)
            if length + len(s) > max_len and length >= min_len:
                break
            parts.append((s, None, None))
            length += len(s) + 1
        i += 1
    text = ""
    spans: list[dict] = []
    for part, part_kind, _ in parts:
        if text:
            text += rng.choice([" ", " ", " ", "\n"])
        if part_kind is None:
            text += part
            continue
        value, label = values.make(part_kind)
        pre, post = part.split("{v}")
        start = len(text) + len(pre)
        text += pre + value + post
        spans.append({"start": start, "end": start + len(value), "type": label})
    return text, spans


def labelled_set(n: int = 1000, seed: int = 7, pii_fraction: float = 0.5) -> list[dict]:
    """``n`` labelled chat texts; about ``pii_fraction`` carry 1-3 PII values."""
    rng = random.Random(seed)
    values = _Values(seed)
    out = []
    for i in range(n):
        n_pii = rng.choice([1, 1, 2, 3]) if rng.random() < pii_fraction else 0
        text, spans = _build(rng, values, n_pii, 100, 1000)
        out.append({"id": f"pii-{seed}-{i:05d}", "text": text, "spans": spans})
    return out


def chat_texts(n: int = 2000, seed: int = 11, pii_fraction: float = 0.2) -> list[str]:
    """Benchmark texts: 100-1,000 characters, ``pii_fraction`` of them with PII."""
    return [r["text"] for r in labelled_set(n, seed, pii_fraction)]


def write_labelled(path: Path = LABELLED, n: int = 1000, seed: int = 7) -> Path:
    """Write the labelled set as JSON lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in labelled_set(n, seed):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, default=LABELLED)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    p = write_labelled(args.output, args.n, args.seed)
    print(f"wrote {args.n} texts to {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
