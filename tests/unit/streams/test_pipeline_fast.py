"""The worker's fast path (rules and operational metrics beside the full path) and the text stage in child
processes: together they give what the full pipeline alone gives."""

from __future__ import annotations

import asyncio
import json

from detectors.pii.detector import PiiConfig
from detectors.security import SecurityConfig
from streams.pipeline import Pipeline, PipelineConfig, RawItem
from streams.textstage import TextStagePool, merge, split
from tests.events import inference, raw

EMAIL = "patricia.desrosiers@example.ch"


def _items() -> list[RawItem]:
    events = [inference("e-ok", messages=[{"role": "user", "content": f"Mail me at {EMAIL} please"}]),
              inference("e-err", status="error"),
              inference("e-slow", latency_ms=20_000, messages=[{"role": "system", "content": "Be brief."},
                                                               {"role": "user", "content": "Call Ann Smith now"}])]
    events[1]["inference"]["error"] = f"upstream refused the key of {EMAIL}"
    items = [RawItem(raw(ev), "warden.inference", 0, n) for n, ev in enumerate(events)]
    return items + [RawItem(b'{"not": "an event"', "warden.inference", 0, 3)]


def _config(**kw: object) -> PipelineConfig:
    return PipelineConfig(security=SecurityConfig(), **kw)  # type: ignore[arg-type]


def test_fast_and_full_paths_together_find_what_the_full_pipeline_finds() -> None:
    whole = Pipeline(_config()).process_batch(_items())
    split_pipe = Pipeline(_config(fast_path=True))
    fast, _ = split_pipe.process_fast(_items())
    full = split_pipe.process_batch(_items())
    ids = lambda outs: sorted(f.finding_id for o in outs for f in o.findings)
    assert ids(whole) and sorted(ids(fast) + ids(full)) == ids(whole)
    assert {f.detector for o in fast for f in o.findings} == {"rule"}
    assert "rule" not in {f.detector for o in full for f in o.findings}
    decisions = lambda outs: sorted(d.decision_id for o in outs for d in o.decisions)
    assert sorted(decisions(fast) + decisions(full)) == decisions(whole)
    # the bad payload is dead-lettered once, by the fast path
    assert [r.topic for r in fast[3].records] == ["warden.dlq"] and full[3].records == []
    assert [r.topic for r in whole[3].records] == ["warden.dlq"]


def test_the_fast_path_publishes_no_raw_text() -> None:
    pipe = Pipeline(_config(fast_path=True))
    fast, _ = pipe.process_fast(_items())
    published = b"".join(r.value for o in fast[:3] for r in o.records)
    assert b"error_status" in published and b"latency_slo" in published
    assert EMAIL.encode() not in published


def test_the_text_stage_in_child_processes_gives_the_in_process_results() -> None:
    config = _config(pii=PiiConfig(), drift=None)
    pipe = Pipeline(config)
    outcomes, job = pipe.prepare(_items() * 3)
    assert len(split(job, 2)) == 2
    local = Pipeline(config)
    _, job_local = local.prepare(_items() * 3)
    from streams.textstage import TextStage
    expected = TextStage(local.pii, None, local.security).run(job_local)
    pool = TextStagePool(pipe.text_stage_config(), processes=2)
    try:
        got = asyncio.run(pool.run(job))
    finally:
        pool.close()
    assert [r.redacted if r else None for r in got.pii] == [r.redacted if r else None for r in expected.pii]
    assert EMAIL not in json.dumps([r.redacted for r in got.pii if r])
    assert [[s.verdict.score for s in x] if x else x for x in got.scans] == [
        [s.verdict.score for s in x] if x else x for x in expected.scans]
    assert merge(job, [job], [expected]) is expected
    pipe.complete(_items() * 3, outcomes, job, got)
    assert any(f.kind == "pii_detected" for o in outcomes for f in o.findings)


def test_the_embedding_budget_bounds_the_embedded_events_per_model() -> None:
    from detectors.features.embeddings import EmbedderConfig

    config = PipelineConfig(pii=None, security=None, embeddings=EmbedderConfig.fast_cpu(), embedding_fraction=1.0,
                            embedding_rate=0.001, embedding_burst=5)
    pipe = Pipeline(config)
    items = [RawItem(raw(inference(f"b-{i}", model="busy" if i % 2 else "quiet")), "warden.inference", 0, i)
             for i in range(40)]
    _, job = pipe.prepare(items)
    assert sum(p.embed for p in job.plans) == 10  # a burst of 5 per model, then (almost) nothing
    unbounded = Pipeline(PipelineConfig(pii=None, security=None, embeddings=EmbedderConfig.fast_cpu(),
                                        embedding_fraction=1.0))
    _, job = unbounded.prepare(items)
    assert all(p.embed for p in job.plans)
