"""The command line as a new user meets it: help without noise, empty states said, results printed once."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.support.procs import ROOT
from warden.cli import app
from warden.policy_cli import parse_since
from warden.settings import get_settings

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("WARDEN_DATABASE_URL", f"sqlite:///{tmp_path / 'warden.db'}")
    monkeypatch.setenv("WARDEN_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _commands(cmd: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():  # type: ignore[attr-defined]
            yield from _commands(sub, (*path, name))


def test_no_help_page_shows_a_bool_placeholder_beside_a_flag() -> None:
    paths = list(_commands(typer.main.get_command(app)))
    assert ("up",) in paths and ("keys", "list") in paths and ("policy", "test") in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.output, f"warden {' '.join(path)} --help:\n{result.output}"
        assert "\x1b[" not in result.output


def test_keys_list_says_when_there_are_no_keys(store: Path) -> None:
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 0 and "no API keys" in result.output


def test_audit_verify_prints_its_result_once(store: Path) -> None:
    runner.invoke(app, ["keys", "create", "--role", "auditor", "--tenant", "acme"])  # one audited entry
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.strip()] == [
        next(line for line in result.output.splitlines() if line.startswith("ok: 1 entries"))]
    as_json = runner.invoke(app, ["audit", "verify", "--json"])
    assert as_json.exit_code == 0 and len(as_json.output.strip().splitlines()) == 1
    assert '"ok": true' in as_json.output


@pytest.mark.parametrize(("value", "back"), [("10m", timedelta(minutes=10)), ("2h", timedelta(hours=2)),
                                             ("7d", timedelta(days=7)), ("45s", timedelta(seconds=45)),
                                             ("1w", timedelta(weeks=1)), ("1.5h", timedelta(minutes=90))])
def test_since_takes_relative_durations(value: str, back: timedelta) -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_since(value, now) == now - back


def test_since_takes_absolute_times_and_refuses_nonsense() -> None:
    assert parse_since("2026-11-26T10:00:00Z") == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert parse_since("2026-11-26") == datetime(2026, 11, 26, tzinfo=UTC)
    assert parse_since("2026-11-26T10:00+01:00") == datetime(2026, 11, 26, 9, tzinfo=UTC)
    with pytest.raises(typer.BadParameter):
        parse_since("yesterday")


def test_policy_test_accepts_since_10m(store: Path) -> None:
    result = runner.invoke(app, ["policy", "test", str(ROOT / "policies" / "packs" / "builtin.yaml"), "--since", "10m",
                                 "--json"])
    assert result.exit_code == 0, result.output


def test_the_worker_writes_no_terminal_escapes_when_stdout_is_not_a_terminal(tmp_path: Path) -> None:
    from streams.app import create_app
    from streams.config import WorkerConfig
    from streams.pipeline import Pipeline, PipelineConfig
    from warden.roles import build_worker
    from warden.settings import Settings

    assert not sys.stdout.isatty()  # pytest captures it
    faust_app = create_app(WorkerConfig(bootstrap="127.0.0.1:1", data_dir=tmp_path),
                           Pipeline(PipelineConfig(pii=None, drift=None)))
    worker = build_worker(faust_app, Settings(data_dir=tmp_path))
    assert worker.spinner is None
