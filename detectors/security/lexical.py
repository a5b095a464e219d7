"""A linear model over word n-grams of a normalised text: the detectors' cheap, always-on scorer.

Features: the word unigrams and bigrams of a view (see :mod:`.normalize`), looked up in a fixed vocabulary,
present/absent, L2-normalised. Several heads share the features: head 0 is the detector's own score (a logit),
the others score its categories. A long text is scored as a whole and in overlapping windows (``window`` tokens,
half-overlapping), and the highest logit wins, so an instruction buried in a long retrieved document is not
diluted by the document around it.

The model is package data: ``<name>.vocab.txt`` (one n-gram a line, line number = feature index) and
``<name>.npz`` (``weights`` (heads, features) float32, ``bias`` (heads,), ``heads`` names, ``window``), loaded
with ``allow_pickle=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from itertools import repeat

import numpy as np

__all__ = ["LexicalModel", "tokens", "ngrams"]

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[^\w\s]{3,4}|[\[\]<>|{}#`=%]")


def tokens(text: str) -> list[str]:
    """Word tokens and structural punctuation (runs of 3+ symbols such as ``###`` or ``<|e``, and single brackets,
    pipes, hashes, backticks) of an already normalised (lower-case) text. Sentence punctuation and numbers are
    left out: they say more about a corpus's style than about an attack."""
    return _TOKEN.findall(text)


def ngrams(toks: list[str], lexicon: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Unigrams and bigrams (joined by a space) of a token list, plus the lexicon tags of its words
    (``__sev_strong``, ``__cat_sexual``...: they carry a word list's knowledge to words the training data lacks)."""
    grams = toks + [f"{a} {b}" for a, b in zip(toks, toks[1:])]
    if lexicon:
        grams += [tag for t in toks for tag in lexicon.get(t, ())]
    return grams


@dataclass
class LexicalModel:
    """Vocabulary + linear heads; :meth:`logits` scores one view."""

    vocab: dict[str, int]
    weights: np.ndarray
    """(heads, features) float32."""
    bias: np.ndarray
    heads: tuple[str, ...]
    window: int = 64
    lexicon: dict[str, tuple[str, ...]] | None = None
    _by_index: list[str] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, package: str, name: str) -> LexicalModel:
        """Load ``data/<name>.vocab.txt`` and ``data/<name>.npz`` from ``package``."""
        root = resources.files(package).joinpath("data")
        words = root.joinpath(f"{name}.vocab.txt").read_text(encoding="utf-8").split("\n")
        if words and words[-1] == "":
            words.pop()
        with root.joinpath(f"{name}.npz").open("rb") as fh:
            arrays = np.load(fh, allow_pickle=False)
            weights = arrays["weights"].astype(np.float32)
            bias = arrays["bias"].astype(np.float32)
            heads = tuple(str(h) for h in arrays["heads"])
            window = int(arrays["window"])
        if weights.shape != (len(heads), len(words)):
            raise ValueError(f"{name}: weights {weights.shape} do not match {len(heads)} heads x {len(words)} words")
        lexicon = None
        lex_file = root.joinpath(f"{name}.lexicon.tsv")
        if lex_file.is_file():
            lexicon = {}
            for line in lex_file.read_text(encoding="utf-8").splitlines():
                if line and not line.startswith("#"):
                    word, tags = line.split("\t")
                    lexicon[word] = tuple(tags.split(","))
        return cls({w: i for i, w in enumerate(words)}, weights, bias, heads, window, lexicon)

    def occurrences(self, toks: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The vocabulary n-grams of ``toks``: their start positions and feature indices (unigrams, then
        bigrams, then lexicon tags; not sorted by position)."""
        get = self.vocab.get
        n = len(toks)
        uni = np.fromiter(map(get, toks, repeat(-1, n)), dtype=np.int64, count=n)
        bi = np.fromiter(map(get, map(" ".join, zip(toks, toks[1:])), repeat(-1, max(0, n - 1))),
                         dtype=np.int64, count=max(0, n - 1))
        pos = np.arange(n, dtype=np.int64)
        rows = [pos[uni >= 0], pos[: n - 1][bi >= 0]]
        cols = [uni[uni >= 0], bi[bi >= 0]]
        lexicon = self.lexicon
        if lexicon is not None and not lexicon.keys().isdisjoint(toks):
            tag_rows, tag_cols = [], []
            for p, t in enumerate(toks):
                for tag in lexicon.get(t, ()):
                    i = get(tag)
                    if i is not None:
                        tag_rows.append(p)
                        tag_cols.append(i)
            rows.append(np.asarray(tag_rows, dtype=np.int64))
            cols.append(np.asarray(tag_cols, dtype=np.int64))
        return np.concatenate(rows), np.concatenate(cols)

    def logits(self, text: str) -> np.ndarray:
        """Per-head logits of one normalised view: the whole text's, or a window's where that is higher on head 0.

        A feature counts once per occurrence; a text's (or window's) score is the sum of its occurrences'
        weights over the square root of their number, plus the bias."""
        return self.logits_tokens(tokens(text))

    def logits_tokens(self, toks: list[str]) -> np.ndarray:
        """:meth:`logits` of an already tokenised view."""
        return self.logits_window(toks)[0]

    def logits_window(self, toks: list[str]) -> tuple[np.ndarray, tuple[int, int]]:
        """:meth:`logits_tokens` and the token span (start, end) of the winning window; a text without one
        vocabulary n-gram gets the intercepts and the span (0, 0)."""
        rows, cols = self.occurrences(toks)
        if rows.size == 0:
            return self.bias.astype(np.float64), (0, 0)
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
        cs = np.zeros((self.weights.shape[0], rows.size + 1), dtype=np.float64)
        np.cumsum(self.weights[:, cols], axis=1, out=cs[:, 1:])
        n = len(toks)
        win = self.window
        if n > win:
            starts = np.arange(0, n - win // 2, win // 2)
            s_idx = np.concatenate([[0], starts])
            e_idx = np.concatenate([[n], np.minimum(starts + win, n)])
        else:
            s_idx, e_idx = np.array([0]), np.array([n])
        a = np.searchsorted(rows, s_idx, "left")
        b = np.searchsorted(rows, e_idx, "left")
        sums = cs[:, b] - cs[:, a]
        scores = sums / np.sqrt(np.maximum(b - a, 1)) + self.bias[:, None]
        best = int(np.argmax(scores[0]))
        return scores[:, best], (int(s_idx[best]), int(e_idx[best]))

    def top_terms(self, toks: list[str], k: int) -> list[str]:
        """The ``k`` vocabulary n-grams of ``toks`` that push head 0 up the most (for evidence)."""
        rows, cols = self.occurrences(toks)
        if cols.size == 0:
            return []
        uniq = np.unique(cols)
        w = self.weights[0, uniq]
        order = np.argsort(-w)[:k]
        words = self._words()
        return [words[int(uniq[i])] for i in order if w[i] > 0]

    def _words(self) -> list[str]:
        if self._by_index is None:
            self._by_index = [""] * len(self.vocab)
            for g, i in self.vocab.items():
                self._by_index[i] = g
        return self._by_index
