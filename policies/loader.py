"""Load policy files (YAML) with validation errors that name file, line and field.

The YAML is composed into nodes (safe loader: no Python tags, no code) and converted to plain data
while recording the line of every key and item; schema (pydantic) and compile errors are then mapped
back to the nearest line, so a message reads
``packs/builtin.yaml:42: policies[3].match.severity.gte: unknown severity 'hgh' ...``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from policies.compiler import compile_policy
from policies.conditions import compile_match
from policies.engine import compile_policies
from policies.errors import CompileError, Loc, PolicyError, PolicyIssue, format_loc
from policies.schema import Policy

PACKS_DIR = Path(__file__).with_name("packs")
MAX_FILE_BYTES = 2_000_000

_PLAIN_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("map", "seq", "str", "int", "float", "bool", "null", "timestamp", "merge")
)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Doc:
    """Plain data of one YAML document plus the line (1-based) of every location in it."""

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}
        self.issues: list[tuple[Loc, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def build(self, node: yaml.Node, loc: Loc, depth: int = 0) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if node.tag not in _PLAIN_TAGS:
            self.issues.append((loc, f"unsupported YAML tag {node.tag!r}; policies are plain data"))
            return None
        if depth > 64:
            self.issues.append((loc, "nesting too deep"))
            return None
        if isinstance(node, yaml.MappingNode):
            self._constructor.flatten_mapping(node)  # YAML merge keys (<<)
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                if not isinstance(knode, yaml.ScalarNode):
                    self.issues.append((loc, "mapping keys must be plain scalars"))
                    continue
                key = self._constructor.construct_object(knode)
                key = key if isinstance(key, (str, int)) else str(key)
                kloc = (*loc, key)
                if key in out:
                    self.lines[kloc] = knode.start_mark.line + 1
                    self.issues.append((kloc, "duplicate key"))
                    continue
                self.lines[kloc] = knode.start_mark.line + 1
                out[key] = self.build(vnode, kloc, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node)

    def line(self, loc: Loc) -> int | None:
        """Line of ``loc`` or of its nearest ancestor that has one."""
        for n in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:n]))
            if line is not None:
                return line
        return None


def _clean_loc(raw: Iterable[Any], doc: _Doc, prefix: Loc) -> Loc:
    """Pydantic's loc without its union/validator tags (kept only where they name a real key)."""
    loc: Loc = prefix
    for part in raw:
        if isinstance(part, int) or (*loc, part) in doc.lines:
            loc = (*loc, part)
        elif isinstance(part, str) and ("[" in part or "-" in part):
            continue  # e.g. 'function-after[...]'
        else:
            loc = (*loc, part)
    return loc


def _policy_items(data: Any) -> tuple[list[tuple[Loc, Any]], list[tuple[Loc, str]]]:
    """Locate the policy mappings of a document: ``policies: [...]``, a list, or one policy."""
    if isinstance(data, dict) and "policies" in data:
        extra = [k for k in data if k != "policies"]
        issues: list[tuple[Loc, str]] = [((k,), "unknown top-level key; expected 'policies'") for k in extra]
        items = data["policies"]
        if not isinstance(items, list):
            return [], [*issues, (("policies",), "must be a list of policies")]
        return [(("policies", i), p) for i, p in enumerate(items)], issues
    if isinstance(data, list):
        return [((i,), p) for i, p in enumerate(data)], []
    if isinstance(data, dict):
        return [((), data)], []
    if data is None:
        return [], [((), "empty policy file")]
    return [], [((), "a policy file holds a mapping (one policy, or 'policies: [...]') or a list")]


def parse_policies(text: str, source: str = "<policy>") -> list[Policy]:
    """Parse and validate policies from YAML text; raise :class:`PolicyError` naming ``source:line: field``."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise PolicyError([PolicyIssue("<yaml>", f"invalid YAML: {problem}", source, line)]) from None
    if node is None:
        raise PolicyError([PolicyIssue("<document>", "empty policy file", source, 1)])
    doc = _Doc()
    data = doc.build(node, ())
    issues: list[PolicyIssue] = []

    def add(loc: Loc, message: str) -> None:
        issues.append(PolicyIssue(format_loc(loc), message, source, doc.line(loc)))

    for loc, msg in doc.issues:
        add(loc, msg)
    items, shape_issues = _policy_items(data)
    for loc, msg in shape_issues:
        add(loc, msg)
    policies: list[Policy] = []
    ids: dict[str, Loc] = {}
    for loc, raw in items:
        if not isinstance(raw, dict):
            add(loc, "a policy must be a mapping")
            continue
        try:
            policy = Policy.model_validate(raw)
        except ValidationError as e:
            for err in e.errors(include_url=False):
                msg = err["msg"].removeprefix("Value error, ")
                add(_clean_loc(err["loc"], doc, loc), msg)
            if "match" in raw:  # report match errors too, not only the schema's
                try:
                    compile_match(raw["match"], ("match",))
                except CompileError as ce:
                    add((*loc, *ce.loc), ce.message)
            continue
        try:
            compile_policy(policy)
        except CompileError as e:
            add((*loc, *e.loc), e.message)
            continue
        if policy.id in ids:
            add((*loc, "id"), f"duplicate policy id {policy.id!r} (first at line {doc.line((*ids[policy.id], 'id'))})")
            continue
        ids[policy.id] = loc
        policies.append(policy)
    if issues:
        raise PolicyError(sorted(issues, key=lambda i: i.line or 0))
    return policies


def load_policy_file(path: str | Path) -> list[Policy]:
    """Load and validate one policy file; raise :class:`PolicyError` (``file:line: field: message``)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PolicyError([PolicyIssue("<file>", f"file larger than {MAX_FILE_BYTES} bytes", str(p))])
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise PolicyError([PolicyIssue("<file>", f"cannot read: {e.strerror or e}", str(p))]) from None
    except UnicodeDecodeError:
        raise PolicyError([PolicyIssue("<file>", "not UTF-8 text", str(p))]) from None
    return parse_policies(text, str(p))


def load_policies(paths: Iterable[str | Path]) -> list[Policy]:
    """Load several files or directories (every ``*.yaml`` / ``*.yml`` inside, sorted by name).

    Every file is checked; all issues are raised together. Ids must be unique across the set.
    """
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            files.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        else:
            files.append(p)
    policies: list[Policy] = []
    issues: list[PolicyIssue] = []
    for f in files:
        try:
            policies.extend(load_policy_file(f))
        except PolicyError as e:
            issues.extend(e.issues)
    if not issues:
        try:
            compile_policies(policies)  # duplicate ids across files
        except PolicyError as e:
            issues.extend(e.issues)
    if issues:
        raise PolicyError(issues)
    return policies


def load_pack(name: str = "builtin") -> list[Policy]:
    """A built-in policy pack shipped in ``policies/packs/<name>.yaml``."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"invalid pack name {name!r}")
    path = PACKS_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PACKS_DIR.glob("*.yaml"))
        raise ValueError(f"no policy pack {name!r}; available: {known}")
    return load_policy_file(path)
