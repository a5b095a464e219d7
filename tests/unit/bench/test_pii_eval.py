"""Tests of the evaluation metrics and CLI."""

from __future__ import annotations

import json
from pathlib import Path

from bench.pii_corpus import labelled_set
from bench.pii_eval import main, score


def test_score_counts_partial_overlap_and_types() -> None:
    gold = [[{"start": 0, "end": 10, "type": "PERSON"}, {"start": 20, "end": 30, "type": "PHONE_NUMBER"}]]
    pred = [[{"start": 0, "end": 6, "type": "LOCATION"}, {"start": 20, "end": 30, "type": "PHONE_NUMBER"},
             {"start": 40, "end": 45, "type": "PHONE_NUMBER"}]]
    m = score(gold, pred)
    assert m["any_recall"] == 1.0
    assert m["per_type"]["PERSON"]["recall"] == 0.0
    assert m["per_type"]["PHONE_NUMBER"]["recall"] == 1.0 and m["per_type"]["PHONE_NUMBER"]["precision"] == 0.5


def test_corpus_labels_are_exact_and_deterministic() -> None:
    a, b = labelled_set(30, seed=3), labelled_set(30, seed=3)
    assert a == b
    for row in a:
        for s in row["spans"]:
            assert row["text"][s["start"] : s["end"]].strip() == row["text"][s["start"] : s["end"]]


def test_cli_writes_predictions(tmp_path: Path) -> None:
    inp = tmp_path / "in.jsonl"
    out = tmp_path / "out.jsonl"
    rows = [{"id": "a", "text": "Mail me at jo@example.org please."}, {"id": "b", "text": "No PII here."}]
    inp.write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["--input", str(inp), "--output", str(out), "--entities", "EMAIL_ADDRESS,PHONE_NUMBER"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["a", "b"]
    assert lines[0]["entities"] == [{"start": 11, "end": 25, "type": "EMAIL_ADDRESS", "score": 1.0}]
    assert lines[1]["entities"] == []


def test_score_counts_leaked_name_parts() -> None:
    from bench.pii_eval import with_values

    rows = [{"text": "Thanks Priya Natarajan, noted.", "spans": [{"start": 7, "end": 22, "type": "PERSON"}]}]
    partial = [[{"start": 13, "end": 22, "type": "PERSON"}]]  # "Thanks Priya <PERSON>"
    full = [[{"start": 7, "end": 22, "type": "PERSON"}]]
    assert score(with_values(rows), partial)["per_type"]["PERSON"]["leaked"] == 1
    assert score(with_values(rows), partial)["per_type"]["PERSON"]["recall"] == 1.0  # half-coverage recall hides it
    assert score(with_values(rows), full)["per_type"]["PERSON"]["leaked"] == 0
