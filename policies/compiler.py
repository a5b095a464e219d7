"""Compile a validated :class:`~policies.schema.Policy` into plain closures the engine calls.

Everything that can be decided once is decided here: field getters, operator closures, templates,
the detector index, the aggregator and one decision builder per action. Errors raise
:class:`~policies.errors.CompileError` with the location of the bad construct inside the policy.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from hashlib import sha1
from operator import attrgetter
from typing import Any

from contracts.decision import Decision, DecisionAction, JobRequest
from detectors.finding import (
    _NAMESPACE,  # the namespace of stable_id, for the fast decision ids below
    Finding,
    Severity,
    Subject,
    stable_id,
)
from policies.aggregate import Firing, GroupKey, WindowAggregator, WindowConfig
from policies.conditions import CompiledMatch, Predicate, compile_match
from policies.errors import CompileError
from policies.fields import Getter, make_getter, parse_path
from policies.schema import Action, AggregateSpec, Policy
from policies.templates import compile_template, to_text

#: ``build(finding, aggregate_context, subject, id_key) -> Decision``
Builder = Callable[[Finding, Mapping[str, Any] | None, Subject, tuple[Any, ...]], Decision]

DEFAULT_ALERT_DEDUP = "{policy.id}:{detector}:{subject.tenant}:{subject.model}:{kind}"
DEFAULT_AGG_DEDUP = "{policy.id}:{aggregate.group}"
DEFAULT_JOB_DEDUP = "{policy.id}:{subject.tenant}:{subject.model}:{subject.version}"
DEFAULT_AGG_SUMMARY = (
    "{policy.id}: {aggregate.function} {aggregate.value} {aggregate.op} {aggregate.threshold}"
    " over {aggregate.window} for {aggregate.group}"
)
_DECISION_FIELDS = tuple(Decision.model_fields)
_new_object = object.__new__
_set = object.__setattr__
# Decisions are built from values the compiler already checked: skip pydantic validation, and skip
# even ``model_construct``'s per-field loop when the model has no hooks that loop would run.
_FAST_CONSTRUCT = not Decision.__pydantic_post_init__ and Decision.model_config.get("extra") != "allow"


def _construct(**values: Any) -> Decision:
    """A :class:`Decision` from complete, already-valid field values (all fields, declaration order)."""
    if not _FAST_CONSTRUCT:  # pragma: no cover - depends on the Decision model's configuration
        return Decision.model_construct(**values)
    m = _new_object(Decision)
    _set(m, "__dict__", values)
    _set(m, "__pydantic_fields_set__", set(_DECISION_FIELDS))
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


def _single_finding_builder(make_id: Any, pid: str, ver: int, mode: str, kind: DecisionAction, summary: str, *,
                            tags: tuple[str, ...], labels_from_context: bool) -> Any:
    """A builder of a tag or suppress decision for one finding (fixed summary, no route, no job)."""

    def build(f: Finding, ctx: Any, subject: Subject, key: tuple[Any, ...]) -> Decision:
        return _construct(
            decision_id=make_id(*key),
            policy_id=pid,
            policy_version=ver,
            mode=mode,
            action=kind,
            subject=subject,
            severity=f.severity,
            summary=summary,
            finding_ids=[f.finding_id],
            detector=f.detector,
            dedup_key=None,
            route=None,
            job=None,
            tags=list(tags),
            labels=_labels(None, ctx) if labels_from_context and ctx else {},
            created_at=f.occurred_at if f.occurred_at.tzinfo is not None else _utc(f.occurred_at),
        )

    return build


def _id_maker(policy_id: str, version: int, action: str, index: int) -> Callable[..., str]:
    """``key -> Decision.make_id(policy_id, version, action, index, *key)``, with the constant prefix hashed once.

    A self-check against :meth:`Decision.make_id` at compile time guards the shortcut; should the id
    scheme ever change, the plain call is used instead.
    """

    def slow(*key: Any) -> str:
        return Decision.make_id(policy_id, version, action, index, *key)

    if _NAMESPACE is None:  # pragma: no cover - detectors.finding changed its internals
        return slow
    prefix = "\x1f".join(str(p) for p in ("decision", policy_id, version, action, index)) + "\x1f"
    seed = sha1(_NAMESPACE.bytes + prefix.encode("utf-8"))
    sep = "\x1f"

    def fast(*key: Any) -> str:
        h = seed.copy()
        h.update(sep.join(["" if k is None else str(k) for k in key]).encode("utf-8"))
        b = bytearray(h.digest()[:16])
        b[6] = (b[6] & 0x0F) | 0x50
        b[8] = (b[8] & 0x3F) | 0x80
        x = b.hex()
        return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"

    probe = ("f-1", None, "g|h")
    if fast(*probe) != slow(*probe) or fast("x") != slow("x"):  # pragma: no cover
        return slow
    return fast


def _utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _key_text(v: Any) -> str:
    if v is None:
        return ""
    return v if isinstance(v, str) else to_text(v)


class CompiledPolicy:
    """A policy ready to run: the engine reads these attributes in its hot loop."""

    __slots__ = (
        "policy",
        "id",
        "version",
        "mode",
        "priority",
        "order",
        "detectors",
        "predicate",
        "subject_predicate",
        "builders",
        "stops",
        "aggregator",
        "group_of",
        "distinct_of",
        "fingerprint",
        "matched",
        "fired",
        "_spec",
        "_group_fields",
    )

    def __init__(self, policy: Policy, order: int = 0) -> None:
        self.policy = policy
        self.id = policy.id
        self.version = policy.version
        self.mode = policy.mode
        self.priority = policy.priority
        self.order = order
        cm: CompiledMatch = compile_match(policy.match, ("match",))
        self.detectors = cm.detectors
        self.predicate: Predicate = cm.predicate
        self.subject_predicate = cm.subject_predicate
        self.matched = 0  # findings that met ``match``
        self.fired = 0  # decisions emitted
        spec = policy.aggregate
        self._spec = spec
        self.aggregator: WindowAggregator | None = None
        self.group_of: Callable[[Any], GroupKey] | None = None
        self.distinct_of: Getter | None = None
        self._group_fields: tuple[str, ...] = ()
        if spec is not None:
            self._compile_aggregate(spec)
        self.builders: list[Builder] = []
        self.stops = False
        for i, action in enumerate(policy.actions):
            self._compile_action(i, action)
        self.fingerprint = stable_id(
            "policy-state",
            json.dumps(
                {"match": policy.match, "aggregate": spec.model_dump(mode="json") if spec else None},
                sort_keys=True,
                default=str,
            ),
        )

    # ------------------------------------------------------------ aggregate

    def _compile_aggregate(self, spec: AggregateSpec) -> None:
        getters: list[Getter] = []
        fields: list[str] = []
        for i, text in enumerate(spec.group_by):
            try:
                path = parse_path(text)
            except ValueError as e:
                raise CompileError(("aggregate", "group_by", i), str(e)) from None
            if spec.function == "ratio" and not path.is_subject:
                raise CompileError(
                    ("aggregate", "group_by", i),
                    "a ratio's denominator is counted per event subject: group only by "
                    "subject.tenant, subject.model, subject.version",
                )
            getters.append(make_getter(path))
            fields.append(path.text)
        self._group_fields = tuple(fields)
        gs = tuple(getters)
        if fields and all(t in ("subject.tenant", "subject.model") for t in fields):
            # never None: one C-level attrgetter builds the key
            get: Callable[[Any], Any] = attrgetter(*fields)
            self.group_of = (lambda f: (get(f),)) if len(fields) == 1 else get
        else:
            self.group_of = lambda f: tuple(_key_text(g(f)) for g in gs)
        if spec.distinct is not None:
            try:
                self.distinct_of = make_getter(parse_path(spec.distinct))
            except ValueError as e:
                raise CompileError(("aggregate", "distinct"), str(e)) from None
        self.aggregator = WindowAggregator(
            WindowConfig(
                function=spec.function,
                window_s=spec.window,
                step_s=spec.step_s,
                op=spec.op,
                threshold=spec.threshold,
                min_events=spec.min_events,
                max_groups=spec.max_groups,
                max_distinct=spec.max_distinct,
            )
        )

    def aggregate_subject(self, group: GroupKey) -> Subject:
        """The subject of an aggregate decision: grouped subject fields, ``*`` for the others."""
        values = dict(zip(self._group_fields, group))
        return Subject(
            tenant=values.get("subject.tenant") or "*",
            model=values.get("subject.model") or "*",
            version=values.get("subject.version") or None,
        )

    def aggregate_context(self, firing: Firing) -> dict[str, Any]:
        """Values for ``{aggregate.*}`` placeholders and decision labels."""
        spec = self._spec
        assert spec is not None
        return {
            "function": spec.function,
            "value": firing.value,
            "threshold": spec.threshold,
            "op": ">" if spec.op == "gt" else ">=",
            "numerator": firing.numerator,
            "denominator": firing.denominator,
            "window": _duration_text(spec.window),
            "window_start": datetime.fromtimestamp(firing.window_start, UTC).isoformat(),
            "window_end": datetime.fromtimestamp(firing.window_end, UTC).isoformat(),
            "group": "/".join(firing.group),
        }

    # ------------------------------------------------------------ actions

    def _template(self, source: str, loc: tuple[Any, ...]):
        try:
            return compile_template(
                source,
                constants={"policy.id": self.id, "policy.version": self.version},
                allow_aggregate=self._spec is not None,
            )
        except ValueError as e:
            raise CompileError(loc, str(e)) from None

    def _compile_action(self, i: int, action: Action) -> None:
        name = action.name
        loc = ("actions", i, name)
        pid, ver, mode = self.id, self.version, self.mode
        is_agg = self._spec is not None
        if name == "suppress":
            if is_agg:
                raise CompileError(loc, "suppress acts on single findings; it cannot be combined with aggregate")
            sup = action.suppress
            assert sup is not None
            if mode == "enforce":
                self.stops = True
            if not sup.record:
                return
            make_id = _id_maker(pid, ver, "suppress", i)
            summary = sup.reason or f"suppressed by policy {pid}"
            self.builders.append(_single_finding_builder(make_id, pid, ver, mode, DecisionAction.suppress, summary,
                                                         tags=(), labels_from_context=False))
            return
        if name == "tag":
            tag = action.tag
            assert tag is not None
            tags = tuple(tag.tags)
            make_id = _id_maker(pid, ver, "tag", i)
            self.builders.append(_single_finding_builder(
                make_id, pid, ver, mode, DecisionAction.tag, f"tagged {', '.join(tags)} by policy {pid}",
                tags=tags, labels_from_context=True))
            return
        if name == "alert":
            a = action.alert
            assert a is not None
            summary = self._template(a.summary or (DEFAULT_AGG_SUMMARY if is_agg else "{summary}"), (*loc, "summary"))
            dedup = self._template(
                a.dedup_key or (DEFAULT_AGG_DEDUP if is_agg else DEFAULT_ALERT_DEDUP), (*loc, "dedup_key")
            )
            job_of: Callable[[], JobRequest | None] = lambda: None
            kind = DecisionAction.alert
            sev_name, route, static_labels = a.severity, a.route, dict(a.labels)
        else:
            j = action.job
            assert j is not None
            summary = self._template(
                j.summary or f"{j.kind} requested by policy {{policy.id}} for {{subject.model}}", (*loc, "summary")
            )
            dedup = self._template(j.dedup_key or DEFAULT_JOB_DEDUP, (*loc, "dedup_key"))
            jk, ja, jp = j.kind, j.approval, j.params
            job_of = lambda: JobRequest(kind=jk, approval=ja, params=copy.deepcopy(jp))
            kind = DecisionAction.job
            sev_name, route, static_labels = j.severity, j.route, {}
        fixed = None if sev_name == "finding" else Severity[sev_name]
        render_summary, render_dedup = summary.render, dedup.render
        make_id = _id_maker(pid, ver, name, i)

        def build(f: Finding, ctx: Any, subject: Subject, key: tuple[Any, ...]) -> Decision:
            return _construct(
                decision_id=make_id(*key),
                policy_id=pid,
                policy_version=ver,
                mode=mode,
                action=kind,
                subject=subject,
                severity=fixed if fixed is not None else f.severity,
                summary=render_summary(f, ctx),
                finding_ids=[f.finding_id],
                detector=f.detector,
                dedup_key=render_dedup(f, ctx),
                route=route,
                job=job_of(),
                tags=[],
                labels=_labels(static_labels, ctx) if ctx or static_labels else {},
                created_at=f.occurred_at if f.occurred_at.tzinfo is not None else _utc(f.occurred_at),
            )

        self.builders.append(build)


def _labels(static: dict[str, str] | None, ctx: Mapping[str, Any] | None) -> dict[str, str]:
    out = dict(static) if static else {}
    if ctx:
        for k, v in ctx.items():
            out[f"aggregate.{k}"] = to_text(v)
    return out


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def compile_policy(policy: Policy, order: int = 0) -> CompiledPolicy:
    """Compile one validated policy; raise :class:`CompileError` with the location of a bad construct."""
    return CompiledPolicy(policy, order)
