#!/usr/bin/env bash
# Grades a live Rampart server with the MDN HTTP Observatory's own scanner
# and grader (npm package @mdn/mdn-http-observatory, pinned in
# scripts/observatory/package-lock.json) and fails when the grade or any
# test's score drops below the best a JSON API can get (issue 3, item 4).
# .ci/run calls it after the Go tests; it works the same by hand:
#
#   scripts/observatory.sh
#
# It installs the scanner with `npm ci` from the lockfile, builds the server,
# starts it on 127.0.0.1 with a fresh data folder (so a fresh development CA
# and certificate), scans https://127.0.0.1:PORT/ with that CA trusted
# through NODE_EXTRA_CA_CERTS (verification stays on), and stops the server.
# OBSERVATORY_PORT picks the port (default: a free one).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "observatory: FAIL: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || fail "node is not installed (Node.js 20 or later)"
command -v npm >/dev/null 2>&1 || fail "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node.js $(node --version) is too old: the scanner needs 20 or later"

# Install scripts stay off (also in scripts/observatory/.npmrc): the
# scanner's would download the HSTS preload list from outside the registry
# and build libpq, neither of which a scan needs.
echo "observatory: npm ci (scripts/observatory)"
(cd scripts/observatory && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "observatory: go build"
go build -o "$work/rampart" .

port=${OBSERVATORY_PORT:-$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')}

# Only the variables set here reach the server: no APP_* of the caller's
# shell changes what is graded. Development mode makes its own CA and
# certificate under the data folder; the metrics listener stays off.
mkdir -p "$work/data"
env $(compgen -e | grep '^APP_' | sed 's/^/-u /') \
  APP_ENV=development \
  APP_ADDR="127.0.0.1:$port" \
  APP_DATA_DIR="$work/data" \
  APP_METRICS_ADDR=off \
  "$work/rampart" >"$work/server.log" 2>&1 &
server_pid=$!

ready=
for _ in $(seq 150); do
  if grep -q '"msg":"listening"' "$work/server.log" 2>/dev/null; then ready=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$ready" ]; then
  cat "$work/server.log" >&2
  fail "the server did not start on 127.0.0.1:$port"
fi
ca="$work/data/tls/dev-ca.pem"
[ -f "$ca" ] || fail "the server made no development CA at $ca"

echo "observatory: scanning https://127.0.0.1:$port/"
status=0
NODE_EXTRA_CA_CERTS="$ca" node scripts/observatory/scan.js "127.0.0.1:$port" || status=$?
if [ "$status" -ne 0 ]; then
  echo "observatory: server log:" >&2
  tail -n 20 "$work/server.log" >&2
fi
exit "$status"
