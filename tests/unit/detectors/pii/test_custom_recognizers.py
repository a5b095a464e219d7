"""Recognizers a deployment adds in Presidio's YAML format: their spans are redacted like the built-in ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from detectors.pii.detector import PiiConfig, PiiDetector

RECOGNIZERS = """
recognizers:
  - name: Employee id
    supported_language: en
    supported_entity: EMPLOYEE_ID
    patterns:
      - name: employee id
        regex: "\\\\bEMP-\\\\d{6}\\\\b"
        score: 0.9
  - name: Project code names
    supported_language: en
    supported_entity: PROJECT
    deny_list: [Bluebird, Nightjar]
"""


def _detector(tmp_path: Path, **kw: object) -> PiiDetector:
    path = tmp_path / "recognizers.yaml"
    path.write_text(RECOGNIZERS)
    return PiiDetector(PiiConfig(recognizers=path, **kw))  # type: ignore[arg-type]


def test_custom_patterns_and_deny_lists_are_redacted(tmp_path: Path) -> None:
    det = _detector(tmp_path)
    result = det.analyze("Ticket for EMP-123456 about Project Nightjar, call +44 20 7946 0958")
    assert result.redacted == "Ticket for <EMPLOYEE_ID> about Project <PROJECT>, call <PHONE_NUMBER>"
    assert result.counts() == {"EMPLOYEE_ID": 1, "PROJECT": 1, "PHONE_NUMBER": 1}


def test_without_the_file_those_values_stay(tmp_path: Path) -> None:
    assert "EMP-123456" in PiiDetector(PiiConfig()).analyze("id EMP-123456").redacted


def test_a_per_type_threshold_applies_to_custom_types(tmp_path: Path) -> None:
    det = _detector(tmp_path, thresholds={"EMPLOYEE_ID": 0.95})
    assert "EMP-123456" in det.analyze("id EMP-123456").redacted


def test_a_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("recognizers: [{name: x}]")
    with pytest.raises(ValueError, match="bad.yaml"):
        PiiDetector(PiiConfig(recognizers=path))
