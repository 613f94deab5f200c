#!/usr/bin/env bash
# What the audit trail costs (issue 5): runs BenchmarkAuthenticatedRead
# (handlers/audit_bench_test.go) -- the same authenticated read through the
# whole router with auditing off and on -- several times on each dialect,
# and prints the median ns/op of each and the throughput lost with
# auditing on, and the same from cpu-ns/op (this process's CPU time a read:
# steadier than wall time on a shared host, but without PostgreSQL's own
# CPU). Budget: at most 10% lower. A measurement, not a test: .ci/run does
# not call it. scripts/bench measures the same through the TLS server.
#
#   scripts/bench-audit.sh [runs]          (default 6 runs of 2 s each)
#
# PostgreSQL: TEST_DATABASE_URL (default the local trust-auth server). The
# benchmark keeps both cores busy; on a machine where PostgreSQL shares
# those cores, its share of the insert counts against the app.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-6}
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
out=$(go test -run '^$' -bench 'BenchmarkAuthenticatedRead' -benchtime 2s -count "$runs" ./handlers | grep '^BenchmarkAuthenticatedRead')
status=0
med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for d in sqlite postgres; do
  off=$(grep "/$d/audit=off" <<<"$out" | awk '{print $3}' | med)
  on=$(grep "/$d/audit=on" <<<"$out" | awk '{print $3}' | med)
  cpuoff=$(grep "/$d/audit=off" <<<"$out" | awk '{print $5}' | med)
  cpuon=$(grep "/$d/audit=on" <<<"$out" | awk '{print $5}' | med)
  awk -v d="$d" -v off="$off" -v on="$on" -v coff="$cpuoff" -v con="$cpuon" 'BEGIN {
    lost = 100 * (1 - off / on)
    verdict = lost <= 10 ? "ok" : "OVER BUDGET"
    printf "%-8s audit off %8.0f ns/op, on %8.0f ns/op: throughput %.1f%% lower (budget 10%%) %s\n", d, off, on, lost, verdict
    printf "%-8s CPU of this process: off %8.0f ns/op, on %8.0f ns/op: %.1f%% more a read\n", d, coff, con, 100 * (con / coff - 1)
    exit lost > 10
  }' || status=1
done
exit $status
