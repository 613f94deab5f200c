#!/usr/bin/env bash
# What the audit trail costs (issue 5): runs BenchmarkAuthenticatedRead
# (handlers/audit_bench_test.go) -- the same authenticated read through the
# whole router with auditing off and on -- on each dialect, and prints the
# throughput lost with auditing on, and the same from cpu-ns/op (this
# process's CPU time a read, without PostgreSQL's own CPU). Budget: at
# most 10% lower. A measurement, not a test: .ci/run runs every benchmark
# once as a smoke test, not this script. scripts/bench measures the same
# through the TLS server.
#
#   scripts/bench-audit.sh [rounds]          (default 8 rounds of 3 s each)
#
# A shared host's speed drifts by tens of percent within a minute, more
# than the cost being measured. So each round runs off and then on, back
# to back, in alternating order (off-on, on-off, ...), and the figure is
# the median over rounds of each round's ratio.
#
# PostgreSQL: TEST_DATABASE_URL (default the local trust-auth server). The
# benchmark keeps both cores busy; on a machine where PostgreSQL shares
# those cores, its share of the insert counts against the app.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-8}
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
bin=$(mktemp -d)/handlers.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./handlers
run() { # dialect mode -> "ns/op cpu-ns/op"
  (cd handlers && "$bin" -test.run '^$' -test.bench "^BenchmarkAuthenticatedRead\$/^$1\$/^audit=$2\$" \
    -test.benchtime 3s -test.count 1) | awk '/^BenchmarkAuthenticatedRead/ {print $3, $5}'
}
med() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
status=0
for d in sqlite postgres; do
  ratios=() cpuratios=()
  for ((i = 0; i < rounds; i++)); do
    if ((i % 2)); then on=$(run "$d" on); off=$(run "$d" off); else off=$(run "$d" off); on=$(run "$d" on); fi
    read -r offns offcpu <<<"$off"
    read -r onns oncpu <<<"$on"
    ratios+=("$(awk -v a="$offns" -v b="$onns" 'BEGIN {print 100 * (1 - a / b)}')")
    cpuratios+=("$(awk -v a="$offcpu" -v b="$oncpu" 'BEGIN {print 100 * (b / a - 1)}')")
    printf '%-8s round %d: audit off %6.0f ns/op, on %6.0f ns/op\n' "$d" "$((i + 1))" "$offns" "$onns"
  done
  lost=$(printf '%s\n' "${ratios[@]}" | med)
  cpu=$(printf '%s\n' "${cpuratios[@]}" | med)
  awk -v d="$d" -v lost="$lost" -v cpu="$cpu" -v n="$rounds" 'BEGIN {
    verdict = lost <= 10 ? "ok" : "OVER BUDGET"
    printf "%-8s auditing on: throughput %.1f%% lower (median of %d rounds; budget 10%%) %s\n", d, lost, n, verdict
    printf "%-8s CPU of this process: %.1f%% more a read\n", d, cpu
    exit lost > 10
  }' || status=1
done
exit $status
