"""The pipeline's text stage: PII analysis, MiniLM embeddings and security scans of a batch's texts.

It is the CPU-heavy part of the pipeline and it holds no per-model state, so it is a pure function of its input
(a :class:`TextJob`: the batch's texts and, per event, where its messages, prompt and response are and whether
it is embedded or scanned) to its output (a :class:`TextResult`: one PII result per text, vectors and scans per
event). The stream worker runs it in child processes (:class:`TextStagePool`), so the worker's event loop —
heartbeats, commits, sends, the fast path — never waits behind PII and embeddings, and several cores can
work for one worker; :meth:`streams.pipeline.Pipeline.process_batch` runs it in-process. Only the worker's
own processes ever see the raw texts: nothing is published or stored by this stage.

Failures stay per event: when the batch raises, each event is run alone and an event that still raises comes
back with the stage it failed in and the exception's type (the pipeline dead-letters it).

Device-agnostic: the PII tagger and MiniLM run on ONNX Runtime with CUDA when ``onnxruntime-gpu`` finds a GPU
(see :func:`detectors.pii.tagger.onnx_providers`), on the CPU otherwise.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import multiprocessing
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from detectors.features.embeddings import EmbedderConfig, MiniLMEmbedder
from detectors.pii.detector import PiiConfig, PiiDetector, PiiResult
from detectors.security import Scan, SecurityConfig, SecurityScanner

log = logging.getLogger("warden.worker")

#: embeddings of recent texts kept (system prompts and templates repeat)
EMBEDDING_CACHE = 20_000


@dataclass(slots=True)
class TextPlan:
    """One event's share of a :class:`TextJob` (indices into ``TextJob.texts``)."""

    start: int
    n_named: int
    """Message texts, then the response text (if any), then ``n_free`` other free texts."""
    n_free: int
    roles: list[str] = field(default_factory=list)
    """Roles of the messages (the first ``len(roles)`` named texts)."""
    has_response: bool = False
    prompt: int | None = None
    """Which message is the prompt (the last user message), for the embeddings."""
    embed: bool = False
    scan: bool = False


@dataclass(slots=True)
class TextJob:
    """The texts of a batch and, per event, how they are used."""

    texts: list[str] = field(default_factory=list)
    plans: list[TextPlan] = field(default_factory=list)


@dataclass(slots=True)
class TextResult:
    """Per text its PII result (None: PII off); per plan its vectors, scans and failure (stage, exception type)."""

    pii: list[PiiResult | None]
    vectors: list[dict[str, np.ndarray] | None]
    scans: list[list[Scan] | None]
    errors: list[tuple[str, str] | None]
    seconds: dict[str, float] = field(default_factory=dict)


class TextStage:
    """Runs :class:`TextJob` s with a PII detector, an embedder and a security scanner (each may be None)."""

    def __init__(self, pii: PiiDetector | None, embedder: MiniLMEmbedder | None,
                 security: SecurityScanner | None) -> None:
        self.pii = pii
        self.embedder = embedder
        self.security = security
        self.cache: OrderedDict[str, np.ndarray] = OrderedDict()
        #: texts embedded for drift (``drift_embedded``) and for the security heads (``security_embedded``)
        self.stats: Counter[str] = Counter()

    def warm_up(self) -> None:
        """Load the models now."""
        if self.pii is not None:
            self.pii.warm_up()
        if self.embedder is not None:
            self.embedder.embed(["warm-up"])

    def run(self, job: TextJob) -> TextResult:
        """The job's results; an event whose texts make a stage raise comes back with ``errors`` set."""
        n = len(job.plans)
        result = TextResult([None] * len(job.texts), [None] * n, [None] * n, [None] * n)
        try:
            self._run(job, list(range(n)), result)
            return result
        except Exception:
            log.warning("text stage failed on a batch; running its events one by one")
        for p in range(n):
            stage = ["pii"]
            try:
                self._run(job, [p], result, stage)
            except Exception as exc:
                result.errors[p] = (stage[0], type(exc).__name__)
        return result

    def _run(self, job: TextJob, which: list[int], result: TextResult, stage: list[str] | None = None) -> None:
        stage = stage if stage is not None else ["pii"]
        seconds = result.seconds
        clock = time.perf_counter
        t = clock()
        idx = [i for p in which for i in range(job.plans[p].start,
                                                job.plans[p].start + job.plans[p].n_named + job.plans[p].n_free)]
        redacted: dict[int, str] = {}
        if self.pii is not None and idx:
            for i, res in zip(idx, self.pii.analyze_batch([job.texts[i] for i in idx])):
                result.pii[i] = res
                redacted[i] = res.redacted
        else:
            redacted = {i: job.texts[i] for i in idx}
        now = clock()
        seconds["pii"] = seconds.get("pii", 0.0) + now - t
        t = now
        stage[0] = "embeddings"
        texts: dict[int, tuple[str, str]] = {}
        for p in which:
            plan = job.plans[p]
            if plan.embed and self.embedder is not None:
                prompt = redacted[plan.start + plan.prompt] if plan.prompt is not None else ""
                response = redacted[plan.start + len(plan.roles)] if plan.has_response else ""
                texts[p] = (prompt, response)
        if texts:
            missing = list(dict.fromkeys(x for pair in texts.values() for x in pair if x not in self.cache))
            if missing:
                self._embed(missing)
                self.stats["drift_embedded"] += len(missing)
            for p, (prompt, response) in texts.items():
                result.vectors[p] = {"prompt": self.cache[prompt], "response": self.cache[response]}
        now = clock()
        seconds["embed"] = seconds.get("embed", 0.0) + now - t
        t = now
        stage[0] = "security"
        scanned = [p for p in which if job.plans[p].scan]
        if self.security is not None and scanned:
            events = []
            known: dict[str, np.ndarray] = {}
            for p in scanned:
                plan = job.plans[p]
                messages = [(role, redacted[plan.start + k]) for k, role in enumerate(plan.roles)]
                answer = redacted[plan.start + len(plan.roles)] if plan.has_response else None
                events.append((messages, answer))
                if p in texts:
                    known[texts[p][0]] = self.cache[texts[p][0]]
                    known[texts[p][1]] = self.cache[texts[p][1]]
                for text in [m for _, m in messages] + ([answer] if answer else []):
                    if text not in known and text in self.cache:
                        known[text] = self.cache[text]
            embed = self._embed_gated if self.embedder is not None else None
            for p, scans in zip(scanned, self.security.scan_batch(events, known, embed)):
                result.scans[p] = scans
        seconds["security"] = seconds.get("security", 0.0) + clock() - t

    def _embed_gated(self, texts: list[str]) -> np.ndarray:
        self.stats["security_embedded"] += len(texts)
        return self._embed(texts)

    def _embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` and keep them in the cache."""
        assert self.embedder is not None
        vecs = self.embedder.embed(texts)
        cache = self.cache
        for text, vec in zip(texts, vecs):
            cache[text] = vec
        while len(cache) > EMBEDDING_CACHE:
            cache.popitem(last=False)
        return vecs


# ------------------------------------------------------------------------------------------ child processes


@dataclass(frozen=True)
class TextStageConfig:
    """What a child process builds its :class:`TextStage` from (picklable)."""

    pii: PiiConfig | None
    embeddings: EmbedderConfig | None
    security: SecurityConfig | None


_STAGE: TextStage | None = None


def _exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """End this process when its parent is gone (a worker killed with SIGKILL cannot stop its children)."""
    while True:
        time.sleep(every_s)
        if os.getppid() != parent:
            os._exit(0)


def _start_child(config: TextStageConfig, parent: int) -> None:
    global _STAGE
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="parent-watch").start()
    _STAGE = TextStage(PiiDetector(config.pii) if config.pii is not None else None,
                       MiniLMEmbedder(config.embeddings) if config.embeddings is not None else None,
                       SecurityScanner(config.security) if config.security is not None else None)
    _STAGE.warm_up()
    gc.freeze()  # the loaded models stay for the process's life: full collections need not walk them


def _run_in_child(job: TextJob) -> TextResult:
    assert _STAGE is not None, "text stage process not initialised"
    return _STAGE.run(job)


def _ready() -> bool:
    return _STAGE is not None


class TextStagePool:
    """``processes`` child processes running the text stage; a batch is split between them.

    Children are spawned (not forked: the worker has threads) and load their models once. A child that dies
    is replaced: the pool is rebuilt and the batch it had is run again.
    """

    def __init__(self, config: TextStageConfig, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        self.config = config
        self.processes = processes
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self.closed = False

    def start(self) -> None:
        """Start the children and wait until their models are loaded."""
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start_child,
            initargs=(self.config, os.getpid()))
        for f in [self._pool.submit(_ready) for _ in range(self.processes)]:
            f.result()

    def close(self) -> None:
        """Stop the children."""
        self.closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def run(self, job: TextJob) -> TextResult:
        """The job's results, computed by the children (split into ``processes`` parts)."""
        if self.closed:
            raise RuntimeError("the text stage processes were stopped")
        if self._pool is None:
            self.start()
        parts = split(job, self.processes)
        loop = asyncio.get_running_loop()
        try:
            results = await asyncio.gather(*(loop.run_in_executor(self._pool, _run_in_child, part) for part in parts))
        except concurrent.futures.process.BrokenProcessPool:
            log.error("a text stage process died; restarting them and running the batch again")
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self.start()
            results = await asyncio.gather(*(loop.run_in_executor(self._pool, _run_in_child, part) for part in parts))
        return merge(job, parts, list(results))


def split(job: TextJob, n: int) -> list[TextJob]:
    """``job`` cut into at most ``n`` jobs of consecutive events with about as many texts each."""
    if n <= 1 or len(job.plans) <= 1:
        return [job]
    target = len(job.texts) / n
    parts: list[TextJob] = []
    cur = TextJob()
    for plan in job.plans:
        size = plan.n_named + plan.n_free
        if cur.plans and len(parts) < n - 1 and len(cur.texts) >= target:
            parts.append(cur)
            cur = TextJob()
        cur.plans.append(TextPlan(len(cur.texts), plan.n_named, plan.n_free, plan.roles, plan.has_response,
                                  plan.prompt, plan.embed, plan.scan))
        cur.texts.extend(job.texts[plan.start:plan.start + size])
    parts.append(cur)
    return parts


def merge(job: TextJob, parts: Sequence[TextJob], results: Sequence[TextResult]) -> TextResult:
    """The results of :func:`split` parts as one result of ``job``."""
    if len(parts) == 1:
        return results[0]
    out = TextResult([None] * len(job.texts), [], [], [])
    k = 0
    for part, res in zip(parts, results):
        for plan, p_plan in zip(job.plans[k:k + len(part.plans)], part.plans):
            size = plan.n_named + plan.n_free
            out.pii[plan.start:plan.start + size] = res.pii[p_plan.start:p_plan.start + size]
        k += len(part.plans)
        out.vectors += res.vectors
        out.scans += res.scans
        out.errors += res.errors
        for name, s in res.seconds.items():
            out.seconds[name] = out.seconds.get(name, 0.0) + s
    return out
