"""Tiny ``{field.path}`` templates for summaries and dedup keys (substitution only; no code runs).

``"PII in {subject.model}: {evidence.count}"`` renders finding fields; ``{path:spec}`` applies a
restricted format spec (alignment, sign, width up to 99, precision up to 99, one of ``s d f g e %``),
``{{`` and ``}}`` are literal braces. Besides finding fields (see :mod:`policies.fields`), a template
may use ``policy.id`` / ``policy.version`` and, in aggregate policies, ``aggregate.<name>`` with
``name`` one of :data:`AGGREGATE_FIELDS`. Absent values render as an empty string; a value renders
at most :data:`MAX_VALUE_CHARS` characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from policies.fields import make_getter, parse_path

MAX_TEMPLATE_CHARS = 1000
MAX_PLACEHOLDERS = 32
MAX_VALUE_CHARS = 200
AGGREGATE_FIELDS = (
    "function",
    "value",
    "threshold",
    "op",
    "numerator",
    "denominator",
    "window",
    "window_start",
    "window_end",
    "group",
)
_SPEC = re.compile(r"^[<>^=]?[+\- ]?0?\d{0,2}(?:\.\d{1,2})?[sdfge%]?$")
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def to_text(value: Any, spec: str = "") -> str:
    """How a value appears in a rendered template."""
    if value is None:
        return ""
    if spec:
        try:
            out = format(value, spec)
        except (ValueError, TypeError):
            out = str(value)
    elif isinstance(value, Enum):
        out = str(value.name)
    elif isinstance(value, float):
        out = format(value, ".4g")
    elif isinstance(value, datetime):
        out = value.isoformat()
    else:
        out = str(value)
    return out if len(out) <= MAX_VALUE_CHARS else out[:MAX_VALUE_CHARS]


Render = Callable[[Any, Mapping[str, Any] | None], str]


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template; call :meth:`render` with a finding (and the aggregate context, if any)."""

    source: str
    render: Render
    fields: tuple[str, ...]


def compile_template(
    source: Any, *, constants: Mapping[str, Any] | None = None, allow_aggregate: bool = False
) -> Template:
    """Parse ``source`` once; raise ``ValueError`` naming the bad placeholder."""
    if not isinstance(source, str):
        raise ValueError(f"a template must be a string, got {type(source).__name__}")
    if len(source) > MAX_TEMPLATE_CHARS:
        raise ValueError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    constants = dict(constants or {})
    # parts: str (literal) or (getter, spec, from_context)
    parts: list[Any] = []
    fields: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(source):
        if m.start() > pos:
            parts.append(source[pos : m.start()])
        pos = m.end()
        tok = m.group(0)
        if tok == "{{":
            parts.append("{")
            continue
        if tok == "}}":
            parts.append("}")
            continue
        if m.group(1) is None:
            raise ValueError(f"unmatched {tok!r} at column {m.start() + 1}; write {tok * 2} for a literal brace")
        name, _, spec = m.group(1).strip().partition(":")
        name = name.strip()
        if spec and not _SPEC.match(spec):
            raise ValueError(f"format spec {spec!r} of {{{name}}} is not allowed")
        fields.append(name)
        if len(fields) > MAX_PLACEHOLDERS:
            raise ValueError(f"more than {MAX_PLACEHOLDERS} placeholders")
        if name in constants:
            parts.append(to_text(constants[name], spec))
        elif name.startswith("aggregate."):
            key = name[len("aggregate.") :]
            if not allow_aggregate:
                raise ValueError(f"{{{name}}} is only available in aggregate policies")
            if key not in AGGREGATE_FIELDS:
                raise ValueError(f"unknown aggregate field {key!r}; expected one of {list(AGGREGATE_FIELDS)}")
            parts.append((key, spec, True))
        else:
            try:
                path = parse_path(name)
            except ValueError as e:
                extra = f", {sorted(constants)}" if constants else ""
                raise ValueError(f"{{{name}}}: {e}{extra}") from None
            parts.append((make_getter(path), spec, False))
    if pos < len(source):
        parts.append(source[pos:])
    # merge adjacent literals
    merged: list[Any] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return Template(source, _renderer(merged), tuple(fields))


def _renderer(parts: list[Any]) -> Render:
    if all(isinstance(p, str) for p in parts):
        const = "".join(parts)

        def constant(finding: Any, ctx: Mapping[str, Any] | None = None) -> str:
            return const

        return constant
    tt = to_text
    cap = MAX_VALUE_CHARS
    # Literal text goes into a positional format string we build ourselves (user braces escaped),
    # values are rendered by the pieces below: str.format never sees a user-written field.
    fmt = ""
    pieces: list[Callable[[Any, Any], str]] = []
    for p in parts:
        if isinstance(p, str):
            fmt += p.replace("{", "{{").replace("}", "}}")
            continue
        fmt += "{}"
        src, spec, from_ctx = p
        if from_ctx:

            def from_context(f: Any, ctx: Any, _k: str = src, _spec: str = spec) -> str:
                return tt(ctx.get(_k) if ctx else None, _spec)

            pieces.append(from_context)
        elif spec:

            def formatted(f: Any, ctx: Any, _g: Callable[[Any], Any] = src, _spec: str = spec) -> str:
                return tt(_g(f), _spec)

            pieces.append(formatted)
        else:

            def plain(f: Any, ctx: Any, _g: Callable[[Any], Any] = src) -> str:
                v = _g(f)
                if type(v) is str and len(v) <= cap:
                    return v
                return tt(v)

            pieces.append(plain)
    fill = fmt.format
    if len(pieces) == 1:
        only = pieces[0]

        def render_one(finding: Any, ctx: Mapping[str, Any] | None = None) -> str:
            return fill(only(finding, ctx))

        return render_one
    ps = tuple(pieces)

    def render(finding: Any, ctx: Mapping[str, Any] | None = None) -> str:
        return fill(*[p(finding, ctx) for p in ps])

    return render
