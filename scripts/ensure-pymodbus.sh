#!/usr/bin/env bash
# Installs pymodbus (pinned) and pyserial into a venv under the cache dir; prints the venv's python.
# Idempotent: quick when the venv is there. The Modbus tests run test/helpers/modbus-server.py with it.
set -euo pipefail
PYMODBUS_VERSION=3.16.1
PYSERIAL_VERSION=3.5
cache="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
venv="$cache/pymodbus-$PYMODBUS_VERSION"
if ! "$venv/bin/python" -c "import pymodbus, serial, sys; sys.exit(pymodbus.__version__ != '$PYMODBUS_VERSION')" >/dev/null 2>&1; then
  mkdir -p "$cache"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 ships venv separately.
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$venv"
      python3 -m venv "$venv"
    else
      echo "ensure-pymodbus: python3 -m venv failed; install python3-venv" >&2
      exit 1
    fi
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "pymodbus==$PYMODBUS_VERSION" "pyserial==$PYSERIAL_VERSION" >&2
fi
echo "$venv/bin/python"
