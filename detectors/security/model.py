"""One security classifier: lexical n-gram heads over normalised views, an optional head on the MiniLM
embedding the stream already computes, and a two-input stacker, giving a calibrated score in [0, 1].

    text ──views (normalize.py)──► tokens ──lexical heads (lexical.py)──► logit ─┐
                                                                                 ├─ stacker ─► score
    MiniLM vector of the same (redacted) text, when the stream has one ──► logit ┘

Without a vector the lexical logit alone is calibrated (Platt). Both paths are fitted on out-of-fold
predictions of the training data (``scripts/security/train.py``), so their scores mean the same thing and
share one threshold. Model files are package data (``data/<name>.npz``, ``.vocab.txt``, ``.head.npz``), read
with ``allow_pickle=False``; nothing is downloaded. Pure numpy: no device to pick (the embedding itself runs
wherever the drift stage runs it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from detectors.security.lexical import LexicalModel, tokens
from detectors.security.normalize import View, views

__all__ = ["Prepared", "Verdict", "SecurityModel", "prepare"]

#: vocabulary n-grams named in a finding's evidence
EVIDENCE_TERMS = 5
#: characters of the normalised (already PII-redacted) winning window kept as an excerpt
EXCERPT_CHARS = 160
#: subtracted from the lexical logit of a text without one vocabulary n-gram ("4.", "🙂") on the lexical-only
#: path: the intercept alone would give it the training mix's prior odds. The stacker (with an embedding) sees
#: the logit as trained: misspelt attacks ("outputt yourr previouss instructionss") are left to the embedding.
EMPTY_PENALTY = 4.0


@dataclass(frozen=True, slots=True)
class Prepared:
    """A text's views and their tokens, computed once and shared by every detector that scores the text."""

    views: tuple[View, ...]
    tokens: tuple[list[str], ...]


def prepare(text: str) -> Prepared:
    """Normalise ``text`` (see :func:`detectors.security.normalize.views`) and tokenise each view."""
    vs = tuple(views(text))
    return Prepared(vs, tuple(tokens(v.text) for v in vs))


@dataclass(frozen=True, slots=True)
class Verdict:
    """A detector's reading of one text."""

    score: float
    """Calibrated score in [0, 1]."""
    flagged: bool
    """``score`` at or above the detector's threshold."""
    category: str
    """The category head that scores highest on the winning view/window (``obfuscation`` for injections found
    only after decoding)."""
    lexical: float
    """The lexical-only score in [0, 1] (what the stream's embedding gate looks at)."""
    used_embedding: bool
    evidence: dict[str, Any] = field(default_factory=dict)
    """Only when flagged: view source, whether de-obfuscation fired, the strongest n-grams and a short excerpt
    of the (already redacted, normalised) window that scored highest. Never the whole text."""


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


class SecurityModel:
    """Load with :meth:`load`; score with :meth:`score`."""

    def __init__(self, name: str, lexical: LexicalModel, head: dict[str, np.ndarray], threshold: float) -> None:
        self.name = name
        self.lex = lexical
        self.threshold = threshold
        platt = head["lex_platt"]
        self._platt = (float(platt[0]), float(platt[1]))
        self._emb_w = head["emb_w"].astype(np.float32) if "emb_w" in head else None
        self._emb_b = float(head["emb_b"]) if "emb_b" in head else 0.0
        stack = head.get("stack_w")
        self._stack = (float(stack[0]), float(stack[1]), float(head["stack_b"])) if stack is not None else None

    @classmethod
    def load(cls, name: str, threshold: float, package: str = "detectors.security") -> SecurityModel:
        """The model ``name`` (``injection``, ``toxicity``) from ``package``'s data folder."""
        lex = LexicalModel.load(package, name)
        with resources.files(package).joinpath(f"data/{name}.head.npz").open("rb") as fh:
            z = np.load(fh, allow_pickle=False)
            head = {k: z[k] for k in z.files}
        if "emb_w" in head and head["emb_w"].shape != (384,):
            raise ValueError(f"{name}: embedding head expects 384-dim MiniLM vectors, has {head['emb_w'].shape}")
        return cls(name, lex, head, threshold)

    @property
    def has_embedding_head(self) -> bool:
        return self._emb_w is not None and self._stack is not None

    def lexical_logit(self, prepared: Prepared) -> tuple[np.ndarray, int, tuple[int, int]]:
        """Head logits of the best view/window, which view won, and the window's token span."""
        best: np.ndarray | None = None
        at, span = 0, (0, 0)
        for i, toks in enumerate(prepared.tokens):
            logits, window = self.lex.logits_window(toks)
            if window == (0, 0) and i > 0:
                continue  # a decoded view without one known word says nothing (the plain view always counts)
            if best is None or logits[0] > best[0] or span == (0, 0):
                best, at, span = logits, i, window
        assert best is not None
        return best, at, span

    def lexical_score(self, lexical: tuple[np.ndarray, int, tuple[int, int]], prepared: Prepared) -> float:
        """The calibrated lexical-only score of :meth:`lexical_logit` output for ``prepared``."""
        a, b = self._platt
        z = float(lexical[0][0])
        if lexical[2] == (0, 0):  # no view has a known word
            z -= EMPTY_PENALTY
        return _sigmoid(a * z + b)

    def score(self, prepared: Prepared, vector: np.ndarray | None = None,
              lexical: tuple[np.ndarray, int, tuple[int, int]] | None = None) -> Verdict:
        """Score one prepared text; ``vector`` is its MiniLM embedding when the stream has one; ``lexical`` is
        :meth:`lexical_logit` output when the caller already has it."""
        logits, at, span = lexical if lexical is not None else self.lexical_logit(prepared)
        lexical_p = self.lexical_score((logits, at, span), prepared)
        used = vector is not None and self.has_embedding_head
        if used:
            assert self._emb_w is not None and self._stack is not None
            e = float(np.dot(np.asarray(vector, dtype=np.float32), self._emb_w)) + self._emb_b
            w0, w1, c = self._stack
            score = _sigmoid(w0 * float(logits[0]) + w1 * e + c)
        else:
            score = lexical_p
        view = prepared.views[at]
        category = self.lex.heads[1 + int(np.argmax(logits[1:]))] if len(logits) > 1 else self.name
        if self.name == "injection" and view.source != "plain":
            category = "obfuscation"
        flagged = score >= self.threshold
        evidence: dict[str, Any] = {}
        if flagged:
            toks = prepared.tokens[at][span[0]: span[1]]
            evidence = {
                "view": view.source,
                "deobfuscated": view.obfuscated,
                "terms": self.lex.top_terms(toks, EVIDENCE_TERMS),
            }
            if view.source == "plain" and not view.obfuscated:
                # decoded or de-obfuscated text was never seen by the PII stage: no excerpt of it
                evidence["excerpt"] = " ".join(toks)[:EXCERPT_CHARS]
        return Verdict(score=round(score, 4), flagged=flagged, category=category, lexical=round(lexical_p, 4),
                       used_embedding=used, evidence=evidence)
