"""Deterministic synthetic prompt/response corpora for drift tests and benchmarks.

``python bench/data/drift_make.py`` writes, next to this file:

* ``drift_ref.jsonl``      — reference traffic of "model A" on a mix of everyday topics;
* ``drift_same.jsonl``     — more traffic from the same generator (must NOT alarm);
* ``drift_verbose.jsonl``  — model A got verbose (longer answers, more lists);
* ``drift_terse.jsonl``    — model A got terse;
* ``drift_mild.jsonl``     — model A got a little more verbose (answers ~25% longer): a hard case;
* ``drift_model_b.jsonl``  — a different model: another house style at a similar length;
* ``drift_topic.jsonl``    — same model, new user population asking about other topics.

Lines are ``{"prompt", "response", "completion_tokens", "latency_ms", "finish_reason"}``. Everything is
generated from templates with a seeded ``random.Random``, so the files are reproducible.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path

TOPICS: dict[str, dict[str, list[str]]] = {
    "cooking": {
        "things": ["risotto", "sourdough bread", "a vegetable curry", "pancakes", "lasagna", "a lentil soup",
                   "grilled salmon", "a chocolate cake", "pad thai", "a caesar salad"],
        "words": ["simmer", "stir", "oven", "flour", "butter", "garlic", "onion", "salt", "pan", "heat", "minutes",
                  "dough", "sauce", "taste", "season", "bake", "boil", "fresh", "herbs", "oil"],
    },
    "travel": {
        "things": ["a weekend in Lisbon", "a trip to Kyoto", "hiking in Patagonia", "a road trip in Norway",
                   "visiting Rome on a budget", "a family holiday in Crete", "backpacking in Vietnam"],
        "words": ["flight", "hotel", "train", "museum", "beach", "ticket", "budget", "itinerary", "tour", "local",
                  "restaurant", "walk", "district", "season", "booking", "airport", "guide", "views"],
    },
    "programming": {
        "things": ["a Python list comprehension", "a SQL join", "a REST API in Flask", "unit tests with pytest",
                   "a React component", "a bash script", "async code in JavaScript", "a Dockerfile"],
        "words": ["function", "variable", "loop", "error", "return", "import", "class", "test", "query",
                  "request", "server", "install", "module", "debug", "value", "string", "array", "call"],
    },
    "fitness": {
        "things": ["a beginner running plan", "strength training at home", "stretching after work",
                   "a 5k race", "building core strength", "a yoga routine", "cycling endurance"],
        "words": ["muscle", "rest", "week", "warm", "repetitions", "pace", "breathing", "recovery", "sets",
                  "weights", "heart", "stretch", "goal", "routine", "energy", "sleep", "water", "progress"],
    },
}

SHIFT_TOPICS: dict[str, dict[str, list[str]]] = {
    "tax": {
        "things": ["filing taxes as a freelancer", "deducting a home office", "capital gains on shares",
                   "VAT registration", "a late tax return", "pension contributions and tax"],
        "words": ["income", "deduction", "return", "allowance", "invoice", "rate", "liability", "receipt",
                  "authority", "year", "expense", "declare", "bracket", "refund", "assessment", "records"],
    },
    "legal": {
        "things": ["breaking a rental lease", "a dispute with a contractor", "writing a simple will",
                   "a GDPR data request", "an employment contract clause", "small claims court"],
        "words": ["contract", "clause", "tenant", "notice", "court", "rights", "agreement", "party", "law",
                  "liability", "evidence", "claim", "lawyer", "document", "terms", "dispute", "signed"],
    },
}

ASKS = ["How do I {t}?", "Can you explain {t} to me?", "What should I know about {t}?",
        "Give me some tips for {t}.", "I'm new to this: {t}. Where do I start?", "What is the best way to do {t}?"]
ASKS_ES = ["¿Cómo puedo empezar con {t}?", "¿Qué debo saber sobre {t}?"]
REFUSALS = ["I'm sorry, but I can't help with that request.",
            "I cannot assist with that. Is there something else I can help you with?"]


def _sentence(rng: random.Random, words: list[str], n_lo: int = 8, n_hi: int = 18) -> str:
    glue = ["the", "a", "and", "to", "of", "with", "for", "your", "is", "it", "you", "can", "then", "this"]
    n = rng.randint(n_lo, n_hi)
    toks = [rng.choice(words) if rng.random() < 0.45 else rng.choice(glue) for _ in range(n)]
    s = " ".join(toks)
    return s[0].upper() + s[1:] + "."


def _prompt(rng: random.Random, topics: dict[str, dict[str, list[str]]]) -> tuple[str, dict[str, list[str]]]:
    topic = topics[rng.choice(sorted(topics))]
    thing = rng.choice(topic["things"])
    ask = rng.choice(ASKS_ES) if rng.random() < 0.04 else rng.choice(ASKS)
    prompt = ask.format(t=thing)
    if rng.random() < 0.3:
        prompt += " " + _sentence(rng, topic["words"], 6, 14)
    return prompt, topic


def _response_a(rng: random.Random, words: list[str], scale: float) -> str:
    """Model A: a short intro paragraph, sometimes a numbered list, a closing line."""
    n_par = max(1, round(rng.gauss(3.0, 1.0) * scale))
    parts = [" ".join(_sentence(rng, words) for _ in range(rng.randint(1, 3))) for _ in range(n_par)]
    if rng.random() < 0.35 * min(scale, 2.0):
        items = [f"{i + 1}. " + _sentence(rng, words, 5, 10) for i in range(max(2, round(rng.randint(3, 5) * scale)))]
        parts.insert(1, "\n".join(items))
    return "\n\n".join(parts)


def _response_b(rng: random.Random, words: list[str]) -> str:
    """Model B: an upbeat opener, markdown headings and bullet points, similar total length."""
    opener = rng.choice(["Certainly!", "Great question!", "Sure thing!", "Absolutely!"])
    parts = [opener + " " + _sentence(rng, words)]
    for _ in range(rng.randint(2, 3)):
        head = "**" + rng.choice(words).capitalize() + " " + rng.choice(words) + "**"
        bullets = "\n".join("- " + _sentence(rng, words, 4, 9) for _ in range(rng.randint(2, 3)))
        parts.append(head + "\n" + bullets)
    parts.append("Let me know if you'd like more detail!")
    return "\n\n".join(parts)


def generate(kind: str, n: int, seed: int) -> Iterator[dict[str, object]]:
    """Yield ``n`` records of one corpus ``kind`` (ref/same, verbose, terse, mild, model_b, topic)."""
    rng = random.Random(f"{kind}:{seed}")
    topics = SHIFT_TOPICS | {"cooking": TOPICS["cooking"]} if kind == "topic" else TOPICS
    scale = {"verbose": 1.7, "terse": 0.45, "mild": 1.25}.get(kind, 1.0)
    for _ in range(n):
        prompt, topic = _prompt(rng, topics)
        if rng.random() < 0.03:
            response, finish = rng.choice(REFUSALS), "stop"
        elif kind == "model_b":
            response, finish = _response_b(rng, topic["words"]), "stop"
        else:
            response, finish = _response_a(rng, topic["words"], scale), "stop"
        if rng.random() < 0.04:
            response, finish = response[: len(response) // 2], "length"
        tokens = max(1, round(len(response) / 4.1 + rng.gauss(0, 3)))
        latency = round(180 + tokens * rng.uniform(18, 26) + rng.expovariate(1 / 60), 1)
        yield {"prompt": prompt, "response": response, "completion_tokens": tokens,
               "latency_ms": latency, "finish_reason": finish}


def paired_prompts(n: int, seed: int) -> list[tuple[str, dict[str, list[str]], float]]:
    """``n`` distinct prompts with their topic and a log-normal "length need" (median 1, log spread 0.6)."""
    rng = random.Random(f"paired-prompts:{seed}")
    out: list[tuple[str, dict[str, list[str]], float]] = []
    seen: set[str] = set()
    while len(out) < n:
        prompt, topic = _prompt(rng, TOPICS)
        prompt = prompt + " " + _sentence(rng, topic["words"], 4, 8)
        if prompt not in seen:
            seen.add(prompt)
            out.append((prompt, topic, math.exp(rng.gauss(0.0, 0.6))))
    return out


def _answer(rng: random.Random, words: list[str], target: float) -> str:
    """Sentences of the topic's words, a paragraph break every 2-3 sentences, as close to ``target`` chars as
    whole sentences get."""
    text, k, every = "", 0, rng.randint(2, 3)
    while True:
        sep = "" if not text else ("\n\n" if k % every == 0 else " ")
        longer = text + sep + _sentence(rng, words)
        if text and abs(len(longer) - target) >= abs(len(text) - target):
            return text
        text, k = longer, k + 1


def paired_run(prompts: list[tuple[str, dict[str, list[str]], float]], seed: int, factor: float = 1.0,
               spread: float = 0.25) -> list[dict[str, object]]:
    """One run of a model over ``prompts``: answer length 400 chars x need x ``factor`` x a run's log-normal
    noise (``spread``). The same ``seed`` draws the same noise for every factor, so variants differ only by it."""
    rng = random.Random(f"paired-run:{seed}")
    out: list[dict[str, object]] = []
    for prompt, topic, need in prompts:
        response = _answer(rng, topic["words"], 400.0 * need * factor * math.exp(rng.gauss(0.0, spread)))
        tokens = max(1, round(len(response) / 4.1 + rng.gauss(0, 3)))
        latency = round(180 + tokens * rng.uniform(18, 26) + rng.expovariate(1 / 60), 1)
        out.append({"prompt": prompt, "response": response, "completion_tokens": tokens, "latency_ms": latency,
                    "finish_reason": "stop"})
    return out


PAIRED_PROMPTS = 805
PAIRED_RUNS = {"paired_ref": (1, 1.0), "paired_rerun": (2, 1.0), "paired_verbose": (3, 1.17)}

CORPORA = {"ref": 600, "same": 400, "verbose": 400, "terse": 400, "mild": 400, "model_b": 400, "topic": 400}


def main(out_dir: Path | None = None) -> None:
    """Write every corpus as ``drift_<kind>.jsonl``."""
    out = out_dir or Path(__file__).resolve().parent
    for kind, n in CORPORA.items():
        with open(out / f"drift_{kind}.jsonl", "w", encoding="utf-8") as fh:
            for rec in generate(kind, n, seed=4):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    prompts = paired_prompts(PAIRED_PROMPTS, seed=4)
    for kind, (run_seed, factor) in PAIRED_RUNS.items():
        with open(out / f"drift_{kind}.jsonl", "w", encoding="utf-8") as fh:
            for rec in paired_run(prompts, run_seed, factor):
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
