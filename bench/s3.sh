#!/usr/bin/env bash
# S3 state benchmark: the DAG benchmark's random layered DAG of `true` shell
# steps (bench/gendag), run alternately by gpipe with durable file state and
# with S3 state on a local versitygw. Prints the median wall time of each, the
# median of the rounds' ratios S3/file (target <= 1.3), and the PUT requests
# per step that reached the server (counted from versitygw's request log),
# split by kind (state.json snapshots, journal slots, log chunks). With -l, every S3 request is delayed by that much
# (bench/s3latency) to stand in for the round trip to a real S3 endpoint.
#
#   bench/s3.sh [-n STEPS] [-j CONCURRENCY] [-r ROUNDS] [-l LATENCY, e.g. 20ms]
set -euo pipefail
cd "$(dirname "$0")/.."

steps=800 jobs=8 rounds=5 latency=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) steps=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    -l) latency=$2; shift 2 ;;
    *) echo "usage: bench/s3.sh [-n STEPS] [-j CONCURRENCY] [-r ROUNDS] [-l LATENCY]" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
vgw_pid="" proxy_pid=""
cleanup() {
  if [ -n "$proxy_pid" ]; then kill "$proxy_pid" 2>/dev/null || true; fi
  if [ -n "$vgw_pid" ]; then kill "$vgw_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

gobin="$(go env GOPATH)/bin"
export PATH="$gobin:$PATH"
command -v versitygw >/dev/null || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
go build -o "$work/gpipe" ./cmd/gpipe
go run ./bench/gendag -steps "$steps" -seed 7 -out "$work"

# versitygw logs one line per request on stdout:
#   TIME | vgw | STATUS | DURATION | CLIENT | METHOD | PATH | ...
port=$(( 20000 + RANDOM % 20000 ))
mkdir -p "$work/s3/bench"
versitygw --access benchkey --secret benchsecret0123456789 --port "127.0.0.1:$port" posix "$work/s3" >"$work/vgw.log" 2>&1 &
vgw_pid=$!
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret0123456789 AWS_REGION=us-east-1
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port"
unset GPIPE_STATE
if [ -n "$latency" ]; then
  go build -o "$work/s3latency" ./bench/s3latency
  "$work/s3latency" -target "$AWS_ENDPOINT_URL_S3" -latency "$latency" >"$work/proxy.addr" 2>"$work/proxy.err" &
  proxy_pid=$!
  for _ in $(seq 100); do [ -s "$work/proxy.addr" ] && break; sleep 0.05; done
  AWS_ENDPOINT_URL_S3=$(head -1 "$work/proxy.addr")
  [ -n "$AWS_ENDPOINT_URL_S3" ] || { echo "s3latency did not start:" >&2; cat "$work/proxy.err" >&2; exit 1; }
fi

now() { date +%s.%N; }
# run_timed NAME COMMAND... : appends the wall time of COMMAND to $work/NAME.times
run_timed() {
  local name=$1; shift
  local t0 t1
  t0=$(now)
  "$@" >/dev/null 2>"$work/$name.err" || { echo "$name failed:" >&2; tail -20 "$work/$name.err" >&2; exit 1; }
  t1=$(now)
  echo "$t1 - $t0" | bc -l >>"$work/$name.times"
}
median() { sort -g "$1" | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# puts RUN_ID PATTERN: PUT requests of that run whose path matches PATTERN
puts() { awk -F' [|] ' -v run="/bench/runs/$1/" -v pat="$2" '$6 == "PUT" && index($7, run) == 1 && $7 ~ pat' "$work/vgw.log" | wc -l; }

for r in $(seq "$rounds"); do
  run_timed file "$work/gpipe" run --state "file://$work/state" --concurrency "$jobs" --run-id "file-$r" "$work/spec.yaml"
  run_timed s3 "$work/gpipe" run --state "s3://bench/runs" --concurrency "$jobs" --run-id "s3-$r" "$work/spec.yaml"
  sleep 0.2 # let versitygw write its last log lines
  total=$(puts "s3-$r" '.')
  echo "$total" >>"$work/puts.total"
  puts "s3-$r" 'state[.]json$' >>"$work/puts.state"
  puts "s3-$r" '/journal/' >>"$work/puts.journal"
  puts "s3-$r" '/logs/' >>"$work/puts.logs"
  echo "$(tail -1 "$work/s3.times") / $(tail -1 "$work/file.times")" | bc -l >>"$work/ratio"
  printf 'round %d: file %.3f s, S3 %.3f s, ratio %.2f, %d PUTs\n' "$r" "$(tail -1 "$work/file.times")" \
    "$(tail -1 "$work/s3.times")" "$(tail -1 "$work/ratio")" "$total"
done

m_file=$(median "$work/file.times")
m_s3=$(median "$work/s3.times")
echo "DAG of $steps steps, concurrency $jobs, $rounds alternating rounds (medians), S3 latency ${latency:-none added}; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  gpipe, file state  %8.3f s\n' "$m_file"
printf '  gpipe, S3 state    %8.3f s\n' "$m_s3"
printf '  S3 / file:         %8.2f   (median of the rounds'\'' ratios; ratio of the medians %.2f; target <= 1.3)\n' \
  "$(median "$work/ratio")" "$(echo "$m_s3 / $m_file" | bc -l)"
printf '  PUTs per step:     %8.2f   (state.json %.2f, journal slots %.2f, log chunks %.2f, per run: %.0f total)\n' \
  "$(echo "$(median "$work/puts.total") / $steps" | bc -l)" \
  "$(echo "$(median "$work/puts.state") / $steps" | bc -l)" \
  "$(echo "$(median "$work/puts.journal") / $steps" | bc -l)" \
  "$(echo "$(median "$work/puts.logs") / $steps" | bc -l)" \
  "$(median "$work/puts.total")"
