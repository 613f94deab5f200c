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

# One run of a target. Go 1.26's fuzz coordinator can report its own
# -fuzztime deadline as a failure ("context deadline exceeded", no failing
# input written) when a worker is mid-run as time is up: a race in
# internal/fuzz (go.dev/issue/75804, fixed in Go 1.27), frequent on a busy
# two-core machine. That signature, and only it, earns one more run; a real
# failure always writes its input under testdata/fuzz/ and fails at once.
fuzz_once() { # pkg name -> 0 passed, 1 failed, 2 the coordinator's deadline race
  local pkg=$1 name=$2 out corpus before after rc=0
  corpus="$pkg/testdata/fuzz/$name"
  before=$(ls "$corpus" 2>/dev/null | sort || true)
  out=$(mktemp)
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzz_time" "$pkg" 2>&1 | tee "$out" || rc=$?
  after=$(ls "$corpus" 2>/dev/null | sort || true)
  if [ "$rc" -ne 0 ] && [ "$before" = "$after" ] &&
    grep -q -- "^--- FAIL: ${name} " "$out" && grep -qx '    context deadline exceeded' "$out" &&
    ! grep -q 'Failing input written' "$out"; then
    rc=2
  fi
  rm -f "$out"
  return "$rc"
}

n=0
while IFS=: read -r file name; do
  pkg="./$(dirname "$file")"
  printf '== fuzz %s %s for %s\n' "$pkg" "$name" "$fuzz_time"
  rc=0
  fuzz_once "$pkg" "$name" || rc=$?
  if [ "$rc" -eq 2 ]; then
    echo "fuzz: $name: the fuzz coordinator's deadline race (go.dev/issue/75804; no failing input), running it once more"
    rc=0
    fuzz_once "$pkg" "$name" || rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: fuzz $pkg $name" >&2
    exit 1
  fi
  n=$((n + 1))
done < <(grep -rEo --include='*_test.go' --exclude-dir=testdata '^func Fuzz[A-Za-z0-9_]+' . |
  sed -E 's#^\./##; s#:func #:#' | sort)

if [ "$n" -eq 0 ]; then
  echo "FAIL: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz: $n targets, $fuzz_time each, no failure"
