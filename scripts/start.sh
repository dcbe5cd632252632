#!/usr/bin/env bash
# Installs sluice's dependencies, builds it, and runs the daemon in the foreground on
# config.example.toml (journal in ./data). With no MQTT broker and no Kafka it waits and keeps
# running; Ctrl-C stops it cleanly. Pass another config with: npm start -- -c FILE
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/npm-env.sh
use_supported_node
ensure_node_modules
ensure_native_build
npm run --silent build
config=config.example.toml
if [ "${1:-}" = "-c" ] && [ -n "${2:-}" ]; then config=$2; fi
exec node dist/src/main.js run -c "$config"
