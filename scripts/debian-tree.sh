#!/usr/bin/env bash
# Builds (once) a minimal Debian 12 "bookworm" root for the systemd test to boot with
# systemd-nspawn; prints its directory. Cached beside Kafka's jars, under a name that changes with
# the package list, so changing the list builds a new tree. The test never boots this tree
# itself: it boots a copy. Packages come from the Debian mirror apt already uses here.
#
# The list is what a bare Debian needs for the README's "Install on a Raspberry Pi" (Raspberry Pi
# OS has all of it already): systemd and dbus to run the service, sudo for the README's
# commands, python3 and ca-certificates because NodeSource's nodejs package depends on them, and
# socat for the test's stand-in serial port. Node itself (22 or 24) is the one running the test,
# bound in by the test (no mirror here carries NodeSource's packages).
set -euo pipefail
packages=systemd,systemd-sysv,dbus,sudo,python3,ca-certificates,socat
version="bookworm-minbase-1-$(echo "$packages" | md5sum | cut -c1-8)"
cache="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
tree="$cache/debian-$version"
if [ ! -f "$tree/.complete" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "debian-tree: building $tree needs root (debootstrap)" >&2
    exit 1
  fi
  # The mirror apt uses on this machine (deb822 or one-line sources), else Debian's own.
  mirror=$(grep -hoE '^URIs: *https?://[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | sed 's/^URIs: *//' || true)
  [ -n "$mirror" ] || mirror=$(grep -hoE '^deb +https?://[^ ]+/debian/? +bookworm' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}' || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  rm -rf "$tree" "$tree.partial"
  mkdir -p "$cache"
  echo "debian-tree: debootstrap bookworm ($packages) from $mirror into $tree" >&2
  debootstrap --variant=minbase --include="$packages" bookworm "$tree.partial" "$mirror" >"$cache/debian-$version.log" 2>&1 || {
    echo "debian-tree: debootstrap failed; the last lines of $cache/debian-$version.log:" >&2
    tail -20 "$cache/debian-$version.log" >&2
    exit 1
  }
  # Smaller copies per run: no package lists or downloaded .debs.
  rm -rf "$tree.partial"/var/cache/apt/archives/*.deb "$tree.partial"/var/lib/apt/lists/*_Packages
  mv "$tree.partial" "$tree"
  touch "$tree/.complete"
fi
echo "$tree"
