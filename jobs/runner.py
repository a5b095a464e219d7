"""``run_worker(config)``: the ``warden jobs`` entry point (and ``python -m jobs.runner`` for tests).

Binds the worker to its collaborators: the artifact store (local directory), the registry (the shared
JSON-file registry until the store's registry of issue 8 is bound: pass ``registry=``), and the history
source (a JSON-lines file when configured; pass ``history=`` to bind the store's history).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import Any

from jobs.artifacts import ArtifactStore
from jobs.config import JobsConfig
from jobs.datasets import HistorySource, JsonlHistory
from jobs.executor import ExecutorOptions, JobExecutor
from jobs.registry_port import JsonFileRegistry, RegistryPort
from jobs.worker import JobWorker

log = logging.getLogger("warden.jobs")


def build_worker(config: JobsConfig, *, registry: RegistryPort | None = None,
                 history: HistorySource | None = None) -> JobWorker:
    """A worker with its executor bound to the artifact store, registry and history."""
    if config.torch_threads:
        import torch

        torch.set_num_threads(config.torch_threads)
    artifacts = ArtifactStore(config.artifact_root)
    reg = registry or JsonFileRegistry(config.registry_path)
    hist = history or (JsonlHistory(Path(config.history_path)) if config.history_path else None)
    return JobWorker(config, lambda publish: JobExecutor(
        registry=reg, artifacts=artifacts, history=hist, publish_deployment=publish,
        options=ExecutorOptions(device=config.device)))


async def serve(config: JobsConfig, **bindings: Any) -> None:
    """Run one worker until SIGINT/SIGTERM."""
    from streams.admin import TopicSpec, ensure_topics

    await ensure_topics(config.bootstrap, TopicSpec())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await build_worker(config, **bindings).run(stop)


def run_worker(config: JobsConfig, **bindings: Any) -> None:
    """The ``warden jobs`` role: one job worker (one GPU) in the ``warden-jobs`` consumer group."""
    asyncio.run(serve(config, **bindings))


def main(argv: list[str] | None = None) -> None:
    """``python -m jobs.runner``: a worker configured by flags (used by the integration tests)."""
    p = argparse.ArgumentParser(prog="python -m jobs.runner")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--group", default="warden-jobs")
    p.add_argument("--worker-id", default=f"jobs-{os.getpid()}")
    p.add_argument("--artifact-root", type=Path, required=True)
    p.add_argument("--registry", type=Path, required=True)
    p.add_argument("--history", type=Path)
    p.add_argument("--session-timeout-s", type=float, default=10.0)
    p.add_argument("--lease-s", type=float, default=5.0)
    p.add_argument("--threads", type=int)
    p.add_argument("--device")
    a = p.parse_args(argv)
    logging.basicConfig(level=os.environ.get("WARDEN_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = JobsConfig(bootstrap=a.bootstrap, group_id=a.group, worker_id=a.worker_id, artifact_root=a.artifact_root,
                     registry_path=a.registry, history_path=a.history, session_timeout_s=a.session_timeout_s,
                     lease_s=a.lease_s, torch_threads=a.threads, device=a.device, retry_backoff_s=1.0)
    asyncio.run(serve(cfg))


if __name__ == "__main__":
    main()
