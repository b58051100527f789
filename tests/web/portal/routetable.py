"""The app's route table, read the way the generated security tests need it.

The tests in this package are generated from :func:`routes`, not listed by hand: a route a helper
adds tomorrow is tried by every one of them without anyone writing a test for it. For each route
this says

- which part of the app it belongs to (``portal`` HTML at ``/…``, ``api`` JSON at ``/api/v1/…``,
  or ``machine``: webhook receivers, ``/healthz``, ``/metrics``, static files — their own rules);
- which of its path parameters name objects (``order_id``, ``connection_id``… — the convention in
  ``COMMON.md``; a parameter with another name fails the isolation test until it is added to the
  isolation fixture);
- whether it changes state (POST/PUT/PATCH/DELETE);
- a request body the route's own validation accepts, built from its declared body model
  (:func:`minimal_body`), so a refusal the tests see comes from scoping, CSRF or roles — never
  from a 422 on a missing field. A route whose body cannot be built from its schema alone gets an
  entry in ``EXAMPLES`` (keyed by method and path).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, get_args
from urllib.parse import quote

from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import TypeAdapter
from starlette.routing import Mount

from orderbridge.domain.roles import Role
from orderbridge.web import deps

#: the path parameters that name an object of a tenant (COMMON.md, "Route conventions")
OBJECT_PARAMS = (
    "order_id",
    "connection_id",
    "run_id",
    "alert_id",
    "mapping_id",
    "token_id",
    "user_id",
    "posting_id",
    "push_id",
    "import_token",  # an uploaded CSV file kept between its preview and its confirmation (issue #14)
    "update_id",  # an order update (issue #15)
)
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: paths with rules of their own (docs/security.md): signed webhooks, unauthenticated probes
MACHINE_PREFIXES = ("/webhooks/", "/healthz", "/metrics", "/static")
#: method + path → a body the route accepts, where its declared model alone cannot say (e.g. a
#: field that must name an existing object); merged over the generated minimal body
EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {}


def _door(alias: Any) -> Any:
    """The dependency function behind one of ``web/deps.py``'s annotated aliases."""
    return next(m.dependency for m in get_args(alias)[1:] if isinstance(m, params.Depends))


#: the dependency each alias of web/deps.py stands for → (which door, the role it needs)
DOORS: dict[Any, tuple[str, Role]] = {
    _door(deps.Viewer): ("portal", Role.VIEWER),
    _door(deps.Operator): ("portal", Role.OPERATOR),
    _door(deps.Admin): ("portal", Role.ADMIN),
    _door(deps.ApiViewer): ("api", Role.VIEWER),
    _door(deps.ApiOperator): ("api", Role.OPERATOR),
    _door(deps.ApiAdmin): ("api", Role.ADMIN),
}


def _doors(dependant: Dependant) -> Iterator[tuple[str, Role]]:
    for sub in dependant.dependencies:
        if sub.call in DOORS:
            yield DOORS[sub.call]
        yield from _doors(sub)


@dataclass(frozen=True)
class Route:
    path: str
    method: str
    part: str  # "portal" | "api" | "machine"
    params: tuple[str, ...]  # every path parameter, in order
    endpoint: Any = field(compare=False, repr=False)
    route: Any = field(compare=False, repr=False)  # fastapi.routing.RouteContext of an APIRoute

    @property
    def changes_state(self) -> bool:
        return self.method in STATE_CHANGING

    @property
    def doors(self) -> tuple[tuple[str, Role], ...]:
        """Every ``web/deps.py`` door the route's dependencies pass through (with its role)."""
        return tuple(dict.fromkeys(_doors(self.route.dependant)))

    @property
    def role(self) -> Role | None:
        """The highest role the route's doors need (None: the route has no door)."""
        order = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
        found = [role for _part, role in self.doors]
        return max(found, key=order.index) if found else None

    @property
    def object_params(self) -> tuple[str, ...]:
        return tuple(p for p in self.params if p in OBJECT_PARAMS)

    @property
    def unknown_params(self) -> tuple[str, ...]:
        return tuple(p for p in self.params if p not in OBJECT_PARAMS)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, ids: dict[str, Any]) -> str:
        """The path with each parameter replaced by ``ids[name]``."""
        path = self.path
        for name in self.params:
            value = quote(str(ids[name]), safe="")  # an order number starts with "#"
            path = path.replace("{" + name + "}", value).replace("{" + name + ":path}", value)
        return path

    def query(self) -> dict[str, Any]:
        """The route's required query parameters, each with the simplest value its type accepts."""
        out = {}
        for param in self.route.dependant.query_params:
            if param.field_info.is_required():
                schema = TypeAdapter(param.field_info.annotation).json_schema()
                out[param.alias or param.name] = minimal_body(schema, schema.get("$defs", {}))
        return out

    def body(self) -> tuple[str, dict[str, Any]] | None:
        """``("form"|"json", body)`` the route's validation accepts, or None when it takes no body."""
        body_field = self.route.body_field
        if body_field is None:
            return None
        schema = TypeAdapter(body_field.field_info.annotation).json_schema()
        made = minimal_body(schema, schema.get("$defs", {}))
        made = {**(made if isinstance(made, dict) else {}), **EXAMPLES.get((self.method, self.path), {})}
        is_form = any(isinstance(p.field_info, params.Form) for p in self.route.dependant.body_params)
        return ("form" if is_form else "json"), made


def routes(app: FastAPI) -> list[Route]:
    """Every (path, method) the app serves through FastAPI routes, mounted sub-apps included."""
    return sorted(set(_walk(app, "")), key=lambda r: (r.path, r.method))


def _walk(app: Any, prefix: str) -> Iterator[Route]:
    # FastAPI ≥ 0.16x keeps included routers as such (``_IncludedRouter``); ``iter_route_contexts``
    # yields each of their routes as served: the full path, the methods, the combined dependencies
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if isinstance(original, APIRoute):
            path = prefix + str(context.path)
            names = tuple(p.name for p in context.dependant.path_params)
            for method in sorted(context.methods or ()):
                if method in ("HEAD", "OPTIONS"):
                    continue
                yield Route(path, method, _part(path), names, context.endpoint, context)
        elif isinstance(original, Mount) and isinstance(original.app, FastAPI):
            yield from _walk(original.app, prefix + original.path)


def _part(path: str) -> str:
    if path.startswith("/api/"):
        return "api"
    if path.startswith(MACHINE_PREFIXES) or path in MACHINE_PREFIXES:
        return "machine"
    return "portal"


def minimal_body(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """A simple value ``schema`` accepts: every property (a form's optional text too — an empty
    default such as a release's reason would be refused by the service before it looks the object
    up), each the simplest value of its type that meets its bounds (an enum's first member, a
    format's example, a non-empty default)."""
    if "$ref" in schema:
        return minimal_body(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("default") not in (None, "", [], {}):
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"] or schema[key]
            return minimal_body(options[0], defs)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: minimal_body(prop, defs) for name, prop in props.items()}
    if kind == "array":
        item = schema.get("items", {})
        return [minimal_body(item, defs) for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        return max(1, schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
    if kind == "number":
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt == "email":
        return "someone@example.com"
    if fmt == "date-time":
        return "2026-01-01T00:00:00Z"
    if fmt == "date":
        return "2026-01-01"
    if fmt in ("uri", "url"):
        return "https://example.com/"
    return "x" * max(1, schema.get("minLength", 1))
