"""The evaluation CLI on the shipped synthetic corpora (tabular features only, to stay fast)."""

import json

import pytest

from bench.drift_eval import main, read_jsonl
from tests.support.procs import ROOT

DATA = ROOT / "bench" / "data"


def _run(capsys, current, *extra):
    assert main(["--reference", str(DATA / "drift_ref.jsonl"), "--current", str(current), "--no-embeddings",
                 *extra]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_same_distribution_does_not_alarm(capsys):
    out = _run(capsys, DATA / "drift_same.jsonl")
    assert out["drift"] is False and out["first_alarm_at"] is None
    assert out["windows"] >= 3 and out["n_current"] == 400
    assert set(out["features"]) >= {"response_chars", "finish_reason"}


@pytest.mark.parametrize("kind", ["verbose", "terse", "model_b"])
def test_changes_alarm_within_300_events(capsys, kind):
    out = _run(capsys, DATA / f"drift_{kind}.jsonl")
    assert out["drift"] is True and out["first_alarm_at"] < 300
    assert out["drifted"] and all(out["features"][f]["drifted"] for f in out["drifted"])


def test_short_current_file_is_flushed(capsys, tmp_path):
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps(r) + "\n" for r in read_jsonl(DATA / "drift_verbose.jsonl")[:80]))
    out = _run(capsys, short)
    assert out["drift"] is True and out["first_alarm_at"] == 79 and out["windows"] == 1


def test_bad_line_is_an_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('["not", "an", "object"]\n')
    with pytest.raises(ValueError):
        read_jsonl(bad)
