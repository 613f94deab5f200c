#!/usr/bin/env bash
# Smoke test of a running development server (`go run .` in another shell):
# registers a user, logs in, creates a project and a task, fetches the HTML
# report, and shows a few defenses answering. It verifies the server's
# certificate against the development certificate (never curl -k).
#
#   scripts/smoke.sh [https://localhost:8443]
set -euo pipefail
base=${1:-https://localhost:8443}
cert=${APP_DATA_DIR:-data}/tls/dev-ca.pem
[ -f "$cert" ] || { echo "smoke: $cert not found; start the server with 'go run .' first" >&2; exit 1; }
c() { curl -sS --cacert "$cert" "$@"; }
json() { c -H 'Content-Type: application/json' "$@"; }
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

email="smoke-$(date +%s)-$RANDOM@example.com"
password="smoke test passphrase $RANDOM$RANDOM"

echo "== register $email"
json -d "{\"email\":\"$email\",\"password\":\"$password\",\"display_name\":\"Smoke\"}" "$base/v1/auth/register"; echo
echo "== login"
token=$(json -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$base/v1/auth/login" | field token)
[ -n "$token" ] || { echo "smoke: login failed" >&2; exit 1; }
auth=(-H "Authorization: Bearer $token")
echo "== create a project whose name is markup"
project=$(json "${auth[@]}" -d '{"name":"<b>smoke</b>","description":"x'"'"'; DROP TABLE projects;--"}' "$base/v1/projects")
echo "$project"
id=$(echo "$project" | field id)
echo "== add a task"
json "${auth[@]}" -d '{"title":"check the report","due_date":"2030-01-01"}' "$base/v1/projects/$id/tasks"; echo
echo "== HTML report (the name must be escaped)"
c "${auth[@]}" "$base/v1/projects/$id/report" | grep -m1 '<h1>'
echo "== defenses"
printf 'no token            -> '; c -o /dev/null -w '%{http_code}\n' "$base/v1/projects"
printf 'unknown field       -> '; json "${auth[@]}" -o /dev/null -w '%{http_code}\n' -d '{"name":"x","owner_id":"y"}' "$base/v1/projects"
printf 'text/plain body     -> '; c "${auth[@]}" -o /dev/null -w '%{http_code}\n' -H 'Content-Type: text/plain' -d '{}' "$base/v1/projects"
printf 'limit=1000          -> '; c "${auth[@]}" -o /dev/null -w '%{http_code}\n' "$base/v1/projects?limit=1000"
printf 'TRACE               -> '; c -o /dev/null -w '%{http_code}\n' -X TRACE "$base/healthz"
echo "== logout, then the token is dead"
c "${auth[@]}" -o /dev/null -w 'logout -> %{http_code}\n' -X POST "$base/v1/auth/logout"
c "${auth[@]}" -o /dev/null -w 'me     -> %{http_code}\n' "$base/v1/me"
