#!/usr/bin/env bash
# Peak RSS of the hub at two sizes: it must stay flat in N (streamed pages, batched commits).
set -euo pipefail
cd "$(dirname "$0")/.."
for n in 20000 100000; do
  .venv/bin/orderbridge bench ingest --orders "$n" --no-peer --no-backfill --repeats 1 --json \
    | .venv/bin/python -c "import json,sys; r=json.load(sys.stdin); print(f\"{r['orders']:>7} orders: peak RSS {r['peak_rss_mb']} MB, ingest {r['ingest_orders_per_s']}/s, e2e {r['e2e_orders_per_s']}/s\")"
done
