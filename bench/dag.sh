#!/usr/bin/env bash
# DAG benchmark: one random layered DAG of `true` shell steps, run alternately
# by gpipe (durable file state, and S3 state on a local versitygw) and by its
# peers `make -j` and go-task at the same concurrency. Every step is one bash
# running a builtin, for every tool. go-floor (bench/floor) is the floor of any
# Go runner: it execs per step exactly what make does, at the same concurrency
# and respecting the same needs, with nothing else (no state, no logs), so
# "gpipe-file / go-floor" is what gpipe adds over a bare Go fork/exec loop, and
# go-floor's ratio to make is what forking from a Go process costs over make.
# Prints each tool's median wall time, its median CPU per step (user+sys of the
# tool and its children, over the steps) and its median ratio to make, with the
# 1-minute load average sampled before each round (median and maximum: a busy
# machine narrows the ratio, since both tools then wait for CPU), then the peak
# memory of a 10,000-step run and the time to validate a 10,000-step spec. With
# S3 it also prints what a run sent to the server per step: PUT requests and
# their body bytes (from versitygw's access log), which stay constant as the
# run grows when state is journaled, and the CPU versitygw spent on the same
# cores, with the S3/file ratio of gpipe's own CPU (and its children's): what a
# remote S3 would leave of the difference.
#
#   bench/dag.sh [-n STEPS] [-j CONCURRENCY] [-r ROUNDS] [--no-s3] [--no-task] [--no-big]
set -euo pipefail
cd "$(dirname "$0")/.."

steps=800 jobs=8 rounds=5 s3=1 task=1 big=1
while [ $# -gt 0 ]; do
  case "$1" in
    -n) steps=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    --no-s3) s3=0; shift ;;
    --no-task) task=0; shift ;;
    --no-big) big=0; shift ;;
    *) echo "usage: bench/dag.sh [-n STEPS] [-j CONCURRENCY] [-r ROUNDS] [--no-s3] [--no-task] [--no-big]" >&2; exit 2 ;;
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
go build -o "$work/gpipe" ./cmd/gpipe
go build -o "$work/floor" ./bench/floor
go run ./bench/gendag -steps "$steps" -seed 7 -out "$work"
if [ "$task" = 1 ] && ! command -v task >/dev/null 2>&1; then
  go install github.com/go-task/task/v3/cmd/task@latest >/dev/null 2>&1 || task=0
fi

if [ "$s3" = 1 ]; then
  command -v versitygw >/dev/null || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
  port=$(( 20000 + RANDOM % 20000 ))
  mkdir -p "$work/s3/bench"
  # --keep-alive: the SDK reuses connections, as it would with AWS.
  versitygw --access benchkey --secret benchsecret --port "127.0.0.1:$port" --keep-alive --quiet \
    --access-log "$work/access.log" posix "$work/s3" >"$work/vgw.log" 2>&1 &
  vgw_pid=$!
  for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1
  export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port"
fi

now() { date +%s.%N; }
# run_timed NAME COMMAND... : appends the wall time of COMMAND to $work/NAME.times
# and its CPU time (user+sys, its waited-for children included) to $work/NAME.cpu
run_timed() {
  local name=$1; shift
  local TIMEFORMAT='%3R %3U %3S' rc=0
  { time "$@" >/dev/null 2>"$work/$name.err"; } 2>"$work/$name.time" || rc=$?
  if [ "$rc" != 0 ]; then echo "$name failed:" >&2; tail -20 "$work/$name.err" >&2; exit 1; fi
  read -r real user sys <"$work/$name.time"
  echo "$real" >>"$work/$name.times"
  echo "$user + $sys" | bc -l >>"$work/$name.cpu"
}
# put_stats RUN_ID: "<PUT requests> <PUT body bytes>" the run sent to versitygw.
# Access log fields (S3 server access log format, the time holds a space):
# ... $8 operation, $9 key, $11 status, $14 object size.
put_stats() {
  awk -v run="runs/$1/" '$8 == "s3_PutObject" && index($9, run) == 1 { n++; b += ($14 == "-" ? 0 : $14) } END { printf "%d %d\n", n, b }' "$work/access.log"
}
# server_ticks: CPU time (user+sys, clock ticks) versitygw has used so far. It
# runs on the same cores as the tools, so what it spends serving gpipe-s3
# lengthens that run as a remote S3 would not.
server_ticks() { awk '{ print $14 + $15 }' "/proc/$vgw_pid/stat"; }
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for r in $(seq "$rounds"); do
  cut -d' ' -f1 /proc/loadavg >>"$work/load"
  run_timed gpipe-file "$work/gpipe" run --state "file://$work/state" --concurrency "$jobs" --run-id "file-$r" "$work/spec.yaml"
  run_timed make make -s -j "$jobs" -f "$work/Makefile"
  run_timed go-floor "$work/floor" -j "$jobs" "$work/dag.txt"
  if [ "$task" = 1 ]; then run_timed task task --concurrency "$jobs" --silent --taskfile "$work/Taskfile.yml"; fi
  if [ "$s3" = 1 ]; then
    srv0=$(server_ticks)
    run_timed gpipe-s3 "$work/gpipe" run --state "s3://bench/runs" --concurrency "$jobs" --run-id "s3-$r" "$work/spec.yaml"
    echo "($(server_ticks) - $srv0) * 1000 / $(getconf CLK_TCK) / $steps" | bc -l >>"$work/s3.srvcpu"
    sleep 0.2 # let versitygw write its last log lines
    read -r n b < <(put_stats "s3-$r")
    echo "$n / $steps" | bc -l >>"$work/s3.puts"
    echo "$b / $steps" | bc -l >>"$work/s3.bytes"
  fi
done

echo "DAG of $steps steps, concurrency $jobs, $rounds alternating rounds (medians); $(nproc) cores, load before a round: median $(median "$work/load"), max $(sort -g "$work/load" | tail -1)"
m_make=$(median "$work/make.times")
for t in make go-floor gpipe-file gpipe-s3 task; do
  [ -f "$work/$t.times" ] || continue
  m=$(median "$work/$t.times")
  cpu=$(echo "$(median "$work/$t.cpu") * 1000 / $steps" | bc -l)
  printf '  %-12s %8.3f s   CPU %.2f ms/step   ratio to make %.2f\n' "$t" "$m" "$cpu" "$(echo "$m / $m_make" | bc -l)"
done
printf '  gpipe-file / go-floor: %.2f\n' "$(echo "$(median "$work/gpipe-file.times") / $(median "$work/go-floor.times")" | bc -l)"
if [ -f "$work/gpipe-s3.times" ]; then
  printf '  S3 / file state: %.2f\n' "$(echo "$(median "$work/gpipe-s3.times") / $(median "$work/gpipe-file.times")" | bc -l)"
  printf '  S3 server: %.2f PUTs/step, %.0f bytes/step (PUT bodies: state, journal, logs, spec), CPU %.2f ms/step on the same cores\n' \
    "$(median "$work/s3.puts")" "$(median "$work/s3.bytes")" "$(median "$work/s3.srvcpu")"
  printf '  S3 / file CPU of gpipe and its children (what a remote S3 would leave): %.2f\n' \
    "$(echo "$(median "$work/gpipe-s3.cpu") / $(median "$work/gpipe-file.cpu")" | bc -l)"
fi

[ "$big" = 1 ] || exit 0
go run ./bench/gendag -steps 10000 -layers 100 -seed 7 -out "$work" >/dev/null
t0=$(now); "$work/gpipe" validate "$work/spec.yaml" >/dev/null; t1=$(now)
printf '  validate 10,000 steps: %.3f s\n' "$(echo "$t1 - $t0" | bc -l)"
if [ -x /usr/bin/time ]; then
  /usr/bin/time -f '%M' -o "$work/rss" "$work/gpipe" run --state "file://$work/state" --concurrency "$jobs" --run-id big "$work/spec.yaml" >/dev/null 2>&1
  printf '  peak RSS of a 10,000-step run: %d MiB\n' "$(( $(cat "$work/rss") / 1024 ))"
else
  echo "  peak memory: install GNU time (apt-get install -y time) to measure it"
fi
