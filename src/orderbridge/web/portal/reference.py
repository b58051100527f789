"""``/api-reference``: the REST API's reference, rendered on the server from its OpenAPI schema.

FastAPI's Swagger and ReDoc pages load their scripts from a CDN and run inline script, which the
portal's Content-Security-Policy forbids (and the hub may have no internet); the schema itself is
served at ``/api/v1/openapi.json`` for tools, and this page lists every operation — method, path,
summary, parameters, request body and answers — for people.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orderbridge.web.deps import Viewer
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

_METHODS = ("get", "post", "put", "patch", "delete")


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, item in sorted(schema.get("paths", {}).items()):
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            found.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "tag": (op.get("tags") or [""])[0],
                    "parameters": [
                        {
                            "name": p.get("name", ""),
                            "in": p.get("in", ""),
                            "required": bool(p.get("required")),
                            "description": p.get("description", "") or p.get("schema", {}).get("description", ""),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": "requestBody" in op,
                    "responses": sorted(op.get("responses", {}).keys()),
                }
            )
    return found


@router.get("/api-reference")
def api_reference(request: Request, actor: Viewer) -> Response:
    schema = request.app.openapi()
    return templates_of(request).render(
        request,
        "api_reference.html",
        {"operations": operations(schema), "title": schema.get("info", {}).get("title", "")},
    )
