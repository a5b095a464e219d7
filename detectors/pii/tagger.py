"""The PII token tagger: names, places and street addresses in free text (ONNX, CPU, no Presidio).

A small convolutional tagger over MiniLM word-piece embeddings (folded into an int8 table) plus
per-word features: shape (lower, Title, UPPER, mixed, digits, other script), sentence and line starts,
whole-text casing (all lower / all upper, so casing is not trusted where a text has none), handles
and hashtags, nearby numbers, and gazetteer codes (first/last names, cities, countries, regions, street
words, titles, particles; single words and multi-word phrases). Labels: O, PERSON, LOCATION, ADDRESS.

The model and the gazetteer are package data (``data/pii_tagger.onnx``, ``data/gazetteer.txt.gz``,
``data/wordpiece_vocab.txt``), built by ``scripts/pii_train_tagger.py`` and ``scripts/build_pii_gazetteer.py``.
Pure: no I/O beyond reading package data once, no network.
"""
from __future__ import annotations

import gzip
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from detectors.onnx import onnx_providers

__all__ = ["LABELS", "N_FEATS", "Encoded", "Featurizer", "Gazetteer", "Tagger", "TaggedSpan", "WordPiece", "words"]

LABELS: tuple[str, ...] = ("O", "PERSON", "LOCATION", "ADDRESS")
"""Tagger classes (index = model output column)."""

WORD = re.compile(r"[^\W_]+(?:['’\-.][^\W_]+)*|[^\w\s]|_+", re.UNICODE)
"""A word: letters/digits with inner apostrophes, hyphens or dots; or one other non-space character."""

GAZ_CODES = "FfLlCBNRSTP"
"""Gazetteer codes: First name, frequent first name, Last name, frequent last name, City, Big city,
Nation (country or continent), Region, Street word, Title, Particle."""

# feature bit layout
F_SHAPE = 0  # 8 shape slots: lower, Title, UPPER, mixed, digits, alnum, other script, punctuation
F_SENT, F_LINE, F_CONT, F_ALLLOW, F_ALLUP = 8, 9, 10, 11, 12
F_GAZ = 13
F_PHR = F_GAZ + len(GAZ_CODES)
F_PREV_T = F_PHR + len(GAZ_CODES)
F_NEXT_S = F_PREV_T + 1
F_NUM_NEAR = F_NEXT_S + 1
F_HANDLE = F_NUM_NEAR + 1
N_FEATS = F_HANDLE + 1
"""Number of per-piece features."""

_SENT_END = frozenset(".!?")
_LETTER = re.compile(r"[^\W\d_]")
_SHIFTS = np.arange(N_FEATS, dtype=np.int64)[None, :]
_WINDOW_OVERLAP = 64  # pieces shared by consecutive windows of a text longer than Tagger.max_pieces


def words(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, word)`` for every word of ``text`` (see :data:`WORD`)."""
    return [(m.start(), m.end(), m.group()) for m in WORD.finditer(text)]


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0xF900 <= cp <= 0xFAFF
            or 0x3040 <= cp <= 0x30FF or 0xAC00 <= cp <= 0xD7AF)


class WordPiece:
    """Greedy longest-match WordPiece over a BERT (uncased) vocabulary: lower case, accents stripped, CJK per character."""

    def __init__(self, vocab: Sequence[str]):
        self.vocab = {w: i for i, w in enumerate(vocab)}
        self.unk = self.vocab["[UNK]"]

    def pieces(self, word: str) -> tuple[int, ...]:
        """Piece ids of one word (at least one id)."""
        w = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        chunks: list[str] = []
        buf = ""
        for ch in w:
            if _is_cjk(ord(ch)):
                if buf:
                    chunks.append(buf)
                    buf = ""
                chunks.append(ch)
            else:
                buf += ch
        if buf:
            chunks.append(buf)
        out: list[int] = []
        vocab = self.vocab
        for chunk in chunks:
            if len(chunk) > 40:
                out.append(self.unk)
                continue
            start = 0
            sub: list[int] = []
            while start < len(chunk):
                end = len(chunk)
                cur = None
                while start < end:
                    cur = vocab.get(chunk[start:end] if start == 0 else "##" + chunk[start:end])
                    if cur is not None:
                        break
                    end -= 1
                if cur is None:
                    sub = [self.unk]
                    break
                sub.append(cur)
                start = end
            out.extend(sub)
        return tuple(out) or (self.unk,)


class Gazetteer:
    """Lower-cased phrase -> code bits (:data:`GAZ_CODES`); single words and multi-word phrases apart."""

    def __init__(self, lines: Sequence[str]):
        bit = {c: 1 << i for i, c in enumerate(GAZ_CODES)}
        self.single: dict[str, int] = {}
        self.phrases: dict[str, int] = {}
        self.first_words: dict[str, int] = {}
        for line in lines:
            if not line or line.startswith("#"):
                continue
            key, _, codes = line.partition("\t")
            v = 0
            for c in codes:
                v |= bit.get(c, 0)
            if " " in key:
                self.phrases[key] = v
                parts = key.split(" ")
                self.first_words[parts[0]] = max(self.first_words.get(parts[0], 0), len(parts))
            else:
                self.single[key] = v

    def codes(self, phrase: str) -> str:
        """The codes of one lower-cased phrase ("" when unknown)."""
        v = self.phrases.get(phrase, self.single.get(phrase, 0))
        return "".join(c for i, c in enumerate(GAZ_CODES) if v >> i & 1)


def _shape(w: str) -> int:
    core = w.replace("'", "").replace("’", "").replace("-", "").replace(".", "")
    if core.isalpha():
        if not w.isascii() and not any("LATIN" in unicodedata.name(c, "") for c in w[:2]):
            return 6
        if core.islower():
            return 0
        if core.isupper():
            return 2 if len(core) > 1 else 1
        if core[0].isupper() and (core[1:].islower() or len(core) == 1):
            return 1
        return 3
    if w.isdigit():
        return 4
    if any(c.isalnum() for c in w):
        return 5
    return 7


@dataclass(frozen=True, slots=True)
class Encoded:
    """Model inputs of one text: piece ids, piece features, the word of each piece, word offsets."""

    ids: np.ndarray
    feats: np.ndarray
    piece_word: np.ndarray
    words: list[tuple[int, int]]


class Featurizer:
    """Text -> :class:`Encoded` (the same code at training and at run time)."""

    def __init__(self, wordpiece: WordPiece, gazetteer: Gazetteer, cache_size: int = 100_000):
        self.wp = wordpiece
        self.gaz = gazetteer
        self.cache_size = cache_size
        self._cache: dict[str, tuple[int, tuple[int, ...], str]] = {}

    def _static(self, w: str) -> tuple[int, tuple[int, ...], str]:
        got = self._cache.get(w)
        if got is not None:
            return got
        low = w.lower().replace("’", "'")
        m = 1 << (F_SHAPE + _shape(w))
        v = self.gaz.single.get(low)
        if v is None and low.endswith(".") and len(low) > 1:
            v = self.gaz.single.get(low[:-1])
        if v:
            m |= v << F_GAZ
        got = (m, self.wp.pieces(w), low)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[w] = got
        return got

    def encode(self, text: str) -> Encoded:
        """Features of one text."""
        found = [(m.span(), m.group()) for m in WORD.finditer(text)]
        n = len(found)
        base = 0
        if text.lower() == text:
            if text.upper() != text:
                base |= 1 << F_ALLLOW
        elif len(text) >= 6:
            letters = _LETTER.findall(text)
            up = sum(map(str.isupper, letters))
            if up >= 6 and up > 4 * (len(letters) - up):
                base |= 1 << F_ALLUP
        static = self._static
        stat = [static(w) for _, w in found]
        masks = [st[0] | base for st in stat]
        lows = [st[2] for st in stat]
        has_nl = "\n" in text
        sent, line, handle = 1 << F_SENT, 1 << F_LINE, 1 << F_HANDLE
        prev_end = 0
        prev_word = ""
        for i in range(n):
            (s, e), _w = found[i]
            if i == 0:
                masks[0] |= sent | line
            else:
                if prev_word in _SENT_END:
                    masks[i] |= sent
                if has_nl and "\n" in text[prev_end:s]:
                    masks[i] |= line | sent
            if s > 0 and text[s - 1] in "@#/." and (s < 2 or not text[s - 2].isspace() or text[s - 1] in "@#"):
                masks[i] |= handle
            prev_end, prev_word = e, _w
        numeric = [w.isdigit() for _, w in found]
        if any(numeric):
            for i in range(n):
                if numeric[max(0, i - 2):i + 3].count(True) > (1 if numeric[i] else 0):
                    masks[i] |= 1 << F_NUM_NEAR
        fw, phrases = self.gaz.first_words, self.gaz.phrases
        for i in range(n):
            k = fw.get(lows[i])
            if not k:
                continue
            for length in range(min(k, n - i), 1, -1):
                v = phrases.get(" ".join(lows[i:i + length]))
                if v:
                    for j in range(i, i + length):
                        masks[j] |= v << F_PHR
                    break
        t_bit = 1 << (F_GAZ + GAZ_CODES.index("T"))
        s_bit = 1 << (F_GAZ + GAZ_CODES.index("S"))
        for i in range(1, n):
            if masks[i - 1] & t_bit:
                masks[i] |= 1 << F_PREV_T
            if masks[i] & s_bit:
                masks[i - 1] |= 1 << F_NEXT_S
        ids: list[int] = []
        pm: list[int] = []
        pw: list[int] = []
        cont = 1 << F_CONT
        for i in range(n):
            p = stat[i][1]
            ids.extend(p)
            m = masks[i]
            pm.append(m)
            pw.append(i)
            if len(p) > 1:
                pm.extend([m | cont] * (len(p) - 1))
                pw.extend([i] * (len(p) - 1))
        arr = np.array(pm, dtype=np.int64).reshape(-1, 1)
        feats = ((arr >> _SHIFTS) & 1).astype(np.float32)
        return Encoded(np.array(ids, dtype=np.int64), feats, np.array(pw, dtype=np.int64), [sp for sp, _ in found])


@dataclass(frozen=True, slots=True)
class TaggedSpan:
    """One tagged span: offsets, label, confidence (highest 1 - P(O) among its words)."""

    start: int
    end: int
    label: str
    score: float


def _read(package: str, name: str) -> bytes:
    raw = resources.files(package).joinpath(name).read_bytes()
    return gzip.decompress(raw) if name.endswith(".gz") else raw


class Tagger:
    """ONNX tagger over batches of texts (callers serialise calls: the word cache is a plain dict); on CUDA when
    ONNX Runtime has it (``device`` None), or on ``device``."""

    def __init__(self, package: str = "detectors.pii", max_pieces: int = 256,
                 model: str = "data/pii_tagger.onnx", vocab: str = "data/wordpiece_vocab.txt",
                 gazetteer: str = "data/gazetteer.txt.gz", threads: int = 1, device: str | None = None):
        import onnxruntime as ort

        self.max_pieces = max_pieces
        self.featurizer = Featurizer(WordPiece(_read(package, vocab).decode("utf-8").splitlines()),
                                     Gazetteer(_read(package, gazetteer).decode("utf-8").splitlines()))
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(_read(package, model), so, providers=onnx_providers(device))

    def probabilities(self, encoded: Sequence[Encoded]) -> list[np.ndarray]:
        """Per-piece class probabilities of each encoded text, one ONNX call per text.

        One text per call on purpose: the int8 model quantizes its activations with a scale computed over the
        whole input tensor, so in a batch a text's output would depend on the texts beside it. Alone, the
        same text always gets the same answer (and small inputs stay in cache: per text this is about as
        fast as batches of ~400 pieces and twice as fast as batches of 4,000 on one core).
        """
        out: list[np.ndarray] = []
        run = self.session.run
        w = self.max_pieces
        for enc in encoded:
            n = len(enc.ids)
            if n <= w:
                out.append(run(None, {"ids": enc.ids[None], "feats": enc.feats[None]})[0][0] if n else
                           np.zeros((0, len(LABELS)), np.float32))
                continue
            # a long text: overlapping windows; each piece is read from the window where it has most context
            probs = np.zeros((n, len(LABELS)), np.float32)
            half = _WINDOW_OVERLAP // 2
            start = 0
            while True:
                end = min(n, start + w)
                got = run(None, {"ids": enc.ids[None, start:end], "feats": enc.feats[None, start:end]})[0][0]
                lo = 0 if start == 0 else half
                probs[start + lo : end] = got[lo:]
                if end == n:
                    break
                start = end - _WINDOW_OVERLAP
            out.append(probs)
        return out

    @staticmethod
    def spans(enc: Encoded, probs: np.ndarray, threshold: float) -> list[TaggedSpan]:
        """Word-level spans: a word takes the label of its most entity-like piece when 1 - P(O) >= ``threshold``;
        adjacent words with the same label form one span."""
        nw = len(enc.words)
        if not nw or not len(probs):
            return []
        ent = 1.0 - probs[:, 0]
        best = np.zeros(nw, np.float32)
        lab = np.zeros(nw, np.int64)
        pw = enc.piece_word[: len(probs)]
        cls = probs[:, 1:].argmax(axis=1) + 1
        for k in np.nonzero(ent >= threshold)[0]:
            w = pw[k]
            if ent[k] > best[w]:
                best[w] = ent[k]
                lab[w] = cls[k]
        out: list[TaggedSpan] = []
        i = 0
        while i < nw:
            if lab[i] == 0:
                i += 1
                continue
            j = i
            while j + 1 < nw and lab[j + 1] == lab[i]:
                j += 1
            out.append(TaggedSpan(enc.words[i][0], enc.words[j][1], LABELS[lab[i]], round(float(best[i:j + 1].max()), 4)))
            i = j + 1
        return out

    def tag_batch(self, texts: Sequence[str], threshold: float = 0.1) -> list[list[TaggedSpan]]:
        """Tagged spans of each text."""
        encs = [self.featurizer.encode(t) for t in texts]
        probs = self.probabilities(encs)
        return [self.spans(e, p, threshold) for e, p in zip(encs, probs)]
