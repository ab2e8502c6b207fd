#!/usr/bin/env bash
# Resume benchmark: a 1,000-step run (bench/gendag's DAG) whose 999 other steps
# succeeded and whose last step fails every time, resumed again and again.
# Measures, per resume, the time from launching `gpipe resume` to the first
# (only) step to run writing its start time, and the whole resume's wall time,
# with S3 state on a local versitygw (target: first step < 1 s) and, for
# comparison, with file state. Prints medians.
#
#   bench/resume.sh [-n STEPS] [-r ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."

steps=1000 rounds=7
while [ $# -gt 0 ]; do
  case "$1" in
    -n) steps=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    *) echo "usage: bench/resume.sh [-n STEPS] [-r ROUNDS]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
vgw_pid=""
cleanup() {
  if [ -n "$vgw_pid" ]; then kill "$vgw_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"
command -v versitygw >/dev/null || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
go build -o "$work/gpipe" ./cmd/gpipe
go run ./bench/gendag -steps "$steps" -seed 7 -out "$work"
# The last step is in the last layer, so nothing needs it: make it record when
# it starts and fail, leaving the run resumable with all the others succeeded.
last=$(printf 's%04d' $((steps - 1)))
awk -v id="$last" -v mark="$work/started" '
  $0 == "  - id: " id { mine = 1 }
  mine && /^    with:/ { print "    with: {run: \"date +%s.%N > '\''" mark "'\''; exit 1\"}"; mine = 0; next }
  { print }' "$work/spec.yaml" >"$work/resume.yaml"
grep -q "$work/started" "$work/resume.yaml" || { echo "could not patch step $last" >&2; exit 1; }

port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$work/s3/bench"
versitygw --access benchkey --secret benchsecret0123456789 --port "127.0.0.1:$port" --quiet posix "$work/s3" >"$work/vgw.log" 2>&1 &
vgw_pid=$!
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret0123456789 AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port"
unset GPIPE_STATE

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# expect_fail COMMAND...: run it; it must exit 1 (the last step failed)
expect_fail() {
  local rc=0
  "$@" >/dev/null 2>"$work/err" || rc=$?
  if [ "$rc" != 1 ]; then echo "$* exited $rc, want 1:" >&2; tail -20 "$work/err" >&2; exit 1; fi
}

for store in "s3://bench/runs" "file://$work/state"; do
  name=${store%%:*}
  expect_fail "$work/gpipe" run --state "$store" --run-id resume-bench "$work/resume.yaml"
  for r in $(seq "$rounds"); do
    rm -f "$work/started"
    t0=$(date +%s.%N)
    expect_fail "$work/gpipe" resume --state "$store" resume-bench
    t1=$(date +%s.%N)
    first=$(echo "$(cat "$work/started") - $t0" | bc -l)
    echo "$first" >>"$work/$name.first"
    echo "$t1 - $t0" | bc -l >>"$work/$name.total"
    printf '%-4s round %d: first step after %.3f s, resume took %.3f s\n' "$name" "$r" "$first" "$(tail -1 "$work/$name.total")"
  done
done

echo "resume of a $steps-step run with $((steps - 1)) steps succeeded, $rounds rounds (medians); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for name in s3 file; do
  printf '  %-4s state: first step running after %.3f s, whole resume %.3f s\n' "$name" \
    "$(median <"$work/$name.first")" "$(median <"$work/$name.total")"
done
echo "  target: S3 first step < 1 s"
