# Sourced by the scripts: lets node-gyp build native modules (better-sqlite3, serialport) against
# the installed Node headers when no prebuilt binary can be downloaded.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
  export npm_config_nodedir=/usr
fi

# Installs the npm dependencies when they are missing or older than the lock file.
ensure_node_modules() {
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "installing npm dependencies (npm ci)…" >&2
    npm ci --no-audit --no-fund >&2
  fi
}
