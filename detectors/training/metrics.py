"""Evaluation metrics Warden computes itself from predictions and references (no download at run time).

* :func:`corpus_bleu` / :func:`sentence_bleu` — BLEU (Papineni et al., 2002) with sacrebleu's defaults:
  4-gram precisions clipped by the maximum count over references, brevity penalty against the
  closest reference length (shorter one on ties), the ``13a`` tokeniser (mteval-v13a, as WMT uses),
  case-sensitive; corpus BLEU unsmoothed-where-it-matters (``exp`` smoothing, no effective order),
  sentence BLEU with ``exp`` smoothing and effective order. Scores are on sacrebleu's 0..100 scale.
  :func:`bleu_stats` gives the additive per-segment statistics, so corpus BLEU of any resample of the
  segments (paired bootstrap) is one sum away (:func:`bleu_from_stats`).
* :func:`rouge_l` — ROUGE-L precision/recall/F-measure from the longest common subsequence, tokenised
  as rouge-score does by default (lowercase, every run of non-``[a-z0-9]`` characters is a separator, no
  stemming); :func:`rouge_l_multi` takes the best F over several references (rouge-score's
  ``score_multi``).
* :func:`token_f1` / :func:`exact_match` — as SQuAD v1.1's ``evaluate-v1.1.py`` defines them (normalise:
  lowercase, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace; max over the
  ground truths).
* :func:`perplexity` — ``exp`` of the mean token negative log-likelihood (natural log), and
  :func:`perplexity_from_losses` for per-batch mean losses weighted by their token counts.
* :func:`score_predictions` — all of the above for one evaluation set, with per-item scores (the input
  of the paired significance test in :mod:`detectors.training.regression`).

Pure stdlib + numpy.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "BleuScore",
    "RougeScore",
    "MetricScores",
    "MAX_NGRAM_ORDER",
    "tokenize_13a",
    "bleu_stats",
    "bleu_from_stats",
    "corpus_bleu",
    "sentence_bleu",
    "rouge_tokenize",
    "lcs_length",
    "rouge_l",
    "rouge_l_multi",
    "normalize_answer",
    "token_f1",
    "exact_match",
    "perplexity",
    "perplexity_from_losses",
    "score_predictions",
]

MAX_NGRAM_ORDER = 4
_SMOOTH_METHODS = ("none", "exp", "floor", "add-k")
_SMOOTH_DEFAULTS = {"none": None, "exp": None, "floor": 0.1, "add-k": 1}

# ---- BLEU ----------------------------------------------------------------------------------------

# mteval-v13a's language-dependent rules (sacrebleu's TokenizerRegexp), applied in this order
_13A_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),  # symbols and punctuation (not . , -)
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period and comma unless preceded by a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period and comma unless followed by a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash when preceded by a digit
)


@lru_cache(maxsize=2**14)
def tokenize_13a(line: str) -> str:
    """Tokenise one segment as mteval-v13a (sacrebleu's default ``13a``); tokens joined by one space."""
    line = line.rstrip()
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = f" {line} "
    for pattern, repl in _13A_RULES:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def _ngrams(tokens: Sequence[str], max_order: int) -> Counter[tuple[str, ...]]:
    out: Counter[tuple[str, ...]] = Counter()
    for n in range(1, max_order + 1):
        for i in range(len(tokens) - n + 1):
            out[tuple(tokens[i : i + n])] += 1
    return out


def _closest_ref_len(hyp_len: int, ref_lens: Iterable[int]) -> int:
    best_diff, best_len = -1, -1
    for r in ref_lens:
        d = abs(hyp_len - r)
        if best_diff == -1 or d < best_diff or (d == best_diff and r < best_len):
            best_diff, best_len = d, r
    return best_len


def bleu_stats(
    hypothesis: str,
    references: Sequence[str],
    *,
    lowercase: bool = False,
    tokenize: bool = True,
    max_order: int = MAX_NGRAM_ORDER,
) -> list[int]:
    """Additive statistics of one segment: ``[hyp_len, ref_len, correct_1..n, total_1..n]``.

    Summing these over segments and calling :func:`bleu_from_stats` gives corpus BLEU.
    ``tokenize=False`` splits on whitespace only (text already tokenised).
    """
    if not references:
        raise ValueError("a segment needs at least one reference")

    def prep(s: str) -> list[str]:
        if lowercase:
            s = s.lower()
        return (tokenize_13a(s) if tokenize else s.rstrip()).split()

    ref_counts: Counter[tuple[str, ...]] = Counter()
    ref_lens: list[int] = []
    for ref in references:
        toks = prep(ref)
        ref_lens.append(len(toks))
        for g, c in _ngrams(toks, max_order).items():
            if c > ref_counts[g]:
                ref_counts[g] = c
    hyp = prep(hypothesis)
    correct = [0] * max_order
    total = [0] * max_order
    for g, c in _ngrams(hyp, max_order).items():
        k = len(g) - 1
        total[k] += c
        m = ref_counts.get(g)
        if m:
            correct[k] += min(c, m)
    return [len(hyp), _closest_ref_len(len(hyp), ref_lens), *correct, *total]


@dataclass(frozen=True)
class BleuScore:
    """A BLEU score (0..100) with its parts, as sacrebleu reports them."""

    score: float
    precisions: tuple[float, ...]  # n-gram precisions in percent
    bp: float  # brevity penalty
    sys_len: int
    ref_len: int
    counts: tuple[int, ...]
    totals: tuple[int, ...]

    @property
    def ratio(self) -> float:
        """Hypothesis length over reference length."""
        return self.sys_len / self.ref_len if self.ref_len else 0.0

    def __str__(self) -> str:
        p = "/".join(f"{x:.1f}" for x in self.precisions)
        return (
            f"BLEU = {self.score:.2f} {p} (BP = {self.bp:.3f} ratio = {self.ratio:.3f} "
            f"hyp_len = {self.sys_len} ref_len = {self.ref_len})"
        )


def bleu_from_stats(
    stats: Sequence[float],
    *,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    effective_order: bool = False,
    max_order: int = MAX_NGRAM_ORDER,
) -> BleuScore:
    """BLEU from summed :func:`bleu_stats` (sacrebleu's ``compute_bleu``)."""
    if smooth_method not in _SMOOTH_METHODS:
        raise ValueError(f"unknown smooth_method {smooth_method!r}; expected one of {_SMOOTH_METHODS}")
    if len(stats) != 2 + 2 * max_order:
        raise ValueError(f"expected {2 + 2 * max_order} statistics, got {len(stats)}")
    smooth = float(smooth_value if smooth_value is not None else (_SMOOTH_DEFAULTS[smooth_method] or 0.0))
    sys_len, ref_len = int(stats[0]), int(stats[1])
    correct = [float(x) for x in stats[2 : 2 + max_order]]
    total = [float(x) for x in stats[2 + max_order :]]
    counts, totals = tuple(int(x) for x in correct), tuple(int(x) for x in total)
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1.0 - ref_len / sys_len) if sys_len > 0 else 0.0
    precisions = [0.0] * max_order
    if not any(correct):
        return BleuScore(0.0, tuple(precisions), bp, sys_len, ref_len, counts, totals)
    smooth_mteval = 1.0
    eff_order = max_order
    for n in range(1, max_order + 1):
        if smooth_method == "add-k" and n > 1:
            correct[n - 1] += smooth
            total[n - 1] += smooth
        if total[n - 1] == 0:
            break
        if effective_order:
            eff_order = n
        if correct[n - 1] == 0:
            if smooth_method == "exp":
                smooth_mteval *= 2
                precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1])
            elif smooth_method == "floor":
                precisions[n - 1] = 100.0 * smooth / total[n - 1]
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    log_sum = sum(math.log(p) if p > 0 else -9999999999.0 for p in precisions[:eff_order])
    score = bp * math.exp(log_sum / eff_order)
    return BleuScore(score, tuple(precisions), bp, sys_len, ref_len, counts, totals)


def _transpose_refs(references: Sequence[Sequence[str]] | Sequence[str], n: int) -> list[list[str]]:
    """Per-segment reference lists from sacrebleu's layout (one stream per reference set)."""
    streams: list[list[str]]
    if references and isinstance(references[0], str):
        streams = [[str(r) for r in references]]
    else:
        streams = [list(s) for s in references]
    for s in streams:
        if len(s) != n:
            raise ValueError("every reference stream must have one segment per hypothesis")
    return [[s[i] for s in streams if s[i] is not None] for i in range(n)]


def corpus_bleu(
    hypotheses: Sequence[str],
    references: Sequence[Sequence[str]] | Sequence[str],
    *,
    lowercase: bool = False,
    tokenize: bool = True,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    effective_order: bool = False,
) -> BleuScore:
    """Corpus BLEU with sacrebleu's defaults.

    ``references`` follows sacrebleu's layout: a list of reference *streams*, each with one segment per
    hypothesis (``[[ref1_seg1, ref1_seg2, ...], [ref2_seg1, ...]]``); a flat list of strings is taken as
    one stream.
    """
    refs = _transpose_refs(references, len(hypotheses))
    tot = np.zeros(2 + 2 * MAX_NGRAM_ORDER, dtype=np.int64)
    for hyp, rs in zip(hypotheses, refs):
        tot += np.asarray(bleu_stats(hyp, rs, lowercase=lowercase, tokenize=tokenize), dtype=np.int64)
    return bleu_from_stats(
        tot.tolist(), smooth_method=smooth_method, smooth_value=smooth_value, effective_order=effective_order
    )


def sentence_bleu(
    hypothesis: str,
    references: Sequence[str],
    *,
    lowercase: bool = False,
    tokenize: bool = True,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    effective_order: bool = True,
) -> BleuScore:
    """Sentence BLEU (sacrebleu's ``sentence_bleu`` defaults: ``exp`` smoothing, effective order)."""
    return bleu_from_stats(
        bleu_stats(hypothesis, references, lowercase=lowercase, tokenize=tokenize),
        smooth_method=smooth_method,
        smooth_value=smooth_value,
        effective_order=effective_order,
    )


# ---- ROUGE-L -------------------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokenize(text: str) -> list[str]:
    """rouge-score's default tokeniser: lowercase, runs of non-``[a-z0-9]`` are separators, no stemming."""
    return [t for t in _NON_ALNUM.sub(" ", text.lower()).split() if t]


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences (O(len(a)·len(b)) time)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            cur[j] = prev[j - 1] + 1 if x == y else (prev[j] if prev[j] >= cur[j - 1] else cur[j - 1])
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class RougeScore:
    """Precision, recall and F-measure (rouge-score's ``Score``)."""

    precision: float
    recall: float
    fmeasure: float


def rouge_l(target: str, prediction: str) -> RougeScore:
    """ROUGE-L of ``prediction`` against ``target`` (argument order as rouge-score's ``score``)."""
    t, p = rouge_tokenize(target), rouge_tokenize(prediction)
    if not t or not p:
        return RougeScore(0.0, 0.0, 0.0)
    lcs = lcs_length(t, p)
    precision, recall = lcs / len(p), lcs / len(t)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return RougeScore(precision, recall, f)


def rouge_l_multi(targets: Sequence[str], prediction: str) -> RougeScore:
    """The ROUGE-L score with the best F-measure over several targets (rouge-score's ``score_multi``)."""
    if not targets:
        raise ValueError("at least one target is needed")
    best: RougeScore | None = None
    for t in targets:
        s = rouge_l(t, prediction)
        if best is None or s.fmeasure > best.fmeasure:
            best = s
    assert best is not None
    return best


# ---- SQuAD token F1 / exact match -----------------------------------------------------------------

_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 normalisation: lowercase, remove punctuation, remove articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _f1_single(prediction: str, truth: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, ground_truths: str | Sequence[str]) -> float:
    """SQuAD token F1 in [0, 1], the maximum over the ground truths."""
    truths = [ground_truths] if isinstance(ground_truths, str) else list(ground_truths)
    if not truths:
        raise ValueError("at least one ground truth is needed")
    return max(_f1_single(prediction, g) for g in truths)


def exact_match(prediction: str, ground_truths: str | Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised ground truth, else 0.0."""
    truths = [ground_truths] if isinstance(ground_truths, str) else list(ground_truths)
    if not truths:
        raise ValueError("at least one ground truth is needed")
    p = normalize_answer(prediction)
    return 1.0 if any(p == normalize_answer(g) for g in truths) else 0.0


# ---- perplexity -----------------------------------------------------------------------------------


def perplexity(token_nlls: Sequence[float] | np.ndarray) -> float:
    """``exp(mean NLL)`` of per-token negative log-likelihoods in nats; NaN for no tokens or a non-finite NLL."""
    arr = np.asarray(token_nlls, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        return float("nan")
    return float(math.exp(arr.mean()))


def perplexity_from_losses(
    losses: Sequence[float] | np.ndarray, token_counts: Sequence[float] | np.ndarray | None = None
) -> float:
    """Perplexity from per-batch mean losses (nats/token), weighted by each batch's token count.

    Without ``token_counts`` every batch weighs the same (``exp`` of the mean loss).
    """
    loss = np.asarray(losses, dtype=np.float64)
    if loss.size == 0 or not np.all(np.isfinite(loss)):
        return float("nan")
    if token_counts is None:
        return float(math.exp(loss.mean()))
    w = np.asarray(token_counts, dtype=np.float64)
    if w.shape != loss.shape:
        raise ValueError("losses and token_counts differ in length")
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("token counts must be non-negative with a positive sum")
    return float(math.exp(float(np.dot(loss, w) / w.sum())))


# ---- one evaluation set ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricScores:
    """One metric over an evaluation set: the aggregate value and the per-item scores.

    ``value`` is the corpus figure (corpus BLEU for ``bleu``; the mean of ``items`` otherwise). For
    ``bleu`` the items are smoothed sentence BLEU and ``item_stats`` holds the additive statistics
    that let a paired bootstrap recompute corpus BLEU on resamples.
    """

    metric: str
    value: float
    items: tuple[float, ...]
    item_stats: tuple[tuple[int, ...], ...] | None = None


SUPPORTED_METRICS = ("bleu", "rougeL", "f1", "exact_match")


def score_predictions(
    predictions: Sequence[str],
    references: Sequence[str | Sequence[str]],
    metrics: Sequence[str] = SUPPORTED_METRICS,
) -> dict[str, MetricScores]:
    """Score predictions against references (one reference string or a list of them per item).

    ``bleu`` is on the 0..100 scale, ``rougeL``, ``f1`` and ``exact_match`` on 0..1.
    """
    if len(predictions) != len(references):
        raise ValueError("predictions and references differ in length")
    refs = [[r] if isinstance(r, str) else list(r) for r in references]
    unknown = set(metrics) - set(SUPPORTED_METRICS)
    if unknown:
        raise ValueError(f"unsupported metrics {sorted(unknown)}; supported: {SUPPORTED_METRICS}")
    out: dict[str, MetricScores] = {}
    n = len(predictions)
    for m in metrics:
        if m == "bleu":
            stats = [bleu_stats(p, r) for p, r in zip(predictions, refs)]
            items = tuple(bleu_from_stats(s, effective_order=True).score for s in stats)
            total = np.sum(np.asarray(stats, dtype=np.int64), axis=0) if stats else np.zeros(10, dtype=np.int64)
            out[m] = MetricScores(m, bleu_from_stats(total.tolist()).score, items, tuple(tuple(s) for s in stats))
            continue
        if m == "rougeL":
            items = tuple(rouge_l_multi(r, p).fmeasure for p, r in zip(predictions, refs))
        elif m == "f1":
            items = tuple(token_f1(p, r) for p, r in zip(predictions, refs))
        else:
            items = tuple(exact_match(p, r) for p, r in zip(predictions, refs))
        out[m] = MetricScores(m, float(sum(items) / n) if n else float("nan"), items)
    return out
