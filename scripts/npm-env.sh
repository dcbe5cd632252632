# Sourced by the scripts (from the checkout's root): chooses the Node.js that runs sluice and its
# tests, and keeps the native modules built for it.
#
# sluice supports the Node.js LTS lines 22 and 24. A `node` on PATH of one of those is used as it
# is; an older one (Node 20 is end of life) is bypassed by the pinned Node 24 that
# scripts/ensure-node.sh fetches once into .cache/node/.
sluice_base_path=${sluice_base_path:-$PATH}

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Lets node-gyp build native modules (better-sqlite3) against the running Node's own headers
# when no prebuilt binary can be downloaded: PREFIX/include/node beside PREFIX/bin/node (NodeSource's
# /usr, the cache's Node, nvm's), if they are that Node's version; else node-gyp fetches them.
set_nodedir() {
  unset npm_config_nodedir
  local v prefix h
  v=$(node -p 'process.version' 2>/dev/null) || return 0
  prefix=$(node -p 'require("path").dirname(require("path").dirname(require("fs").realpathSync(process.execPath)))')
  h=$prefix/include/node/node_version.h
  if [ -f "$h" ] && [ "$(awk '/^#define NODE_(MAJOR|MINOR|PATCH)_VERSION /{printf "%s%s", sep, $3; sep="."}' "$h")" = "${v#v}" ]; then
    export npm_config_nodedir=$prefix
  fi
}

# use_node MAJOR: the `node` (and the Node npm runs on) is Node MAJOR from here on: the one on
# PATH if it is that major, else the pinned one from the cache.
use_node() {
  PATH=$sluice_base_path
  if [ "$(node_major)" != "$1" ]; then
    PATH="$(bash scripts/ensure-node.sh "$1")/bin:$sluice_base_path"
  fi
  export PATH
  hash -r
  set_nodedir
}

# use_supported_node: the `node` on PATH if it is 22 or later, else the pinned Node 24.
use_supported_node() {
  PATH=$sluice_base_path
  if [ "$(node_major)" -ge 22 ]; then
    export PATH
    hash -r
    set_nodedir
  else
    use_node 24
  fi
}

# Installs the npm dependencies when they are missing or older than the lock file.
ensure_node_modules() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "installing npm dependencies (npm ci, Node $(node --version))…" >&2
    npm ci --no-audit --no-fund >&2
  fi
}

# Every native module sluice uses is built on N-API, so one binary loads on Node 22 and 24 alike:
# better-sqlite3 13 (node-addon-api, NAPI_VERSION 10) and @serialport/bindings-cpp, lz4-napi and
# snappy ship prebuilt N-API binaries inside their npm packages. Where better-sqlite3's prebuilt
# one does not load (an older glibc than 2.34, another architecture), it is compiled once with
# node-gyp (against npm_config_nodedir) and the result kept in .cache/native/, so a fresh
# `npm ci` does not compile it again.
ensure_native_build() {
  local pkg=node_modules/better-sqlite3
  local target=$pkg/build/Release/better_sqlite3.node
  local loads="new (require('better-sqlite3'))(':memory:').close()"
  local version cached
  version=$(node -p "require('./$pkg/package.json').version")
  cached=.cache/native/better-sqlite3-$version-napi-$(uname -m).node
  node -e "$loads" 2>/dev/null && return 0
  if [ -f "$cached" ] && ! cmp -s "$cached" "$target"; then
    mkdir -p "$(dirname "$target")"
    cp "$cached" "$target.tmp" && mv "$target.tmp" "$target"
    node -e "$loads" 2>/dev/null && return 0
  fi
  echo "compiling better-sqlite3 $version for Node $(node --version) (its prebuilt binary does not load here)…" >&2
  (cd "$pkg" && npm run --silent build-release) >&2
  node -e "$loads"
  # Best effort: a read-only checkout still runs, it just cannot cache.
  { mkdir -p .cache/native && cp "$target" "$cached.tmp" && mv "$cached.tmp" "$cached"; } 2>/dev/null || rm -f "$cached.tmp" 2>/dev/null || true
}
