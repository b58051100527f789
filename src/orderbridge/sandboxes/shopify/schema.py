"""Shopify's own Admin GraphQL schema, one per API version the sandbox serves, and version routing.

The schemas are Shopify's published introspection JSON, fetched by ``scripts/fetch-shopify-schema.sh``
(``make setup``) from the npm package ``@shopify/dev-mcp`` into ``published/`` beside this module
(gitignored; ``ORDERBRIDGE_SHOPIFY_SCHEMAS`` points elsewhere). ``published/manifest.json`` records
the package version and the versions served: the two newest stable versions in that package.

Built with graphql-core's ``build_client_schema(assume_valid=True)``: Shopify's schema deprecates
a few fields that implement interface fields which are not deprecated (``Customer.hasTimelineComment``
…), which the GraphQL specification's newest schema rule refuses — Shopify serves it regardless, and
validating documents against it works.

Version routing as Shopify documents it: a supported version is served as asked; a stable version
older than the oldest supported one (``YYYY-01/04/07/10``) is served as the oldest supported one,
the response's ``X-Shopify-API-Version`` saying which, and ``X-Shopify-API-Deprecated-Reason``
flagging the use of an unsupported version. Anything else (a future version, ``unstable``, a
malformed name) is 404: the sandbox has no schema for it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from graphql import GraphQLSchema, build_client_schema

_VERSION = re.compile(r"^(\d{4})-(01|04|07|10)$")
#: what ``X-Shopify-API-Deprecated-Reason`` points to (Shopify sends a URL to its docs)
DEPRECATION_DOCS = "https://shopify.dev/docs/api/usage/versioning#deprecation-practices"


class SchemaMissing(RuntimeError):
    """The published schemas were not fetched (``make setup`` runs the script that fetches them)."""


def schema_dir() -> Path:
    given = os.environ.get("ORDERBRIDGE_SHOPIFY_SCHEMAS")
    if given:
        return Path(given)
    return Path(str(resources.files("orderbridge.sandboxes.shopify").joinpath("published")))


@cache
def manifest() -> dict[str, Any]:
    path = schema_dir() / "manifest.json"
    if not path.exists():
        raise SchemaMissing(
            f"Shopify's published Admin GraphQL schemas are not in {path.parent}: run `make setup` "
            "(scripts/fetch-shopify-schema.sh fetches them with npm)"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def served_versions() -> tuple[str, ...]:
    """The API versions the sandbox serves, oldest first."""
    return tuple(sorted(manifest()["versions"]))


def newest_version() -> str:
    return served_versions()[-1]


@cache
def schema(version: str) -> GraphQLSchema:
    """The published schema of ``version`` (one of :func:`served_versions`), built once per process."""
    if version not in served_versions():
        raise KeyError(f"the sandbox does not serve Shopify API version {version!r}")
    raw = json.loads(gzip.decompress((schema_dir() / f"admin_{version}.json.gz").read_bytes()))
    return build_client_schema(raw["data"], assume_valid=True)


def support_ends(version: str) -> date:
    """When Shopify stops supporting a stable version: twelve months after its release (its minimum)."""
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a stable Shopify API version (YYYY-01/04/07/10)")
    return date(int(match.group(1)) + 1, int(match.group(2)), 1)


@dataclass(frozen=True, slots=True)
class Routed:
    requested: str
    served: str
    #: the text of ``X-Shopify-API-Deprecated-Reason``, or None
    deprecated_reason: str | None


def route(requested: str, deprecated: dict[str, str] | None = None) -> Routed | None:
    """How a request for ``requested`` is served; None when it is not (404).

    ``deprecated`` marks served versions whose responses carry the deprecated-reason header (the
    sandbox's setting: a version near its end of support), with the reason."""
    versions = served_versions()
    if requested in versions:
        reason = (deprecated or {}).get(requested)
        return Routed(requested, requested, reason)
    if _VERSION.match(requested) and requested < versions[0]:
        reason = (
            f"API version {requested} is no longer supported (support ended {support_ends(requested).isoformat()}); "
            f"this request was served by {versions[0]}. See {DEPRECATION_DOCS}"
        )
        return Routed(requested, versions[0], reason)
    return None
