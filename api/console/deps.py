"""How console routes admit a person: a live session, a role the route declares, and for every
state-changing form the session's CSRF token.

Routes declare their roles with :func:`page` (reads) or :func:`action` (form posts), built on the same
role tuples and :func:`api.auth.require_role` check as the JSON API (``roles_of`` reads the declaration).
Without a session a page redirects to the sign-in form; a role outside the declaration is a 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request, status

from api.auth import check_roles, require_role
from api.console.sessions import Viewer, csrf_ok, viewer

MAX_FORM_BYTES = 64 * 1024


class SignInRequired(Exception):
    """No live session: the console answers with a redirect to its sign-in form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True, slots=True)
class Form:
    """A posted ``application/x-www-form-urlencoded`` form (first value of each field)."""

    values: dict[str, str]

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)


async def read_form(request: Request) -> Form:
    """The posted form (urlencoded only; at most :data:`MAX_FORM_BYTES`)."""
    body = await request.body()
    if not body:
        return Form({})
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                            {"error": "unsupported_form", "detail": "forms are posted url-encoded"})
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, {"error": "too_large", "detail": "form too large"})
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, {"error": "bad_form", "detail": "the form could not be read"}) from exc
    return Form({k: v[0] for k, v in parsed.items()})


async def _signed_in(request: Request, roles: tuple[str, ...]) -> Viewer:
    found = await asyncio.to_thread(viewer, request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else request.url.path)
    request.state.viewer = found  # an error page still shows who is signed in
    require_role(found.principal, roles)
    return found


def page(*roles: str) -> Callable[[Request], Awaitable[Viewer]]:
    """A dependency for a page: a signed-in viewer whose role is one of ``roles``."""
    declared = check_roles(roles)

    async def dependency(request: Request) -> Viewer:
        return await _signed_in(request, declared)

    dependency.warden_roles = declared  # type: ignore[attr-defined]
    dependency.__name__ = "console_page_" + "_".join(roles)
    return dependency


@dataclass(frozen=True, slots=True)
class Act:
    """A state-changing form post: who posts it and what."""

    viewer: Viewer
    form: Form


def action(*roles: str) -> Callable[[Request], Awaitable[Act]]:
    """A dependency for a form post: a signed-in viewer whose role is one of ``roles`` and the form,
    refused (403) unless it carries the session's CSRF token."""
    declared = check_roles(roles)

    async def dependency(request: Request) -> Act:
        who = await _signed_in(request, declared)
        form = await read_form(request)
        if not csrf_ok(who, form.get("csrf_token")):
            raise HTTPException(status.HTTP_403_FORBIDDEN, {
                "error": "csrf", "detail": "this form is missing its CSRF token or carries another session's: "
                                          "reload the page and submit it again"})
        return Act(who, form)

    dependency.warden_roles = declared  # type: ignore[attr-defined]
    dependency.warden_csrf = True  # type: ignore[attr-defined]
    dependency.__name__ = "console_action_" + "_".join(roles)
    return dependency


def sign_in_url(next_path: str) -> str:
    return "/console/signin?next=" + quote(next_path, safe="")
