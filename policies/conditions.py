"""Match conditions, compiled once into plain Python closures (no ``eval`` of user text).

Grammar (YAML)::

    match:                                   # a condition: a mapping; all its entries must hold
      detector: pii                          # field: scalar  -> eq
      kind: [latency_slo, error_status]      # field: list    -> in
      severity: {gte: medium}                # field: {op: operand, ...}  (several ops: all must hold)
      evidence.entities.US_SSN: {exists: true}
      any: [{tenant: acme}, {score: {gt: 0.9}}]   # combinators: any / all take a list of conditions,
      not: {subject.model: sandbox}               #              not takes one condition

Operators: ``eq ne in not_in gt gte lt lte exists regex contains``. ``severity`` compares by
order (``info < low < medium < high < critical``). An absent (or null) value fails every
operator except ``exists: false``; wrap in ``not`` for "is not X or absent". Comparisons between
incompatible types are false, never an error. ``regex`` patterns are compiled once, capped at
:data:`MAX_REGEX_CHARS` characters, and searched in the first :data:`MAX_REGEX_INPUT` characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from detectors.finding import Severity
from policies.errors import CompileError, Loc
from policies.fields import FieldPath, Getter, make_getter, parse_path

Predicate = Callable[[Any], bool]

OPERATORS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "regex", "contains")
COMBINATORS = ("all", "any", "not")
MAX_REGEX_CHARS = 256
MAX_REGEX_INPUT = 10_000
MAX_IN_ITEMS = 10_000
MAX_NESTING = 16


@dataclass(frozen=True, slots=True)
class CompiledMatch:
    """A compiled ``match`` block.

    ``predicate`` omits the top-level ``detector`` condition when ``detectors`` is set: the engine
    only offers a finding to policies indexed under its detector. ``subject_predicate`` holds the
    top-level conditions on subject fields (tenant, model, version), so that a ratio's denominator
    counts the same subjects as its numerator; ``None`` when the match has none.
    """

    predicate: Predicate
    detectors: frozenset[str] | None
    subject_predicate: Predicate | None


def _always(_f: Any) -> bool:
    return True


def all_of(preds: list[Predicate]) -> Predicate:
    """Conjunction, unrolled for the common small sizes."""
    if not preds:
        return _always
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda f: a(f) and b(f)
    if len(preds) == 3:
        a, b, c = preds
        return lambda f: a(f) and b(f) and c(f)
    ps = tuple(preds)
    return lambda f: all(p(f) for p in ps)


def any_of(preds: list[Predicate]) -> Predicate:
    """Disjunction, unrolled for the common small sizes."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda f: a(f) or b(f)
    ps = tuple(preds)
    return lambda f: any(p(f) for p in ps)


# ---------------------------------------------------------------- operands


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _coerce(path: FieldPath, op: str, x: Any, loc: Loc) -> Any:
    """Check and convert one scalar operand for ``path``'s value kind."""
    if x is None:
        raise CompileError(loc, f"null operand; use 'exists: false' to match an absent {path.text}")
    if isinstance(x, (dict, list)):
        raise CompileError(loc, f"operand of {op!r} must be a scalar, got {type(x).__name__}")
    kind = path.kind
    if kind == "severity":
        try:
            return Severity.parse(x)
        except ValueError as e:
            raise CompileError(loc, str(e)) from None
    if kind == "number":
        if not _is_number(x):
            raise CompileError(loc, f"{path.text} is a number; operand {x!r} is not")
        return x
    if kind == "datetime":
        if isinstance(x, datetime):
            return x if x.tzinfo else x.replace(tzinfo=UTC)
        if isinstance(x, date):
            return datetime(x.year, x.month, x.day, tzinfo=UTC)
        try:
            d = datetime.fromisoformat(str(x))
        except ValueError:
            raise CompileError(loc, f"{path.text} is a time; {x!r} is not an ISO-8601 timestamp") from None
        return d if d.tzinfo else d.replace(tzinfo=UTC)
    if kind == "str":
        if _is_number(x):
            return str(x)  # `version: 3` means "3"
        if not isinstance(x, str):
            raise CompileError(loc, f"{path.text} is a string; operand {x!r} is not")
        return x
    return x  # evidence: any scalar


# ---------------------------------------------------------------- operators


def _op_predicate(path: FieldPath, get: Getter, op: str, arg: Any, loc: Loc) -> Predicate:
    if op == "exists":
        if not isinstance(arg, bool):
            raise CompileError(loc, "exists takes true or false")
        if arg:
            return lambda f: get(f) is not None
        return lambda f: get(f) is None
    if op in ("in", "not_in"):
        if not isinstance(arg, list) or not arg:
            raise CompileError(loc, f"{op} takes a non-empty list")
        if len(arg) > MAX_IN_ITEMS:
            raise CompileError(loc, f"{op} list longer than {MAX_IN_ITEMS} items")
        items = frozenset(_coerce(path, op, x, (*loc, i)) for i, x in enumerate(arg))
        if op == "in":

            def p_in(f: Any) -> bool:
                try:
                    return get(f) in items
                except TypeError:  # unhashable evidence value
                    return False

            return p_in

        def p_not_in(f: Any) -> bool:
            v = get(f)
            if v is None:
                return False
            try:
                return v not in items
            except TypeError:
                return True

        return p_not_in
    if op == "regex":
        if path.kind not in ("str", "any"):
            raise CompileError(loc, f"regex applies to text fields, not {path.text}")
        if not isinstance(arg, str) or not arg:
            raise CompileError(loc, "regex takes a non-empty string")
        if len(arg) > MAX_REGEX_CHARS:
            raise CompileError(loc, f"regex longer than {MAX_REGEX_CHARS} characters")
        try:
            search = re.compile(arg).search
        except re.error as e:
            raise CompileError(loc, f"invalid regex: {e}") from None
        cap = MAX_REGEX_INPUT

        def p_regex(f: Any) -> bool:
            v = get(f)
            return isinstance(v, str) and search(v[:cap] if len(v) > cap else v) is not None

        return p_regex
    if op == "contains":
        if path.kind not in ("str", "any"):
            raise CompileError(loc, f"contains applies to text, lists or mappings, not {path.text}")
        x = _coerce(path, op, arg, loc)

        def p_contains(f: Any) -> bool:
            v = get(f)
            if isinstance(v, (str, list, tuple, dict)):
                try:
                    return x in v
                except TypeError:  # e.g. int in str
                    return False
            return False

        return p_contains
    if op not in OPERATORS:
        raise CompileError(loc, f"unknown operator {op!r}; expected one of {list(OPERATORS)}")
    x = _coerce(path, op, arg, loc)
    if op in ("gt", "gte", "lt", "lte") and path.kind == "str" and not isinstance(x, str):
        raise CompileError(loc, f"cannot order {path.text} against {x!r}")
    if op == "eq":
        return lambda f: get(f) == x
    if op == "ne":

        def p_ne(f: Any) -> bool:
            v = get(f)
            return v is not None and v != x

        return p_ne
    return _compare(get, op, x)


def _compare(get: Getter, op: str, x: Any) -> Predicate:
    if op == "gt":

        def p(f: Any) -> bool:
            v = get(f)
            try:
                return v is not None and v > x
            except TypeError:
                return False

    elif op == "gte":

        def p(f: Any) -> bool:
            v = get(f)
            try:
                return v is not None and v >= x
            except TypeError:
                return False

    elif op == "lt":

        def p(f: Any) -> bool:
            v = get(f)
            try:
                return v is not None and v < x
            except TypeError:
                return False

    else:

        def p(f: Any) -> bool:
            v = get(f)
            try:
                return v is not None and v <= x
            except TypeError:
                return False

    return p


# ---------------------------------------------------------------- conditions


def _field_predicate(key: str, spec: Any, loc: Loc) -> Predicate:
    try:
        path = parse_path(key)
    except ValueError as e:
        raise CompileError(loc, str(e)) from None
    get = make_getter(path)
    if isinstance(spec, dict):
        if not spec:
            raise CompileError(loc, "empty operator mapping")
        preds = []
        for op, arg in spec.items():
            if not isinstance(op, str) or op not in OPERATORS:
                raise CompileError((*loc, str(op)), f"unknown operator {op!r}; expected one of {list(OPERATORS)}")
            preds.append(_op_predicate(path, get, op, arg, (*loc, op)))
        return all_of(preds)
    if isinstance(spec, list):
        return _op_predicate(path, get, "in", spec, loc)
    return _op_predicate(path, get, "eq", spec, loc)


def compile_condition(cond: Any, loc: Loc = ("match",), depth: int = 0) -> Predicate:
    """Compile one condition mapping into a predicate ``finding -> bool``; raise :class:`CompileError`."""
    if depth > MAX_NESTING:
        raise CompileError(loc, f"conditions nested deeper than {MAX_NESTING}")
    if not isinstance(cond, dict):
        raise CompileError(loc, f"a condition must be a mapping, got {type(cond).__name__}")
    preds: list[Predicate] = []
    for key, spec in cond.items():
        kloc = (*loc, str(key))
        if key in ("all", "any"):
            if not isinstance(spec, list) or not spec:
                raise CompileError(kloc, f"{key} takes a non-empty list of conditions")
            subs = [compile_condition(c, (*kloc, i), depth + 1) for i, c in enumerate(spec)]
            preds.append(all_of(subs) if key == "all" else any_of(subs))
        elif key == "not":
            inner = compile_condition(spec, kloc, depth + 1)

            def negated(f: Any, _p: Predicate = inner) -> bool:
                return not _p(f)

            preds.append(negated)
        else:
            preds.append(_field_predicate(str(key), spec, kloc))
    return all_of(preds)


def _detector_set(spec: Any) -> frozenset[str] | None:
    """The detectors a top-level ``detector`` condition allows, when it is a plain eq / in."""
    if isinstance(spec, str):
        return frozenset([spec])
    if isinstance(spec, list) and spec and all(isinstance(x, str) for x in spec):
        return frozenset(spec)
    if isinstance(spec, dict) and spec and set(spec) <= {"eq", "in"}:
        sets = [_detector_set(v) for v in spec.values()]
        if any(s is None for s in sets):
            return None
        out = sets[0]
        for s in sets[1:]:
            out = out & s  # type: ignore[operator]
        return out
    return None


def compile_match(match: Any, loc: Loc = ("match",)) -> CompiledMatch:
    """Compile a policy's ``match`` block (see the module docstring); raise :class:`CompileError`."""
    if match is None:
        match = {}
    if not isinstance(match, dict):
        raise CompileError(loc, f"match must be a mapping, got {type(match).__name__}")
    full = compile_condition(match, loc)  # validates everything, including the detector entry
    detectors = _detector_set(match["detector"]) if "detector" in match else None
    rest = {k: v for k, v in match.items() if not (k == "detector" and detectors is not None)}
    predicate = compile_condition(rest, loc) if detectors is not None else full
    subject_keys = {}
    for k, v in match.items():
        if k in COMBINATORS:
            continue
        try:
            if parse_path(k).is_subject:
                subject_keys[k] = v
        except ValueError:
            continue
    subject_predicate = compile_condition(subject_keys, loc) if subject_keys else None
    return CompiledMatch(predicate, detectors, subject_predicate)
