#!/usr/bin/env bash
# Fetch Shopify's published Admin GraphQL schemas (introspection JSON) for the sandbox.
#
# Shopify publishes the Admin API schema of each supported version; the npm package
# @shopify/dev-mcp (ISC) ships them as dist/data/admin_<version>.json.gz. This script packs that
# package at a pinned version with npm (a cache under .venv, so `make clean` removes it), checks
# the tarball against the pinned integrity, and extracts only the schemas of the versions the
# sandbox serves into src/orderbridge/sandboxes/shopify/published/ (gitignored: never committed),
# with a manifest.json recording the package, its version and integrity, and the versions.
#
# The pins below are the only place to change when Shopify releases a version: bump the package
# (`npm view @shopify/dev-mcp version`) and list the *stable* versions it ships that Shopify still
# supports — at least the two newest (the package marks its newest stable one `latestVersion`; a
# `releaseCandidate` is not stable yet; a version is supported for twelve months from its
# release). The oldest one listed is what a request for a retired version is served by, as
# Shopify serves it by its oldest supported version: listing every supported one keeps the
# sandbox's fallback Shopify's (tap-shopify 3.13.0 asks for 2025-07 and selects a field that
# 2026-01 still has and 2026-04 removed).
set -euo pipefail

PACKAGE="@shopify/dev-mcp"
PACKAGE_VERSION="1.16.0"
PACKAGE_INTEGRITY="sha512-tqgRnK7sQhjew+htxtleTH23nXB5fZcsrhWgEkomsorGXvLOB2mh2upwZm8uzuTDNTZnqtLMe64yIwh6s2awtw=="
VERSIONS=("2026-01" "2026-04" "2026-07")

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${SHOPIFY_SCHEMA_DIR:-$ROOT/src/orderbridge/sandboxes/shopify/published}"
CACHE="${SHOPIFY_SCHEMA_CACHE:-$ROOT/.venv/cache/shopify-dev-mcp}"
PYTHON="${PYTHON:-python3}"

command -v npm >/dev/null || { echo "fetch-shopify-schema: npm is needed (Node.js 18+)" >&2; exit 1; }
mkdir -p "$CACHE" "$DEST"
TARBALL="$CACHE/shopify-dev-mcp-$PACKAGE_VERSION.tgz"
if [ ! -s "$TARBALL" ]; then
  (cd "$CACHE" && npm pack --silent "$PACKAGE@$PACKAGE_VERSION" >/dev/null)
fi

"$PYTHON" - "$TARBALL" "$DEST" "$PACKAGE" "$PACKAGE_VERSION" "$PACKAGE_INTEGRITY" "${VERSIONS[@]}" <<'PY'
import base64, gzip, hashlib, json, sys, tarfile
from datetime import UTC, datetime
from pathlib import Path

tarball, dest, package, version, integrity, *versions = sys.argv[1:]
digest = "sha512-" + base64.b64encode(hashlib.sha512(Path(tarball).read_bytes()).digest()).decode()
if digest != integrity:
    Path(tarball).unlink()
    sys.exit(f"fetch-shopify-schema: {tarball} does not match the pinned integrity ({digest}); removed it, run again")
out = Path(dest)
with tarfile.open(tarball) as tar:
    for v in versions:
        member = tar.getmember(f"package/dist/data/admin_{v}.json.gz")
        data = tar.extractfile(member).read()
        json.loads(gzip.decompress(data))["data"]["__schema"]  # a schema, not something else
        (out / f"admin_{v}.json.gz").write_bytes(data)
for stale in out.glob("admin_*.json.gz"):
    if stale.name not in {f"admin_{v}.json.gz" for v in versions}:
        stale.unlink()
manifest = {
    "package": package,
    "version": version,
    "integrity": integrity,
    "versions": sorted(versions),
    "fetched_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
}
(out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
print(f"Shopify Admin schemas {', '.join(sorted(versions))} from {package}@{version} in {out}")
PY
