import json
import multiprocessing as mp

import pytest

from contracts.events import dump_event
from jobs.deploy import switch_alias
from jobs.registry_port import AliasChange, InMemoryRegistry, JsonFileRegistry
from jobs.rollback import RollbackError, previous_version, rollback
from streams.codec import decode_event


def _change(version, prev=None, action="promote"):
    return AliasChange("t", "m", "production", version, prev, action, "op")


def test_previous_version_skips_rolled_back_versions():
    assert previous_version([]) is None
    assert previous_version([_change("v1")]) is None
    h = [_change("v1"), _change("v2", "v1"), _change("v3", "v2")]
    assert previous_version(h) == "v2"
    h.append(_change("v2", "v3", "rollback"))
    assert previous_version(h) == "v1"  # not back to the bad v3
    h.append(_change("v1", "v2", "rollback"))
    assert previous_version(h) is None


def _registry(tmp_path=None):
    reg = JsonFileRegistry(tmp_path / "reg.json") if tmp_path else InMemoryRegistry()
    for i in range(3):
        mv = reg.register_version("t", "m", artifact_uri=f"artifact://model/{i:064d}", task="classification",
                                  metrics={"accuracy": 0.5 + i / 10}, job_id=f"job-{i}")
        reg.set_alias("t", "m", "production", mv.version, action="promote", actor="ci")
    return reg


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_rollback_switches_alias_and_builds_a_valid_deployment_event(tmp_path, kind):
    reg = _registry(tmp_path if kind == "file" else None)
    assert reg.alias_version("t", "m") == "v3"
    sw = rollback(reg, "t", "m", actor="op@t", reason="drift", job_id="rb-1")
    assert reg.alias_version("t", "m") == "v2" and sw.change.previous_version == "v3"
    ev = decode_event(dump_event(sw.event), 1 << 20)
    assert ev.type == "deployment" and ev.model.version == "v2"
    assert ev.deployment.action == "rollback" and ev.deployment.previous_version == "v3" and ev.deployment.actor == "op@t"
    # the same job re-run (worker died after switching) does not roll back a second step
    again = rollback(reg, "t", "m", actor="op@t", job_id="rb-1")
    assert reg.alias_version("t", "m") == "v2" and again.event.event_id == sw.event.event_id
    assert len(reg.alias_history("t", "m")) == 4
    # a new rollback goes to v1, a named one where it is told
    rollback(reg, "t", "m", actor="op", job_id="rb-2")
    assert reg.alias_version("t", "m") == "v1"
    rollback(reg, "t", "m", actor="op", to_version="v3", job_id="rb-3")
    assert reg.alias_version("t", "m") == "v3"
    with pytest.raises(RollbackError):
        rollback(reg, "t", "m", actor="op", to_version="v9", job_id="rb-4")


def test_nothing_to_roll_back_to():
    reg = InMemoryRegistry()
    mv = reg.register_version("t", "m", artifact_uri="artifact://model/" + "0" * 64, task="causal_lm", metrics={})
    switch_alias(reg, "t", "m", "production", mv.version, action="deploy", actor="ci")
    with pytest.raises(RollbackError):
        rollback(reg, "t", "m", actor="op")


def test_register_is_idempotent_by_job():
    reg = InMemoryRegistry()
    a = reg.register_version("t", "m", artifact_uri="x", task="classification", metrics={}, job_id="j")
    b = reg.register_version("t", "m", artifact_uri="y", task="classification", metrics={}, job_id="j")
    assert a.version == b.version == "v1" and b.artifact_uri == "x"
    with pytest.raises(KeyError):
        reg.set_alias("t", "m", "production", "v7", action="promote", actor="x")


def _register_many(path, n):
    reg = JsonFileRegistry(path)
    for _ in range(n):
        reg.register_version("t", "m", artifact_uri="u", task="classification", metrics={})


def test_file_registry_is_safe_across_processes(tmp_path):
    path = tmp_path / "reg.json"
    procs = [mp.get_context("fork").Process(target=_register_many, args=(path, 25)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    versions = json.loads(path.read_text())["versions"]["t\x1fm"]
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(1, 76)]
