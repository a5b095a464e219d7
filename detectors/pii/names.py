"""Person names in chat text without NER: context cues, a name gazetteer, span expansion.

spaCy's small English model misses uncommon names ("Marguerite Oyelaran") and often
labels only part of a full name ("Priya <PERSON>"). This module adds cheap, pure-Python
signals that Presidio runs as one more scanner (``PERSON``), and a post-pass that
grows any PERSON span over the adjacent name tokens:

* **context cues** before 1-3 capitalised name tokens (hyphenated, apostrophes,
  accents, particles such as ``van der``/``de la``): self-introductions ("my name is",
  "I'm", "I am", "this is", "call me"), address forms ("Dear", "Hi", "Hello", "Hey",
  "Thanks", "Thank you"), sign-offs ("Regards,", "Best,", "Cheers," then a new line),
  courtesy titles ("Mr.", "Dr."), "signed by", "customer";
* a **gazetteer** of first and last names (``detectors/pii/data/*_names.txt.gz``, built from
  Faker's Latin-script locales, common English words removed). *Weak* cues ("I'm",
  "Hi", "Thanks", "this is") need a gazetteer name among the captured tokens, so
  "I'm Happy to help" and "Thanks Team" stay clean; *strong* cues ("my name is",
  "Dear", titles, sign-offs) need only capitalised tokens that are not common words.
  Without a cue, a gazetteer first name followed by a capitalised non-word token
  ("Emily Clarke") is a name;
* :func:`expand_person_spans`: a PERSON span from any source grows left and right over
  adjacent capitalised name tokens, so first names never leak next to a redacted surname.

Precision guards: the allow-terms (product names), Warden's benign words (function
words, greetings, weekdays, months), Faker's English word list and a list of words that
follow "I'm"/"Dear"/"Thanks" in chat but are not names ("Team", "Everyone", "Sir").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from detectors.pii.patterns import Span
from detectors.pii.prefilter import _BENIGN, DEFAULT_ALLOW_TERMS
from detectors.resources import read_words

__all__ = [
    "clean_person_span",
    "FIRST_NAMES",
    "LAST_NAMES",
    "WORDLIKE_FIRST_NAMES",
    "WORDLIKE_SURNAMES",
    "NameScanner",
    "expand_person_spans",
    "has_name_cue",
    "is_gazetteer_name",
    "scan_person",
]

# ------------------------------------------------------------------ vocabularies

_FIRST = read_words("detectors.pii", "data/first_names.txt.gz")
_LAST = read_words("detectors.pii", "data/last_names.txt.gz")
_ENGLISH_WORDS = read_words("detectors.pii", "data/english_words.txt.gz")

_NOT_NAME_WORDS = frozenset(read_words("detectors.pii", "data/not_name_words.txt"))
"""Lower-cased words that follow name cues in chat but are not names."""


_WORDLIKE_NAMES = frozenset(read_words("detectors.pii", "data/wordlike_names.txt"))
"""Names that are far more often English words in chat ("Will", "Young", "Brown")."""

_STOP = frozenset(_BENIGN) | _NOT_NAME_WORDS | frozenset(_ENGLISH_WORDS) | _WORDLIKE_NAMES
"""Lower-cased words never taken as (part of) a name on their own."""

FIRST_NAMES: frozenset[str] = frozenset(w for w in _FIRST if w.lower() not in _STOP)
"""Gazetteer first names (capitalised, as written), common words removed."""

LAST_NAMES: frozenset[str] = frozenset(w for w in _LAST if w.lower() not in _STOP)
"""Gazetteer last names (capitalised, as written), common words removed."""

FIRST_RAW: frozenset[str] = frozenset(_FIRST)
"""Every gazetteer first name, common words included."""

WORDLIKE_SURNAMES: frozenset[str] = frozenset(
    w for w in _LAST
    if w.lower() in _STOP and w.lower() not in _BENIGN and w.lower() not in _NOT_NAME_WORDS
)
"""Surnames that are also common words ("Young", "Brown", "King"): a name only right after a known first name."""

WORDLIKE_FIRST_NAMES: frozenset[str] = frozenset(
    w for w in _FIRST if w.lower() in _STOP and w.lower() not in _NOT_NAME_WORDS
) | frozenset(w.capitalize() for w in _WORDLIKE_NAMES)
"""First names that are also common words, months or allow-terms ("Grace", "April", "Julia", "Will"):
a name only when capitalised mid-sentence right before a detected name."""

_PARTICLES = frozenset(
    "van von der den de del della da di du dos das le la bin binti ibn bint al el ter ten y e".split()
)
"""Lower-case name particles allowed *between* capitalised name tokens."""

_NAME_TOKEN = re.compile(r"[^\W\d_](?:[^\W\d_]|['’\-](?=[^\W\d_]))*")
_CAP_PAIR = re.compile(r"(?<![\w'’@./#-])[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+[ \t]+[A-ZÀ-ÖØ-ÞĀ-ſ]")


def is_gazetteer_name(token: str) -> bool:
    """True when ``token`` (possessive stripped) is a gazetteer first or last name."""
    token = _strip_possessive(token)
    return token in FIRST_NAMES or token in LAST_NAMES


def _strip_possessive(token: str) -> str:
    if token.endswith(("'s", "’s")):
        return token[:-2]
    return token


def _name_shaped(token: str) -> bool:
    """Capitalised word (``Priya``, ``O'Brien``, ``García-López``, ``McKay``), not ALL CAPS."""
    return len(token) >= 2 and token[0].isupper() and any(c.islower() for c in token[1:])


# ------------------------------------------------------------------ cues

_STRONG, _WEAK = 0.85, 0.75
_CUE = re.compile(
    r"(?P<strong>\b(?i:my\s+(?:full\s+|first\s+|last\s+)?name\s+is|my\s+name['’]s|call\s+me|signed\s+by)|\b[Dd]ear"
    r"|\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Madam)\b\.?"
    r"|\b(?:[Kk]ind|[Bb]est|[Ww]arm|[Ww]armest)\s+[Rr]egards,?|\b[Rr]egards,|\b[Ss]incerely(?:\s+yours)?,|\b[Yy]ours\s+truly,"
    r"|\b(?:[Bb]est|[Cc]heers|[Tt]hanks|[Tt]hank\s+you|[Bb]est\s+wishes|[Tt]hx),?[ \t]*\r?\n)"
    r"|(?P<weak>\b(?:I['’]m|I\s+am|[Tt]his\s+is|[Ii]t['’]s|[Hh]i|[Hh]ello|[Hh]ey|[Tt]hanks|[Tt]hank\s+you|[Tt]hx"
    r"|[Cc]ustomer|[Cc]lient|[Pp]atient|[Aa]pplicant|[Ee]mployee|[Tt]enant|[Gg]uest)\b[,:]?)"
)
"""Cues before a name: strong (any non-word capitalised tokens) or weak (a gazetteer name needed)."""

_TITLE_CUE = re.compile(r"(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof|Sir|Dame|Madam)\.?$")


_CUE_WORDS = (
    "my", "i'm", "i’m", "i am", "this is", "it's", "it’s", "call me", "dear", "signed by", "hi", "hello", "hey",
    "thank", "thx", "regards", "sincerely", "yours", "cheers", "best", "kind", "warm", "customer", "client",
    "patient", "applicant", "employee", "tenant", "guest", "mr", "ms", "mx", "miss", "dr", "prof", "sir", "dame",
    "madam",
)
"""Lower-cased first words of every alternative of :data:`_CUE` (``mr`` covers ``mrs``)."""


def _cue_starts(text: str) -> list[int]:
    """Offsets where a cue word starts on a word boundary (C-speed ``str.find`` instead of a regex scan)."""
    lower = text.lower()
    starts: set[int] = set()
    for w in _CUE_WORDS:
        i = lower.find(w)
        while i >= 0:
            if i == 0 or not lower[i - 1].isalnum():
                starts.add(i)
            i = lower.find(w, i + len(w))
    return sorted(starts)


def has_name_cue(text: str) -> bool:
    """Cheap check: could :func:`scan_person` find a cue in ``text``?"""
    return any(_CUE.match(text, pos) is not None for pos in _cue_starts(text))


def _take_name(text: str, pos: int, max_tokens: int = 3, newline_ok: bool = False) -> tuple[int, int, list[str]] | None:
    """Capitalised name tokens starting at ``pos`` (after spaces), with particles between them.

    Returns ``(start, end, tokens)`` or None when no name-shaped token starts there.
    """
    n = len(text)
    i = pos
    while i < n and (text[i] in " \t" or (newline_ok and text[i] in "\r\n")):
        i += 1
    tokens: list[str] = []
    start = end = i
    pending_particles: list[str] = []
    while i < n and len(tokens) < max_tokens:
        m = _NAME_TOKEN.match(text, i)
        if m is None:
            break
        word = m.group()
        if _name_shaped(word):
            if pending_particles and not tokens:
                break
            tokens.append(word)
            end = m.end()
            pending_particles = []
        elif word in _PARTICLES and tokens and len(pending_particles) < 2:
            pending_particles.append(word)
        else:
            break
        j = m.end()
        if j < n and text[j] in " \t" and j + 1 < n and text[j + 1] not in " \t":
            i = j + 1
        else:
            break
    if not tokens:
        return None
    return start, end, tokens


def _trim_tokens(tokens: list[str], allow: frozenset[str], gazetteer: bool = True, strong: bool = False) -> list[str]:
    """Keep the leading tokens that may be names (stop at the first common word or allow-term).

    With the gazetteer, a word-like surname counts right after a known first name ("Jon Young"),
    and after a strong cue a known name counts even when it is an allow-term ("my name is Cassandra").
    """
    out: list[str] = []
    for tok in tokens:
        base = _strip_possessive(tok)
        known = gazetteer and (base in FIRST_NAMES or base in LAST_NAMES)
        if base.lower() in _STOP:
            if not (gazetteer and out and base in WORDLIKE_SURNAMES and _strip_possessive(out[-1]) in FIRST_NAMES):
                break
        elif (base in allow or tok in allow) and not (strong and known):
            break
        out.append(tok)
        if base != tok:
            break
    return out


def _span_end(text: str, start: int, tokens: list[str]) -> int:
    """End offset of the first ``len(tokens)`` name tokens from ``start`` (particles kept inside)."""
    i = start
    for k, tok in enumerate(tokens):
        j = text.find(tok, i)
        i = j + len(tok)
    end = i
    if text.endswith(("'s", "’s"), start, end):
        end -= 2
    return end


class NameScanner:
    """The PERSON scanner: context cues plus gazetteer pairs. Configured with allow-terms and gazetteer use."""

    def __init__(self, allow: Iterable[str] = DEFAULT_ALLOW_TERMS, gazetteer: bool = True):
        self.allow = frozenset(allow)
        self.gazetteer = gazetteer
        self.first = FIRST_NAMES if gazetteer else frozenset()
        self.last = LAST_NAMES if gazetteer else frozenset()
        self.__name__ = "scan_person"

    def _known(self, tok: str) -> bool:
        tok = _strip_possessive(tok)
        return tok in self.first or tok in self.last

    def __call__(self, text: str) -> list[Span]:
        """PERSON spans in ``text`` (see the module docstring for the rules)."""
        out = self.cued(text)
        if self.first:
            out.extend(self._pairs(text))
        return _dedupe(out)

    def cued(self, text: str) -> list[Span]:
        """Only the names after a context cue (the pre-filter's cheap probe)."""
        out: list[Span] = []
        for pos in _cue_starts(text):
            m = _CUE.match(text, pos)
            if m is None:
                continue
            strong = m.lastgroup == "strong"
            cue = m.group()
            newline_ok = strong and (cue.endswith("\n") or cue.endswith(","))
            got = _take_name(text, m.end(), newline_ok=newline_ok)
            if got is None:
                continue
            start, _, tokens = got
            kept = _trim_tokens(tokens, self.allow, self.gazetteer, strong)
            if not kept:
                continue
            if not strong:
                if any(self._known(t) for t in kept):
                    score = _WEAK
                elif len(kept) >= 2 and len(kept) == len(tokens) and _ends_clause(text, _span_end(text, start, kept)):
                    score = 0.6  # "Hey Sefa Tuilagi," / "I'm Marguerite Oyelaran;": two unknown capitalised tokens
                else:
                    continue
            else:
                score = 0.7 if _TITLE_CUE.match(cue) else _STRONG
            out.append(Span(start, _span_end(text, start, kept), "PERSON", score))
        return out

    def _pairs(self, text: str) -> list[Span]:
        """A known first name followed by a capitalised surname-like token ("Emily Clarke"), no cue needed."""
        out: list[Span] = []
        for m in _CAP_PAIR.finditer(text):
            got = _take_name(text, m.start())
            if got is None:
                continue
            start, _, tokens = got
            kept = _trim_tokens(tokens, self.allow, self.gazetteer)
            if len(kept) < 2 or _strip_possessive(kept[0]) not in self.first:
                continue
            second = _strip_possessive(kept[1])
            if second in self.last or second in WORDLIKE_SURNAMES:
                score = 0.7
            elif second in self.first or second.lower().endswith(_WORD_SUFFIXES):
                continue  # "Paris Austin", "Max Retries": lists of names or places, title-case phrases
            else:
                score = 0.6
            out.append(Span(start, _span_end(text, start, kept), "PERSON", score))
        return out


def _ends_clause(text: str, end: int) -> bool:
    """True when ``end`` is followed by the end of the text, a line or a clause."""
    return end >= len(text) or text[end] in ",;.!?:)\r\n" or text.startswith(("'s", "’s"), end)


_WORD_SUFFIXES = ("ing", "tion", "sion", "ment", "ness", "able", "ible", "ity", "ies", "ers", "ors", "ics", "ware", "ture", "ings")


def _dedupe(spans: list[Span]) -> list[Span]:
    if len(spans) < 2:
        return spans
    best: dict[tuple[int, int], Span] = {}
    for s in spans:
        cur = best.get((s.start, s.end))
        if cur is None or s.score > cur.score:
            best[(s.start, s.end)] = s
    return sorted(best.values(), key=lambda s: (s.start, s.end))


scan_person = NameScanner()
"""Default :class:`NameScanner` (default allow-terms, gazetteer on)."""


# ------------------------------------------------------------------ expansion

_TOKEN_BEFORE = re.compile(r"([^\W\d_](?:[^\W\d_]|['’\-](?=[^\W\d_]))*)[ \t]$")


def _sentence_initial(text: str, pos: int) -> bool:
    """True when the token at ``pos`` starts the text, a line or a sentence."""
    i = pos - 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    return i < 0 or text[i] in ".!?:;\n\r\"“(*-•>"


def _expand_one(text: str, start: int, end: int, allow: frozenset[str], first: frozenset[str], last: frozenset[str], max_tokens: int) -> tuple[int, int]:
    count = len(text[start:end].split())
    # leftwards: "Priya [Natarajan]" -> "[Priya Natarajan]"
    while count < max_tokens:
        m = _TOKEN_BEFORE.search(text, max(0, start - 40), start)
        if m is None:
            break
        word = m.group(1)
        base = _strip_possessive(word)
        if first and (word in WORDLIKE_FIRST_NAMES or (word in allow and word in FIRST_RAW)) and not _sentence_initial(text, m.start(1)):
            start = m.start(1)  # "Ask Will [Smith]": a capitalised common word mid-sentence before a name
            count += 1
            continue
        if not _name_shaped(word) or word != base or base.lower() in _STOP or base in allow:
            if word in _PARTICLES and count < max_tokens:
                m2 = _TOKEN_BEFORE.search(text, max(0, m.start() - 40), m.start())
                if m2 is not None and _name_shaped(m2.group(1)) and (m2.group(1) in first or m2.group(1) in last):
                    start = m2.start(1)
                    count += 1
                    continue
            break
        if _sentence_initial(text, m.start(1)) and base not in first and base not in last:
            break  # "Email [Priya]": a sentence-initial capital is only a name if we know it
        start = m.start(1)
        count += 1
    # rightwards: "[Priya] Natarajan" -> "[Priya Natarajan]"
    while count < max_tokens:
        got = _take_name(text, end, max_tokens=1) if end < len(text) and text[end] in " \t" else None
        if got is None or got[0] - end > 1:
            break
        tok = got[2][0]
        base = _strip_possessive(tok)
        prev = _strip_possessive(text[start:end].split()[-1])
        if base.lower() in _STOP:
            if not (first and base in WORDLIKE_SURNAMES and prev in first):
                break
        elif base in allow or tok in allow:
            break
        end = got[0] + len(base)
        count += 1
        if base != tok:
            break
    return start, end


def expand_person_spans(
    text: str,
    spans: list[tuple[int, int]],
    allow: Iterable[str] = DEFAULT_ALLOW_TERMS,
    gazetteer: bool = True,
    max_tokens: int = 4,
) -> list[tuple[int, int]]:
    """Grow each PERSON ``(start, end)`` over adjacent capitalised name tokens (same line, one space apart).

    Leftwards a token joins when it is name-shaped, not a common word or allow-term, and
    either not sentence-initial or a gazetteer name; rightwards when it is name-shaped and
    not a common word or allow-term. A span never grows past ``max_tokens`` tokens.
    """
    allow = frozenset(allow)
    first = FIRST_NAMES if gazetteer else frozenset()
    last = LAST_NAMES if gazetteer else frozenset()
    return [_expand_one(text, s, e, allow, first, last, max_tokens) for s, e in spans]


def clean_person_span(
    text: str, start: int, end: int, allow: Iterable[str] = DEFAULT_ALLOW_TERMS, gazetteer: bool = True
) -> tuple[int, int] | None:
    """An NER PERSON span with non-name edges removed, or None when nothing name-like is left.

    Cuts at the first line break that leaves a name ("Tom\\nPlease" → "Tom"), strips leading
    and trailing tokens that are not name-shaped, common words or allow-terms ("Dora Write" →
    "Dora", "Customer Success" → None), and rejects title-case phrases whose last word has a
    word suffix and is no known name ("Max Retries").
    """
    allow = allow if isinstance(allow, frozenset) else frozenset(allow)
    pos = start
    for line in text[start:end].split("\n"):
        toks = [(pos + m.start(), pos + m.end(), m.group()) for m in _NAME_TOKEN.finditer(line)]
        pos += len(line) + 1

        def ok(w: str) -> bool:
            base = _strip_possessive(w)
            return _name_shaped(w) and base.lower() not in _STOP and base not in allow and w not in allow

        while toks and not ok(toks[0][2]):
            toks.pop(0)
        while toks and not ok(toks[-1][2]):
            if gazetteer and len(toks) >= 2 and toks[-1][2] in WORDLIKE_SURNAMES and toks[-2][2] in FIRST_NAMES:
                break  # "Jon Young"
            toks.pop()
        if not toks:
            continue
        last = _strip_possessive(toks[-1][2])
        known = gazetteer and (last in LAST_NAMES or last in FIRST_NAMES)
        if not known and last.lower().endswith(_WORD_SUFFIXES):
            return None
        s, e = toks[0][0], toks[-1][1]
        if text.endswith(("'s", "’s"), s, e):
            e -= 2
        return s, e
    return None
