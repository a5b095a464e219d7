"""``warden demo``: realistic traffic for trying Warden (several tenants and models).

Most calls are healthy; some fail, some are slow (above the latency SLO), and a few payloads are
malformed so that the dead-letter path shows up too.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from contracts.topics import INFERENCE
from warden.client import WardenProducer

TENANTS = ("acme", "globex", "initech")
MODELS = (("support-bot", "3"), ("summarizer", "1"), ("code-assist", "7"))
PROMPTS = (
    "Where is my order? It was supposed to arrive on Monday.",
    "Summarise this ticket thread for the on-call engineer.",
    "Write a Python function that parses ISO 8601 timestamps.",
    "What is your refund policy for annual plans?",
    "Explain the difference between a mutex and a semaphore.",
    "Translate 'good morning, how can I help you' into French.",
)
ANSWERS = (
    "Your order shipped yesterday and should arrive within two business days.",
    "The customer reports intermittent 502 errors since the last deploy; a rollback fixed it.",
    "def parse(ts: str) -> datetime:\n    return datetime.fromisoformat(ts)",
    "Annual plans can be refunded pro rata within 30 days of purchase.",
    "A mutex allows one holder at a time; a semaphore allows up to N.",
    "Bonjour, comment puis-je vous aider ?",
)


@dataclass(frozen=True, slots=True)
class DemoStats:
    sent: int
    errors: int
    slow: int
    malformed: int
    seconds: float


async def run_demo(bootstrap: str, *, rate: float = 20.0, duration_s: float | None = None,
                   total: int | None = None, seed: int | None = None, slo_ms: float = 5000.0) -> DemoStats:
    """Send demo traffic at about ``rate`` events/s for ``duration_s`` seconds or ``total`` events."""
    rng = random.Random(seed)
    producers = {t: WardenProducer(bootstrap, tenant=t, linger_ms=5) for t in TENANTS}
    raw = AIOKafkaProducer(bootstrap_servers=bootstrap)
    for p in producers.values():
        await p.start()
    await raw.start()
    sent = errors = slow = malformed = 0
    started = time.monotonic()
    try:
        while (duration_s is None or time.monotonic() - started < duration_s) and (total is None or sent < total):
            tenant = rng.choice(TENANTS)
            model, version = rng.choice(MODELS)
            i = rng.randrange(len(PROMPTS))
            roll = rng.random()
            if roll < 0.01:
                await raw.send(INFERENCE, b'{"schema_version": "1", "event_id": ', key=model.encode())
                malformed += 1
                sent += 1
                continue
            status = "error" if roll < 0.04 else "ok"
            latency = rng.lognormvariate(6.6, 0.5)  # median ~ 740 ms
            if roll > 0.97:
                latency = slo_ms * rng.uniform(1.2, 6.0)
                slow += 1
            errors += status == "error"
            await producers[tenant].log_inference(
                model=model, version=version,
                messages=[{"role": "system", "content": "You are a helpful assistant."},
                          {"role": "user", "content": PROMPTS[i]}],
                response=None if status == "error" else ANSWERS[i],
                finish_reason=None if status == "error" else "stop",
                input_tokens=len(PROMPTS[i].split()) * 2, output_tokens=len(ANSWERS[i].split()) * 2,
                latency_ms=round(latency, 1), status=status,
                error="upstream_timeout" if status == "error" else None,
                cost_usd=round(rng.uniform(0.0001, 0.004), 6),
                user_id=f"u-{rng.randrange(500)}", user_attributes={"age_band": rng.choice(["18-25", "26-40", "41-65", "65+"])},
                event_id=str(uuid.UUID(int=rng.getrandbits(128))) if seed is not None else None,
            )
            sent += 1
            if rate > 0:
                await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
    finally:
        for p in producers.values():
            await p.close()
        await raw.stop()
    return DemoStats(sent, errors, slow, malformed, time.monotonic() - started)
