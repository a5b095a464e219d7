"""A deterministic synthetic history of support-ticket conversations with intent labels from reviewer
feedback, for the benchmark, the tests and demos (no data set is downloaded).

Each row is a redacted prompt/response pair: a customer message built from per-intent templates and
slot values, the assistant's reply, and the intent a reviewer labelled it with. ``style`` shifts the
phrasing (``"old"``: the register the production model was trained on; ``"new"``: the terser, more
varied messages arriving now), and ``noise`` relabels a fraction of rows at random.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from jobs.datasets import DatasetRow

INTENTS: dict[str, dict[str, list[str]]] = {
    "refund": {
        "old": ["I would like a refund for my order {order}.", "Please refund the {item} I returned last week.",
                "Can I get my money back for order {order}?"],
        "new": ["refund {order} pls", "money back for the {item}??", "{item} was broken, want a refund",
                "charge me back for {order}, never arrived right"],
        "reply": ["I have started a refund for {order}; it takes 3-5 business days."],
    },
    "shipping": {
        "old": ["Where is my package {order}?", "When will my {item} be delivered?",
                "The tracking for order {order} has not updated."],
        "new": ["still waiting on {order}", "{item} not here yet", "tracking stuck for {order} lol",
                "delivery eta for my {item}?"],
        "reply": ["Your order {order} is in transit and should arrive within 2 days."],
    },
    "password_reset": {
        "old": ["I forgot my password and cannot log in.", "Please help me reset my password.",
                "My account is locked after too many login attempts."],
        "new": ["cant login", "pw reset link never came", "locked out again", "2fa code not working, cant get in"],
        "reply": ["I have sent a password reset link to the address on file."],
    },
    "cancel_subscription": {
        "old": ["I want to cancel my subscription.", "Please stop renewing my {plan} plan.",
                "How do I end my membership?"],
        "new": ["cancel {plan}", "stop charging me monthly", "unsubscribe me from {plan} now", "end my plan"],
        "reply": ["Your {plan} subscription is cancelled at the end of this billing period."],
    },
    "billing": {
        "old": ["I was charged twice this month.", "Why is my invoice higher than usual?",
                "There is an unknown charge on my card from you."],
        "new": ["double charged??", "invoice wrong again", "what is this {amount} charge", "billed {amount} for nothing"],
        "reply": ["I am looking into the {amount} charge on your invoice now."],
    },
    "technical_issue": {
        "old": ["The app crashes when I open it.", "I get an error when uploading a file.",
                "The website does not load on my phone."],
        "new": ["app keeps crashing on {device}", "upload fails w/ error 500", "site blank on {device}",
                "sync broken since update"],
        "reply": ["Please update the app on your {device}; the fix is in the latest version."],
    },
    "upgrade_plan": {
        "old": ["I would like to upgrade to the {plan} plan.", "What does the {plan} plan include?",
                "Can I move my team to a bigger plan?"],
        "new": ["upgrade to {plan}", "need more seats", "how much is {plan}", "switch me to {plan} today"],
        "reply": ["I can move you to the {plan} plan; the difference is prorated."],
    },
    "complaint": {
        "old": ["I am very unhappy with the service I received.", "Your agent was rude to me.",
                "This is the third time I have had this problem."],
        "new": ["worst support ever", "nobody answers my emails", "so done with this company", "unacceptable tbh"],
        "reply": ["I am sorry about your experience; I have escalated this to a supervisor."],
    },
}
SLOTS = {
    "order": [f"#{n}" for n in range(10_000, 10_060)],
    "item": ["headphones", "laptop stand", "keyboard", "monitor", "desk lamp", "phone case", "webcam", "charger"],
    "plan": ["Pro", "Team", "Enterprise", "Basic", "Plus"],
    "amount": ["$19.99", "$49", "$120", "$7.50", "$300"],
    "device": ["iPhone", "Android", "iPad", "Windows", "Mac"],
}
LABELS = sorted(INTENTS)


def _fill(template: str, rng: random.Random) -> str:
    out = template
    for slot, values in SLOTS.items():
        out = out.replace("{" + slot + "}", rng.choice(values))
    return out


def support_history(n: int, *, tenant: str = "acme", model: str = "support-bot", version: str = "v1",
                    style: str = "mixed", noise: float = 0.03, seed: int = 0,
                    start: datetime | None = None, id_prefix: str = "evt") -> list[DatasetRow]:
    """``n`` labelled rows (``style``: ``old``, ``new`` or ``mixed``), one per minute from ``start``."""
    rng = random.Random(seed)
    t0 = start or datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        intent = LABELS[rng.randrange(len(LABELS))]
        spec = INTENTS[intent]
        st = style if style != "mixed" else rng.choice(("old", "new"))
        prompt = _fill(rng.choice(spec[st]), rng)
        if rng.random() < 0.3:
            prompt = rng.choice(["hi, ", "hello. ", "hey ", ""]) + prompt + rng.choice(["", " thanks", " asap", "!"])
        label = intent if rng.random() >= noise else LABELS[rng.randrange(len(LABELS))]
        rows.append(DatasetRow(event_id=f"{id_prefix}-{seed}-{i}", tenant=tenant, model=model, version=version,
                               occurred_at=t0 + timedelta(minutes=i), prompt=prompt,
                               response=_fill(rng.choice(spec["reply"]), rng), label=label))
    return rows
