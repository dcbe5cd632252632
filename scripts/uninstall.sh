#!/usr/bin/env bash
# Removes what scripts/install.sh installed. Run as root:
#
#   sudo scripts/uninstall.sh [--prefix /opt/sluice] [--purge]
#
# Stops and disables the service, removes the unit, PREFIX (default /opt/sluice) and the
# /usr/local/bin/sluice link. KEEPS the journal (/var/lib/sluice: records not yet shipped), the
# config (/etc/sluice) and the sluice user, unless --purge is given, which removes them too.
# Running it again changes nothing. DESTDIR=/some/dir works as for install.sh.
set -euo pipefail

prefix=/opt/sluice
purge=no
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --purge) purge=yes; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "uninstall.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "uninstall.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
root=${DESTDIR:-}
root=${root%/}
say() { echo "uninstall.sh: $*"; }
if [ "$(id -u)" != 0 ]; then
  echo "uninstall.sh: run as root (sudo $0)" >&2
  exit 1
fi

unit="$root/etc/systemd/system/sluice.service"
if [ -n "$root" ]; then
  if [ -f "$unit" ] && command -v systemctl >/dev/null 2>&1; then systemctl --root="$root" --quiet disable sluice.service 2>/dev/null || true; fi
elif [ -d /run/systemd/system ]; then
  systemctl --quiet disable --now sluice.service 2>/dev/null || true
elif [ -f "$unit" ]; then
  systemctl --quiet disable sluice.service 2>/dev/null || true
fi
# Whatever systemctl left (an enablement link made by hand, for instance).
rm -f "$root/etc/systemd/system/multi-user.target.wants/sluice.service"
if [ -f "$unit" ]; then
  rm -f "$unit"
  say "removed the unit"
  if [ -z "$root" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
fi

if [ "$(readlink "$root/usr/local/bin/sluice" 2>/dev/null)" = "$prefix/dist/src/main.js" ]; then
  rm -f "$root/usr/local/bin/sluice"
  say "removed /usr/local/bin/sluice"
fi
if [ -d "$root$prefix" ] || [ -d "$root$prefix.new" ]; then
  rm -rf "$root$prefix" "$root$prefix.new"
  say "removed $prefix"
fi

if [ "$purge" = yes ]; then
  if [ -d "$root/var/lib/sluice" ]; then rm -rf "$root/var/lib/sluice"; say "purged the journal (/var/lib/sluice)"; fi
  if [ -d "$root/etc/sluice" ]; then rm -rf "$root/etc/sluice"; say "purged the config (/etc/sluice)"; fi
  if grep -q '^sluice:' "$root/etc/passwd" 2>/dev/null; then
    userdel ${root:+--prefix "$root"} sluice
    say "removed the sluice user"
  fi
  if grep -q '^sluice:' "$root/etc/group" 2>/dev/null; then groupdel ${root:+--prefix "$root"} sluice; fi
else
  [ -d "$root/var/lib/sluice" ] && say "kept the journal in /var/lib/sluice (remove it with --purge)"
  [ -d "$root/etc/sluice" ] && say "kept the config in /etc/sluice (remove it with --purge)"
fi
exit 0
