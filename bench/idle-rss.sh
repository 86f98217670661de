#!/usr/bin/env bash
# Start-up cost of `bouncer serve` from the compiled build (dist/): how long until it listens, and its
# resident memory 2 s later, idle; 3 runs. `npm run build` first. Usage: bash bench/idle-rss.sh [config]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-examples/gateway-core/bouncer.yaml}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for run in 1 2 3; do
  started=$(date +%s%N)
  NODE_OPTIONS=--max-semi-space-size=16 BOUNCER_ADMIN_TOKEN=bench REPORTS_API_KEY=bench \
    node_modules/.bin/node --no-experimental-strip-types bin/bouncer.js serve --config "$config" --port 0 --admin-port 0 >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do grep -q 'gateway listening' "$log" && break; sleep 0.025; done
  ready=$(( ($(date +%s%N) - started) / 1000000 ))
  sleep 2
  echo "run $run: listening after ${ready} ms, idle RSS $(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' /proc/$pid/status) MB"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
