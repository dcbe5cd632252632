#!/usr/bin/env bash
# Installs what the tests and benchmarks need and the project does not ship: Debian's mosquitto,
# kcat, socat, systemd's tools (and systemd-nspawn, debootstrap), python3, and Apache Kafka's broker jars (cached). Idempotent; quick when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v socat >/dev/null 2>&1 || missing+=(socat)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
# systemd-analyze (unit checks) and systemd-notify (sd_notify) come with Debian's systemd package;
# python3 listens on the test's stand-in for NOTIFY_SOCKET (Node has no Unix datagram sockets).
{ command -v systemd-analyze >/dev/null 2>&1 && command -v systemd-notify >/dev/null 2>&1; } || missing+=(systemd)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# useradd --prefix (install test into a temporary root) needs shadow 4.9 or later: Debian 12 has it.
command -v useradd >/dev/null 2>&1 || missing+=(passwd)
# The systemd test boots a Debian root (scripts/debian-tree.sh) with systemd-nspawn.
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null 2>&1 || missing+=(systemd-container)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "ensure-test-deps: missing ${missing[*]}; install them (sudo apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
  echo "ensure-test-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

bash scripts/fetch-kafka.sh >/dev/null

# pymodbus (PyPI), the Modbus server the Modbus tests poll: a pinned version in a venv in the cache.
bash scripts/ensure-pymodbus.sh >/dev/null
