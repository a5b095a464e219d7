"""Pure per-event feature extraction for drift monitoring.

Plain values in (prompt text, response text, usage tokens, latency, cost, finish reason),
a flat ``dict`` of features out. Numeric features are floats (``nan`` when unknown);
categorical features are short strings. No text leaves this module: only counts,
ratios and categories, so raw PII never reaches a finding.

The feature set is chosen for LLM traffic: lengths separate models and verbosity
changes cleanly (word-frequency divergence does not, see issue 4), layout markers
(lists, code, headings) separate model styles, refusal markers and finish reasons catch
behaviour changes, and script/language catch new user populations.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

NAN = float("nan")

#: Numeric features every event has (``nan`` where the input was missing).
NUMERIC_FEATURES: tuple[str, ...] = (
    "prompt_chars",
    "prompt_words",
    "response_chars",
    "response_words",
    "response_lines",
    "response_sentences",
    "response_list_items",
    "response_code_blocks",
    "response_headings",
    "response_avg_word_len",
    "response_prompt_log_ratio",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "cost_usd",
)

#: Key of the prompt (a short keyed hash of its normalised text): events answering the same prompt share it, so a
#: drift monitor can compare responses to the same prompt (never tested or reported as a feature itself).
PROMPT_KEY = "prompt_key"

#: Categorical features (strings).
CATEGORICAL_FEATURES: tuple[str, ...] = (
    "finish_reason",
    "refusal",
    "prompt_script",
    "response_script",
    "response_language",
)

_REFUSAL_PATTERNS = re.compile(
    r"|".join(
        [
            r"\bi(?:'m| am) (?:sorry|afraid),? but\b",
            r"\bi (?:can(?:no|')t|cannot|won't|will not|am unable to|'m unable to|am not able to|'m not able to)"
            r" (?:help|assist|provide|comply|do that|fulfil|fulfill|support|answer|create|generate|share|engage)",
            r"\bas an ai(?: language model| assistant)?\b",
            r"\bi(?:'m| am) not (?:able|allowed|permitted) to\b",
            r"\bthis (?:request|content) (?:violates|goes against)\b",
            r"\bi must (?:decline|refuse)\b",
            r"\bi can(?:no|')t and won't\b",
            r"\bagainst (?:my|our) (?:guidelines|policies|policy)\b",
        ]
    ),
    re.IGNORECASE,
)

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?。！？]+(?:\s|$)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d{1,3}[.)])\s+", re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}(?:#{1,6}\s+\S|\*\*[^*\n]{1,80}\*\*:?\s*$)", re.MULTILINE)
_CODE_FENCE = re.compile(r"```")

# A few very frequent function words per language; enough to tell common Latin-script languages apart.
_STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and of to is in that it for you with this are be on not as have".split()),
    "es": frozenset("el la de que y en los las es por un una para con del se no".split()),
    "fr": frozenset("le la les de et des est en un une que pour dans pas du qui vous".split()),
    "de": frozenset("der die und das ist nicht ein eine zu den mit sich auf für ich sie".split()),
    "it": frozenset("il di che e la per un una non sono del della gli con le".split()),
    "pt": frozenset("o a de que e do da em um uma para com não os as se".split()),
    "nl": frozenset("de het een en van is dat niet op te zijn met voor ik".split()),
}

_SCRIPT_LANG = {"cyrillic": "ru", "han": "zh", "kana": "ja", "hangul": "ko", "arabic": "ar",
                "devanagari": "hi", "hebrew": "he", "greek": "el", "thai": "th"}


_SCRIPT_RES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(f"[{ranges}]"))
    for name, ranges in (
        ("latin", "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"),
        ("cyrillic", "\u0400-\u04ff"),
        ("han", "\u3400-\u4dbf\u4e00-\u9fff"),
        ("kana", "\u3040-\u30ff"),
        ("hangul", "\u1100-\u11ff\uac00-\ud7af"),
        ("arabic", "\u0600-\u06ff"),
        ("devanagari", "\u0900-\u097f"),
        ("hebrew", "\u0590-\u05ff"),
        ("greek", "\u0370-\u03ff"),
        ("thai", "\u0e00-\u0e7f"),
    )
)
_ASCII_LETTER = re.compile(r"[A-Za-z]")


def dominant_script(text: str, max_chars: int = 2000) -> str:
    """The most frequent script among the letters of ``text`` (``"none"`` if it has no letters).

    Japanese text mixes kana and han; any kana makes it ``"kana"`` when kana and han together lead.
    """
    text = text[:max_chars]
    if text.isascii():
        return "latin" if _ASCII_LETTER.search(text) else "none"
    counts = {name: len(rx.findall(text)) for name, rx in _SCRIPT_RES}
    counts = {k: v for k, v in counts.items() if v}
    if not counts:
        return "other" if any(ch.isalpha() for ch in text) else "none"
    if counts.get("kana", 0) > 0 and counts.get("kana", 0) + counts.get("han", 0) >= max(counts.values()):
        return "kana"
    return max(counts.items(), key=lambda kv: kv[1])[0]


def guess_language(text: str, max_words: int = 300) -> str:
    """A coarse language guess: script first, then stopword hits for Latin-script text.

    Returns an ISO 639-1 code, ``"und"`` (undetermined) or ``"none"`` for text without letters.
    """
    script = dominant_script(text)
    if script == "none":
        return "none"
    if script != "latin":
        return _SCRIPT_LANG.get(script, "und")
    words = [w.lower() for w in _WORD.findall(text[: max_words * 12])][:max_words]
    if not words:
        return "und"
    best, best_hits = "und", 0
    for lang, stop in _STOPWORDS.items():
        hits = sum(1 for w in words if w in stop)
        if hits > best_hits:
            best, best_hits = lang, hits
    return best if best_hits >= max(1, len(words) // 20) else "und"


def is_refusal(response: str) -> bool:
    """True when the response carries a refusal marker in its first 600 characters."""
    return bool(_REFUSAL_PATTERNS.search(response[:600]))


def prompt_key(prompt: str) -> str:
    """A 64-bit keyed BLAKE2b hash of the prompt with case and whitespace normalised (hex).

    Identical prompts (up to case and spacing) share a key; the text cannot be read back from it, and the key
    is only kept in a drift monitor's state (it is not a feature that is tested or put into findings).
    """
    norm = " ".join(prompt.lower().split())
    return hashlib.blake2b(norm.encode("utf-8"), digest_size=8, person=b"warden-prompt").hexdigest()


def _num(value: object) -> float:
    if value is None:
        return NAN
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return NAN
    return out if math.isfinite(out) else NAN


@dataclass(frozen=True)
class TextStats:
    """Counts of one text."""

    chars: int
    words: int
    lines: int
    sentences: int
    list_items: int
    code_blocks: int
    headings: int
    avg_word_len: float


def text_stats(text: str) -> TextStats:
    """Length and layout counts of ``text``."""
    words = _WORD.findall(text)
    stripped = text.strip()
    return TextStats(
        chars=len(text),
        words=len(words),
        lines=(stripped.count("\n") + 1) if stripped else 0,
        sentences=len(_SENTENCE_END.findall(text)) + (1 if stripped and stripped[-1] not in ".!?。！？" else 0),
        list_items=len(_LIST_ITEM.findall(text)),
        code_blocks=len(_CODE_FENCE.findall(text)) // 2,
        headings=len(_HEADING.findall(text)),
        avg_word_len=(sum(len(w) for w in words) / len(words)) if words else 0.0,
    )


def extract_features(
    prompt: str,
    response: str,
    *,
    prompt_tokens: int | float | None = None,
    completion_tokens: int | float | None = None,
    latency_ms: float | None = None,
    cost_usd: float | None = None,
    finish_reason: str | None = None,
) -> dict[str, float | str]:
    """One event's features: a flat dict of the names in NUMERIC_FEATURES and CATEGORICAL_FEATURES, and
    ``PROMPT_KEY`` (the prompt's :func:`prompt_key`).

    ``prompt`` is the user-visible prompt text (e.g. the concatenated message contents), ``response``
    the model's answer. Usage tokens, latency and cost are optional (``nan`` when absent).
    """
    prompt = prompt or ""
    response = response or ""
    p = text_stats(prompt)
    r = text_stats(response)
    feats: dict[str, float | str] = {
        "prompt_chars": float(p.chars),
        "prompt_words": float(p.words),
        "response_chars": float(r.chars),
        "response_words": float(r.words),
        "response_lines": float(r.lines),
        "response_sentences": float(r.sentences),
        "response_list_items": float(r.list_items),
        "response_code_blocks": float(r.code_blocks),
        "response_headings": float(r.headings),
        "response_avg_word_len": round(r.avg_word_len, 4),
        "response_prompt_log_ratio": round(math.log((r.chars + 1.0) / (p.chars + 1.0)), 6),
        "prompt_tokens": _num(prompt_tokens),
        "completion_tokens": _num(completion_tokens),
        "latency_ms": _num(latency_ms),
        "cost_usd": _num(cost_usd),
        "finish_reason": (finish_reason or "unknown").strip().lower()[:32] or "unknown",
        "refusal": "yes" if is_refusal(response) else "no",
        "prompt_script": dominant_script(prompt),
        "response_script": dominant_script(response),
        "response_language": guess_language(response),
        PROMPT_KEY: prompt_key(prompt),
    }
    return feats


def features_from_record(record: Mapping[str, object]) -> dict[str, float | str]:
    """Features from a loose record (``{"prompt", "response"}`` plus optional fields).

    Accepts ``prompt_tokens``/``input_tokens``, ``completion_tokens``/``output_tokens``, a nested
    ``usage`` dict, ``latency_ms``, ``cost_usd``/``cost`` and ``finish_reason``.
    """
    usage = record.get("usage") if isinstance(record.get("usage"), Mapping) else {}
    assert isinstance(usage, Mapping)

    def pick(*names: str) -> object:
        for n in names:
            if record.get(n) is not None:
                return record[n]
            if usage.get(n) is not None:
                return usage[n]
        return None

    return extract_features(
        str(record.get("prompt") or ""),
        str(record.get("response") or ""),
        prompt_tokens=pick("prompt_tokens", "input_tokens"),  # type: ignore[arg-type]
        completion_tokens=pick("completion_tokens", "output_tokens"),  # type: ignore[arg-type]
        latency_ms=pick("latency_ms"),  # type: ignore[arg-type]
        cost_usd=pick("cost_usd", "cost"),  # type: ignore[arg-type]
        finish_reason=pick("finish_reason"),  # type: ignore[arg-type]
    )
