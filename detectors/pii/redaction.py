"""Redaction of detected PII spans: placeholder, mask, keyed hash or drop (pure, no Presidio)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Protocol, TypeVar

__all__ = ["RedactionMode", "keyed_hash", "redact", "redact_with_offsets", "resolve_overlaps"]


class RedactionMode(str, Enum):
    """How a detected value is replaced in the redacted copy."""

    replace = "replace"  # type: ignore[assignment]  # a member named like str.replace; <EMAIL_ADDRESS>
    mask = "mask"  # ****************
    hash = "hash"  # <EMAIL_ADDRESS:3f9a0c1d2e4b5a69> (HMAC-SHA256, keyed; equal values, equal tokens)
    drop = "drop"  # removed


class _SpanLike(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def score(self) -> float: ...


S = TypeVar("S", bound=_SpanLike)


def resolve_overlaps(spans: Sequence[S], priority: Callable[[S], int] | None = None) -> list[S]:
    """Keep a non-overlapping subset: higher ``priority`` first (if given), then higher score, then
    longer span; returned in text order."""
    kept: list[S] = []
    prio = priority or (lambda _s: 0)
    for s in sorted(spans, key=lambda s: (-prio(s), -s.score, -(s.end - s.start), s.start)):
        if all(s.end <= k.start or k.end <= s.start for k in kept):
            kept.append(s)
    kept.sort(key=lambda s: s.start)
    return kept


def keyed_hash(value: str, key: bytes, length: int = 16) -> str:
    """Hex HMAC-SHA256 of ``value`` under ``key``, truncated to ``length`` hex characters."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:length]


def redact(
    text: str,
    spans: Sequence[_SpanLike],
    mode: RedactionMode | str = RedactionMode.replace,
    hmac_key: bytes | None = None,
    mask_char: str = "*",
) -> str:
    """A copy of ``text`` with each (non-overlapping, sorted) span replaced according to ``mode``."""
    return redact_with_offsets(text, spans, mode, hmac_key, mask_char)[0]


def redact_with_offsets(
    text: str,
    spans: Sequence[_SpanLike],
    mode: RedactionMode | str = RedactionMode.replace,
    hmac_key: bytes | None = None,
    mask_char: str = "*",
) -> tuple[str, list[tuple[int, int]]]:
    """Like :func:`redact`, also returning where each span's replacement lies in the redacted text."""
    mode = RedactionMode(mode)
    if mode is RedactionMode.hash and not hmac_key:
        raise ValueError("hash redaction needs an hmac key")
    parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    pos = 0
    out_len = 0
    for s in spans:
        if s.start < pos:
            raise ValueError("spans must be sorted and non-overlapping (see resolve_overlaps)")
        before = text[pos : s.start]
        parts.append(before)
        out_len += len(before)
        if mode is RedactionMode.replace:
            rep = f"<{s.type}>"
        elif mode is RedactionMode.mask:
            rep = mask_char * (s.end - s.start)
        elif mode is RedactionMode.hash:
            assert hmac_key is not None
            rep = f"<{s.type}:{keyed_hash(text[s.start:s.end], hmac_key)}>"
        else:
            rep = ""
        parts.append(rep)
        offsets.append((out_len, out_len + len(rep)))
        out_len += len(rep)
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts), offsets
