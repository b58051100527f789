#!/usr/bin/env bash
# Make sure the local PostgreSQL the test suite uses is up. Under CI=true the PostgreSQL tests must
# run, so a stopped server is started; elsewhere a missing server only means those tests skip.
set -euo pipefail
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  exit 0
fi
if [ "${CI:-}" = "true" ] || [ "${ORDERBRIDGE_START_PG:-}" = "1" ]; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL…"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do
      pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
      sleep 1
    done
  fi
  echo "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started" >&2
  exit 1
fi
echo "note: PostgreSQL not reachable; its tests will be skipped (they are required under CI=true)"
