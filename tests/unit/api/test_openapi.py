"""The OpenAPI document describes real response shapes: every ``/v1`` route declares a response model
(or a non-JSON media type it streams), so a route added without one fails here.

The app is built without its lifespan (no database, no broker): the document comes from the routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from api.app import create_app
from api.config import ApiConfig
from tests.support.procs import ROOT


def _document() -> dict[str, Any]:
    return create_app(ApiConfig(database_url="sqlite://", bootstrap="127.0.0.1:1"), consume=False).openapi()


def _is_json(media: str) -> bool:
    kind = media.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _typed(schema: dict[str, Any], components: dict[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``schema`` names a shape: an object with properties (directly or by ``$ref``), an array of
    such, or a union of such (null aside). ``{}`` and a bare ``{"type": "object"}`` are untyped."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return name not in seen and _typed(components[name], components, seen | {name})
    if schema.get("properties"):
        return True
    if schema.get("type") == "array":
        return _typed(schema.get("items") or {}, components, seen)
    variants = [s for s in schema.get("anyOf", schema.get("oneOf", [])) if s.get("type") != "null"]
    return bool(variants) and all(_typed(s, components, seen) for s in variants)


def untyped_responses(document: dict[str, Any], prefix: str = "/v1") -> list[str]:
    """``METHOD path`` of every operation under ``prefix`` whose success response has no typed JSON schema
    and no declared non-JSON media type (or no success response at all)."""
    components = document.get("components", {}).get("schemas", {})
    bad: list[str] = []
    for path, operations in document["paths"].items():
        if not path.startswith(prefix):
            continue
        for method, operation in operations.items():
            successes = [r for code, r in operation["responses"].items() if code.startswith("2")]
            contents = [r.get("content") or {} for r in successes]
            described = bool(contents) and all(
                content and all(_typed(spec.get("schema") or {}, components) if _is_json(media) else True
                                for media, spec in content.items())
                for content in contents)
            if not described:
                bad.append(f"{method.upper()} {path}")
    return bad


def test_every_v1_route_has_a_typed_response_schema() -> None:
    document = _document()
    operations = [(p, m) for p, ops in document["paths"].items() if p.startswith("/v1") for m in ops]
    assert len(operations) >= 40  # the walk covers the API, not an empty document
    assert untyped_responses(document) == []


def test_a_route_without_a_model_is_caught() -> None:
    app = FastAPI()

    @app.get("/v1/untyped")
    def untyped() -> dict[str, Any]:
        return {}

    @app.get("/v1/bare")
    def bare():
        return {}

    @app.get("/v1/list")
    def listed() -> list[dict[str, Any]]:
        return []

    assert sorted(untyped_responses(app.openapi())) == ["GET /v1/bare", "GET /v1/list", "GET /v1/untyped"]


def test_shapes_carry_their_fields() -> None:
    """Spot checks that the schemas are the real shapes (names the clients and tests read)."""
    document = _document()
    schemas = document["components"]["schemas"]
    assert {"items", "next_cursor"} <= set(schemas["FindingPage"]["properties"])
    assert schemas["Finding"]["properties"]["severity"]["enum"] == ["info", "low", "medium", "high", "critical"]
    assert "key" in schemas["IssuedKey"]["properties"] and "key" not in schemas["ApiKey"]["properties"]
    assert set(schemas["AliasSwitched"]["properties"]) >= {"switch_id", "to_version", "event_id", "published"}
    export = document["paths"]["/v1/audit/export"]["get"]["responses"]["200"]["content"]
    assert set(export) == {"application/x-ndjson", "text/csv"}


def test_routes_take_app_objects_through_deps() -> None:
    """``request.app.state`` is read in ``api.deps`` only (health and metrics report on the app's own
    objects, whichever exist, and keep reading them)."""
    readers = sorted(p.name for p in (ROOT / "api" / "routes").glob("*.py")
                     if "app.state" in p.read_text(encoding="utf-8") and p.name != "health.py")
    assert readers == []
