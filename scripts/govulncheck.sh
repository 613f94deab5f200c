#!/usr/bin/env bash
# govulncheck against an offline vulnerability database built from the
# golang.org/x/vulndb module's data. Only the Go module proxy is needed
# (to fetch vulndb, gendb and govulncheck once); the scan itself reads
# nothing from the network.
#
# How the database is built (what this script does; by hand, the same):
#   1. go mod download -json golang.org/x/vulndb@$VULNDB_VERSION
#      The module zip holds data/osv/GO-YYYY-NNNN.json: one OSV entry per
#      advisory, the files of the vulndb repository.
#   2. cmd/gendb reads a git checkout: the entries of HEAD's data/osv, and
#      each entry's published and modified dates from the commits that
#      touched it. So data/osv is copied into a temporary folder, which
#      becomes a one-commit git repository dated at the module version's
#      time.
#   3. go run golang.org/x/vulndb/cmd/gendb@$VULNDB_VERSION -repo DIR -out DB
#      writes the database (DB/index/*.json, DB/ID/*.json) that govulncheck
#      reads with -db file://DB. It is kept in VULNDB_DIR for the next run.
#   4. go run golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION \
#        -db file://DB -show traces ./...
#      Symbol-level call analysis from this module's packages.
#
# The scan fails when govulncheck finds a vulnerability the code reaches,
# unless the advisory is in ACCEPTED below with its reason. The two
# accepted ones name all of echo v4 (no symbols, so govulncheck reports
# every echo call as reaching them) and are fixed only in echo v5; why
# they do not expose this project, and the tests that prove it, are in
# SECURITY.md ("echo v4 advisories").
#
#   scripts/govulncheck.sh                         # the pinned database
#   VULNDB_VERSION=latest scripts/govulncheck.sh   # the newest published data
#
# Bump VULNDB_VERSION (go list -m golang.org/x/vulndb@latest) regularly:
# the pin keeps CI reproducible, so it also keeps new advisories out.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN="${GOTOOLCHAIN:-go1.26.10}"

VULNDB_VERSION="${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}"
GOVULNCHECK_VERSION=v1.9.0 # golang.org/x/vuln

# Advisories the code reaches by govulncheck's analysis that are accepted,
# each with the reason (details in SECURITY.md).
declare -A ACCEPTED=(
  [GO-2026-6875]="echo v4 Proxy middleware forwards X-Real-IP: the project never uses Proxy, Secure, MethodOverride, Static, JSONP or Context.Scheme (TestEchoAdvisorySymbolsUnused, TestEchoAdvisoriesNotExposed)"
  [GO-2026-6872]="echo v4 RealIP trusts X-Forwarded-For/X-Real-IP by default: every echo instance has an IPExtractor trusting only APP_TRUSTED_PROXIES, and echo's RateLimiter is not used (TestEchoAdvisoriesNotExposed, TestClientIPWithoutTrustedProxies, TestRateLimitPerIP)"
)

if [ "$VULNDB_VERSION" = latest ]; then
  VULNDB_VERSION=$(go list -m -f '{{.Version}}' golang.org/x/vulndb@latest)
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/rampart"
db="${VULNDB_DIR:-$cache/vulndb-$VULNDB_VERSION}"

if [ ! -f "$db/index/db.json" ]; then
  echo "== building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION"
  src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src/data/osv" ] || { echo "FAIL: no data/osv in $src" >&2; exit 1; }
  # The commit date: the pseudo-version's timestamp (yyyymmddhhmmss).
  stamp=$(printf '%s' "$VULNDB_VERSION" | sed -E 's/.*-([0-9]{14})-[0-9a-f]+$/\1/')
  date="${stamp:0:4}-${stamp:4:2}-${stamp:6:2}T${stamp:8:2}:${stamp:10:2}:${stamp:12:2}Z"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/repo/data"
  cp -R "$src/data/osv" "$work/repo/data/osv"
  chmod -R u+w "$work/repo"
  git -C "$work/repo" init -q
  git -C "$work/repo" add data
  GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
    git -C "$work/repo" -c user.name=vulndb -c user.email=vulndb@localhost -c commit.gpgsign=false \
    commit -q -m "golang.org/x/vulndb@$VULNDB_VERSION data/osv"
  mkdir -p "$(dirname "$db")"
  rm -rf "$db.tmp"
  go run "golang.org/x/vulndb/cmd/gendb@$VULNDB_VERSION" -repo "$work/repo" -out "$db.tmp"
  mv "$db.tmp" "$db"
  echo "   $(ls "$db/ID" | grep -c '\.json$') advisories in $db"
fi

echo "== govulncheck $GOVULNCHECK_VERSION, database golang.org/x/vulndb@$VULNDB_VERSION (offline)"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Installed rather than run with go run, which turns govulncheck's exit
# code 3 (vulnerabilities found) into 1.
bin="$cache/bin/govulncheck-$GOVULNCHECK_VERSION"
if [ ! -x "$bin/govulncheck" ]; then
  GOBIN="$bin" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
fi
set +e
"$bin/govulncheck" -db "file://$db" -show traces ./... >"$out" 2>&1
rc=$?
set -e
cat "$out"
# 0: nothing reached; 3: vulnerabilities reached; anything else: an error.
if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
  echo "FAIL: govulncheck exited with $rc" >&2
  exit 1
fi

# The echo symbols the call analysis reaches that the two advisories are
# about (their v5 symbol lists, in v4's names). RealIP is reached, with the
# project's IPExtractor; proxyHTTP shows up through an over-approximation
# (a trace from net/http's HandlerFunc.ServeHTTP into the closure that
# proxyHTTP returns, which needs ProxyWithConfig to have run: nothing calls
# it, see TestEchoAdvisorySymbolsUnused).
echo "== echo v4 symbols of GO-2026-6875/GO-2026-6872 in the traces"
grep -oE 'for function github\.com/labstack/echo/v4[^ ]*\.(context\.(RealIP|Scheme|JSONP|JSONPBlob)|Echo\.Static[A-Za-z]*|Static[A-Za-z]*Handler|ExtractIPFromRealIPHeader|Proxy[A-Za-z]*|proxy[A-Za-z]*|RateLimiter[A-Za-z]*|Secure[A-Za-z]*|MethodOverride[A-Za-z]*)$' "$out" |
  sed 's/^for function /   /' | sort -u || true

failed=0
for id in $(grep -oE '^Vulnerability #[0-9]+: GO-[0-9]+-[0-9]+' "$out" | awk '{print $3}' | sort -u); do
  if [ -n "${ACCEPTED[$id]:-}" ]; then
    echo "accepted: $id: ${ACCEPTED[$id]}"
  else
    echo "FAIL: $id is reached and not accepted" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1
echo "govulncheck: no vulnerability reached beyond the accepted ones"
