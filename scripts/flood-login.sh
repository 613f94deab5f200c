#!/usr/bin/env bash
# Login-flood measurement (issue 4, "Measure"; a measurement, not a test:
# .ci/run does not call it). One command:
#
#   scripts/flood-login.sh [options]
#
# It builds the server and the load generator (scripts/loadtest, standard
# library only), starts the server on 127.0.0.1 with a fresh data folder on
# SQLite, registers a user, creates a project, and then
#   (a) idle:  one reader client GETs /v1/projects at a steady rate;
#   (b) flood: 200 clients POST /v1/auth/login with wrong passwords as fast
#       as the server answers, while the same reader keeps reading.
# It reports the reader's p50/p99 idle and under the flood and their ratio,
# how many logins got 401/429/503, the Argon2id verifications the server
# ran, its CPU use, and its peak RSS (VmHWM from /proc/PID/status). It
# exits 1 if the budget of issue 4 is broken (reader's flood p99 > 5× its
# idle p99, or peak RSS >= 512 MiB), 2 if the run itself failed.
#
# Limits. By default (--limits raised) the per-IP, per-user and login rate
# limits are raised to 1,000,000 a minute and every login uses a new
# e-mail address, so every attempt reaches Argon2id: this measures the
# hashing defense (the memory budget and its 503s) in the worst case, as if
# the flood came from more addresses than the rate limits can tell apart.
# --limits default keeps the limits of API.md; each flood client then
# connects from its own loopback address (127.1.x.y) and the reader from
# 127.0.0.2, so the per-IP limits see 200 attackers and one reader. The
# reader reads at 50/s (raised) or 25/s (default: below the 600 a minute
# per IP it is allowed itself).
#
# Options (each also as an environment variable):
#   --database-url URL  FLOOD_DATABASE_URL  postgres:// URL: a second run on
#                       PostgreSQL, in a fresh schema dropped afterwards
#                       (needs psql). e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
#   --redis-url URL     FLOOD_REDIS_URL     redis:// URL: the second run
#                       keeps its limits in this Redis (with SQLite if no
#                       --database-url). Keys go under "rampart:" and
#                       expire by themselves (within 1 minute with raised
#                       limits, 15 with default ones); use a Redis database
#                       no test shares, e.g. redis://127.0.0.1:6379/15.
#   --limits raised|default   FLOOD_LIMITS  (raised)
#   --idle SECONDS      FLOOD_IDLE     length of the idle phase (10)
#   --flood SECONDS     FLOOD_SECONDS  length of the measured flood (10)
#   --clients N         FLOOD_CLIENTS  flood clients (200)
#   --set NAME=VALUE    one more variable for the server, e.g.
#                       --set APP_ARGON2_MEMORY_BUDGET=19 or --set GOMAXPROCS=1
#                       (repeatable; wins over what the script sets)
#
# The server gets only the variables set here: no APP_*, GOMAXPROCS, GOGC
# or GOMEMLIMIT of the caller's shell changes what is measured. Clients
# trust the server through the development CA it makes in its data folder
# (data/tls/dev-ca.pem); verification is never switched off. One run takes
# about 25 s, both about a minute (plus the first build).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "flood-login: $*" >&2; exit 2; }

database_url=${FLOOD_DATABASE_URL:-}
redis_url=${FLOOD_REDIS_URL:-}
limits=${FLOOD_LIMITS:-raised}
idle=${FLOOD_IDLE:-10}
flood=${FLOOD_SECONDS:-10}
clients=${FLOOD_CLIENTS:-200}
extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --database-url) database_url=${2:?}; shift 2 ;;
    --redis-url) redis_url=${2:?}; shift 2 ;;
    --limits) limits=${2:?}; shift 2 ;;
    --idle) idle=${2:?}; shift 2 ;;
    --flood) flood=${2:?}; shift 2 ;;
    --clients) clients=${2:?}; shift 2 ;;
    --set) [[ ${2:-} == *=* ]] || fail "--set needs NAME=VALUE"; extra+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown option $1 (see --help)" ;;
  esac
done
case $limits in
  raised) rate=50 ;;
  default) rate=25 ;;
  *) fail "--limits must be raised or default" ;;
esac
[[ $idle =~ ^[0-9]+$ && $flood =~ ^[0-9]+$ && $clients =~ ^[0-9]+$ ]] || fail "--idle, --flood and --clients take whole numbers"
[ "$(uname -s)" = Linux ] || fail "needs Linux (/proc for the server's memory)"

work=$(mktemp -d)
server_pid=
schema=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$schema" ]; then
    psql "$database_url" -qX -v ON_ERROR_STOP=1 -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "flood-login: building the server and scripts/loadtest ($(go version | cut -d' ' -f3))"
go build -o "$work/rampart" .
go build -o "$work/loadtest" ./scripts/loadtest

# run_one LABEL [NAME=VALUE...]: one server, one measurement.
status=0
run_one() {
  local label=$1; shift
  local dir="$work/run$((++runs))"
  mkdir -p "$dir/data"
  local port metrics_port
  port=$("$work/loadtest" freeport)
  metrics_port=$("$work/loadtest" freeport)
  [ "$port" != "$metrics_port" ] || metrics_port=$("$work/loadtest" freeport)
  local limit_vars=()
  if [ "$limits" = raised ]; then
    limit_vars=(APP_RATE_IP=1000000 APP_RATE_LOGIN_IP=1000000 APP_RATE_USER=1000000 APP_LOGIN_FAILURE_WINDOW=1m)
  fi
  # shellcheck disable=SC2046 # one -u per inherited variable
  env $(compgen -e | grep -E '^(APP_|GOMAXPROCS$|GOGC$|GOMEMLIMIT$|GODEBUG$)' | sed 's/^/-u /') \
    APP_ENV=development \
    APP_ADDR="127.0.0.1:$port" \
    APP_DATA_DIR="$dir/data" \
    APP_METRICS_ADDR="127.0.0.1:$metrics_port" \
    "${limit_vars[@]}" "$@" "${extra[@]}" \
    "$work/rampart" >"$dir/server.log" 2>&1 &
  server_pid=$!
  local wait=0
  until [ -s "$dir/data/tls/dev-ca.pem" ]; do
    kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$dir/server.log" >&2; fail "the server exited at start-up"; }
    sleep 0.1
    [ $((++wait)) -lt 300 ] || fail "the server made no development CA in 30 s"
  done
  local rc=0
  "$work/loadtest" run -label "$label" -base "https://127.0.0.1:$port" -ca "$dir/data/tls/dev-ca.pem" \
    -metrics "https://127.0.0.1:$metrics_port/metrics" -pid "$server_pid" \
    -idle "${idle}s" -flood "${flood}s" -clients "$clients" -rate "$rate" || rc=$?
  if [ "$rc" -ge 2 ]; then
    echo "-- last lines of the server log:" >&2
    grep -v '"msg":"request"' "$dir/server.log" | tail -n 20 >&2 || true
  fi
  # What the server logged above INFO, counted by message (and status).
  if grep -qE '"level":"(WARN|ERROR)"' "$dir/server.log"; then
    echo "server log, WARN and ERROR lines:"
    grep -E '"level":"(WARN|ERROR)"' "$dir/server.log" |
      sed -E 's/.*"level":"([A-Z]+)","msg":"([^"]*)"(.*"status":([0-9]+))?.*/\1 \2 \4/' |
      sort | uniq -c | sort -rn | head -n 8
  fi
  # Rate-limit store failures in full: with a healthy Redis there are none.
  if grep -q '"msg":"rate-limit store' "$dir/server.log"; then
    echo "rate-limit store events:"
    grep '"msg":"rate-limit store' "$dir/server.log" | head -n 4 | cut -c1-300 | sed 's/^/    /'
  fi
  if grep -qv '^{' "$dir/server.log"; then
    echo "server log, lines that are not JSON (from libraries): $(grep -cv '^{' "$dir/server.log")"
    grep -v '^{' "$dir/server.log" | head -n 2 | cut -c1-200
  fi
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
  [ "$rc" -le "$status" ] || status=$rc
}
runs=0

what="limits raised: every login reaches Argon2id (the hashing defense, worst case)"
[ "$limits" = default ] && what="default limits of API.md"
echo "flood-login: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM; $what; ${clients} flood clients, idle ${idle}s, flood ${flood}s"
[ ${#extra[@]} -eq 0 ] || echo "flood-login: server variables from --set: ${extra[*]}"

run_one "SQLite, $what"

if [ -n "$database_url" ] || [ -n "$redis_url" ]; then
  shared=()
  label=SQLite
  if [ -n "$database_url" ]; then
    command -v psql >/dev/null 2>&1 || fail "--database-url needs psql to make a fresh schema"
    schema="flood_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    psql "$database_url" -qX -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $schema" >/dev/null ||
      fail "cannot create a schema on --database-url (is PostgreSQL up, and is the URL one psql takes?)"
    sep='?'; [[ $database_url == *\?* ]] && sep='&'
    shared+=("APP_DATABASE_URL=$database_url${sep}search_path=$schema")
    label=PostgreSQL
  fi
  if [ -n "$redis_url" ]; then
    shared+=("APP_REDIS_URL=$redis_url")
    label="$label + Redis"
  fi
  run_one "$label, $what" "${shared[@]}"
fi

case $status in
  0) echo "flood-login: every run kept the budget" ;;
  1) echo "flood-login: a budget was broken (see FAIL above)" ;;
  *) echo "flood-login: a run failed" ;;
esac
exit "$status"
