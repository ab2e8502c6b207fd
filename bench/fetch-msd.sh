#!/usr/bin/env bash
# Benchmark fetch-msd against the AWS CLI on a synthetic MSD-style archive
# served by a local versitygw (issue 5, Performance).
#
#   bench/fetch-msd.sh [SIZE_MIB [ROUNDS]]      defaults: 1024 MiB, 5 rounds
#   BENCH_GPIPE_ARGS="-concurrency 4 -part-size-mib 8" bench/fetch-msd.sh   (tuning)
#   BENCH_GPIPE_BIN=/tmp/fetchmsd.old bench/fetch-msd.sh  (time an older build of
#       bench/fetchmsd as "gpipe", for before/after figures)
#
# Methods, run alternately (the order rotates every round) so drift in the
# machine's load hits them all alike:
#   gpipe       fetch-msd's library (bench/fetchmsd): ranged GETs, MD5 and
#               extraction overlapped, into a directory
#   cli-file    aws s3 cp to a file, then md5sum, then tar -xf
#   cli-stream  aws s3 cp - | tee >(md5sum) | tar -x
#   get-null    one plain GetObject into /dev/null (Go SDK): the network floor
#   md5sum      md5sum of the archive from page cache: the checksum floor
# Prints each method's median wall seconds, its ratio to gpipe, and the CPU
# seconds it used (and versitygw used serving it): on a loaded machine wall
# time follows CPU time, so the CPU columns say what the wall ones cannot.
#
# Needs: Go, versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)
# and the AWS CLI (Debian: apt-get install -y awscli; /usr/bin/aws is preferred).
set -euo pipefail

size_mib=${1:-1024}
rounds=${2:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)

aws_cli=/usr/bin/aws
if [ ! -x "$aws_cli" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ] && [ "${BENCH_NO_INSTALL:-}" != 1 ]; then
    echo "installing Debian's awscli (apt-get install -y awscli); BENCH_NO_INSTALL=1 skips this" >&2
    apt-get install -y awscli >/dev/null || true
  fi
fi
if [ ! -x "$aws_cli" ]; then
  aws_cli=$(command -v aws || true)
  if [ -z "$aws_cli" ]; then
    echo "no AWS CLI: apt-get install -y awscli" >&2
    exit 1
  fi
  echo "note: /usr/bin/aws missing, using $aws_cli ($("$aws_cli" --version 2>&1 | head -n 1))" >&2
fi
versitygw=$(command -v versitygw || true)
if [ -z "$versitygw" ]; then versitygw="$(go env GOPATH)/bin/versitygw"; fi
if [ ! -x "$versitygw" ]; then
  echo "no versitygw: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gpipe-bench.XXXXXX")
gw_pid=""
cleanup() {
  if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A synthetic MSD-style task: incompressible volumes (like .nii.gz), a
# dataset.json, and macOS ._ files.
task=Task99_Bench
mkdir -p "$work/src/$task/imagesTr" "$work/src/$task/labelsTr"
files=$((size_mib / 16))
for i in $(seq 1 "$files"); do
  head -c $((16 << 20)) /dev/urandom >"$work/src/$task/imagesTr/case_$i.nii.gz"
  echo resource-fork >"$work/src/$task/imagesTr/._case_$i.nii.gz"
done
printf '{"numTraining": %d, "numTest": 0, "training": [], "test": []}\n' "$files" >"$work/src/$task/dataset.json"
tar -cf "$work/archive.tar" -C "$work/src" "$task"
rm -rf "$work/src"
md5=$(md5sum "$work/archive.tar" | cut -d' ' -f1)
echo "archive: $(du -m "$work/archive.tar" | cut -f1) MiB, md5 $md5"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/gw/bench"
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret0123456789 AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:$port" AWS_ENDPOINT_URL="http://127.0.0.1:$port"
"$versitygw" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --port "127.0.0.1:$port" posix "$work/gw" \
  >"$work/gw.log" 2>&1 &
gw_pid=$!
for _ in $(seq 50); do
  if "$aws_cli" --endpoint-url "$AWS_ENDPOINT_URL_S3" s3 ls s3://bench >/dev/null 2>&1; then break; fi
  sleep 0.1
done
"$aws_cli" --endpoint-url "$AWS_ENDPOINT_URL_S3" s3 cp --only-show-errors "$work/archive.tar" s3://bench/archive.tar
rm -f "$work/archive.tar"
"$aws_cli" --endpoint-url "$AWS_ENDPOINT_URL_S3" s3 cp --only-show-errors s3://bench/archive.tar "$work/cached.tar"

(cd "$repo" && go build -o "$work/fetchmsd" ./bench/fetchmsd)
if [ -n "${BENCH_GPIPE_BIN:-}" ]; then # an older build, for before/after figures
  cp "$BENCH_GPIPE_BIN" "$work/fetchmsd.gpipe"
else
  cp "$work/fetchmsd" "$work/fetchmsd.gpipe"
fi

now() { date +%s.%N; }
# CPU seconds (user+sys) of the children a `times` builtin reports.
cpu_of_times() { sed -n 2p "$1" | awk '{t = 0; for (i = 1; i <= 2; i++) {split($i, a, /[ms]/); t += a[1] * 60 + a[2]} print t}'; }
gw_ticks() { awk '{print $14 + $15}' "/proc/$gw_pid/stat"; }
do_method() {
  local out="$work/out"
  case "$1" in
    gpipe)
      # shellcheck disable=SC2086 # BENCH_GPIPE_ARGS is a list of flags
      "$work/fetchmsd.gpipe" -source s3://bench/archive.tar -md5 "$md5" -dest "$out" -task "$task" ${BENCH_GPIPE_ARGS:-} 2>/dev/null >/dev/null ;;
    cli-file)
      "$aws_cli" --endpoint-url "$AWS_ENDPOINT_URL_S3" s3 cp --only-show-errors s3://bench/archive.tar "$work/dl.tar"
      md5sum "$work/dl.tar" >/dev/null
      tar -xf "$work/dl.tar" -C "$out" ;;
    cli-stream)
      "$aws_cli" --endpoint-url "$AWS_ENDPOINT_URL_S3" s3 cp --only-show-errors s3://bench/archive.tar - |
        tee >(md5sum >"$work/sum") | tar -x -C "$out" ;;
    get-null) "$work/fetchmsd" -null -source s3://bench/archive.tar >/dev/null ;;
    md5sum) md5sum "$work/cached.tar" >/dev/null ;;
  esac
}
# run_method M prints "WALL CPU GW": wall seconds, CPU seconds of the
# method's processes, CPU seconds versitygw spent serving it.
run_method() {
  local t0 t1 g0 g1
  rm -rf "$work/out" "$work/dl.tar"
  mkdir -p "$work/out"
  sync
  g0=$(gw_ticks)
  t0=$(now)
  (
    do_method "$1"
    times >"$work/cpu"
  )
  t1=$(now)
  g1=$(gw_ticks)
  case "$1" in
    gpipe | cli-*)
      if [ ! -f "$work/out/$task/dataset.json" ]; then
        echo "fail"
        return
      fi ;;
  esac
  echo "$(echo "$t1 - $t0" | bc) $(cpu_of_times "$work/cpu") $(echo "($g1 - $g0) / $(getconf CLK_TCK)" | bc -l)"
}

methods=(gpipe cli-file cli-stream get-null md5sum)
cat "$work/cached.tar" >/dev/null # into page cache for the md5sum floor
for r in $(seq 0 $((rounds - 1))); do
  for i in "${!methods[@]}"; do
    m=${methods[$(((i + r) % ${#methods[@]}))]}
    read -r wall cpu gw < <(run_method "$m")
    if [ "$wall" = fail ]; then
      echo "$m produced no $task/dataset.json: rerun by hand to see why" >&2
      exit 1
    fi
    echo "$m $wall $cpu $gw" >>"$work/times"
    printf 'round %d  %-10s %6.2f s  (cpu %5.2f s + versitygw %4.2f s, load %s)\n' "$((r + 1))" "$m" "$wall" "$cpu" "$gw" \
      "$(cut -d' ' -f1 /proc/loadavg)"
  done
done

# median M COLUMN (2: wall, 3: cpu, 4: versitygw cpu)
median() { grep "^$1 " "$work/times" | cut -d' ' -f"$2" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
base=$(median gpipe 2)
echo
echo "medians over $rounds rounds, ${size_mib} MiB ($(nproc) cores; shared machines are noisy):"
echo "  method       wall   vs gpipe    cpu  versitygw cpu"
for m in "${methods[@]}"; do
  printf '  %-10s %6.2f s  %5.2fx  %6.2f s  %5.2f s\n' "$m" "$(median "$m" 2)" "$(echo "$(median "$m" 2) / $base" | bc -l)" \
    "$(median "$m" 3)" "$(median "$m" 4)"
done
printf 'targets (issue 5): cli-file / gpipe = %.2f (want >= 2), gpipe / md5sum = %.2f (want <= 1.3)\n' \
  "$(echo "$(median cli-file 2) / $base" | bc -l)" "$(echo "$base / $(median md5sum 2)" | bc -l)"
