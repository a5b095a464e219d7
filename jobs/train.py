"""Fine-tuning: causal-LM supervised fine-tuning and sequence classification, on CUDA or CPU.

A plain torch loop (no ``Trainer``): texts are tokenised once, batches are grouped by length (little
padding) and padded per batch, AdamW with linear warm-up and decay. On CUDA the loop uses bf16 autocast
when the GPU supports it (fp32 weights and optimiser state) and TF32 matmuls; on CPU it runs in fp32.
Between optimiser steps it calls ``hooks.check()`` (cancellation and time-out raise there) and
``hooks.progress()``; every ``checkpoint_every`` steps it saves a checkpoint through ``hooks.checkpoint``.
A checkpoint holds the model, the tokenizer and the optimiser/scheduler state; ``fine_tune(resume=...)``
continues from one (the batch order is replayed from the seed, so the run continues where it stopped).
Throughput (samples/s) is measured over the training loop only, with the device synchronised.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts.jobs import TrainSpec

MODEL_META = "warden_model.json"
TRAINER_STATE = "trainer_state.pt"


@dataclass
class TrainHooks:
    """Callbacks the loop calls; the worker binds them to cancellation, time-out and status events."""

    check: Callable[[], None] = lambda: None
    progress: Callable[[int, int, float], None] = lambda step, total, loss: None
    checkpoint: Callable[[int, Path], None] = lambda step, folder: None


@dataclass
class TrainResult:
    """What a fine-tune produced and how fast."""

    model_dir: Path
    task: str
    labels: list[str]
    device: str
    precision: str
    samples: int
    steps: int
    seconds: float
    samples_per_s: float
    final_loss: float
    checkpoints: list[int] = field(default_factory=list)
    resumed_from: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "labels": self.labels, "device": self.device, "precision": self.precision,
                "samples": self.samples, "steps": self.steps, "seconds": round(self.seconds, 3),
                "samples_per_s": round(self.samples_per_s, 1), "final_loss": self.final_loss,
                "checkpoints": self.checkpoints, "resumed_from": self.resumed_from}


def pick_device(preferred: str | None = None):  # -> torch.device
    """``preferred`` if given, else cuda when available, else cpu."""
    import torch

    return torch.device(preferred or ("cuda" if torch.cuda.is_available() else "cpu"))


def autocast_dtype(device) -> Any:
    """bf16 on a CUDA GPU that supports it, else None (fp32)."""
    import torch

    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def classification_text(row: dict[str, Any], use_response: bool = False) -> str:
    """The classifier's input: the prompt, optionally followed by the response."""
    return f"{row['prompt']}\n{row['response']}" if use_response and row.get("response") else row["prompt"]


def read_model_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / MODEL_META
    return json.loads(path.read_text()) if path.exists() else {}


def _encode_sft(tok: Any, rows: Sequence[dict[str, Any]], max_length: int) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids and labels for SFT: the loss covers the response (and EOS), not the prompt."""
    prompts = tok([r["prompt"] + "\n" for r in rows], add_special_tokens=False)["input_ids"]
    answers = tok([(r.get("response") or "") for r in rows], add_special_tokens=False)["input_ids"]
    ids_out, labels_out = [], []
    eos = tok.eos_token_id
    for p, a in zip(prompts, answers):
        a = a + [eos]
        ids = (p + a)[:max_length]
        labels = ([-100] * len(p) + a)[:max_length]
        ids_out.append(ids)
        labels_out.append(labels)
    return ids_out, labels_out


def load_for_task(base_dir: Path, task: str, labels: Sequence[str] | None = None) -> tuple[Any, Any, list[str]]:
    """Model and tokenizer from ``base_dir`` for ``task``; a classifier gets a head over ``labels``
    (the base's own labels first, new ones appended; a fresh head when the base has none)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if task == "causal_lm":
        model = AutoModelForCausalLM.from_pretrained(str(base_dir), local_files_only=True)
        return model, tok, []
    cfg = AutoConfig.from_pretrained(str(base_dir), local_files_only=True)
    meta = read_model_meta(base_dir)
    known = list(meta.get("labels") or []) if meta.get("task") == "classification" else []
    final = known + sorted(set(labels or []) - set(known))
    if not final:
        raise ValueError("a classifier needs labels")
    same = known == final
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base_dir), local_files_only=True, num_labels=len(final),
        id2label=dict(enumerate(final)), label2id={label: i for i, label in enumerate(final)},
        ignore_mismatched_sizes=not same, pad_token_id=cfg.pad_token_id if cfg.pad_token_id is not None else tok.pad_token_id,
    )
    return model, tok, final


def _batches(lengths: list[int], batch_size: int, generator: Any) -> list[list[int]]:
    """Shuffled batches of indices, grouped by length within chunks of 50 batches (little padding)."""
    import torch

    order = torch.randperm(len(lengths), generator=generator).tolist()
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in perm]


def _pad(seqs: list[list[int]], value: int) -> Any:
    import torch

    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def fine_tune(
    base_dir: Path,
    rows: Sequence[dict[str, Any]],
    spec: TrainSpec,
    out_dir: Path,
    *,
    labels: Sequence[str] | None = None,
    device: str | None = None,
    hooks: TrainHooks | None = None,
    use_response: bool = False,
    resume: Path | None = None,
) -> TrainResult:
    """Fine-tune the model in ``base_dir`` on ``rows`` (dataset records) and save it to ``out_dir``;
    with ``resume`` (a checkpoint folder of the same job and dataset), continue from that checkpoint."""
    import torch

    hooks = hooks or TrainHooks()
    dev = pick_device(device)
    amp = autocast_dtype(dev)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(spec.seed)
    model, tok, final_labels = load_for_task(resume or base_dir, spec.task, labels)
    targets: Any
    if spec.task == "causal_lm":
        ids, targets = _encode_sft(tok, rows, spec.max_length)
    else:
        enc = tok([classification_text(r, use_response) for r in rows], truncation=True,
                  max_length=spec.max_length)
        ids = enc["input_ids"]
        index = {label: i for i, label in enumerate(final_labels)}
        targets = [index[r["label"]] for r in rows]
    model.to(dev)
    model.train()
    per_epoch = math.ceil(len(ids) / spec.batch_size)
    total = spec.max_steps or max(1, math.ceil(per_epoch * spec.epochs))
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=spec.learning_rate, fused=dev.type == "cuda")
    warm = int(total * spec.warmup_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    start = 0
    if resume is not None:
        state = torch.load(resume / TRAINER_STATE, map_location=dev, weights_only=True)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = int(state["step"])
    gen = torch.Generator().manual_seed(spec.seed)
    lengths = [len(x) for x in ids]
    pad_id = tok.pad_token_id
    step, samples, loss_val, checkpoints = 0, 0, float("nan"), []
    running: list[Any] = []
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    while step < total:
        for batch in _batches(lengths, spec.batch_size, gen):
            if step >= total:
                break
            if step < start:  # replaying the batch order up to the checkpoint
                step += 1
                continue
            hooks.check()
            input_ids = _pad([ids[i] for i in batch], pad_id)
            mask = (torch.arange(input_ids.shape[1])[None, :] < torch.tensor([lengths[i] for i in batch])[:, None]).long()
            if spec.task == "causal_lm":
                y = _pad([targets[i] for i in batch], -100)
            else:
                y = torch.tensor([targets[i] for i in batch], dtype=torch.long)
            input_ids, mask, y = (t.to(dev, non_blocking=True) for t in (input_ids, mask, y))
            with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
                out = model(input_ids=input_ids, attention_mask=mask, labels=y)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            samples += len(batch)
            running.append(out.loss.detach())
            if step % 10 == 0 or step == total:
                loss_val = float(torch.stack(running).mean())
                running.clear()
                hooks.progress(step, total, loss_val)
            if spec.checkpoint_every and step % spec.checkpoint_every == 0 and step < total:
                ck = out_dir.parent / f"checkpoint-{step}"
                model.save_pretrained(ck)
                tok.save_pretrained(ck)
                (ck / MODEL_META).write_text(json.dumps({"task": spec.task, "labels": final_labels}, sort_keys=True))
                torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step},
                           ck / TRAINER_STATE)
                hooks.checkpoint(step, ck)
                checkpoints.append(step)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if running:
        loss_val = float(torch.stack(running).mean())
    model.to("cpu")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    (out_dir / MODEL_META).write_text(json.dumps({"task": spec.task, "labels": final_labels}, sort_keys=True))
    return TrainResult(out_dir, spec.task, list(final_labels), str(dev), "bf16-autocast" if amp is not None else "fp32",
                       samples, step, seconds, samples / seconds if seconds > 0 else 0.0, loss_val, checkpoints,
                       start)
