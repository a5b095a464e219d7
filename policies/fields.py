"""Field paths over a :class:`~detectors.finding.Finding`: parsing, validation and fast getters.

A path names one value of a finding: ``detector``, ``kind``, ``severity``, ``score``, ``summary``,
``event_id``, ``finding_id``, ``occurred_at``, ``subject.tenant`` / ``subject.model`` /
``subject.version`` (also written ``tenant`` / ``model`` / ``version``), ``window.start`` /
``window.end`` / ``window.n``, and ``evidence.<key>[.<key>...]`` (any depth; a numeric segment
indexes a list). A getter returns ``None`` when the value is absent; absent and ``null`` are the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

ValueKind = Literal["str", "number", "severity", "datetime", "any"]
Getter = Callable[[Any], Any]

_TOP_FIELDS: dict[str, ValueKind] = {
    "finding_id": "str",
    "detector": "str",
    "kind": "str",
    "severity": "severity",
    "score": "number",
    "summary": "str",
    "event_id": "str",
    "occurred_at": "datetime",
}
_SUBJECT_FIELDS = ("tenant", "model", "version")
_WINDOW_FIELDS: dict[str, ValueKind] = {"start": "datetime", "end": "datetime", "n": "number"}
ALIASES = {"tenant": "subject.tenant", "model": "subject.model", "version": "subject.version"}
#: Longest path accepted (characters) and deepest evidence nesting.
MAX_PATH_CHARS = 200
MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A validated field path; ``text`` is the canonical spelling (aliases expanded)."""

    text: str
    parts: tuple[str, ...]
    kind: ValueKind

    @property
    def root(self) -> str:
        return self.parts[0]

    @property
    def is_subject(self) -> bool:
        """True when the value comes from the finding's subject (tenant, model, version)."""
        return self.parts[0] == "subject"


def known_roots() -> list[str]:
    """Names a path may start with (for error messages)."""
    return sorted([*_TOP_FIELDS, "subject", "window", "evidence", *ALIASES])


def parse_path(text: Any) -> FieldPath:
    """Validate ``text`` as a field path; raise ``ValueError`` with a readable message otherwise."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"a field path must be a non-empty string, got {text!r}")
    if len(text) > MAX_PATH_CHARS:
        raise ValueError(f"field path longer than {MAX_PATH_CHARS} characters")
    text = ALIASES.get(text, text)
    parts = tuple(text.split("."))
    if any(not p for p in parts):
        raise ValueError(f"empty segment in field path {text!r}")
    root = parts[0]
    if root in _TOP_FIELDS:
        if len(parts) != 1:
            raise ValueError(f"{root!r} has no sub-fields (path {text!r})")
        return FieldPath(text, parts, _TOP_FIELDS[root])
    if root == "subject":
        if len(parts) != 2 or parts[1] not in _SUBJECT_FIELDS:
            raise ValueError(f"unknown subject field in {text!r}; expected one of {list(_SUBJECT_FIELDS)}")
        return FieldPath(text, parts, "str")
    if root == "window":
        if len(parts) != 2 or parts[1] not in _WINDOW_FIELDS:
            raise ValueError(f"unknown window field in {text!r}; expected one of {list(_WINDOW_FIELDS)}")
        return FieldPath(text, parts, _WINDOW_FIELDS[parts[1]])
    if root == "evidence":
        if len(parts) < 2:
            raise ValueError("'evidence' needs a key: evidence.<key>[.<key>...]")
        if len(parts) - 1 > MAX_DEPTH:
            raise ValueError(f"evidence path deeper than {MAX_DEPTH} keys")
        return FieldPath(text, parts, "any")
    raise ValueError(f"unknown field {root!r}; expected one of {known_roots()}")


def _step(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, (list, tuple)) and key.isdigit():
        i = int(key)
        return value[i] if i < len(value) else None
    return None


def make_getter(path: FieldPath) -> Getter:
    """A plain function ``finding -> value | None`` for ``path`` (compiled once, called per finding)."""
    parts = path.parts
    root = parts[0]
    if root in _TOP_FIELDS or root == "subject":
        return attrgetter(path.text)
    if root == "window":
        sub = parts[1]

        def window_get(f: Any, _sub: str = sub) -> Any:
            w = f.window
            return None if w is None else getattr(w, _sub)

        return window_get
    keys = parts[1:]
    if len(keys) == 1:
        k1 = keys[0]

        def ev1(f: Any) -> Any:
            return f.evidence.get(k1)

        return ev1
    if len(keys) == 2 and not keys[1].isdigit():
        k1, k2 = keys

        def ev2(f: Any) -> Any:
            v = f.evidence.get(k1)
            return v.get(k2) if isinstance(v, dict) else _step(v, k2)

        return ev2

    def evn(f: Any) -> Any:
        v: Any = f.evidence
        for k in keys:
            v = _step(v, k)
            if v is None:
                return None
        return v

    return evn
