#!/usr/bin/env bash
# Scans the repository for committed secrets with gitleaks (issue 6, item
# 7), and fails when it finds one. CI runs it (.ci/run); it works the same
# by hand, before a commit:
#
#   scripts/scan-secrets.sh
#
# Three passes, all with .gitleaks.toml (gitleaks' own rules, our rps_/rpk_
# token rules, and the reviewed list of made-up test values):
#   1. history: every commit reachable from HEAD (a secret deleted later is
#      still in the history, and still has to be rotated);
#   2. tree: the files as they would be committed now, tracked and new
#      alike, but not what .gitignore keeps out (data/, secrets/, .env);
#   3. self-test: planted fakes made at run time (a private key, an AWS
#      access key ID, a session token, an API key, a password assignment)
#      must all be found, so a broken rule or an allowlist that swallows
#      everything fails the run instead of passing it silently.
# Findings are printed redacted: the log never shows a secret.
#
# gitleaks is built from the Go module proxy at a pinned version (checked
# against the checksum database like any module) and kept in a cache
# folder; GITLEAKS overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."

gitleaks_version=v8.30.1
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.26.10}

fail() { echo "scan-secrets: FAIL: $*" >&2; exit 1; }
log() { echo "scan-secrets: $*"; }
for tool in git go openssl base32; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed"
done

gitleaks=${GITLEAKS:-}
if [ -z "$gitleaks" ]; then
  tools="${XDG_CACHE_HOME:-$HOME/.cache}/rampart-tools/gitleaks-$gitleaks_version"
  gitleaks="$tools/gitleaks"
  if [ ! -x "$gitleaks" ]; then
    log "building gitleaks $gitleaks_version from the Go module proxy"
    mkdir -p "$tools"
    GOBIN="$tools" GOFLAGS=-buildvcs=false go install "github.com/zricethezav/gitleaks/v8@$gitleaks_version"
  fi
fi

config="$PWD/.gitleaks.toml"
[ -f "$config" ] || fail ".gitleaks.toml is missing"
scan() { # scan SUBCOMMAND ARGS...: gitleaks with our settings
  local sub=$1; shift
  "$gitleaks" "$sub" --config "$config" --ignore-gitleaks-allow --redact \
    --no-banner --no-color --log-level warn --exit-code 1 "$@"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log "1/3 history ($(git rev-list --count HEAD) commits)"
scan git --verbose . || fail "a secret is in the git history (above, redacted): rotate it, then remove it from the history or, if it is a made-up test value, list it in .gitleaks.toml with the reason"

log "2/3 working tree (tracked and new files, .gitignore respected)"
tree="$work/tree"
mkdir -p "$tree"
n=0
while IFS= read -r -d '' f; do
  # A deleted file that is still in the index is not in the tree.
  [ -f "$f" ] || continue
  mkdir -p "$tree/$(dirname "$f")"
  cp -p "$f" "$tree/$f"
  n=$((n + 1))
done < <(git ls-files -z --cached --others --exclude-standard)
log "    $n files"
(cd "$tree" && scan dir --verbose .) || fail "a secret is in the working tree (above, redacted; paths are relative to the repository): remove it, or list a made-up test value in .gitleaks.toml with the reason"

log "3/3 self-test: planted fakes must be found"
plant="$work/plant"
mkdir -p "$plant"
b64url() { openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n' | cut -c1-43; }
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$plant/server-key.pem" 2>/dev/null
aws_id="AKIA$(openssl rand 10 | base32)" # 16 characters of A-Z2-7
{
  echo "aws_access_key_id = $aws_id"
  echo "session: rps_$(b64url)"
  echo "api key: rpk_$(b64url)"
  # Always the same value (gitleaks' generic rule skips some random ones:
  # about 1 in 30 base64 values with a '/' was not reported, which made
  # the self-test fail at random), derived here so that no file holds it.
  echo "password = \"$(printf 'rampart scan-secrets self-test' | openssl dgst -sha256 -binary | openssl base64 -A | tr -d '+/=' | cut -c1-32)\""
} >"$plant/leaked.txt"
if scan dir --report-format json --report-path "$work/plant.json" "$plant" >/dev/null 2>&1; then
  fail "the self-test found nothing in planted secrets: the rules or the allowlist in .gitleaks.toml are broken"
fi
for rule in private-key aws-access-token rampart-session-token rampart-api-key generic-api-key; do
  grep -q "\"RuleID\": *\"$rule\"" "$work/plant.json" || fail "the self-test's planted $rule was not found: check .gitleaks.toml"
done

log "no secrets found"
