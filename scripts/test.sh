#!/usr/bin/env bash
# The whole test suite: unit, integration (real Mosquitto, real Kafka) and end-to-end (the
# daemon as a process). Installs what it needs first. Extra arguments go to `node --test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/npm-env.sh
bash scripts/ensure-test-deps.sh
ensure_node_modules
npm run --silent build
shopt -s nullglob
files=(dist/test/unit/*.test.js dist/test/integration/*.test.js dist/test/e2e/*.test.js)
# One file at a time: each integration file starts its own brokers, and the machine has 2 cores.
exec node --test --test-concurrency=1 "$@" "${files[@]}"
