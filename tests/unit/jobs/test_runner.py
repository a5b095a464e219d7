from pathlib import Path

from jobs.runner import build_worker
from warden.settings import Settings


def test_settings_map_onto_the_jobs_config(tmp_path):
    s = Settings(data_dir=tmp_path, kafka_bootstrap="k1:9092,k2:9092", session_timeout_s=7.5)
    cfg = s.jobs_config()
    assert cfg.bootstrap == "k1:9092,k2:9092" and cfg.group_id == "warden-jobs"
    assert cfg.artifact_root == tmp_path / "artifacts" and cfg.registry_path == tmp_path / "registry.json"
    assert cfg.session_timeout_s == 7.5 and cfg.history_path is None


def test_build_worker_binds_the_executor(tmp_path):
    cfg = Settings(data_dir=tmp_path).jobs_config()
    worker = build_worker(cfg)
    executor = worker._make_executor(lambda event: None)
    assert executor.artifacts.root == Path(tmp_path / "artifacts") and executor.history is None
