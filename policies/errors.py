"""Validation errors of policy files: each issue names the file, line and field at fault."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: A location inside a policy document: keys and list indexes, e.g. ``("actions", 0, "alert")``.
Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    """Render a location as a field path: ``policies[2].actions[0].alert.severity``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<document>"


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem found while loading or compiling a policy."""

    field: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<policy>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.field}: {self.message}"


class PolicyError(ValueError):
    """A policy (file) is invalid; ``issues`` lists every problem found, one per line in ``str()``."""

    def __init__(self, issues: Iterable[PolicyIssue]) -> None:
        self.issues: list[PolicyIssue] = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class CompileError(ValueError):
    """Raised by the compiler for one bad construct; ``loc`` is relative to the policy document."""

    def __init__(self, loc: Loc, message: str) -> None:
        self.loc = loc
        self.message = message
        super().__init__(f"{format_loc(loc)}: {message}")
