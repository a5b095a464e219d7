"""Map trace spans onto Warden inference events (the table is in the README, "OpenTelemetry traces").

What a span is (``kind``):

* ``llm`` — a model call: ``gen_ai.operation.name`` ∈ chat / text_completion / generate_content (or any
  span naming ``gen_ai.request.model``, ``gen_ai.system`` or ``gen_ai.provider.name`` without another
  operation), OpenInference ``openinference.span.kind = LLM``, OpenLLMetry ``llm.request.type`` ∈ chat /
  completion. → an inference event.
* ``tool`` — ``execute_tool`` / OpenInference ``TOOL``: the tool's result (and the arguments the model
  gave it) enter the model's context, so they become an event scanned like a prompt (``trace.kind = tool``).
* ``retrieval`` — OpenInference ``RETRIEVER``: the retrieved documents, likewise.
* ``agent``, ``embedding``, ``other`` — counted, not stored.

Texts are read from, in order: GenAI ``gen_ai.system_instructions`` / ``gen_ai.input.messages`` /
``gen_ai.output.messages`` (span attributes, structured or JSON strings, or on a
``gen_ai.client.inference.operation.details`` span event); the event-based GenAI forms before v1.37
(span events ``gen_ai.{system,user,assistant,tool}.message`` and ``gen_ai.choice``, and the older
``gen_ai.content.prompt`` / ``gen_ai.content.completion`` events with ``gen_ai.prompt`` / ``gen_ai.completion``);
OpenLLMetry's ``gen_ai.prompt.N.*`` / ``gen_ai.completion.N.*``; OpenInference ``llm.input_messages.N.message.*`` /
``llm.output_messages.N.message.*`` / ``llm.prompts`` / ``llm.choices``, then ``input.value`` / ``output.value``.

Identity: the event id is ``otel-<trace_id>-<span_id>`` (a re-sent export is idempotent). Tenant: attribute
``warden.tenant`` (span, then resource), else the producer key's tenant when it has exactly one, else the
resource's ``service.namespace``. Model: ``warden.model`` (span, then resource), else ``service.name``, else
the requested model; version: ``warden.model.version``, else ``service.version``, else the response model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.events import SCHEMA_VERSION
from contracts.otlp.spans import STATUS_ERROR, Span

LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent", "invoke_workflow"})
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_ROLE_ALIASES = {"model": "assistant", "ai": "assistant", "bot": "assistant", "human": "user", "choice": "assistant"}
#: span attributes copied into the event's ``attributes`` (short identifiers, never content)
_KEPT = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.tool.name", "gen_ai.agent.name",
         "gen_ai.conversation.id", "openinference.span.kind", "llm.provider", "llm.system", "tool.name", "session.id")
_MAX_ID = 200


@dataclass(frozen=True, slots=True)
class SpanOutcome:
    """What became of one span: an event (``event``), a rejection (``rejected``: why), or neither (counted only)."""

    kind: str
    event: dict[str, Any] | None = None
    rejected: str | None = None


# ------------------------------------------------------------------------------------ helpers


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first(attrs: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        v = attrs.get(k)
        if v is not None and v != "":
            return v
    return None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _compact(value: Any) -> str:
    """A value as text: strings as they are, anything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _parse_json(value: Any) -> Any:
    """Structured attribute values arrive as JSON strings from SDKs without complex attributes."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _role(value: Any, default: str = "user") -> str:
    role = value.lower() if isinstance(value, str) else default
    role = _ROLE_ALIASES.get(role, role)
    return role if role in _ROLES else default


def _part_text(part: Any) -> str:
    """The text of one GenAI message part (text, tool call with its arguments, tool call response, reasoning)."""
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        return ""
    kind = part.get("type")
    if kind == "tool_call":
        return f"{part.get('name') or 'tool'}({_compact(part.get('arguments'))})"
    if kind == "tool_call_response":
        return _compact(part.get("response", part.get("result")))
    if kind in (None, "text", "reasoning", "input_text", "output_text"):
        return _compact(part.get("content", part.get("text")))
    return ""  # blobs, files, uris: no text to scan


def _content_text(content: Any) -> str:
    content = _parse_json(content) if isinstance(content, str) and content[:1] == "[" else content
    if isinstance(content, list):
        return "\n".join(t for t in (_part_text(p) for p in content) if t)
    if isinstance(content, dict):
        return _part_text(content)
    return _compact(content)


def _message(obj: Any, default_role: str = "user") -> dict[str, Any] | None:
    """A GenAI / OpenAI-shaped message (``parts`` or ``content``, maybe ``tool_calls``) as ``{role, content}``."""
    if isinstance(obj, str):
        return {"role": default_role, "content": obj}
    if not isinstance(obj, dict):
        return None
    texts = []
    if "parts" in obj:
        texts.append(_content_text(obj["parts"]))
    if "content" in obj:
        texts.append(_content_text(obj["content"]))
    if isinstance(obj.get("message"), dict):  # the gen_ai.choice body: {"index", "message": {...}, "finish_reason"}
        inner = _message(obj["message"], default_role)
        texts.append(inner["content"] if inner else "")
    for call in obj.get("tool_calls") or []:
        if isinstance(call, dict):
            fn: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else call
            texts.append(f"{fn.get('name') or 'tool'}({_compact(fn.get('arguments'))})")
    return {"role": _role(obj.get("role"), default_role), "content": "\n".join(t for t in texts if t)}


def _messages(value: Any, default_role: str = "user") -> list[dict[str, Any]]:
    value = _parse_json(value)
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if not isinstance(value, list):
        return []
    return [m for m in (_message(v, default_role) for v in value) if m is not None]


def _indexed(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Flattened list attributes (``<prefix>.<i>.<rest>``) as a list of ``{rest: value}``, by index."""
    rows: dict[int, dict[str, Any]] = {}
    n = len(prefix)
    for key, value in attrs.items():
        if key.startswith(prefix) and len(key) > n and key[n] == ".":
            idx, _, rest = key[n + 1:].partition(".")
            if idx.isdigit() and rest:
                rows.setdefault(int(idx), {})[rest] = value
    return [rows[i] for i in sorted(rows)]


def _oi_message(row: dict[str, Any], default_role: str) -> dict[str, Any]:
    """An OpenInference flattened message (``message.role``, ``message.content``, ``message.contents.N…``,
    ``message.tool_calls.N.tool_call.function.{name,arguments}``)."""
    texts = [_compact(row.get("message.content"))]
    for part in _indexed(row, "message.contents"):
        if part.get("message_content.type", "text") in ("text", "reasoning"):
            texts.append(_compact(part.get("message_content.text")))
    for call in _indexed(row, "message.tool_calls"):
        name = call.get("tool_call.function.name") or "tool"
        texts.append(f"{name}({_compact(call.get('tool_call.function.arguments'))})")
    return {"role": _role(row.get("message.role"), default_role), "content": "\n".join(t for t in texts if t)}


# ------------------------------------------------------------------------------------ texts of an LLM span


@dataclass(slots=True)
class _Texts:
    messages: list[dict[str, Any]]
    response: str | None
    finish_reason: str | None


def _details_attrs(span: Span) -> dict[str, Any]:
    """Span attributes, plus those of a ``gen_ai.client.inference.operation.details`` span event."""
    for ev in span.events:
        if ev.name == "gen_ai.client.inference.operation.details":
            return {**ev.attributes, **span.attributes}
    return span.attributes


def _genai_texts(attrs: dict[str, Any]) -> _Texts:
    messages: list[dict[str, Any]] = []
    instr = attrs.get("gen_ai.system_instructions")
    if instr is not None:
        text = _content_text(_parse_json(instr))
        if text:
            messages.append({"role": "system", "content": text})
    messages += _messages(attrs.get("gen_ai.input.messages"))
    outputs = _parse_json(attrs.get("gen_ai.output.messages"))
    response = finish = None
    if isinstance(outputs, dict):
        outputs = [outputs]
    if isinstance(outputs, list) and outputs:
        texts = [m["content"] for m in (_message(o, "assistant") for o in outputs) if m and m["content"]]
        response = "\n".join(texts)
        first = outputs[0]
        finish = _str(first.get("finish_reason")) if isinstance(first, dict) else None
    return _Texts(messages, response, finish)


_EVENT_ROLES = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool"}


def _event_texts(span: Span) -> _Texts:
    """The event-based GenAI forms (semantic conventions up to v1.36) recorded as span events."""
    messages: list[dict[str, Any]] = []
    responses: list[str] = []
    finish = None
    for ev in span.events:
        a = ev.attributes
        body = _parse_json(a.get("gen_ai.event.content")) if "gen_ai.event.content" in a else a
        if ev.name in _EVENT_ROLES:
            m = _message(body, _EVENT_ROLES[ev.name]) if isinstance(body, dict) else _message(_compact(body))
            if m is not None:
                m["role"] = _EVENT_ROLES[ev.name]
                messages.append(m)
        elif ev.name == "gen_ai.choice":
            m = _message(body, "assistant") if isinstance(body, dict) else None
            if m and m["content"]:
                responses.append(m["content"])
            if isinstance(body, dict):
                finish = finish or _str(body.get("finish_reason"))
        elif ev.name == "gen_ai.content.prompt":
            messages += _messages(a.get("gen_ai.prompt"))
        elif ev.name == "gen_ai.content.completion":
            responses += [m["content"] for m in _messages(a.get("gen_ai.completion"), "assistant") if m["content"]]
    return _Texts(messages, "\n".join(responses) if responses else None, finish)


def _openllmetry_texts(attrs: dict[str, Any]) -> _Texts:
    messages = [{"role": _role(r.get("role")), "content": _content_text(r.get("content"))}
                for r in _indexed(attrs, "gen_ai.prompt") if "content" in r]
    completions = [r for r in _indexed(attrs, "gen_ai.completion") if "content" in r or "finish_reason" in r]
    response = "\n".join(_content_text(r.get("content")) for r in completions if r.get("content")) or None
    finish = _str(completions[0].get("finish_reason")) if completions else None
    return _Texts(messages, response, finish)


def _openinference_texts(attrs: dict[str, Any]) -> _Texts:
    messages = [_oi_message(r, "user") for r in _indexed(attrs, "llm.input_messages")]
    messages += [{"role": "user", "content": _compact(r.get("prompt.text"))} for r in _indexed(attrs, "llm.prompts")]
    outputs = [_oi_message(r, "assistant")["content"] for r in _indexed(attrs, "llm.output_messages")]
    outputs += [_compact(r.get("completion.text")) for r in _indexed(attrs, "llm.choices")]
    if not messages and "input.value" in attrs:
        value = _parse_json(attrs["input.value"])
        if isinstance(value, dict) and isinstance(value.get("messages"), list):
            messages = _messages(value["messages"])
        else:
            messages = [{"role": "user", "content": _compact(value)}]
    if not outputs and "output.value" in attrs:
        outputs = [_compact(attrs["output.value"])]
    outputs = [o for o in outputs if o]
    return _Texts(messages, "\n".join(outputs) if outputs else None, _str(attrs.get("llm.finish_reason")))


def _llm_texts(span: Span) -> _Texts:
    """Messages, response and finish reason of a model call, whichever convention recorded them."""
    found = _Texts([], None, None)
    readers = (lambda: _genai_texts(_details_attrs(span)), lambda: _event_texts(span) if span.events else None,
               lambda: _openllmetry_texts(span.attributes), lambda: _openinference_texts(span.attributes))
    for read in readers:
        texts = read()
        if texts is None:
            continue
        found.messages = found.messages or texts.messages
        found.response = found.response if found.response is not None else texts.response
        found.finish_reason = found.finish_reason or texts.finish_reason
        if found.messages and found.response is not None and found.finish_reason:
            break  # the conventions are alternatives: the first that recorded everything wins
    reasons = span.attributes.get("gen_ai.response.finish_reasons")
    if not found.finish_reason and reasons:
        found.finish_reason = _str(reasons[0] if isinstance(reasons, list) else reasons)
    return found


def _tool_texts(span: Span) -> list[dict[str, Any]]:
    """What a tool step puts in the model's context: the call (name and arguments) and its result."""
    a = span.attributes
    name = _str(_first(a, "gen_ai.tool.name", "tool.name")) or span.name or "tool"
    args = _first(a, "gen_ai.tool.call.arguments", "input.value")
    result = _first(a, "gen_ai.tool.call.result", "output.value")
    out = []
    if args is not None:
        out.append({"role": "assistant", "content": f"{name}({_compact(_parse_json(args))})"})
    if result is not None:
        out.append({"role": "tool", "content": _compact(_parse_json(result))})
    return out


def _retrieval_texts(span: Span) -> list[dict[str, Any]]:
    docs = [_compact(r.get("document.content")) for r in _indexed(span.attributes, "retrieval.documents")]
    docs = [d for d in docs if d]
    if not docs and "output.value" in span.attributes:
        docs = [_compact(span.attributes["output.value"])]
    return [{"role": "tool", "content": d} for d in docs]


# ------------------------------------------------------------------------------------ the mapping


def span_kind(attrs: dict[str, Any]) -> str:
    """``llm``, ``tool``, ``retrieval``, ``embedding``, ``agent`` or ``other`` (see the module docstring)."""
    op = attrs.get("gen_ai.operation.name")
    oi = attrs.get("openinference.span.kind")
    oi = oi.upper() if isinstance(oi, str) else None
    legacy = attrs.get("llm.request.type")
    if op in LLM_OPERATIONS or oi == "LLM" or legacy in ("chat", "completion"):
        return "llm"
    if op == "execute_tool" or oi == "TOOL":
        return "tool"
    if oi == "RETRIEVER" or op == "retrieval":
        return "retrieval"
    if op == "embeddings" or oi == "EMBEDDING" or legacy == "embedding":
        return "embedding"
    if op in AGENT_OPERATIONS or oi in ("AGENT", "CHAIN"):
        return "agent"
    if op is None and oi is None and any(k in attrs for k in ("gen_ai.request.model", "gen_ai.system",
                                                              "gen_ai.provider.name")):
        return "llm"  # GenAI spans before gen_ai.operation.name was required
    return "other"


def _tenant(span: Span, key_tenants: Sequence[str] | None) -> str | None:
    tenant = _str(span.attributes.get("warden.tenant")) or _str(span.resource.get("warden.tenant"))
    if tenant is None and key_tenants is not None and len(key_tenants) == 1:
        tenant = key_tenants[0]
    return tenant or _str(span.resource.get("service.namespace"))


def _model(span: Span) -> tuple[str | None, str]:
    a, r = span.attributes, span.resource
    requested = _str(_first(a, "gen_ai.request.model", "llm.request.model_name", "llm.model_name"))
    responded = _str(_first(a, "gen_ai.response.model", "llm.response.model_name"))
    service = _str(r.get("service.name"))
    if service and service.startswith("unknown_service"):
        service = None  # the SDK's placeholder names no application
    name = _str(a.get("warden.model")) or _str(r.get("warden.model")) or service or requested or responded
    version = (_str(a.get("warden.model.version")) or _str(r.get("warden.model.version"))
               or _str(r.get("service.version")) or (responded if name in (requested, responded) else None))
    return name, version or "unknown"


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


def _user(attrs: dict[str, Any]) -> dict[str, Any] | None:
    uid = _str(_first(attrs, "enduser.id", "user.id"))
    cohort = {k[len("warden.user."):]: v for k, v in attrs.items()
              if k.startswith("warden.user.") and isinstance(v, str) and len(k) > len("warden.user.")}
    if uid is None and not cohort:
        return None
    return {"id": uid[:_MAX_ID] if uid else None, "attributes": cohort}


def _error(span: Span) -> str | None:
    a = span.attributes
    error_type = _str(a.get("error.type"))
    if span.status_code != STATUS_ERROR and error_type is None:
        return None
    exc = next((_str(e.attributes.get("exception.type")) for e in span.events if e.name == "exception"), None)
    return (error_type or exc or span.status_message or "error")[:2000]


def map_span(span: Span, key_tenants: Sequence[str] | None = None) -> SpanOutcome:
    """Map one span (``key_tenants``: the producer key's tenants, ``None`` = every tenant)."""
    kind = span_kind(span.attributes)
    if kind not in ("llm", "tool", "retrieval"):
        return SpanOutcome(kind)
    if not span.trace_id or not span.span_id:
        return SpanOutcome(kind, rejected="invalid trace or span id (16 and 8 bytes, not all zeros)")
    if span.start_ns <= 0:
        return SpanOutcome(kind, rejected="span has no start time")
    tenant = _tenant(span, key_tenants)
    if tenant is None:
        return SpanOutcome(kind, rejected="no tenant: set the resource attribute warden.tenant")
    name, version = _model(span)
    if name is None:
        return SpanOutcome(kind, rejected="no model: set service.name or the resource attribute warden.model")
    a = span.attributes
    body: dict[str, Any] = {}
    if kind == "llm":
        texts = _llm_texts(span)
        # content capture is opt-in in most instrumentations: a call without it still has latency, status, usage
        body["messages"] = [m for m in texts.messages if m["content"]] or [{"role": "user", "content": ""}]
        if texts.response is not None or texts.finish_reason:
            body["response"] = {"content": texts.response, "finish_reason": texts.finish_reason}
        usage = {"input_tokens": _count(_first(a, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                               "llm.token_count.prompt")),
                 "output_tokens": _count(_first(a, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                                "llm.token_count.completion")),
                 "total_tokens": _count(_first(a, "llm.token_count.total", "llm.usage.total_tokens"))}
        if any(v is not None for v in usage.values()):
            body["usage"] = {k: v for k, v in usage.items() if v is not None}
        cost = a.get("llm.cost.total")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
            body["cost_usd"] = float(cost)
        body["request_model"] = _str(_first(a, "gen_ai.request.model", "llm.request.model_name", "llm.model_name"))
        body["response_model"] = _str(_first(a, "gen_ai.response.model", "llm.response.model_name"))
    else:
        steps = _tool_texts(span) if kind == "tool" else _retrieval_texts(span)
        if not steps:
            return SpanOutcome(kind)  # nothing recorded that enters the context: counted only
        body["messages"] = steps
    if span.end_ns >= span.start_ns:
        body["latency_ms"] = (span.end_ns - span.start_ns) / 1e6
    error = _error(span)
    if error is not None:
        body["status"], body["error"] = "error", error
    user = _user(a)
    if user is not None:
        body["user"] = user
    kept = {k: a[k][:_MAX_ID] for k in _KEPT if isinstance(a.get(k), str)}
    if span.name:
        kept["otel.span.name"] = span.name[:_MAX_ID]
    body["attributes"] = kept
    body["trace"] = {"trace_id": span.trace_id, "span_id": span.span_id, "parent_span_id": span.parent_span_id,
                     "kind": kind}
    event = {"schema_version": SCHEMA_VERSION, "event_id": f"otel-{span.trace_id}-{span.span_id}",
             "type": "inference", "occurred_at": _time(span.start_ns), "tenant": tenant[:_MAX_ID],
             "model": {"name": name[:_MAX_ID], "version": version[:_MAX_ID]},
             "inference": {k: v for k, v in body.items() if v is not None}}
    return SpanOutcome(kind, event=event)


def map_spans(spans: Iterable[Span], key_tenants: Sequence[str] | None = None) -> list[SpanOutcome]:
    """:func:`map_span` over a request's spans."""
    return [map_span(s, key_tenants) for s in spans]

