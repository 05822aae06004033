#!/usr/bin/env bash
# Runs every Go fuzz target of the packages that have them, one at a time,
# for FUZZTIME each (default 10s). A crasher fails the run; go test writes
# it under the package's testdata/fuzz/<FuzzName>/, where it becomes a
# regression test of the normal `go test` run once committed.
#
#   .ci/fuzz.sh                      # every target, 10s each
#   FUZZTIME=60s .ci/fuzz.sh         # longer
#   .ci/fuzz.sh ./cluster/quorum     # only these packages
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
# Minimising each new coverage-increasing input can take a minute by
# default, during which no executions are counted; keep it short so the
# time goes to fuzzing.
minimize=${FUZZMINIMIZETIME:-5s}
parallel=${FUZZPARALLEL:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}

pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
  pkgs=(./cluster ./cluster/shard ./cluster/quorum ./agent/config ./probe ./probe/httpprobe ./probe/dnsprobe ./probe/tcpprobe ./probe/icmpprobe)
fi

failed=0
for pkg in "${pkgs[@]}"; do
  targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
  for target in $targets; do
    log=$(mktemp)
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" \
        -parallel "$parallel" "$pkg" >"$log" 2>&1; then
      # The last progress line: elapsed, execs, new interesting.
      summary=$(grep 'execs:' "$log" | tail -1 | sed 's/^fuzz: //')
      printf 'ok   %-22s %-22s %s\n' "$pkg" "$target" "$summary"
    else
      printf 'FAIL %-22s %s\n' "$pkg" "$target"
      cat "$log"
      failed=1
    fi
    rm -f "$log"
  done
done
exit $failed
