#!/usr/bin/env bash
# The whole test suite: unit, integration (real Mosquitto, real Kafka) and end-to-end (the
# daemon as a process), on both supported Node.js LTS lines: everything on Node 24, then unit and
# integration on Node 22 (the end-to-end files exercise the same Node APIs at ten times the
# cost). A failure on either fails the run. Installs what it needs first (Node 22 and 24 as
# scripts/npm-env.sh chooses them).
#
# Arguments go to `node --test`, except test files (test/…/x.test.ts or dist/test/…/x.test.js),
# which replace the file list: `npm test -- test/unit/backoff.test.ts`. SLUICE_TEST_NODES="24"
# runs one pass only (development; CI runs both).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/npm-env.sh
bash scripts/ensure-test-deps.sh
use_node 24
ensure_node_modules
npm run --silent build
echo "# set-up (test tools, Node, npm ci, build): $SECONDS s"

args=()
picked=()
for a in "$@"; do
  case "$a" in
    *.test.ts | *.test.js)
      f=${a#./}
      f=${f#dist/}
      f=dist/${f%.ts}
      f=${f%.js}.js
      [ -f "$f" ] || { echo "test.sh: no test file $f" >&2; exit 2; }
      picked+=("$f")
      ;;
    *) args+=("$a") ;;
  esac
done
shopt -s nullglob
if [ ${#picked[@]} -gt 0 ]; then
  all=("${picked[@]}")
else
  all=(dist/test/unit/*.test.js dist/test/integration/*.test.js dist/test/e2e/*.test.js)
fi
short=()
for f in "${all[@]}"; do
  case "$f" in dist/test/unit/* | dist/test/integration/*) short+=("$f") ;; esac
done

failed=()
summary=$(mktemp "${TMPDIR:-/tmp}/sluice-test-failed.XXXXXX")
trap 'rm -f "$summary"' EXIT
for major in ${SLUICE_TEST_NODES:-24 22}; do
  if [ "$major" = 24 ]; then files=("${all[@]}"); else files=("${short[@]}"); fi
  [ ${#files[@]} -gt 0 ] || { echo "# Node $major: no unit or integration file picked, pass skipped"; continue; }
  use_node "$major"
  ensure_native_build
  echo "# Node $(node --version) ($(command -v node)): ${#files[@]} test file(s)"
  start=$SECONDS
  # One file at a time: each integration file starts its own brokers, and the machine has 2 cores.
  # --test-force-exit: a file's process exits once its tests and hooks are done. Under Node 24 one
  # (hung-kafka) once finished every test and then spun at 100% CPU for ten minutes inside Node's
  # own exit (Environment::CleanupHandles waiting on a request that never completed, seen with gdb);
  # the suite must not hang on that.
  # The output is kept so that a failure is summed up at the end, where a CI log's tail shows it.
  log=$(mktemp "${TMPDIR:-/tmp}/sluice-test-$major.XXXXXX")
  if node --test --test-force-exit --test-concurrency=1 --test-reporter=spec ${args[@]+"${args[@]}"} "${files[@]}" 2>&1 | tee "$log"; then
    echo "# Node $(node --version): passed in $((SECONDS - start)) s"
  else
    echo "# Node $(node --version): FAILED after $((SECONDS - start)) s"
    # The spec reporter's own list of failures, kept to be printed once more at the very end.
    { echo "# what failed on Node $(node --version):"; sed -n '/failing tests:/,$p' "$log" | head -400; } >>"$summary"
    failed+=("$(node --version)")
  fi
  rm -f "$log"
done
if [ ${#failed[@]} -gt 0 ]; then
  cat "$summary"
  echo "# failed on Node ${failed[*]}" >&2
  exit 1
fi
