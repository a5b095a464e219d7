"""Held-out evaluation and the champion/challenger gate.

Classification: ``accuracy``, ``macro_f1`` (over the labels present in the eval split; a label the model
does not know counts as a miss), ``eval_loss`` (cross-entropy over rows whose label the model knows).
Causal LM: ``eval_loss`` (mean token negative log-likelihood of the responses) and ``perplexity``.
The gate compares the challenger with the champion (the current production version) on the metrics the
job names; each rule says which direction is better and by how much the challenger must win.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from contracts.jobs import GateRule
from jobs.train import (
    _encode_sft,
    _pad,
    autocast_dtype,
    classification_text,
    load_for_task,
    pick_device,
    read_model_meta,
)


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], classes: Sequence[int]) -> float:
    """Unweighted mean of per-class F1 over ``classes`` (a class never predicted nor present scores 0)."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for c in classes:
        tp = int(np.sum((t == c) & (p == c)))
        fp = int(np.sum((t != c) & (p == c)))
        fn = int(np.sum((t == c) & (p != c)))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def evaluate_model(
    model_dir: Path,
    rows: Sequence[dict[str, Any]],
    task: str,
    *,
    max_length: int = 64,
    batch_size: int = 64,
    device: str | None = None,
    check: Callable[[], None] = lambda: None,
    use_response: bool = False,
) -> dict[str, float]:
    """Metrics of the model in ``model_dir`` on held-out ``rows``."""
    import torch

    dev = pick_device(device)
    amp = autocast_dtype(dev)
    if task == "causal_lm":
        model, tok, _ = load_for_task(model_dir, "causal_lm")
    else:
        labels = read_model_meta(model_dir).get("labels")
        if not labels:
            raise ValueError(f"{model_dir} is not a classifier (no labels in its metadata)")
        model, tok, labels = load_for_task(model_dir, "classification", labels)
    model.to(dev).eval()
    if task == "causal_lm":
        ids, targets = _encode_sft(tok, rows, max_length)
        nll, count = 0.0, 0
        with torch.inference_mode():
            for s in range(0, len(ids), batch_size):
                check()
                chunk = ids[s:s + batch_size]
                x = _pad(chunk, tok.pad_token_id).to(dev)
                y = _pad(targets[s:s + batch_size], -100).to(dev)
                mask = (torch.arange(x.shape[1])[None, :] < torch.tensor([len(c) for c in chunk])[:, None]).long()
                with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
                    logits = model(input_ids=x, attention_mask=mask.to(dev)).logits
                shift_logits, shift_y = logits[:, :-1].float(), y[:, 1:]
                loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                         shift_y.reshape(-1), ignore_index=-100, reduction="sum")
                nll += float(loss)
                count += int((shift_y != -100).sum())
        mean = nll / max(1, count)
        return {"eval_loss": mean, "perplexity": math.exp(min(mean, 50.0)), "eval_rows": float(len(rows))}
    index = {label: i for i, label in enumerate(labels or [])}
    enc = tok([classification_text(r, use_response) for r in rows], truncation=True, max_length=max_length)
    ids = enc["input_ids"]
    preds: list[int] = []
    loss_sum, loss_n = 0.0, 0
    with torch.inference_mode():
        for s in range(0, len(ids), batch_size):
            check()
            chunk = ids[s:s + batch_size]
            x = _pad(chunk, tok.pad_token_id)
            mask = (torch.arange(x.shape[1])[None, :] < torch.tensor([len(c) for c in chunk])[:, None]).long()
            with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
                logits = model(input_ids=x.to(dev), attention_mask=mask.to(dev)).logits.float()
            preds += logits.argmax(-1).tolist()
            known = [(j, index[r["label"]]) for j, r in enumerate(rows[s:s + batch_size]) if r["label"] in index]
            if known:
                js = torch.tensor([j for j, _ in known], device=dev)
                ys = torch.tensor([y for _, y in known], device=dev)
                loss_sum += float(torch.nn.functional.cross_entropy(logits[js], ys, reduction="sum"))
                loss_n += len(known)
    # a label the model does not know gets class id -1: always a miss
    y_true = [index.get(r["label"], -1) for r in rows]
    present = sorted({y for y in y_true})
    acc = float(np.mean(np.asarray(y_true) == np.asarray(preds))) if rows else 0.0
    return {"accuracy": acc, "macro_f1": macro_f1(y_true, preds, present),
            "eval_loss": loss_sum / loss_n if loss_n else float("inf"), "eval_rows": float(len(rows))}


@dataclass
class GateCheck:
    """One rule's outcome."""

    metric: str
    direction: str
    min_delta: float
    champion: float | None
    challenger: float | None
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class GateResult:
    """The champion/challenger verdict: passed when every rule passed."""

    passed: bool
    reason: str
    checks: list[GateCheck] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reason": self.reason, "checks": [c.to_dict() for c in self.checks]}


def gate(champion: dict[str, float] | None, challenger: dict[str, float], rules: Sequence[GateRule]) -> GateResult:
    """Compare the challenger with the champion on ``rules``; with no champion, the challenger passes
    when every named metric exists and is finite."""
    checks: list[GateCheck] = []
    for rule in rules:
        new = challenger.get(rule.metric)
        old = None if champion is None else champion.get(rule.metric)
        if new is None or not math.isfinite(new):
            ok = False
        elif champion is None:
            ok = True
        elif old is None or not math.isfinite(old):
            ok = True  # the champion cannot be measured on this metric: the challenger wins it
        elif rule.direction == "higher":
            ok = new >= old + rule.min_delta
        else:
            ok = new <= old - rule.min_delta
        checks.append(GateCheck(rule.metric, rule.direction, rule.min_delta, old, new, ok))
    failed = [c.metric for c in checks if not c.passed]
    if not checks:
        return GateResult(False, "the job names no metric to gate on", checks)
    if failed:
        return GateResult(False, f"challenger does not beat the champion on {', '.join(failed)}", checks)
    return GateResult(True, "no champion: first version" if champion is None else "challenger beats the champion", checks)
