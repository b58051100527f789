#!/usr/bin/env bash
# Regenerate docs/screenshots/*.png: run the demo, then photograph each main screen of the portal
# over its data (dashboard, inbox, a held order's page, exceptions, mappings, connections, audits)
# with Debian's Chromium. Needs `make setup` (Playwright and the browser are development tools).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/orderbridge demo --orders "${ORDERS:-300}" --screenshots docs/screenshots "$@"
