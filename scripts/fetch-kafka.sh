#!/usr/bin/env bash
# Fetches Apache Kafka's jars with Maven into a cache; prints the directory holding them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${SLUICE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice}"
libs="$cache/kafka-3.9.1/libs"
if [ ! -f "$libs/.complete" ]; then
  mkdir -p "$libs"
  echo "fetch-kafka: fetching Apache Kafka 3.9.1 jars from Maven Central into $libs" >&2
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
fi
echo "$libs"
