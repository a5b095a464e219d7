"""Rendering console pages: the Jinja2 environment (templates are package data), filters, and the
security headers every page carries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import Response

from api.auth import ADMIN, ADMIN_OPERATOR, AUDIT_ROLES, READ_ROLES
from api.console.sessions import Viewer
from detectors.finding import Severity

TEMPLATES = Jinja2Templates(directory=str(files("api.console") / "templates"))

#: no script runs in the console; styles and images come from the console itself; no framing
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return "" if value is None else str(value)
    value = value if value.tzinfo else value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _severity(value: Any) -> str:
    if isinstance(value, int):
        return Severity(value).name
    return str(value)


def _qs(params: dict[str, Any], **more: Any) -> str:
    """A query string of the non-empty values of ``params`` and ``more``."""
    return urlencode({k: v for k, v in {**params, **more}.items() if v not in (None, "")})


def _plain(value: Any) -> str:
    """A value for a table cell: lists joined, mappings as ``k=v``."""
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


TEMPLATES.env.filters["when"] = _when
TEMPLATES.env.filters["severity"] = _severity
TEMPLATES.env.filters["pretty"] = _pretty
TEMPLATES.env.filters["qs"] = _qs
TEMPLATES.env.filters["plain"] = _plain
TEMPLATES.env.filters["svg"] = Markup  # charts are built by api.console.charts, which escapes every text
TEMPLATES.env.globals.update(READ_ROLES=READ_ROLES, ADMIN_OPERATOR=ADMIN_OPERATOR, AUDIT_ROLES=AUDIT_ROLES,
                             ADMIN=ADMIN)


def render(request: Request, template: str, viewer: Viewer | None, *, status_code: int = 200,
           **context: Any) -> Response:
    """A console page: ``template`` with the viewer (None on the sign-in page) and ``context``."""
    response = TEMPLATES.TemplateResponse(request, template, {"viewer": viewer, "path": request.url.path, **context},
                                          status_code=status_code)
    response.headers.update(HEADERS)
    return response
