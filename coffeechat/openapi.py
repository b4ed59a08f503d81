"""The OpenAPI 3.1 document of the HTTP API, made from the route registry: every route a feature
registered (``ModuleAPI.route``) describes itself there, with its request and answer schemas
when it gives them (``request=``, ``response=``, ``query=``), and a permissive default when it
does not, so that no route goes undescribed.  ``GET /admin/openapi.json`` serves the admin API's,
``GET /api/openapi.json`` the rest (coffeechat/features/admin_api.py).

The small builders below (:func:`obj`, :func:`integer`, ...) keep the schemas short where the
routes are registered; they make plain JSON Schema (2020-12, which OpenAPI 3.1 uses).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from coffeechat.modules import Route
from coffeechat.schema import MAX_ID

#: path parameters ``{name:int}`` match 1 .. 18 decimal digits (coffeechat/modules.py)
PATH_INT_MAX = 10**18 - 1
ID_MAX = MAX_ID


def integer(minimum: int | None = None, maximum: int | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", **extra}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def string(min_length: int | None = None, max_length: int | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", **extra}
    if min_length is not None:
        schema["minLength"] = min_length
    if max_length is not None:
        schema["maxLength"] = max_length
    return schema


def boolean() -> dict[str, Any]:
    return {"type": "boolean"}


def array(items: dict[str, Any], max_items: int | None = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": items, **extra}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def obj(required: Iterable[str] = (), additional: bool = True, **properties: dict[str, Any]) -> dict[str, Any]:
    """An object with these properties; ``required`` names those it must have."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = list(required)
    if required:
        schema["required"] = required
    if not additional:
        schema["additionalProperties"] = False
    return schema


def accepted(schema: dict[str, Any]) -> dict[str, Any]:
    """A response schema of a route answering 202 (work started in the background), not 200."""
    return {**schema, STATUS: 202}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


ID = integer(1, ID_MAX)
#: the key of a response schema naming its success status (:func:`accepted`), taken out of the
#: schema in the document
STATUS = "x-coffeechat-status"


@dataclass(frozen=True)
class Query:
    """A query parameter of a route (``?name=value``)."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


def paging(default: int, maximum: int, after: str = "after") -> tuple[Query, Query]:
    """The usual pair: a cursor (``after``, exclusive) and a page size."""
    return (
        Query(after, integer(0, PATH_INT_MAX), "return what comes after this id (0: from the start)"),
        Query("limit", integer(1, PATH_INT_MAX), f"page size (default {default}, at most {maximum})"),
    )


#: every answer carries these (protocols/http.py)
ENVELOPE = {"error_code": integer(), "error_msg": string()}
ERROR = obj(["error_code", "error_msg"], **ENVELOPE)
_ERRORS = {
    "400": "bad input",
    "401": "no or a wrong admin token",
    "403": "the admin API is disabled (http.admin_token), or forbidden",
    "404": "no such resource",
    "409": "conflict (a name taken)",
    "413": "request body too large",
    "429": "rate limited",
    "503": "storage unavailable: try again",
}


def _path(route: Route) -> str:
    return "/" + "/".join(s if isinstance(s, str) else f"{{{s[0]}}}" for s in route.segments)


def _path_parameters(route: Route) -> list[dict[str, Any]]:
    params = []
    for segment in route.segments:
        if isinstance(segment, tuple):
            name, kind = segment
            schema = integer(1, PATH_INT_MAX) if kind == "int" else string(1)
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return params


def _success(route: Route) -> dict[str, Any]:
    if route.produces:
        schema = {k: v for k, v in route.response.items() if k != STATUS} if route.response else string()
        return {"description": "ok", "content": {route.produces: {"schema": schema}}}
    response = {k: v for k, v in (route.response or obj()).items() if k != STATUS}
    properties = {**ENVELOPE, **response.get("properties", {})}
    schema = {**response, "type": "object", "properties": properties}
    # Admin answers of a handler's plain dict always carry the envelope (the transport adds it); a
    # handler answering its own status (a 202, /health) may leave it out.
    plain = route.auth == "admin" and STATUS not in (route.response or {})
    envelope = ["error_code", "error_msg"] if plain else []
    required = [*envelope, *response.get("required", ())]
    if required:
        schema["required"] = required
    return {"description": "ok", "content": {"application/json": {"schema": schema}}}


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{'_'.join(s if isinstance(s, str) else s[0] for s in route.segments)}",
        "summary": route.summary or f"{route.method} {route.path}",
        "tags": [route.feature],
    }
    params = _path_parameters(route) + [
        {"name": q.name, "in": "query", "required": q.required, "schema": q.schema}
        | ({"description": q.description} if q.description else {})
        for q in route.query
    ]
    if params:
        operation["parameters"] = params
    if route.request is not None and not route.raw:
        # A body none of whose fields is required may be left out (POST .../kick).
        content = {"application/json": {"schema": route.request}}
        operation["requestBody"] = {"required": bool(route.request.get("required")), "content": content}
    status = str(route.response.get(STATUS, 200)) if route.response else "200"
    responses: dict[str, Any] = {status: _success(route)}
    if status == "202":
        responses[status]["description"] = "accepted: runs in the background"
    if route.auth == "admin":
        error = {"content": {"application/json": {"schema": ERROR}}}
        responses |= {code: {"description": text, **error} for code, text in _ERRORS.items()}
        operation["security"] = [{"adminToken": []}]
    elif route.auth == "user":
        operation["security"] = [{"userToken": []}]
    operation["responses"] = responses
    return operation


def document(routes: Iterable[Route], admin: bool, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the admin routes (``admin``) or of the others."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if (route.auth == "admin") != admin or route.method in ("HEAD", "OPTIONS"):
            continue
        paths.setdefault(_path(route), {})[route.method.lower()] = _operation(route)
    title = "CoffeeChat admin API" if admin else "CoffeeChat HTTP API"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Generated from the routes the node's features registered (docs/admin-api.md).",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer", "description": "http.admin_token"},
                "userToken": {"type": "http", "scheme": "bearer", "description": "a login token (POST /api/login)"},
            }
        },
    }
