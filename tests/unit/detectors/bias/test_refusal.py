"""The refusal detector: examples, hard negatives, and precision/recall on the labelled sets."""

from __future__ import annotations

import json

import pytest

from bench.refusal_eval import evaluate
from detectors.bias.refusal import RefusalDetector, is_refusal
from tests.support.procs import ROOT

DATA = ROOT / "bench" / "data"


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with that.",
    "As an AI language model, I cannot provide medical diagnoses.",
    "I must decline this request.",
    "That's not something I can help with.",
    "I can’t assist with that.",  # curly apostrophe
    "im sorry but i cant do that",
    "I won't be able to help with that.",
])
def test_refusals(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", [
    "I can't wait to help! Let's start.",
    "I can't believe how easy this is: add the numbers.",
    "I can't recommend this book enough.",
    "I'm sorry to hear that. Here are some resources.",
    'The guard said "I can\'t help you" and left. Here is the next chapter.',
    "A typical refusal is 'I'm sorry, but I can't help with that.' Here is a regex to detect it.",
    "Sure! Here's the code.",
    "",
    None,
])
def test_non_refusals(text):
    assert not is_refusal(text)


def test_refusal_deep_in_a_compliant_answer_does_not_count():
    text = ("Here is the full migration script you asked for. It creates the tables and indexes. "
            "It also backfills the data. Note that I can't help with the Oracle variant, but Postgres works.")
    r = RefusalDetector().classify(text)
    assert not r.is_refusal and 0 < r.score < 0.5


def test_result_carries_pattern_names_not_text():
    r = RefusalDetector().classify("I'm sorry, but I can't share John Smith's phone number 555-0100.")
    assert r.is_refusal and r.score > 0.9
    assert all("555" not in reason and "john" not in reason.lower() for reason in r.reasons)


def _rows(name):
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def test_labelled_set_precision_recall():
    rows = _rows("refusal_labelled.jsonl")
    assert len(rows) >= 250 and sum(r["label"] for r in rows) >= 100
    rep = evaluate(rows, RefusalDetector())
    assert rep["precision"] >= 0.95 and rep["recall"] >= 0.95


def test_heldout_set_precision_recall():
    # written after the patterns were frozen; lower bar, reported honestly
    rep = evaluate(_rows("refusal_heldout.jsonl"), RefusalDetector())
    assert rep["precision"] >= 0.9 and rep["recall"] >= 0.75
