"""Cheap pre-filter: which recognizers a text needs, and which parts of it need NER.

Most chat texts carry no PII. Before any Presidio recognizer or spaCy model runs, this
module decides in a few microseconds per text:

* which pattern entity types have a *trigger* in the text (a digit run, an ``@``, a key
  prefix, a context word, ...). Only the recognizers for triggered types run.
* which character windows contain *name candidates*: capitalised tokens that are not
  sentence-initial function words, greetings or known-benign terms. Only these
  windows (a sentence clipped to a few tokens around the candidates) go through the
  spaCy NER model; a text without candidates never does.

:class:`BenignTermMemory` is the bounded, snapshot-able state that learns which
capitalised terms (``Python``, ``Docker``) NER keeps rejecting, so that they stop
triggering NER after a few sightings.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from detectors.resources import read_words

__all__ = ["DEFAULT_ALLOW_TERMS", "BenignTermMemory", "Prefilter", "Triage", "ner_windows", "pattern_triggers"]

_DIGITS7 = re.compile(r"\d(?:[ .()/-]{0,2}\d){6}")
_DIGITS3 = re.compile(r"\d{3}")
_IPV4ISH = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_IPV6ISH = re.compile(r"[0-9A-Fa-f]{0,4}::?[0-9A-Fa-f]{1,4}:")
_IBANISH = re.compile(r"[A-Z]{2}\d{2}[ -]?[A-Z0-9]{4}")
_ADDRESSISH = re.compile(r"\d{1,6}[A-Za-z]?[ \t]+(?:[NSEW]\.?[ \t]+)?[A-Z0-9][a-z]|[A-Z][a-z]+, [A-Z]{2} \d{5}")
_SECRET_LITERALS = (
    "sk-", "sk_", "rk_", "pk_", "AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA", "ghp_", "gho_",
    "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xox", "AIza", "ya29.", "hf_", "npm_", "SG.", "eyJ",
    "PRIVATE KEY", "://", "hooks.slack", "dop_v1_", "shpat_", "pypi-",
)
_SECRET_WORDS = ("password", "passw", "pwd", "passcode", "passphrase", "pass phrase", "secret", "token", "api key", "api_key", "apikey", "api-key", "bearer")
_TWILIO = re.compile(r"(?:SK|AC)[0-9a-f]{32}")
_MILITARY = ("FPO", "APO", "DPO", "Box", "BOX", "box")

_DIGIT_TYPES = ("PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "US_ITIN")


def pattern_triggers(text: str, lower: str | None = None) -> set[str]:
    """Entity types whose recognizer could match ``text`` (a superset; cheap literal and prefix checks).

    PERSON is not among them: :class:`Prefilter` asks its ``person_probe`` (the cue scanner) instead."""
    out: set[str] = set()
    if lower is None:
        lower = text.lower()
    has_digit3 = _DIGITS3.search(text) is not None
    if "@" in text:
        out.add("EMAIL_ADDRESS")
        out.add("PASSWORD")
    if has_digit3:
        if _DIGITS7.search(text):
            out.update(_DIGIT_TYPES)
            if "acc" in lower or "bank" in lower or "checking" in lower or "saving" in lower:
                out.add("US_BANK_NUMBER")
        if "licen" in lower or "dl" in lower or "d.l." in lower:
            out.add("US_DRIVER_LICENSE")
        if "passport" in lower:
            out.add("US_PASSPORT")
    if "." in text and _IPV4ISH.search(text) or ":" in text and _IPV6ISH.search(text):
        out.add("IP_ADDRESS")
    if _IBANISH.search(text):
        out.add("IBAN_CODE")
    if any(s in text for s in _SECRET_LITERALS) or any(w in lower for w in _SECRET_WORDS) or _TWILIO.search(text):
        out.update(("API_KEY", "JWT", "PRIVATE_KEY", "PASSWORD"))
    if _ADDRESSISH.search(text) or any(w in text for w in _MILITARY):
        out.add("LOCATION")
    return out


# ------------------------------------------------------------------ NER candidates

_CAP_TOKEN = re.compile(r"[^\W\d_a-zß-öø-ÿ][^\W\d_]+(?:['’-][^\W\d_]+)*")
"""A word starting with a letter that is not ASCII/Latin-1 lower case; :func:`ner_windows` checks it is
upper case and not ALL CAPS (``Nguyễn``, ``Łukasz``, ``O'Brien``, ``García-López``, ``McKay``)."""
_SENT_END = re.compile(r"[.!?\n:;]")
_WORDCHAR_BEFORE = re.compile(r"[\w'’/@.#-]")

# Capitalised words that are almost never (part of) a person's name or a place.
_BENIGN = frozenset(read_words("detectors.pii", "data/benign_words.txt"))


DEFAULT_ALLOW_TERMS: frozenset[str] = frozenset(read_words("detectors.pii", "data/allow_terms.txt"))
"""Capitalised terms that are never names or places in chat traffic (software, units, plans).

They neither open an NER window nor survive as an NER entity; extend it via ``PiiConfig.allow_terms``."""


@dataclass
class BenignTermMemory:
    """Bounded LRU memory of capitalised terms NER saw but never labelled as a wanted entity.

    ``observe(term, hit)`` is called for every candidate term after NER ran over it. A term
    seen at least ``min_seen`` times with no hit is *benign* and stops triggering NER.
    A single hit makes the term permanently interesting (until evicted). ``capacity``
    bounds memory; ``min_seen <= 0`` disables learning.
    """

    capacity: int = 50_000
    min_seen: int = 3
    _terms: OrderedDict[str, int] = field(default_factory=OrderedDict, repr=False)

    HIT = -1

    def is_benign(self, term: str) -> bool:
        """True when the term has been seen ``min_seen`` times and never inside an entity."""
        if self.min_seen <= 0:
            return False
        n = self._terms.get(term)
        return n is not None and n >= self.min_seen

    def observe(self, term: str, hit: bool) -> None:
        """Record one NER verdict for ``term``."""
        if self.min_seen <= 0:
            return
        terms = self._terms
        if hit:
            terms[term] = self.HIT
        else:
            n = terms.get(term, 0)
            if n != self.HIT:
                terms[term] = n + 1
        terms.move_to_end(term)
        if len(terms) > self.capacity:
            terms.popitem(last=False)

    def __len__(self) -> int:
        return len(self._terms)

    def snapshot(self) -> dict:
        """JSON-serialisable state (terms are vocabulary words like ``Python``, not values)."""
        return {"capacity": self.capacity, "min_seen": self.min_seen, "terms": [[t, n] for t, n in self._terms.items()]}

    @classmethod
    def restore(cls, state: dict) -> BenignTermMemory:
        """Inverse of :meth:`snapshot`."""
        mem = cls(capacity=int(state.get("capacity", 50_000)), min_seen=int(state.get("min_seen", 3)))
        for term, n in state.get("terms", []):
            mem._terms[str(term)] = int(n)
        return mem


def ner_windows(
    text: str,
    memory: BenignTermMemory | None = None,
    radius: int = 60,
    allow: frozenset[str] = DEFAULT_ALLOW_TERMS,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Character windows of ``text`` that need NER, and the candidate token spans in them.

    A candidate is a capitalised token that is not a benign word (function words,
    greetings, imperatives, weekdays, ... or a term the memory learnt), and not glued to a
    path, handle or e-mail. Each candidate opens a window of about ``radius`` characters
    either side, clipped to its sentence and snapped to whitespace; overlapping windows merge.
    """
    cands: list[tuple[int, int]] = []
    n = len(text)
    for m in _CAP_TOKEN.finditer(text):
        s, e = m.start(), m.end()
        if s > 0 and _WORDCHAR_BEFORE.match(text, s - 1):
            continue
        if e < n and (text[e].isalnum() or text[e] in "_@/"):
            continue  # part of CamelCase identifiers, paths, handles
        word = m.group()
        if not word[0].isupper() or word.isupper():
            continue  # caseless scripts, acronyms
        low = word.lower()
        if low in _BENIGN or word in allow:
            continue
        if memory is not None and memory.is_benign(word):
            continue
        cands.append((s, e))
    if not cands:
        return [], []
    windows: list[tuple[int, int]] = []
    min_ctx = 20
    for s, e in cands:
        ws = max(0, s - radius)
        we = min(n, e + radius)
        # clip to the sentence, unless that leaves the candidate with almost no context
        k = max(text.rfind(".", ws, s), text.rfind("\n", ws, s), text.rfind("!", ws, s), text.rfind("?", ws, s))
        if k >= 0 and s - k > min_ctx:
            ws = k + 1
        else:
            ws = max(0, s - radius // 2) if k >= 0 else ws
            sp = text.find(" ", ws, s)
            ws = ws if ws == 0 or sp < 0 else sp + 1
        m2 = _SENT_END.search(text, e, we)
        if m2 is not None and m2.start() - e > min_ctx and not (
            text[m2.start()] == "." and m2.start() + 1 < n and text[m2.start() + 1].isalnum()
        ):
            we = m2.start() + 1
        else:
            we = min(n, e + radius // 2) if m2 is not None else we
            sp = text.rfind(" ", e, we)
            we = we if we == n or sp < 0 else sp
        if windows and ws <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], we))
        else:
            windows.append((ws, we))
    return windows, cands


@dataclass(frozen=True, slots=True)
class Triage:
    """What one text needs: pattern entity types to run and character windows for NER."""

    pattern_types: frozenset[str]
    windows: tuple[tuple[int, int], ...]
    candidates: tuple[tuple[int, int], ...]

    @property
    def empty(self) -> bool:
        """True when nothing downstream needs to run."""
        return not self.pattern_types and not self.windows


class Prefilter:
    """Decides per text which recognizers and which NER windows are needed.

    ``person_probe`` (e.g. :class:`detectors.pii.names.NameScanner`) is run on every text; when it
    finds a name, the PERSON scanner runs in Presidio even if NER has nothing to look at."""

    def __init__(
        self,
        pattern_entities: set[str],
        ner_entities: set[str],
        memory: BenignTermMemory | None,
        radius: int = 60,
        allow: frozenset[str] = DEFAULT_ALLOW_TERMS,
        person_probe: Callable[[str], list] | None = None,
    ):
        self.allow = allow
        self.person_probe = person_probe
        self.pattern_entities = frozenset(pattern_entities)
        self.ner_entities = frozenset(ner_entities)
        self.memory = memory
        self.radius = radius

    def triage(self, text: str) -> Triage:
        """Triage one text."""
        types = pattern_triggers(text) & self.pattern_entities if self.pattern_entities else set()
        if self.ner_entities:
            windows, cands = ner_windows(text, self.memory, self.radius, self.allow)
        else:
            windows, cands = [], []
        if not windows and "PERSON" in self.pattern_entities and self.person_probe is not None and self.person_probe(text):
            types.add("PERSON")  # a cue with a name after it (e.g. one NER keeps missing): the cue scanner runs
        return Triage(frozenset(types), tuple(windows), tuple(cands))
