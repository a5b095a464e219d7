"""What each job kind does, step by step, independent of Kafka: retrain, evaluate, promote, rollback.

The worker calls :meth:`JobExecutor.run` in a worker thread with a :class:`JobContext` whose ``check()``
raises :class:`JobCancelled` or :class:`JobTimedOut` (called between steps and between optimiser steps)
and whose ``report()`` turns into ``running`` status events with progress.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.events import DeploymentEvent
from contracts.jobs import JobSpec
from jobs.artifacts import ArtifactStore
from jobs.bases import minilm_dir
from jobs.datasets import HistorySource, build_snapshot, load_snapshot
from jobs.deploy import switch_alias
from jobs.evaluate import evaluate_model, gate
from jobs.registry_port import ModelVersion, RegistryPort
from jobs.rollback import rollback
from jobs.tiny import TinyConfig, build_tiny
from jobs.train import TrainHooks, fine_tune

log = logging.getLogger("warden.jobs")
MODEL_KIND = "model"
CHECKPOINT_KIND = "checkpoint"


class JobCancelled(Exception):
    """The job was cancelled (a cancel command for its id)."""


class JobTimedOut(Exception):
    """The job ran past its time-out."""


class JobRejected(Exception):
    """The job cannot run as specified (bad spec, no data, nothing to roll back to); not retried."""


@dataclass
class JobContext:
    """How a running job talks to its worker."""

    check: Callable[[], None] = lambda: None
    report: Callable[[float, str, str | None], None] = lambda progress, phase, message: None


@dataclass
class ExecutorOptions:
    device: str | None = None
    tiny: TinyConfig = field(default_factory=TinyConfig)
    eval_batch_size: int = 128


class JobExecutor:
    """Runs jobs against a registry, an artifact store and a history source; publishes deployments."""

    def __init__(self, *, registry: RegistryPort, artifacts: ArtifactStore, history: HistorySource | None,
                 publish_deployment: Callable[[DeploymentEvent], None],
                 options: ExecutorOptions | None = None) -> None:
        self.registry = registry
        self.artifacts = artifacts
        self.history = history
        self.publish_deployment = publish_deployment
        self.options = options or ExecutorOptions()

    def run(self, job: JobSpec, ctx: JobContext) -> dict[str, Any]:
        """Run ``job`` to completion; returns its result (JSON-serialisable)."""
        ctx.check()
        handler = {"retrain": self._retrain, "evaluate": self._evaluate,
                   "promote": self._promote, "rollback": self._rollback}[job.kind]
        return handler(job, ctx)

    # -- helpers -----------------------------------------------------------------------------------

    def _version(self, job: JobSpec, name: str | None) -> ModelVersion | None:
        name = name or self.registry.alias_version(job.tenant, job.model, job.alias)
        return self.registry.get_version(job.tenant, job.model, name) if name else None

    def _snapshot(self, job: JobSpec, ctx: JobContext):  # -> (DatasetSnapshot, LoadedDataset)
        if self.history is None:
            raise JobRejected("this worker has no history source to build datasets from")
        ctx.report(0.02, "dataset", "building the dataset snapshot")
        try:
            snap = build_snapshot(self.history.rows(job.tenant, job.model, job.dataset), tenant=job.tenant,
                                  model=job.model, spec=job.dataset, store=self.artifacts, job_id=job.job_id)
        except ValueError as exc:
            raise JobRejected(str(exc)) from exc
        ctx.check()
        return snap, load_snapshot(self.artifacts, snap.ref.digest)

    def _base_dir(self, job: JobSpec, champion: ModelVersion | None, texts: list[str]) -> tuple[Path, str]:
        base = job.train.base
        if base == "minilm":
            return minilm_dir(), "minilm"
        if base == "tiny":
            with self.artifacts.staging() as stage:
                build_tiny(texts, stage / "tiny", self.options.tiny)
                ref = self.artifacts.put_dir(stage / "tiny", MODEL_KIND, {"base": "tiny"}, move=True)
            return self.artifacts.open(MODEL_KIND, ref.digest), f"tiny:{ref.digest[:12]}"
        mv = champion if base == "production" else self.registry.get_version(job.tenant, job.model, base)
        if mv is None:
            raise JobRejected(f"base {base!r}: {job.tenant}/{job.model} has no such version"
                              + (" (no production version yet; name base 'tiny' or 'minilm')" if base == "production" else ""))
        return self.artifacts.open_uri(mv.artifact_uri), mv.version

    # -- job kinds ---------------------------------------------------------------------------------

    def _retrain(self, job: JobSpec, ctx: JobContext) -> dict[str, Any]:
        snap, data = self._snapshot(job, ctx)
        task = job.train.task
        champion = self._version(job, None)
        texts = [r["prompt"] + "\n" + (r.get("response") or "") for r in data.train]
        base_dir, base_name = self._base_dir(job, champion, texts)
        ctx.report(0.08, "train", f"fine-tuning {base_name} on {snap.train_rows} rows")
        checkpoints: list[str] = []

        def on_checkpoint(step: int, folder: Path) -> None:
            ref = self.artifacts.put_dir(folder, CHECKPOINT_KIND, {"job_id": job.job_id, "step": step,
                                                                   "dataset": snap.version}, move=True)
            checkpoints.append(ref.uri)

        # a re-run of this job (its worker died) continues from its latest checkpoint on the same dataset
        found = self.artifacts.find(CHECKPOINT_KIND, job_id=job.job_id, dataset=snap.version)
        resume = None
        if found:
            ref, meta = max(found, key=lambda f: f[1]["step"])
            resume = self.artifacts.open(CHECKPOINT_KIND, ref.digest)
            checkpoints += [r.uri for r, _ in sorted(found, key=lambda f: f[1]["step"])]
            ctx.report(0.08, "train", f"resuming from the checkpoint at step {meta['step']}")

        hooks = TrainHooks(
            check=ctx.check,
            progress=lambda step, total, loss: ctx.report(0.08 + 0.72 * step / total, "train",
                                                          f"step {step}/{total} loss {loss:.4f}"),
            checkpoint=on_checkpoint,
        )
        with self.artifacts.staging() as stage:
            res = fine_tune(base_dir, data.train, job.train, stage / "model", labels=snap.labels,
                            device=self.options.device, hooks=hooks, resume=resume)
            ctx.check()
            ref = self.artifacts.put_dir(stage / "model", MODEL_KIND, {
                "job_id": job.job_id, "tenant": job.tenant, "model": job.model, "base": base_name,
                "dataset": snap.ref.uri, "train": res.to_dict()}, move=True)
        ctx.report(0.82, "evaluate", "evaluating challenger and champion on the held-out split")
        challenger = evaluate_model(self.artifacts.open(MODEL_KIND, ref.digest), data.eval, task,
                                    max_length=job.train.max_length, device=self.options.device,
                                    check=ctx.check, batch_size=self.options.eval_batch_size)
        champ_metrics = None
        if champion is not None and champion.task == task:
            champ_metrics = evaluate_model(self.artifacts.open_uri(champion.artifact_uri), data.eval, task,
                                           max_length=job.train.max_length, device=self.options.device,
                                           check=ctx.check, batch_size=self.options.eval_batch_size)
        verdict = gate(champ_metrics, challenger, job.gate)
        ctx.check()
        ctx.report(0.95, "register", verdict.reason)
        metrics = {**challenger, "train_samples_per_s": res.samples_per_s, "train_final_loss": res.final_loss}
        mv = self.registry.register_version(job.tenant, job.model, artifact_uri=ref.uri, task=task, metrics=metrics,
                                            parent_version=champion.version if champion else None,
                                            dataset_version=snap.version, job_id=job.job_id)
        promoted = False
        if verdict.passed and job.promote == "auto":
            sw = switch_alias(self.registry, job.tenant, job.model, job.alias, mv.version, action="promote",
                              actor=job.approved_by or job.requested_by, reason=f"job {job.job_id}: {verdict.reason}",
                              job_id=job.job_id)
            self.publish_deployment(sw.event)
            promoted = True
        return {
            "candidate_version": mv.version, "artifact": ref.uri, "dataset": snap.to_dict(), "train": res.to_dict(),
            "champion": {"version": champion.version, "metrics": champ_metrics} if champion else None,
            "challenger": challenger, "gate": verdict.to_dict(), "promoted": promoted,
            "awaiting_promotion_approval": verdict.passed and job.promote == "approval",
            "checkpoints": checkpoints,
        }

    def _evaluate(self, job: JobSpec, ctx: JobContext) -> dict[str, Any]:
        snap, data = self._snapshot(job, ctx)
        mv = self._version(job, job.version)
        if mv is None:
            raise JobRejected(f"{job.tenant}/{job.model} has no version {job.version or job.alias!r}")
        ctx.report(0.3, "evaluate", f"evaluating {mv.version}")
        metrics = evaluate_model(self.artifacts.open_uri(mv.artifact_uri), data.eval, mv.task,
                                 max_length=job.train.max_length, device=self.options.device, check=ctx.check,
                                 batch_size=self.options.eval_batch_size)
        return {"version": mv.version, "dataset": snap.to_dict(), "metrics": metrics}

    def _promote(self, job: JobSpec, ctx: JobContext) -> dict[str, Any]:
        found = self.registry.get_version(job.tenant, job.model, job.version) if job.version else None
        if found is None or job.version is None:
            raise JobRejected(f"promote needs an existing version (got {job.version!r})")
        self.artifacts.open_uri(found.artifact_uri)  # verified
        sw = switch_alias(self.registry, job.tenant, job.model, job.alias, job.version, action="promote",
                          actor=job.approved_by or job.requested_by, reason=job.reason, job_id=job.job_id)
        self.publish_deployment(sw.event)
        return {"alias": job.alias, "version": sw.change.version, "previous_version": sw.change.previous_version,
                "deployment_event_id": sw.event.event_id}

    def _rollback(self, job: JobSpec, ctx: JobContext) -> dict[str, Any]:
        try:
            sw = rollback(self.registry, job.tenant, job.model, alias=job.alias, to_version=job.version,
                          actor=job.approved_by or job.requested_by, reason=job.reason, job_id=job.job_id)
        except ValueError as exc:
            raise JobRejected(str(exc)) from exc
        self.publish_deployment(sw.event)
        return {"alias": job.alias, "version": sw.change.version, "previous_version": sw.change.previous_version,
                "deployment_event_id": sw.event.event_id}
