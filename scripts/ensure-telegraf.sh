#!/usr/bin/env bash
# Bench baseline only: builds Telegraf (mqtt_consumer -> kafka, nothing else) once with Go from the
# Go module proxy into the cache, and prints the binary's path. Exits 1 (saying why on stderr)
# where Go is absent; the bench then reports the Telegraf figure as "not measured".
set -euo pipefail
version=1.36.4
cache="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}/telegraf-$version"
bin="$cache/telegraf"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
go=$(command -v go || true)
[ -n "$go" ] || { [ -x /usr/local/go/bin/go ] && go=/usr/local/go/bin/go; }
[ -n "$go" ] || { echo "ensure-telegraf: no Go toolchain; the Telegraf baseline is not measured" >&2; exit 1; }
mkdir -p "$cache"
export GOPATH="$cache/gopath" GOMODCACHE="$cache/gopath/pkg/mod" GOFLAGS=-mod=mod
echo "ensure-telegraf: building Telegraf $version (mqtt_consumer and kafka only; once, a few minutes)…" >&2
"$go" mod download "github.com/influxdata/telegraf@v$version" >&2
src="$cache/src"
rm -rf "$src"
cp -r "$GOMODCACHE/github.com/influxdata/telegraf@v$version" "$src"
chmod -R u+w "$src"
# A custom build: only the plugins the bench uses, instead of Telegraf's few hundred.
(cd "$src" && "$go" build -tags "custom,inputs.mqtt_consumer,outputs.kafka,parsers.value,serializers.influx" -o "$bin.tmp" ./cmd/telegraf) >&2
mv "$bin.tmp" "$bin"
rm -rf "$src"
echo "$bin"
