"""Evidently HTML/JSON report from window samples (feature columns only, no raw text)."""

import numpy as np
import pytest

from detectors.drift.monitor import DriftConfig, DriftMonitor
from detectors.features.tabular import extract_features


def _rows(rng, n, scale):
    out = []
    for _ in range(n):
        words = max(1, int(rng.lognormal(np.log(40 * scale), 0.3)))
        out.append(extract_features("question about secret-project-x?", "word " * words,
                                    completion_tokens=words, finish_reason="stop"))
    return out


@pytest.mark.slow  # importing and rendering Evidently takes 10-20 s on the shared CI box
def test_report_renders_html_and_json_from_monitor_samples():
    pytest.importorskip("evidently")
    from detectors.drift.report import render_drift_report

    rng = np.random.default_rng(0)
    mon = DriftMonitor(DriftConfig(reference_size=120, window_size=80, step=40))
    for i, f in enumerate(_rows(rng, 120, 1.0) + _rows(rng, 80, 2.0)):
        mon.update(f, None, ts=i)
    samples = mon.window_samples()
    assert len(samples["reference"]) == 120 and len(samples["current"]) == 80
    rep = render_drift_report(samples["reference"], samples["current"], title="chat v1")
    assert rep.html.lstrip().lower().startswith("<!doctype html") or "<html" in rep.html[:500].lower()
    assert "secret-project-x" not in rep.html
    text = str(rep.data)
    assert "response_chars" in text and rep.data["title"] == "chat v1"


def test_report_rejects_empty_samples():
    from detectors.drift.report import render_drift_report

    with pytest.raises(ValueError):
        render_drift_report([], [])
