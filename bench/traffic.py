"""Seeded production-like traffic for the throughput benchmarks (``bench.sustained``).

Every event is new text: user messages and responses are distinct chat texts of 100-1,000 characters, about
20 % of them with PII (:func:`bench.pii_corpus.labelled_set`, drawn with ever new seeds; a text seen before is
skipped, so no text is ever reused). System prompts repeat, as they do in production: each model has two, drawn
from a pool of forty. The mix is 3 tenants x 10 models, 90 % inference events (4 % failed calls, 2 % above the
latency SLO, users with cohort attributes), the rest feedback on earlier calls (some with a free-text comment),
training steps of one run per model and, rarely, a deployment under a non-production alias.

Payloads are built ahead of sending; ``occurred_at`` is filled in when an event is sent
(:meth:`Template.payload`), so time-windowed detectors see live timestamps.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.pii_corpus import labelled_set

TENANTS = ("acme", "globex", "initech")
MODELS_PER_TENANT = 10
_TS = "2000-01-01T00:00:00.000000+00:00"  # a placeholder of the same length as every real timestamp


def now_iso() -> str:
    """The current UTC time as the events carry it (fixed length, microseconds)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True)
class Template:
    """One event ready to send: its topic, key, id, kind and JSON with the timestamp left open."""

    topic: str
    key: bytes
    event_id: str
    kind: str
    """``inference``, ``inference_error``, ``inference_slow``, ``feedback``, ``training`` or ``deployment``."""
    head: bytes
    tail: bytes

    def payload(self, occurred_at: str | None = None) -> bytes:
        """The event's bytes with ``occurred_at`` (now by default)."""
        return self.head + (occurred_at or now_iso()).encode() + self.tail


class TextStream:
    """Distinct chat texts, 100-1,000 characters, ``pii_fraction`` of them with PII (never the same text twice)."""

    def __init__(self, seed: int, pii_fraction: float = 0.2, chunk: int = 2000) -> None:
        self.seed = seed
        self.pii_fraction = pii_fraction
        self.chunk = chunk
        self._seen: set[bytes] = set()
        self._round = 0
        self._buffer: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        while not self._buffer:
            self._round += 1
            rows = labelled_set(self.chunk, seed=self.seed * 100_003 + self._round, pii_fraction=self.pii_fraction)
            for row in rows:
                digest = hashlib.blake2b(row["text"].encode(), digest_size=12).digest()
                if digest not in self._seen:
                    self._seen.add(digest)
                    self._buffer.append(row["text"])
            self._buffer.reverse()
        return self._buffer.pop()


class Traffic:
    """The event mix of a deployment with :data:`TENANTS` x ``models`` models (see the module docstring)."""

    def __init__(self, seed: int = 19, models: int = MODELS_PER_TENANT, pii_fraction: float = 0.2) -> None:
        self.rng = random.Random(seed)
        self.texts = TextStream(seed, pii_fraction)
        self.subjects = [(t, f"model-{m}") for t in TENANTS for m in range(models)]
        system = TextStream(seed + 7_777, pii_fraction=0.0)
        pool = [next(system) for _ in range(40)]
        self.system = {s: self.rng.sample(pool, 2) for s in self.subjects}
        self.recent: dict[tuple[str, str], list[str]] = {s: [] for s in self.subjects}
        self.steps: dict[tuple[str, str], int] = dict.fromkeys(self.subjects, 0)

    def subject(self) -> tuple[str, str]:
        """A subject; traffic is uneven across models, as it is in production (a few models are busier)."""
        return self.subjects[min(int(self.rng.paretovariate(1.2)) - 1, len(self.subjects) - 1)
                             if self.rng.random() < 0.3 else self.rng.randrange(len(self.subjects))]

    def deployments(self, prefix: str) -> list[Template]:
        """One production deployment per model (version ``v1``): its drift monitor starts pinning a reference."""
        return [self._template(prefix, i, "deployment", s, {"action": "deploy", "alias": "production"})
                for i, s in enumerate(self.subjects)]

    def events(self, n: int, prefix: str) -> list[Template]:
        """``n`` events of the mix, ids ``<prefix>-<i>``."""
        return [self.event(prefix, i) for i in range(n)]

    def event(self, prefix: str, i: int) -> Template:
        r = self.rng
        s = self.subject()
        x = r.random()
        if x < 0.90 or not self.recent[s]:
            return self._inference(prefix, i, s)
        if x < 0.969:
            body: dict[str, object] = {"target_event_id": r.choice(self.recent[s]),
                                       "thumbs": r.choice(("up", "up", "up", "down"))}
            if r.random() < 0.3:
                body["comment"] = next(self.texts)[: r.randint(40, 300)]
            return self._template(prefix, i, "feedback", s, body)
        if x < 0.999:
            self.steps[s] += 1
            step = self.steps[s]
            loss = 2.5 / (1 + step / 200) + r.gauss(0, 0.02)
            return self._template(prefix, i, "training", s, {
                "run_id": f"run-{s[0]}-{s[1]}", "phase": "step", "step": step, "base_version": "v1",
                "metrics": {"loss": round(loss, 5), "learning_rate": 2e-5, "grad_norm": round(abs(r.gauss(1, 0.2)), 4)}})
        return self._template(prefix, i, "deployment", s, {"action": "deploy", "alias": "staging", "actor": "ci"})

    def _inference(self, prefix: str, i: int, s: tuple[str, str]) -> Template:
        r = self.rng
        user, answer = next(self.texts), next(self.texts)
        system = r.choice(self.system[s])
        y = r.random()
        kind, status, latency = "inference", "ok", round(r.lognormvariate(6.5, 0.5), 1)  # median ~650 ms
        if y < 0.04:
            kind, status = "inference_error", "error"
        elif y < 0.06:
            kind, latency = "inference_slow", round(r.uniform(5_500, 20_000), 1)
        body: dict[str, object] = {
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response": {"content": answer, "finish_reason": r.choice(("stop",) * 9 + ("length",))},
            "usage": {"input_tokens": (len(system) + len(user)) // 4, "output_tokens": len(answer) // 4},
            "latency_ms": latency, "status": status, "cost_usd": round((len(system) + len(user) + len(answer)) * 2e-7, 6),
            "user": {"id": f"u-{r.randrange(5000)}", "attributes": {"age_band": r.choice(("18-25", "26-40", "41-65", "65+")),
                                                                    "gender": r.choice(("f", "m", "x"))}},
        }
        if status == "error":
            body["error"] = r.choice(("upstream_timeout", "rate_limited", "context_length_exceeded", "internal_error"))
        template = self._template(prefix, i, kind, s, body)
        recent = self.recent[s]
        recent.append(template.event_id)
        if len(recent) > 50:
            del recent[0]
        return template

    def _template(self, prefix: str, i: int, kind: str, s: tuple[str, str], body: dict[str, object]) -> Template:
        etype = "inference" if kind.startswith("inference") else kind
        event_id = f"{prefix}-{i}"
        ev = {"schema_version": "1", "event_id": event_id, "type": etype, "occurred_at": _TS, "tenant": s[0],
              "model": {"name": s[1], "version": "v1"}, etype: body}
        raw = json.dumps(ev, ensure_ascii=False).encode()
        head, _, tail = raw.partition(_TS.encode())
        topic = {"inference": "warden.inference", "feedback": "warden.feedback", "training": "warden.training",
                 "deployment": "warden.deployments"}[etype]
        return Template(topic, f"{s[0]}/{s[1]}".encode(), event_id, kind, head, tail)
