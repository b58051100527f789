#!/usr/bin/env bash
# Install the browser the browser tests (tests/browser) drive: Debian's own `chromium` package, via
# apt-get — never a browser downloaded by Playwright (`playwright install` is not used anywhere).
# Run by `make setup`. Does nothing when /usr/bin/chromium is already there. When it cannot install
# (no apt-get, not root and no passwordless sudo), it prints the command to run and exits 0: the
# browser tests then skip with that reason locally, and fail under CI=true (tests/browser/conftest.py).
set -euo pipefail
CHROMIUM="${ORDERBRIDGE_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
WANT="apt-get update && apt-get install -y --no-install-recommends chromium fonts-liberation"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    as_root=(none)
  fi
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "${as_root[0]:-}" = "none" ]; then
  echo "note: Chromium is not installed at $CHROMIUM and this script cannot install it here" >&2
  echo "      (needs apt-get and root). To run the browser tests, run as root:" >&2
  echo "        $WANT" >&2
  echo "      (elsewhere: install Chromium and set ORDERBRIDGE_CHROMIUM to its path)." >&2
  echo "      Without it the browser tests skip; under CI=true they fail." >&2
  exit 0
fi
echo "installing Debian's chromium (apt-get)…"
export DEBIAN_FRONTEND=noninteractive
# another apt run (a second setup, unattended upgrades) holds the lock: wait for it, do not fail
LOCK=(-o DPkg::Lock::Timeout=600)
"${as_root[@]}" apt-get "${LOCK[@]}" update -qq
"${as_root[@]}" apt-get "${LOCK[@]}" install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
"$CHROMIUM" --version
