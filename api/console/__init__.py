"""The web console: server-rendered pages for compliance officers and on-call engineers.

Served by the governance API (same process, port, keys and roles) under ``/console``. A person signs in
with an API key and gets a server-side session (:mod:`api.console.sessions`); every page and form
declares the roles it admits (:mod:`api.console.deps`) and calls the API's own route functions, so the
key's role and tenants are enforced by the same code. No script runs in the browser; charts are SVG
drawn on the server (:mod:`api.console.charts`). Templates and the stylesheet are package data.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api.console.deps import SignInRequired, sign_in_url
from api.console.render import render
from api.console.routes import router

PREFIX = "/console"


def _detail(exc: HTTPException) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        return str(detail.get("detail") or detail.get("error") or detail)
    return str(detail)


def mount(app: FastAPI) -> None:
    """Add the console's routes, its static files and its error pages (HTML under ``/console`` only;
    the JSON API keeps its JSON errors)."""
    app.include_router(router)

    async def root(_: Request) -> Response:  # the service's address opens the console
        return RedirectResponse(PREFIX, status_code=307)

    app.add_route("/", root, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(packages=[("api.console", "static")]), name="console-static")

    async def sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not request.url.path.startswith(PREFIX):
            return await http_exception_handler(request, exc)
        viewer = getattr(request.state, "viewer", None)
        return render(request, "error.html", viewer, status_code=exc.status_code, status=exc.status_code,
                      detail=_detail(exc))

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not request.url.path.startswith(PREFIX):
            return await request_validation_exception_handler(request, exc)
        viewer = getattr(request.state, "viewer", None)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return render(request, "error.html", viewer, status_code=422, status=422,
                      detail=f"{where}: {first.get('msg', 'invalid input')}")

    def html_for_console(previous: Any) -> Any:
        async def handler(request: Request, exc: Exception) -> Response:
            response: Response = await previous(request, exc)
            if not request.url.path.startswith(PREFIX):
                return response
            viewer = getattr(request.state, "viewer", None)
            body = json.loads(bytes(response.body)) if response.media_type == "application/json" else {}
            detail = body.get("detail") if isinstance(body, dict) else None
            text = detail.get("detail") if isinstance(detail, dict) else detail
            return render(request, "error.html", viewer, status_code=response.status_code, status=response.status_code,
                          detail=str(text or "the request could not be served"))
        return handler

    for kind, previous in list(app.exception_handlers.items()):  # the API's own input errors, as pages here
        if kind not in (HTTPException, RequestValidationError, 500, Exception):
            app.add_exception_handler(kind, html_for_console(previous))
    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)


__all__ = ["PREFIX", "mount"]
