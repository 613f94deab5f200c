#!/usr/bin/env bash
# What the audit trail costs (issue 5): runs BenchmarkAuthenticatedRead
# (handlers/audit_bench_test.go) -- the same authenticated read through the
# whole router, in process (no TLS, no HTTP), with auditing off and on --
# on each dialect, and prints the throughput lost with auditing on, judged
# on the CPU time a read costs: this process's and a local PostgreSQL's
# (cpu-ns/op + db-cpu-ns/op), whose inverse is what a CPU-bound host can
# serve. The wall-clock loss is printed beside it. Budget: at most 10%
# lower. A measurement, not a test: .ci/run runs every benchmark once as a
# smoke test, not this script. scripts/bench measures the same through the
# TLS server, where a read costs more (TLS, HTTP, the log line) and the
# trail's share is smaller.
#
#   scripts/bench-audit.sh [rounds]          (default 8 rounds of 3 s each)
#
# A shared host's speed drifts by tens of percent within a minute, more
# than the cost being measured. So each round runs off and then on, back
# to back, in alternating order (off-on, on-off, ...), and the figures are
# the medians over rounds of each round's ratio. The wall clock also counts
# whatever else the host runs; the CPU time a read is steadier.
#
# PostgreSQL: TEST_DATABASE_URL (default the local trust-auth server). Its
# CPU is counted only when it runs on this machine (from /proc).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-8}
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
bin=$(mktemp -d)/handlers.test
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./handlers
run() { # dialect mode -> "ns/op cpu-ns/op+db-cpu-ns/op"
  (cd handlers && "$bin" -test.run '^$' -test.bench "^BenchmarkAuthenticatedRead\$/^$1\$/^audit=$2\$" \
    -test.benchtime 3s -test.count 1) | awk '/^BenchmarkAuthenticatedRead/ {
      for (i = 3; i < NF; i++) m[$(i + 1)] = $i
      print m["ns/op"], m["cpu-ns/op"] + m["db-cpu-ns/op"]
    }'
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
    cpuratios+=("$(awk -v a="$offcpu" -v b="$oncpu" 'BEGIN {print 100 * (1 - a / b)}')")
    printf '%-8s round %d: audit off %6.0f ns/op %6.0f CPU-ns/op, on %6.0f ns/op %6.0f CPU-ns/op\n' \
      "$d" "$((i + 1))" "$offns" "$offcpu" "$onns" "$oncpu"
  done
  lost=$(printf '%s\n' "${ratios[@]}" | med)
  cpu=$(printf '%s\n' "${cpuratios[@]}" | med)
  awk -v d="$d" -v lost="$lost" -v cpu="$cpu" -v n="$rounds" 'BEGIN {
    verdict = cpu <= 10 ? "ok" : "OVER BUDGET"
    printf "%-8s auditing on: throughput %.1f%% lower by CPU a read (median of %d rounds; budget 10%%) %s\n", d, cpu, n, verdict
    printf "%-8s              and %.1f%% lower by the wall clock\n", d, lost
    exit cpu > 10
  }' || status=1
done
exit $status
