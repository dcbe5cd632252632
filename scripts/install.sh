#!/usr/bin/env bash
# Installs sluice as a systemd service. Run from a checkout (or unpacked release) as root:
#
#   sudo scripts/install.sh [--prefix /opt/sluice] [--start]
#
# What it does (each step only if needed, so running it again changes nothing, and running it
# after `git pull` upgrades the code and restarts a running service):
#   - builds sluice if dist/ is missing (npm ci, tsc);
#   - copies it to PREFIX (default /opt/sluice) with production dependencies only, owned by root;
#   - creates the system user and group "sluice" (no login, home /var/lib/sluice);
#   - creates /etc/sluice (root:sluice 0750) and /var/lib/sluice (sluice:sluice 0750, the journal);
#   - copies config.example.toml to /etc/sluice/sluice.toml (root:sluice 0640) ONLY if none exists,
#     with the journal in /var/lib/sluice;
#   - installs the unit as /etc/systemd/system/sluice.service (0644) and enables it;
#   - links /usr/local/bin/sluice to the CLI, for `sluice status`.
# It does not start sluice unless --start is given: edit /etc/sluice/sluice.toml first.
#
# DESTDIR=/some/dir installs into that directory as if it were / (for packaging and tests):
# users are added to DESTDIR/etc/passwd and /etc/group (which must exist), the unit is enabled
# with `systemctl --root`, and nothing on the running system is touched.
set -euo pipefail

prefix=/opt/sluice
start=no
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --start) start=yes; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac

root=${DESTDIR:-}
root=${root%/}
src=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "install.sh: $*"; }

if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (sudo $0)" >&2
  exit 1
fi

node_bin=$(command -v node || true)
if [ -z "$node_bin" ]; then
  echo "install.sh: Node.js is not installed; install Node.js 24 (or 22) first (see the README)" >&2
  exit 1
fi
node_bin=$(readlink -f "$node_bin")
node_major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 22 ]; then
  # Node 20 is end of life, and better-sqlite3 13 (N-API 10) crashes it (SIGSEGV) on first use.
  echo "install.sh: Node.js $("$node_bin" --version) ($node_bin) is too old; sluice needs Node.js 22 or later (24 recommended; see the README)" >&2
  exit 1
fi

# 1. Build, if this checkout has not been built; the native modules must load on $node_bin,
#    the Node the service runs on.
cd "$src"
PATH="$(dirname "$node_bin"):$PATH"
hash -r
. scripts/npm-env.sh
set_nodedir
if [ ! -f dist/src/main.js ]; then
  say "building sluice (npm ci, tsc)"
  ensure_node_modules
  npm run --silent build
fi
ensure_native_build

# 2. The code: staged beside PREFIX, then swapped in whole.
dest="$root$prefix"
stage="$dest.new"
rm -rf "$stage"
mkdir -p "$stage/dist"
cp -R dist/src "$stage/dist/src"
cp package.json package-lock.json README.md config.example.toml "$stage/"
cp -R systemd "$stage/systemd"
cp -R node_modules "$stage/node_modules"
(cd "$stage" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
chown -R 0:0 "$stage"
chmod -R u=rwX,go=rX "$stage"
chmod 0755 "$stage/dist/src/main.js"
changed_code=yes
if [ -d "$dest" ] && diff -r -q "$dest" "$stage" >/dev/null 2>&1; then
  changed_code=no
  rm -rf "$stage"
else
  rm -rf "$dest"
  mv "$stage" "$dest"
  say "installed sluice $("$node_bin" -p "require('$dest/package.json').version") in $dest"
fi

# 3. The user and group.
if [ -n "$root" ] && { [ ! -f "$root/etc/passwd" ] || [ ! -f "$root/etc/group" ]; }; then
  echo "install.sh: DESTDIR=$root needs etc/passwd and etc/group to add the sluice user to" >&2
  exit 1
fi
if ! grep -q '^sluice:' "$root/etc/passwd"; then
  useradd ${root:+--prefix "$root"} --system --user-group --home-dir /var/lib/sluice --no-create-home --shell /usr/sbin/nologin --comment "sluice gateway" sluice
  say "created system user sluice"
fi
uid=$(awk -F: '$1 == "sluice" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "sluice" { print $3 }' "$root/etc/group")

# 4. Directories: config readable by the service, journal writable only by it.
install -d -m 0750 -o 0 -g "$gid" "$root/etc/sluice"
install -d -m 0750 -o "$uid" -g "$gid" "$root/var/lib/sluice"

# 5. The config: never overwritten.
config="$root/etc/sluice/sluice.toml"
if [ ! -e "$config" ]; then
  tmp=$(mktemp)
  sed 's|^path = "data/journal.db"$|path = "/var/lib/sluice/journal.db"|' config.example.toml > "$tmp"
  grep -q '^path = "/var/lib/sluice/journal.db"$' "$tmp" || { echo "install.sh: could not set the journal path in the example config" >&2; rm -f "$tmp"; exit 1; }
  install -m 0640 -o 0 -g "$gid" "$tmp" "$config"
  rm -f "$tmp"
  say "wrote /etc/sluice/sluice.toml from the example: edit it (MQTT broker, Kafka brokers, routes)"
else
  say "kept the existing /etc/sluice/sluice.toml"
fi

# 6. The unit, with this machine's node and prefix.
unit="$root/etc/systemd/system/sluice.service"
tmp=$(mktemp)
sed -e "s|^ExecStart=/usr/bin/node /opt/sluice/|ExecStart=$node_bin $prefix/|" -e "s|file:/opt/sluice/|file:$prefix/|" systemd/sluice.service > "$tmp"
changed_unit=yes
if [ -f "$unit" ] && cmp -s "$tmp" "$unit"; then changed_unit=no; fi
install -d -m 0755 "$root/etc/systemd/system"
[ "$changed_unit" = yes ] && install -m 0644 -o 0 -g 0 "$tmp" "$unit" && say "installed $unit"
rm -f "$tmp"

# 7. The command.
install -d -m 0755 "$root/usr/local/bin"
if [ "$(readlink "$root/usr/local/bin/sluice" 2>/dev/null)" != "$prefix/dist/src/main.js" ]; then
  ln -sfn "$prefix/dist/src/main.js" "$root/usr/local/bin/sluice"
  say "linked /usr/local/bin/sluice"
fi

# 8. Enable (and restart after an upgrade, or start when asked).
if [ -n "$root" ]; then
  if command -v systemctl >/dev/null 2>&1; then systemctl --root="$root" --quiet enable sluice.service 2>/dev/null; fi
elif [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl --quiet enable sluice.service
  if systemctl --quiet is-active sluice.service; then
    if [ "$changed_code" = yes ] || [ "$changed_unit" = yes ]; then systemctl restart sluice.service && say "restarted sluice"; fi
  elif [ "$start" = yes ]; then
    systemctl start sluice.service && say "started sluice"
  fi
else
  systemctl --quiet enable sluice.service 2>/dev/null || say "systemd is not running here: enable sluice.service yourself"
fi

if [ -z "$root" ] && [ "$start" != yes ]; then
  cat <<EOF
install.sh: done. Next:
  sudo nano /etc/sluice/sluice.toml          # MQTT broker, Kafka brokers, routes
  sudo -u sluice sluice check-config -c /etc/sluice/sluice.toml
  sudo systemctl start sluice
  sluice status
EOF
fi
