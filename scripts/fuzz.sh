#!/usr/bin/env bash
# Runs every fuzz target of the module (go test -fuzz) for a bounded time
# each: FUZZ_TIME per target (default 10s; any -fuzztime value, e.g. 30s
# or 5000x). Targets are found by name (func FuzzXxx in a _test.go file),
# so a new one runs without touching this script.
#
# The checked-in seed corpora (<package>/testdata/fuzz/FuzzXxx/) also run
# in every plain `go test ./...`. When fuzzing finds a failure, go test
# writes the input into that folder and this script fails: fix the bug and
# commit the file, so that it stays a regression test.
#
#   scripts/fuzz.sh                 # every target, 10 s each
#   FUZZ_TIME=2m scripts/fuzz.sh    # longer
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.26.10}"
fuzz_time="${FUZZ_TIME:-10s}"

n=0
while IFS=: read -r file name; do
  pkg="./$(dirname "$file")"
  printf '== fuzz %s %s for %s\n' "$pkg" "$name" "$fuzz_time"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzz_time" "$pkg"
  n=$((n + 1))
done < <(grep -rEo --include='*_test.go' --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]+' . |
  sed -E 's#^\./##; s#:func #:#' | sort)

if [ "$n" -eq 0 ]; then
  echo "FAIL: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz: $n targets, $fuzz_time each, no failure"
