#!/usr/bin/env bash
# npm run bench [-- --smoke]: provisions Mosquitto and Kafka as the tests do, runs the scenarios
# against their raw baselines, writes BENCHMARKS.md and a JSON file (path printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/npm-env.sh
use_supported_node
bash scripts/ensure-test-deps.sh
ensure_node_modules
ensure_native_build
npm run --silent build
# Telegraf, the through-the-bridge baseline, is built once where Go is present (not for --smoke).
case " $* " in
  *" --smoke "*) ;;
  *) SLUICE_TELEGRAF=$(bash scripts/ensure-telegraf.sh) || SLUICE_TELEGRAF=; export SLUICE_TELEGRAF ;;
esac
exec node dist/scripts/bench/main.js "$@"
