"""BLEU, ROUGE-L, SQuAD F1/EM and perplexity against published reference values (and optional oracles)."""

from __future__ import annotations

import math
import random
import re
import string
from collections import Counter

import pytest

from detectors.training.metrics import (
    bleu_from_stats,
    bleu_stats,
    corpus_bleu,
    exact_match,
    lcs_length,
    normalize_answer,
    perplexity,
    perplexity_from_losses,
    rouge_l,
    rouge_l_multi,
    rouge_tokenize,
    score_predictions,
    sentence_bleu,
    token_f1,
    tokenize_13a,
)

# ---- BLEU -----------------------------------------------------------------------------------------

# sacrebleu's README example and its documented output:
# "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"
SACRE_REFS = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
SACRE_SYS = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]


def test_corpus_bleu_matches_sacrebleu_readme():
    s = corpus_bleu(SACRE_SYS, SACRE_REFS)
    assert round(s.score, 2) == 48.53
    assert [round(p, 1) for p in s.precisions] == [82.4, 50.0, 45.5, 37.5]
    assert round(s.bp, 3) == 0.943 and round(s.ratio, 3) == 0.944
    assert (s.sys_len, s.ref_len) == (17, 18)
    assert str(s) == "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)"


# Papineni et al. (2002), section 2.1, Example 1 (punctuation left out as in the paper's counts)
PAPINENI_REFS = [
    "It is a guide to action that ensures that the military will forever heed Party commands",
    "It is the guiding principle which guarantees the military forces always being under the command of the Party",
    "It is the practical guide for the army always to heed the directions of the party",
]
CAND1 = "It is a guide to action which ensures that the military always obeys the commands of the party"
CAND2 = "It is to insure the troops forever hearing the activity guidebook that party direct"


def test_modified_ngram_precisions_from_the_bleu_paper():
    s1 = sentence_bleu(CAND1, PAPINENI_REFS)
    s2 = sentence_bleu(CAND2, PAPINENI_REFS)
    assert (s1.counts[0], s1.totals[0]) == (17, 18)  # modified unigram precision 17/18
    assert (s2.counts[0], s2.totals[0]) == (8, 14)  # 8/14
    assert (s1.counts[1], s1.totals[1]) == (10, 17)  # modified bigram precision 10/17
    assert (s2.counts[1], s2.totals[1]) == (1, 13)  # 1/13
    # "the the the the the the the" against the cat/mat references: 2/7
    cat_refs = ["The cat is on the mat.", "There is a cat on the mat."]
    s3 = sentence_bleu("the the the the the the the", cat_refs, lowercase=True)
    assert (s3.counts[0], s3.totals[0]) == (2, 7)


def test_brevity_penalty_and_closest_reference_length():
    # hypothesis of 4 tokens, references of 5 and 8 tokens: the closest (5) sets BP = exp(1 - 5/4)
    s = corpus_bleu(["a b c d"], [["a b c d e"], ["a b c d e f g h"]], tokenize=False)
    assert s.ref_len == 5 and s.bp == pytest.approx(math.exp(1 - 5 / 4))
    # ties go to the shorter reference
    assert bleu_stats("a b c d", ["a b c", "a b c d e"], tokenize=False)[1] == 3
    # a perfect match scores 100; no overlap scores 0
    assert corpus_bleu(["the cat sat on the mat"], ["the cat sat on the mat"]).score == pytest.approx(100.0)
    assert corpus_bleu(["x y z"], ["a b c"]).score == 0.0


def test_tokenize_13a():
    assert tokenize_13a("It wasn't surprising.") == "It wasn't surprising ."  # apostrophes stay
    assert tokenize_13a("Costs 3.5 dollars, 1,000 times (approx.)") == "Costs 3.5 dollars , 1,000 times ( approx . )"
    assert tokenize_13a("pages 10-20 &amp; more") == "pages 10 - 20 & more"


def test_stats_are_additive():
    per = [bleu_stats(h, [r1, r2]) for h, r1, r2 in zip(SACRE_SYS, *SACRE_REFS)]
    total = [sum(col) for col in zip(*per)]
    assert bleu_from_stats(total).score == pytest.approx(corpus_bleu(SACRE_SYS, SACRE_REFS).score)
    with pytest.raises(ValueError):
        bleu_from_stats(total, smooth_method="magic")


def test_bleu_matches_sacrebleu_on_random_inputs():
    sacrebleu = pytest.importorskip("sacrebleu")
    rng = random.Random(7)
    words = "the a cat dog man, bit. it's 3.5 - 10-20 &amp; (x) \"q\" hello Cat DOG ! ? ; : é".split()
    for _ in range(300):
        n = rng.randint(1, 5)
        hyps = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 15))) for _ in range(n)]
        refs = [
            [" ".join(rng.choice(words) for _ in range(rng.randint(1, 15))) for _ in range(n)]
            for _ in range(rng.randint(1, 3))
        ]
        assert corpus_bleu(hyps, refs).score == pytest.approx(sacrebleu.corpus_bleu(hyps, refs).score, abs=1e-9)
        one = [r[0] for r in refs]
        assert sentence_bleu(hyps[0], one).score == pytest.approx(sacrebleu.sentence_bleu(hyps[0], one).score, abs=1e-9)


# ---- ROUGE-L --------------------------------------------------------------------------------------


def test_rouge_l_examples_from_lin_2004():
    # Lin (2004), section 3.1: with S1 as reference, ROUGE-L of S2 is 3/4 and of S3 is 2/4
    assert rouge_l("police killed the gunman", "police kill the gunman").fmeasure == pytest.approx(0.75)
    assert rouge_l("police killed the gunman", "the gunman kill police").fmeasure == pytest.approx(0.5)


def test_rouge_l_readme_pair_and_tokeniser():
    # rouge-score README pair: LCS "the quick brown jumps the" = 5 of 8 predicted and 9 target tokens
    s = rouge_l("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.")
    assert s.precision == pytest.approx(5 / 8) and s.recall == pytest.approx(5 / 9)
    assert s.fmeasure == pytest.approx(2 * (5 / 8) * (5 / 9) / (5 / 8 + 5 / 9))
    assert rouge_tokenize("Hello, World! café-bar 42") == ["hello", "world", "caf", "bar", "42"]
    assert rouge_l("", "anything") == rouge_l("anything", "") == rouge_l("", "")
    assert rouge_l("", "x").fmeasure == 0.0
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # CLRS's example
    assert rouge_l_multi(["zzz", "police kill the gunman"], "police kill the gunman").fmeasure == 1.0


def test_rouge_l_matches_rouge_score_on_random_inputs():
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rng = random.Random(3)
    words = "The the cat Cat's sat on mat. a dog-house 12 x! é ok".split()
    for _ in range(300):
        t = " ".join(rng.choice(words) for _ in range(rng.randint(0, 20)))
        p = " ".join(rng.choice(words) for _ in range(rng.randint(0, 20)))
        want = scorer.score(t, p)["rougeL"]
        got = rouge_l(t, p)
        assert (got.precision, got.recall, got.fmeasure) == pytest.approx((want.precision, want.recall, want.fmeasure))


# ---- SQuAD F1 / EM --------------------------------------------------------------------------------

# SQuAD v1.1 evaluate-v1.1.py (Rajpurkar et al.), the reference functions, verbatim in logic


def _squad_normalize(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _squad_f1(prediction, ground_truth):
    prediction_tokens = _squad_normalize(prediction).split()
    ground_truth_tokens = _squad_normalize(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


PAIRS = [
    ("Denver Broncos", ["Denver Broncos", "The Denver Broncos"]),
    ("Broncos", ["Denver Broncos"]),
    ("in the 1990s, a decade", ["1990s"]),
    ("Saint Bernadette Soubirous", ["Saint Bernadette Soubirous"]),
    ("a copper statue of Christ", ["a copper statue of Christ", "copper statue"]),
    ("the the the", ["the"]),
    ("Santa Clara, California", ["Levi's Stadium", "Santa Clara"]),
    ("", ["nothing"]),
]


def test_token_f1_and_exact_match_known_pairs():
    assert token_f1("Broncos", "Denver Broncos") == pytest.approx(2 / 3)
    assert token_f1("in the 1990s, a decade", "1990s") == pytest.approx(0.5)
    assert exact_match("The Denver Broncos!", "denver broncos") == 1.0
    assert exact_match("Broncos", ["Denver Broncos", "Panthers"]) == 0.0
    assert normalize_answer("  The  Cat, an apple & A dog. ") == "cat apple dog"
    for pred, truths in PAIRS:
        assert token_f1(pred, truths) == pytest.approx(max(_squad_f1(pred, g) for g in truths))
        assert exact_match(pred, truths) == float(any(_squad_normalize(pred) == _squad_normalize(g) for g in truths))


# ---- perplexity -----------------------------------------------------------------------------------


def test_perplexity():
    v = 50257
    assert perplexity([math.log(v)] * 10) == pytest.approx(v)  # uniform over the vocabulary
    assert perplexity([1.0, 3.0]) == pytest.approx(math.exp(2.0))
    assert math.isnan(perplexity([])) and math.isnan(perplexity([1.0, math.nan]))
    assert perplexity_from_losses([1.0, 3.0], [3, 1]) == pytest.approx(math.exp(1.5))
    assert perplexity_from_losses([2.0, 2.0]) == pytest.approx(math.exp(2.0))
    with pytest.raises(ValueError):
        perplexity_from_losses([1.0], [1, 2])


def test_score_predictions():
    preds = ["The dog bit the man.", "Broncos", "police kill the gunman"]
    refs = ["The dog bit the man.", ["Denver Broncos", "Broncos team"], "police killed the gunman"]
    s = score_predictions(preds, refs)
    assert s["exact_match"].items == (1.0, 0.0, 0.0)
    assert s["f1"].items[1] == pytest.approx(max(2 / 3, 2 / 3))
    assert s["rougeL"].items[2] == pytest.approx(0.75)
    assert s["f1"].value == pytest.approx(sum(s["f1"].items) / 3)
    streams = [[r if isinstance(r, str) else r[0] for r in refs], [None if isinstance(r, str) else r[1] for r in refs]]
    assert s["bleu"].value == pytest.approx(corpus_bleu(preds, streams).score)  # a missing reference is None
    assert len(s["bleu"].item_stats) == 3
    with pytest.raises(ValueError):
        score_predictions(preds, refs, ["meteor"])
