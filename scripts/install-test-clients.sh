#!/usr/bin/env bash
# Install the independently written clients (Shopify's, Square's official SDK) the sandbox is tested with, each in a venv of its
# own under .venv/clients/ (their pins — tap-shopify pins graphql-core 3.2.6 and requests — must not
# move the hub's own dependencies). tests/sandboxes/test_shopify_real_clients.py runs them unchanged.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
CLIENTS="$ROOT/.venv/clients"
# name, pip requirement (pinned: docs/connectors/shopify.md lists the versions tried)
install() {
  local name="$1" requirement="$2"
  if [ ! -x "$CLIENTS/$name/bin/python" ]; then
    "$PYTHON" -m venv "$CLIENTS/$name"
  fi
  "$CLIENTS/$name/bin/pip" install --quiet --disable-pip-version-check "$requirement"
  "$CLIENTS/$name/bin/pip" freeze --disable-pip-version-check > "$CLIENTS/$name/versions.txt"
}
install tap-shopify "tap-shopify==3.13.0"
# Square's official SDK (tests/sandboxes/test_square_official_client.py reads back what the hub created)
install squareup "squareup==46.0.0.20260916"
touch "$CLIENTS/.installed"
