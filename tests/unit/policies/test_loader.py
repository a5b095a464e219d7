"""Loading policy files: the built-in pack, error messages with file:line: field, YAML safety."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from policies.errors import PolicyError
from policies.loader import load_pack, load_policies, load_policy_file, parse_policies
from policies.schema import parse_duration


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def _issues(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as e:
        load_policy_file(path)
    return str(e.value).splitlines()


def test_builtin_pack_covers_every_detector_and_the_pii_ratio():
    policies = load_pack()
    ids = {p.id for p in policies}
    assert len(ids) == len(policies)
    detectors = {d for p in policies for d in ([p.match["detector"]] if isinstance(p.match.get("detector"), str) else p.match.get("detector", []))}
    assert {"rule", "pii", "drift", "anomaly", "bias"} <= detectors
    kinds = {p.match.get("kind") for p in policies if p.match.get("detector") == "rule"}
    assert {"error_status", "latency_slo"} <= kinds
    ratio = [p for p in policies if p.aggregate and p.aggregate.function == "ratio"]
    assert ratio and ratio[0].aggregate.threshold == 0.01 and ratio[0].aggregate.window == 600
    assert "subject.model" in ratio[0].aggregate.group_by
    retrain = [a.job for p in policies if p.match.get("detector") == "drift" for a in p.actions if a.job]
    assert retrain and retrain[0].kind == "retrain" and retrain[0].approval == "required"


def test_unknown_pack_is_named():
    with pytest.raises(ValueError, match="available: .*builtin"):
        load_pack("nope")
    with pytest.raises(ValueError):
        load_pack("../etc")


def test_one_policy_or_a_bare_list_are_accepted(tmp_path):
    one = _write(tmp_path, "id: a\nversion: 2\nactions: [{tag: [x]}]\n")
    assert [p.id for p in load_policy_file(one)] == ["a"]
    lst = _write(tmp_path, "- {id: a, version: 1, actions: [{tag: x}]}\n- {id: b, version: 1, actions: [{suppress: }]}\n", "l.yaml")
    got = load_policy_file(lst)
    assert [p.id for p in got] == ["a", "b"] and got[0].actions[0].tag.tags == ["x"]


def test_errors_name_file_line_and_field(tmp_path):
    path = _write(
        tmp_path,
        """\
        policies:
          - id: good
            version: 1
            actions: [{tag: [x]}]
          - id: bad
            version: 1
            match:
              detector: pii
              severity: {gte: hgh}
            actions:
              - alert:
                  severity: urgent
                  summary: "{colour}"
        """,
    )
    lines = _issues(path)
    assert f"{path}:9: policies[1].match.severity.gte: unknown severity 'hgh'" in lines[0]
    assert lines[1].startswith(f"{path}:12: policies[1].actions[0].alert.severity: unknown severity 'urgent'")


def test_compile_errors_after_schema_is_valid(tmp_path):
    path = _write(
        tmp_path,
        """\
        policies:
          - id: p
            version: 1
            actions:
              - alert:
                  summary: "x {colour}"
        """,
    )
    (line,) = _issues(path)
    assert line.startswith(f"{path}:6: policies[0].actions[0].alert.summary: {{colour}}: unknown field")


@pytest.mark.parametrize(
    "body,expected",
    [
        ("id: p\nversion: 1\nactions: [{page: {}}]\n", ":3: actions[0].page: Extra inputs are not permitted"),
        ("id: p\nversion: 1\nmode: shadow\nactions: [{tag: [x]}]\n", ":3: mode: Input should be 'enforce' or 'monitor'"),
        ("id: p\nactions: [{tag: [x]}]\n", ":1: version: Field required"),
        ("id: p\nversion: 1\nactions: []\n", ":3: actions: List should have at least 1 item"),
        ("id: p\nversion: 1\nactions: [{alert: {}, tag: [x]}]\n", ":3: actions[0]: an action is exactly one of"),
        (
            "id: p\nversion: 1\naggregate:\n  function: count\n  window: 10m\n  step: 7m\n  threshold: 1\nactions: [{tag: [x]}]\n",
            ":3: aggregate: window must be a whole number of steps",
        ),
        (
            "id: p\nversion: 1\naggregate:\n  function: count\n  window: ten minutes\n  threshold: 1\nactions: [{tag: [x]}]\n",
            ":5: aggregate.window: invalid duration",
        ),
        (
            "id: p\nversion: 1\naggregate: {function: ratio, window: 60, threshold: 0.1,\n  group_by: [evidence.x]}\nactions: [{tag: [x]}]\n",
            ":4: aggregate.group_by[0]: a ratio's denominator",
        ),
        (
            "id: p\nversion: 1\naggregate: {function: count, window: 60, threshold: 1}\nactions:\n  - suppress:\n",
            ":5: actions[0].suppress: suppress acts on single findings",
        ),
        ("id: p\nversion: 1\nmatch:\n  kind: a\n  kind: b\nactions: [{tag: [x]}]\n", ":5: match.kind: duplicate key"),
        ("id: p\nversion: 1\nmatch: {score: !!python/object/apply:os.system [echo]}\nactions: [{tag: [x]}]\n", ":3: match.score: unsupported YAML tag"),
        ("id: p\nversion: 1\nactions: [{tag: [x]}\n", ":4: <yaml>: invalid YAML"),
        ("", ":1: <document>: empty policy file"),
    ],
)
def test_error_catalogue(tmp_path, body, expected):
    path = _write(tmp_path, body)
    text = "\n".join(_issues(path))
    assert f"{path}{expected}" in text, text


def test_duplicate_ids_across_files(tmp_path):
    _write(tmp_path, "id: same\nversion: 1\nactions: [{tag: [x]}]\n", "a.yaml")
    _write(tmp_path, "id: same\nversion: 2\nactions: [{tag: [y]}]\n", "b.yml")
    with pytest.raises(PolicyError, match="duplicate policy id"):
        load_policies([tmp_path])
    assert len(load_policies([tmp_path / "a.yaml"])) == 1


def test_yaml_anchors_and_merge_keys(tmp_path):
    text = """\
    defaults: &alert {route: "webhook:ops", severity: high}
    policies:
      - id: p
        version: 1
        actions: [{alert: {<<: *alert, summary: "{kind}"}}]
    """
    with pytest.raises(PolicyError, match="unknown top-level key"):
        parse_policies(textwrap.dedent(text), "x.yaml")
    text = textwrap.dedent(text).replace("defaults: &alert {route: \"webhook:ops\", severity: high}\n", "")
    text = text.replace("{<<: *alert, ", "{route: 'webhook:ops', ")
    (p,) = parse_policies(text)
    assert p.actions[0].alert.route == "webhook:ops"


def test_unreadable_file_is_an_issue(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("1.5h", 5400), ("1d", 86400), (30, 30), ("250ms", 0.25)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10 minutes", "-5s", 0, True, "5w"])
def test_bad_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)
