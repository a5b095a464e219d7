"""PII detector: find and redact PII and secrets in prompts, responses and training samples (issues 3, 17).

Two parts of Warden's own, no NLP pipeline (spaCy) at run time:

1. pattern scanners (:mod:`detectors.pii.patterns`) for structured values — e-mail, phone numbers in any
   grouping, cards (Luhn), SSN/ITIN, IPs, IBANs (mod 97), context-bound IDs, secrets — and a street-address
   grammar (both street orders, units, postal codes next to a place, PO boxes);
2. a token tagger (:mod:`detectors.pii.tagger`, int8 ONNX, a few MB) for names, places and addresses in
   any casing and script, trained by ``scripts/train_pii_tagger.py`` from public data and generated texts.

Recognizers a deployment adds (an employee-id pattern, a deny list of project names) are Presidio
recognizers: ``PiiConfig.recognizers`` names a YAML file in Presidio's recognizer format, loaded into a
Presidio :class:`~presidio_analyzer.RecognizerRegistry`; their spans join the scanners' (same merging, same
redaction, their entity type in the finding).

Every text goes through all of them (no pre-filter: a skipped text is a possible leak). Tagged and scanned
address parts merge into one ADDRESS span; names and places inside an address become part of it; a
pattern span (phone, e-mail, ...) cuts the region it covers out of a tagged span, so nothing between
them is left in clear. A bounded LRU cache keyed by a hash of the text serves repeated texts.

Pure: no Kafka, no database, no network. Nothing here logs or returns raw values: a :class:`PiiResult`
holds the redacted text and (type, offsets, score) per entity, and :func:`pii_finding` builds a
:class:`~detectors.finding.Finding` with types, counts and redacted snippets only.

Usage::

    det = PiiDetector(PiiConfig(redaction="hash", hmac_key="..."))
    results = det.analyze_batch([prompt, response])
    clean = [r.redacted for r in results]
    finding = pii_finding(subject, event_id, {"prompt": results[0], "response": results[1]}, occurred_at)
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from detectors.finding import Finding, Severity, Subject
from detectors.pii.patterns import SCANNERS, SECRET_TYPES, Span, scan
from detectors.pii.redaction import RedactionMode, redact_with_offsets
from detectors.pii.tagger import TaggedSpan, Tagger
from detectors.resources import read_words

if TYPE_CHECKING:  # Presidio (and the torch it imports) loads only when a deployment adds recognizers
    from presidio_analyzer import EntityRecognizer

__all__ = [
    "DEFAULT_ENTITIES",
    "PiiConfig",
    "PiiDetector",
    "PiiEntity",
    "PiiResult",
    "RedactionMode",
    "pii_finding",
    "severity_for",
]

DEFAULT_ENTITIES: tuple[str, ...] = (
    "PERSON",
    "LOCATION",
    "ADDRESS",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "US_ITIN",
    "IP_ADDRESS",
    "IBAN_CODE",
    "US_DRIVER_LICENSE",
    "US_PASSPORT",
    "US_BANK_NUMBER",
    "API_KEY",
    "JWT",
    "PRIVATE_KEY",
    "PASSWORD",
)
"""Entity types detected by default (Presidio's names where Presidio has one; ADDRESS and secrets are Warden's)."""

TAGGER_TYPES = frozenset({"PERSON", "LOCATION", "ADDRESS"})
"""Types the tagger finds (PERSON and ADDRESS also have pattern scanners: titles, street grammar)."""
SUPPORTED_ENTITIES = frozenset(SCANNERS) | TAGGER_TYPES

DEFAULT_ALLOW_TERMS: frozenset[str] = frozenset(read_words("detectors.pii", "data/allow_terms.txt"))
"""Capitalised product and technology names (``Kafka``, ``Julia``) never redacted as a name or place on their own."""

_HIGH = frozenset({"CREDIT_CARD", "US_SSN", "US_ITIN", "IBAN_CODE", "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE"}) | SECRET_TYPES
_MEDIUM = frozenset({"EMAIL_ADDRESS", "PHONE_NUMBER", "ADDRESS"})


def severity_for(entity_types: set[str] | frozenset[str]) -> Severity:
    """Severity of a finding by the most sensitive entity type it contains.

    Secrets, card, bank and government ID numbers are ``high``; e-mail, phone and street address
    ``medium``; names, places, IPs and the rest ``low``.
    """
    if entity_types & _HIGH:
        return Severity.high
    if entity_types & _MEDIUM:
        return Severity.medium
    return Severity.low


class PiiConfig(BaseModel):
    """Configuration of :class:`PiiDetector` (the service maps env settings onto it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entities: tuple[str, ...] = DEFAULT_ENTITIES
    score_threshold: float = Field(0.4, ge=0.0, le=1.0)
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {"LOCATION": 0.7},
        description="per-entity overrides; LOCATION needs a tagger confidence >= 0.5 (score 0.4 + 0.6 x confidence): "
        "place-like words are common in chat ('Green Day', 'equinox') and the precision floor is 0.6",
    )
    tagger_threshold: float = Field(
        0.1, gt=0.0, lt=1.0, description="1 - P(O) a word needs to be tagged (lower: more recall, less precision)"
    )
    redaction: RedactionMode = RedactionMode.replace
    hmac_key: SecretStr | None = None
    mask_char: str = Field("*", min_length=1, max_length=1)
    cache_size: int = Field(10_000, ge=0)
    allow_terms: tuple[str, ...] = Field(
        default=tuple(sorted(DEFAULT_ALLOW_TERMS)), description="terms never redacted alone as a name or place"
    )
    recognizers: Path | None = Field(
        None, description="a YAML file of extra Presidio recognizers (Presidio's format: patterns, deny lists); "
        "their entity types are detected besides ``entities``")

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - SUPPORTED_ENTITIES
        if unknown:
            raise ValueError(f"unsupported entities {sorted(unknown)}; supported: {sorted(SUPPORTED_ENTITIES)}")
        return tuple(dict.fromkeys(value))

    def model_post_init(self, __context: Any) -> None:
        if self.redaction is RedactionMode.hash and not self.hmac_key:
            raise ValueError("redaction='hash' needs hmac_key")

    def threshold(self, entity_type: str) -> float:
        """Score threshold for one entity type."""
        return self.thresholds.get(entity_type, self.score_threshold)


@dataclass(frozen=True, slots=True)
class PiiEntity:
    """One detected entity: Presidio type name, offsets in the *original* text, score. No value."""

    type: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``{"type", "start", "end", "score"}``)."""
        return {"type": self.type, "start": self.start, "end": self.end, "score": self.score}


@dataclass(frozen=True, slots=True)
class PiiResult:
    """The redacted copy of one text and the entities found in the original."""

    redacted: str
    entities: tuple[PiiEntity, ...] = ()
    redacted_offsets: tuple[tuple[int, int], ...] = ()
    """Where each entity's replacement lies in ``redacted`` (parallel to ``entities``)."""

    @property
    def has_pii(self) -> bool:
        """True when at least one entity was found."""
        return bool(self.entities)

    def counts(self) -> dict[str, int]:
        """Entity type → count."""
        return dict(Counter(e.type for e in self.entities))

    def to_dict(self) -> dict[str, Any]:
        """Plain data: redacted text and entities (safe to log or publish)."""
        return {"redacted": self.redacted, "entities": [e.to_dict() for e in self.entities]}


def custom_recognizers(path: Path) -> list[EntityRecognizer]:
    """The recognizers a Presidio recognizer YAML file defines (English ones; each entity type detected).

    Raises ``ValueError`` with the file's name when it cannot be read as recognizers."""
    from presidio_analyzer import RecognizerRegistry

    registry = RecognizerRegistry(recognizers=[])
    try:
        registry.add_recognizers_from_yaml(path)
    except Exception as exc:  # Presidio raises several kinds (IOError, KeyError, TypeError) for a bad file
        raise ValueError(f"PII recognizers file {path}: {type(exc).__name__}: {exc}") from exc
    found = registry.get_recognizers(language="en", all_fields=True)
    if not found:
        raise ValueError(f"PII recognizers file {path} defines no English recognizer")
    return list(found)


@cache
def shared_tagger() -> Tagger:
    """The process-wide tagger (model, vocabulary and gazetteer are read once, ~50 MB, shared by all detectors)."""
    return Tagger()


def tagger_score(confidence: float) -> float:
    """Entity score of a tagged span from the tagger's confidence (1 - P(O)): 0.4 + 0.6 x confidence."""
    return round(0.4 + 0.6 * confidence, 4)


class PiiDetector:
    """Finds and redacts PII in texts: pattern scanners and the token tagger, merged; LRU cache around.

    Thread-safe (one lock). Stateless apart from the cache: nothing to checkpoint.
    """

    def __init__(self, config: PiiConfig | None = None):
        self.config = config or PiiConfig()
        cfg = self.config
        self._hmac_key = cfg.hmac_key.get_secret_value().encode() if cfg.hmac_key else None
        entities = set(cfg.entities)
        self._pattern_types = frozenset(entities & set(SCANNERS))
        self._tagged_types = frozenset(entities & TAGGER_TYPES)
        self._allow = frozenset(cfg.allow_terms)
        self._cache: OrderedDict[bytes, PiiResult] = OrderedDict()
        self._lock = threading.RLock()
        self._tagger: Tagger | None = None
        self._custom = custom_recognizers(cfg.recognizers) if cfg.recognizers is not None else []
        self.stats: Counter[str] = Counter()

    def _get_tagger(self) -> Tagger:
        if self._tagger is None:
            self._tagger = shared_tagger()
        return self._tagger

    def warm_up(self) -> None:
        """Load the tagger now instead of on the first text."""
        if self._tagged_types:
            with self._lock:
                self._get_tagger()

    # ------------------------------------------------------------------ analysis
    def analyze(self, text: str) -> PiiResult:
        """Detect and redact PII in one text."""
        return self.analyze_batch([text])[0]

    def analyze_batch(self, texts: Sequence[str]) -> list[PiiResult]:
        """Detect and redact PII in many texts (the tagger runs on all of them in length-bucketed batches)."""
        with self._lock:
            return self._analyze_batch(list(texts))

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def _analyze_batch(self, texts: list[str]) -> list[PiiResult]:
        out: list[PiiResult | None] = [None] * len(texts)
        todo: dict[bytes, list[int]] = {}
        use_cache = self.config.cache_size > 0
        self.stats["texts"] += len(texts)
        for i, text in enumerate(texts):
            if not text or text.isspace():
                out[i] = PiiResult(text or "")
                continue
            key = self._key(text)
            if use_cache:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                    out[i] = hit
                    self.stats["cache_hits"] += 1
                    continue
            todo.setdefault(key, []).append(i)
        if todo:
            keys = list(todo)
            fresh = [texts[todo[k][0]] for k in keys]
            tagged: list[list[TaggedSpan]] = [[] for _ in fresh]
            if self._tagged_types:
                tagged = self._get_tagger().tag_batch(fresh, self.config.tagger_threshold)
            self.stats["analyzed"] += len(fresh)
            for key, text, tags in zip(keys, fresh, tagged):
                result = self._result(text, tags)
                for i in todo[key]:
                    out[i] = result
                if use_cache:
                    self._cache[key] = result
                    if len(self._cache) > self.config.cache_size:
                        self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    def _result(self, text: str, tags: list[TaggedSpan]) -> PiiResult:
        cfg = self.config
        spans = [s for s in scan(text, self._pattern_types) if s.score >= cfg.threshold(s.type)]
        for recognizer in self._custom:
            spans += [Span(r.start, r.end, r.entity_type, float(r.score))
                      for r in recognizer.analyze(text, recognizer.supported_entities, None)  # type: ignore[arg-type]
                      if r.end > r.start and r.score >= cfg.threshold(r.entity_type)]
        lone = _lone_token(text)
        for t in tags:
            if t.label not in self._tagged_types:
                continue
            if lone is not None and not self._lone_entity(lone, t.label):
                continue
            score = tagger_score(t.score)
            if score < cfg.threshold(t.label):
                continue
            edges = (t.start, t.end) if t.label == "ADDRESS" else _strip_function_words(text, t.start, t.end)
            if edges is None or (t.label != "ADDRESS" and self._allowed(text[edges[0] : edges[1]])):
                continue
            spans.append(Span(edges[0], edges[1], t.label, score))
        if not spans:
            return PiiResult(text)
        kept = merge_spans(text, spans)
        ents = [PiiEntity(s.type, s.start, s.end, round(float(s.score), 4)) for s in kept]
        redacted, offsets = redact_with_offsets(text, ents, cfg.redaction, self._hmac_key, cfg.mask_char)
        return PiiResult(redacted, tuple(ents), tuple(offsets))

    def _lone_entity(self, token: str, label: str) -> bool:
        """Whether a text that is one token alone (an attribute value, a dict key, a parameter name) can be a
        tagged entity. Without context the tagger guesses from the word's form ("lr", "adamw", "us-east-1"
        looked like names or addresses): a lone word is no street address; a lower-case one is a name only
        when it is a frequent first or last name, a place only when it is a big city or a nation; a
        capitalised one is taken as tagged."""
        if label == "ADDRESS":
            return False
        if any(c.isupper() for c in token):
            return True
        codes = self._get_tagger().featurizer.gaz.codes(token.strip(".,;:!?'\"()[]").lower())
        return bool(set(codes) & ({"f", "l"} if label == "PERSON" else {"B", "N"}))

    def _allowed(self, value: str) -> bool:
        """True when every word of a tagged name/place is an allow-term (``Kafka``, ``Julia and Python``)."""
        words = [w for w in value.replace(",", " ").split() if w.lower() not in ("and", "or", "&", "the")]
        return bool(words) and all(w in self._allow for w in words)


def _lone_token(text: str) -> str | None:
    """The text when it is a single token (no whitespace inside), else None."""
    stripped = text.strip()
    return stripped if stripped and not any(c.isspace() for c in stripped) else None


_FUNCTION_WORDS = frozenset(read_words("detectors.pii", "data/function_words.txt"))


def _is_function_word(word: str) -> bool:
    # two capitals are kept: "IN", "OR", "ME" are also US state codes
    return word.lower() in _FUNCTION_WORDS and not (len(word) == 2 and word.isupper())


def _strip_function_words(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A tagged name or place without leading/trailing function words ("a", "the", "of"); None when fewer than
    two letters are left (a lone "F" in "72 F" is no name)."""
    parts = text[start:end].split()
    offs: list[tuple[int, int]] = []
    pos = start
    for part in parts:
        i = text.index(part, pos, end)
        offs.append((i, i + len(part)))
        pos = i + len(part)
    while offs and _is_function_word(text[offs[0][0] : offs[0][1]]):
        offs.pop(0)
    while offs and _is_function_word(text[offs[-1][0] : offs[-1][1]]):
        offs.pop()
    if not offs or sum(c.isalpha() for c in text[offs[0][0] : offs[-1][1]]) < 2:
        return None
    return offs[0][0], offs[-1][1]


_REGION_TYPES = frozenset({"PERSON", "LOCATION", "ADDRESS"})


def _trim(text: str, s: int, e: int) -> tuple[int, int] | None:
    while s < e and not text[s].isalnum():
        s += 1
    while e > s and not text[e - 1].isalnum():
        e -= 1
    return (s, e) if e > s else None


def _cut(text: str, span: Span, holes: list[tuple[int, int]]) -> list[Span]:
    """The parts of ``span`` outside ``holes`` (each trimmed to letters/digits at its ends)."""
    parts: list[Span] = []
    cur = span.start
    for hs, he in sorted(holes):
        if he <= cur or hs >= span.end:
            continue
        if hs > cur:
            got = _trim(text, cur, hs)
            if got:
                parts.append(Span(got[0], got[1], span.type, span.score))
        cur = max(cur, he)
    if cur < span.end:
        got = _trim(text, cur, span.end)
        if got:
            parts.append(Span(got[0], got[1], span.type, span.score))
    return parts


def merge_spans(text: str, spans: Sequence[Span]) -> list[Span]:
    """A sorted, non-overlapping set of spans covering every character any input span covers.

    Structured values (phones, e-mails, cards, ...) resolve among themselves by score, a weaker one keeping
    what the stronger one does not cover. Address parts that
    touch (only spaces, commas or line breaks between, at most 3 characters) merge into one ADDRESS; a
    name or place lying at least half inside an address joins it. Same-type name/place spans that overlap
    merge. Structured values then cut their characters out of the name/place/address regions, and the
    regions resolve by ADDRESS > PERSON > LOCATION, the loser keeping its parts outside the winner.
    """
    values: list[Span] = []
    for v in sorted((s for s in spans if s.type not in _REGION_TYPES), key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if any(k.start < v.end and v.start < k.end for k in values):
            values += _cut(text, v, [(k.start, k.end) for k in values])  # a weaker overlapping value keeps its other part
        else:
            values.append(v)
    regions = sorted((s for s in spans if s.type in _REGION_TYPES), key=lambda s: (s.start, s.end))
    addresses: list[Span] = []
    for s in (r for r in regions if r.type == "ADDRESS"):
        last = addresses[-1] if addresses else None
        if last is not None and (s.start <= last.end or (s.start - last.end <= 3 and not text[last.end : s.start].strip(" \t\r\n,"))):
            addresses[-1] = Span(last.start, max(last.end, s.end), "ADDRESS", max(last.score, s.score))
        else:
            addresses.append(s)
    named: list[Span] = []
    for s in (r for r in regions if r.type != "ADDRESS"):
        inside = sum(max(0, min(s.end, a.end) - max(s.start, a.start)) for a in addresses)
        if inside * 2 >= s.end - s.start:
            i = next(k for k, a in enumerate(addresses) if a.start < s.end and s.start < a.end)
            a = addresses[i]
            addresses[i] = Span(min(a.start, s.start), max(a.end, s.end), "ADDRESS", max(a.score, s.score))
            continue
        last = named[-1] if named else None
        if last is not None and last.type == s.type and s.start < last.end:
            named[-1] = Span(last.start, max(last.end, s.end), s.type, max(last.score, s.score))
        else:
            named.append(s)
    out: list[Span] = list(values)
    taken = [(v.start, v.end) for v in values]
    for group in (addresses, [n for n in named if n.type == "PERSON"], [n for n in named if n.type == "LOCATION"]):
        for s in group:
            for part in _cut(text, s, taken):
                out.append(part)
                taken.append((part.start, part.end))
    out.sort(key=lambda s: (s.start, s.end))
    return out


# ---------------------------------------------------------------------- finding


def _snippet(redacted: str, span: tuple[int, int], context: int) -> str:
    s, e = span
    lo, hi = max(0, s - context), min(len(redacted), e + context)
    return ("…" if lo > 0 else "") + redacted[lo:hi].replace("\n", " ") + ("…" if hi < len(redacted) else "")


def pii_finding(
    subject: Subject,
    event_id: str,
    results_by_field: Mapping[str, PiiResult],
    occurred_at: datetime | None = None,
    *,
    snippet_context: int = 24,
    max_snippets_per_field: int = 5,
    kind: str = "pii_detected",
) -> Finding | None:
    """One ``pii_detected`` finding (or of ``kind``) for an event, or None when no field holds PII.

    Evidence holds entity types with counts (overall and per field) and a few short
    snippets of the *redacted* text around each entity, never a raw value. Severity
    follows :func:`severity_for`; score is the highest entity score.
    """
    fields: dict[str, Any] = {}
    totals: Counter[str] = Counter()
    best = 0.0
    for name, res in results_by_field.items():
        if not res.entities:
            continue
        counts = res.counts()
        totals.update(counts)
        best = max(best, max(e.score for e in res.entities))
        snippets = [
            {"type": ent.type, "text": _snippet(res.redacted, off, snippet_context)}
            for ent, off in list(zip(res.entities, res.redacted_offsets))[:max_snippets_per_field]
        ]
        fields[name] = {"counts": counts, "snippets": snippets}
    if not totals:
        return None
    types = set(totals)
    summary = "PII detected: " + ", ".join(f"{n} {t}" for t, n in sorted(totals.items())) + " in " + ", ".join(fields)
    return Finding.create(
        detector="pii",
        kind=kind,
        subject=subject,
        severity=severity_for(types),
        score=round(best, 4),
        summary=summary,
        evidence={"entity_types": sorted(types), "counts": dict(sorted(totals.items())), "fields": fields},
        event_id=event_id,
        occurred_at=occurred_at,
    )
