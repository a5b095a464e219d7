"""The free text of an event, and the event with that text replaced: what the pipeline's PII stage redacts.

Every string an event carries is free text — and goes through PII redaction before any later stage —
except the identifiers and enumerations listed in :data:`NOT_TEXT` (ids, tenant, model name/version,
roles, statuses, phases: checked by the contract, see :data:`contracts.events.Identifier`) and the end
user's id (never published: findings carry its keyed hash). That covers, besides messages and the
response: ``inference.error``, ``finish_reason``, ``user.attributes`` (keys and values), the free-form
``attributes`` (tool calls and outputs, metadata: every string at any depth, and the keys), training
``params``, ``items`` (sample fields, evaluation predictions and references), ``dataset``, ``split``,
``error``, feedback ``comment``/``category``, deployment ``actor``/``reason`` … and any field a later
schema version adds, since the walk goes over whatever the event holds. Fields the contract does not
declare are dropped when the event is parsed (``extra="ignore"``), so they never travel.

Pure data plumbing: no detector here (the pipeline hands the texts to :class:`detectors.pii.PiiDetector`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from contracts.events import Event, InferenceEvent

_ANY = object()
#: paths (``_ANY`` matches any key or index) of strings that are identifiers or enumerations, not text;
#: message and response contents are analysed as whole texts by the pipeline (see :func:`message_texts`)
NOT_TEXT: tuple[tuple[Any, ...], ...] = (
    ("schema_version",), ("event_id",), ("type",), ("tenant",), ("model", _ANY),
    ("inference", "status"), ("inference", "request_model"), ("inference", "response_model"),
    ("inference", "user", "id"), ("inference", "messages"), ("inference", "response", "content"),
    ("inference", "trace"),
    ("training", "run_id"), ("training", "phase"), ("training", "status"), ("training", "base_version"),
    ("training", "output_version"), ("training", "dataset_hash"), ("training", "items", _ANY, "id"),
    ("feedback", "target_event_id"), ("feedback", "thumbs"), ("feedback", "user", "id"),
    ("deployment", "action"),
)
_SAFE_KEY = re.compile(r"[A-Za-z0-9._-]{1,32}")


@dataclass(frozen=True, slots=True)
class Key:
    """A dict key on a text path: the text at such a path is the key itself, not its value."""

    key: str


Path = tuple[Any, ...]


#: what :func:`_compile` makes of :data:`NOT_TEXT`: key -> sub-rule, :data:`_SKIP` where everything below is not text
Rule = dict[Any, Any]
_SKIP: Rule = {}


def _compile(patterns: tuple[tuple[Any, ...], ...]) -> Rule:
    """The patterns as a trie walked along with the event (one dict lookup per field instead of a scan of
    every pattern at every string). A key's rule holds the rules of ``_ANY`` at the same level too."""
    trie: Rule = {}
    for pattern in patterns:
        node = trie
        for k, part in enumerate(pattern):
            if k == len(pattern) - 1:
                node[part] = _SKIP
            elif node.get(part) is _SKIP:
                break
            else:
                node = node.setdefault(part, {})

    def merge_any(node: Rule) -> Rule:
        if node is _SKIP:
            return node
        anything = node.get(_ANY)
        out: Rule = {}
        for key, sub in node.items():
            if key is not _ANY and anything is not None and sub is not _SKIP:
                sub = _SKIP if anything is _SKIP else _union(sub, anything)
            out[key] = merge_any(sub)
        return out

    return merge_any(trie)


def _union(a: Rule, b: Rule) -> Rule:
    if a is _SKIP or b is _SKIP:
        return _SKIP
    out = dict(a)
    for key, sub in b.items():
        out[key] = _union(out[key], sub) if key in out else sub
    return out


_RULES = _compile(NOT_TEXT)


def _below(rule: Rule | None, key: Any) -> Rule | None:
    """The rule for ``key`` under ``rule`` (None: no identifier anywhere below, every string is text)."""
    if not rule:
        return None
    sub = rule.get(key)
    return sub if sub is not None else rule.get(_ANY)


def _walk(value: Any, path: Path, rule: Rule | None) -> Iterator[tuple[Path, str]]:
    # ``rule`` is _SKIP where value is an identifier (nothing below is text): such subtrees are not entered
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            sub = _below(rule, name)
            if sub is not _SKIP:
                yield from _walk(getattr(value, name), (*path, name), sub)
        for name, item in (value.model_extra or {}).items():
            sub = _below(rule, name)
            if sub is not _SKIP:
                yield from _walk(item, (*path, name), sub)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            sub = _below(rule, key)
            if sub is _SKIP:
                continue
            if isinstance(key, str):
                yield (*path, Key(key)), key
            yield from _walk(item, (*path, key), sub)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            sub = _below(rule, i)
            if sub is not _SKIP:
                yield from _walk(item, (*path, i), sub)


def free_texts(event: Event) -> list[tuple[Path, str]]:
    """Every free-text string of ``event`` with its path (message and response contents excluded)."""
    return [(p, t) for p, t in _walk(event, (), _RULES) if t]


def message_texts(event: Event) -> list[tuple[str, str]]:
    """An inference event's message texts and response text, named ``messages[i]`` and ``response``."""
    if not isinstance(event, InferenceEvent):
        return []
    body = event.inference
    out = [(f"messages[{i}]", m.text) for i, m in enumerate(body.messages)]
    if body.response is not None:
        out.append(("response", body.response_text))
    return out


def field_name(path: Path) -> str:
    """A path as a field name for findings, relative to the event's body (``error``, ``user.attributes.*``);
    keys that are not short plain tokens show as ``*`` (a key may itself be personal data)."""
    parts: list[str] = []
    for part in path[1:] if len(path) > 1 else path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
            continue
        key = part.key if isinstance(part, Key) else str(part)
        name = key if _SAFE_KEY.fullmatch(key) else "*"
        parts.append(("." if parts else "") + name)
    return "".join(parts) + (" (key)" if isinstance(path[-1], Key) else "")


def _set(value: Any, path: Path, text: str) -> Any:
    """A copy of ``value`` with the string at ``path`` replaced (models copied without re-validation)."""
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(head, Key):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            new = text if k == head.key else k
            while new in out:  # two keys redacted alike stay apart
                new = f"{new}#"
            out[new] = v
        return out
    if isinstance(value, BaseModel):
        if head in type(value).model_fields:
            return value.model_copy(update={head: _set(getattr(value, head), rest, text)})
        copy = value.model_copy()
        copy.__pydantic_extra__ = {**(value.model_extra or {}), head: _set((value.model_extra or {})[head], rest, text)}
        return copy
    if isinstance(value, Mapping):
        return {**value, head: _set(value[head], rest, text)}
    if isinstance(value, (list, tuple)):
        items = list(value)
        items[head] = _set(items[head], rest, text)
        return tuple(items) if isinstance(value, tuple) else items
    raise TypeError(f"no text at path of length {len(path)}")


def replace_texts(event: Event, replacements: Mapping[Path, str]) -> Event:
    """``event`` with the strings at the given paths replaced. Values go first, then keys, innermost first,
    so that every path still names the original keys when it is applied."""
    def order(path: Path) -> tuple[bool, int]:
        return isinstance(path[-1], Key), -len(path)

    out: Any = event
    for path in sorted(replacements, key=order):
        out = _set(out, path, replacements[path])
    return out
