#!/usr/bin/env bash
# gpipe train-unet: task 01, 2D, fold 0 on 8 HPU(s) (rendered; every value below is a quoted literal)
set -euo pipefail

data='/data/01_2d'
fold_dir='/data/results/01_2d/fold_0'
results_url='s3://bucket/runs/r1/01_2d/fold_0'
sync_seconds=600
aws="${GPIPE_AWS_CLI:-aws}"

if [ ! -f "$data/config.pkl" ]; then
  echo "gpipe: $data/config.pkl not found: preprocess the dataset first" >&2
  exit 1
fi
mkdir -p "$fold_dir/checkpoints"
if [ -n "$results_url" ] && [ ! -f "$fold_dir/checkpoints/last.ckpt" ]; then
  echo "gpipe: looking for checkpoints in $results_url/checkpoints"
  "$aws" s3 sync --only-show-errors "$results_url/checkpoints" "$fold_dir/checkpoints"
fi
if [ -n "$results_url" ]; then
  "$aws" s3 sync --only-show-errors --exclude '*' --include 'logs-attempt-*.json' "$results_url" "$fold_dir"
fi
attempt=1
for f in "$fold_dir"/logs-attempt-*.json; do
  n=${f##*/logs-attempt-}
  n=${n%.json}
  case "$n" in '' | *[!0-9]*) continue ;; esac
  if [ "$((10#$n))" -ge "$attempt" ]; then attempt=$((10#$n + 1)); fi
done
attempt_log="logs-attempt-$attempt.json"
: >"$fold_dir/$attempt_log"
ln -sfn "$attempt_log" "$fold_dir/logs.json"
echo "gpipe: training attempt $attempt logs to $fold_dir/$attempt_log"

resume_args=()
if [ -f "$fold_dir/checkpoints/last.ckpt" ]; then
  echo "gpipe: resuming from $fold_dir/checkpoints/last.ckpt"
  resume_args=(--ckpt_path "$fold_dir/checkpoints/last.ckpt" --resume_training)
fi

# Multi-card training talks HCCL over the Gaudi NICs, which must be up.
for dev in /sys/class/net/*; do
  drv=$(readlink -f "$dev/device/driver" 2>/dev/null || true)
  if [ "${drv##*/}" = habanalabs ]; then
    ip link set "${dev##*/}" up || echo "gpipe: warning: cannot bring up ${dev##*/}" >&2
  fi
done

runtime="${GPIPE_CONTAINER_RUNTIME:-docker}"
base_image='vault.habana.ai/gaudi-docker/1.21.0/ubuntu22.04/habanalabs/pytorch-installer-2.6.0:latest'
model_references='1.21.0'
model_references_url='https://github.com/HabanaAI/Model-References'
unet_image='gpipe-unet:1.21.0-57ecc949c02c'
image_release_line='1.21'

# The image and the host driver must be of the same Gaudi software release.
# prepare-host checks it before the image is pulled; this guards specs without
# that step (an image named without its release is not checked here).
driver_version=$(cat "${GPIPE_SYS_MODULE:-/sys/module}/habanalabs/version" 2>/dev/null || true)
driver_release=${driver_version%%-*}
if [ -n "$driver_version" ] && [ -n "$image_release_line" ] && [ "${driver_release%.*}" != "$image_release_line" ]; then
  echo "gpipe: the host's habanalabs driver $driver_version is not of release $image_release_line of image $base_image: a container runs only on a driver of its own release (run prepare-host first)" >&2
  exit 1
fi

if ! "$runtime" image inspect "$unet_image" >/dev/null 2>&1; then
  echo "gpipe: building $unet_image from $base_image with Model-References $model_references"
  build_dir=$(mktemp -d)
  cat >"$build_dir/Dockerfile" <<'DOCKERFILE'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG MODEL_REFERENCES_TAG
ARG MODEL_REFERENCES_URL
RUN git clone --depth 1 --branch "${MODEL_REFERENCES_TAG}" "${MODEL_REFERENCES_URL}" /Model-References
WORKDIR /Model-References/PyTorch/computer_vision/segmentation/Unet
RUN . /etc/os-release; req="requirements_u${VERSION_ID%%.*}.txt"; \
    if [ ! -f "$req" ]; then req=requirements.txt; fi; \
    python3 -m pip install --no-cache-dir -r "$req"
ENV PYTHONPATH=/Model-References:${PYTHONPATH}
DOCKERFILE
  "$runtime" build --build-arg BASE_IMAGE="$base_image" \
    --build-arg MODEL_REFERENCES_TAG="$model_references" \
    --build-arg MODEL_REFERENCES_URL="$model_references_url" \
    -t "$unet_image" "$build_dir"
  rm -rf "$build_dir"
fi

container='gpipe-train-unet-8hpu-621132c3'
stop_container() { "$runtime" rm -f "$container" >/dev/null 2>&1 || true; }
stop_container
trap 'stop_container; exit 130' INT
trap 'stop_container; exit 143' TERM

sync_pid=""
if [ -n "$results_url" ]; then
  # Copy checkpoints while training, so losing the instance loses at most
  # sync_seconds of work.
  (
    # The sleep must die with the loop: it holds the script's output open.
    trap 'kill "$sleep_pid" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "$sync_seconds" &
      sleep_pid=$!
      wait "$sleep_pid"
      "$aws" s3 sync --only-show-errors "$fold_dir/checkpoints" "$results_url/checkpoints" ||
        echo "gpipe: warning: checkpoint sync failed" >&2
      "$aws" s3 sync --only-show-errors --exclude '*' --include "$attempt_log" "$fold_dir" "$results_url" ||
        echo "gpipe: warning: epoch log sync failed" >&2
    done
  ) &
  sync_pid=$!
fi
notice_pid=""
if [ -n "$results_url" ] && [ -n "${GPIPE_INTERRUPT_NOTICE:-}" ]; then
  # A spot interruption notice (the SSM wrapper creates the file; EC2
  # terminates the instance two minutes later): stop the training, so that
  # finish saves its checkpoints to S3 while the instance is still there.
  (
    notice_sleep=""
    trap 'kill "$notice_sleep" 2>/dev/null; exit 0' TERM
    while [ ! -e "$GPIPE_INTERRUPT_NOTICE" ]; do
      sleep 1 &
      notice_sleep=$!
      wait "$notice_sleep"
    done
    echo "gpipe: spot interruption notice ($(cat "$GPIPE_INTERRUPT_NOTICE")): stopping the training to save its checkpoints" >&2
    stop_container
  ) &
  notice_pid=$!
fi
finish() {
  rc=$?
  for pid in $sync_pid $notice_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  stop_container
  if [ -n "$results_url" ]; then
    echo "gpipe: syncing $fold_dir to $results_url"
    # logs.json is only the link to this attempt's file.
    "$aws" s3 sync --only-show-errors --exclude logs.json "$fold_dir" "$results_url" ||
      echo "gpipe: warning: results sync failed" >&2
  fi
  exit "$rc"
}
trap finish EXIT

run_args=(
  run --rm --name "$container"
  --runtime=habana
  -e HABANA_VISIBLE_DEVICES=all
  -e 'HABANA_VISIBLE_MODULES=0,1,2,3,4,5,6,7'
  -e OMPI_MCA_btl_vader_single_copy_mechanism=none
  -e PT_HPU_LAZY_MODE=0
  --cap-add=sys_nice --net=host --ipc=host
  -v /data/01_2d:/data/01_2d
  -v /data/results/01_2d/fold_0:/data/results/01_2d/fold_0
  "$unet_image"
  python3
  -u
  main.py
  --results
  /data/results/01_2d/fold_0
  --task
  01
  --fold
  0
  --hpus
  8
  --gpus
  0
  --data
  /data/01_2d
  --seed
  1
  --num_workers
  8
  --affinity
  disabled
  --norm
  instance
  --dim
  2
  --optimizer
  fusedadamw
  --exec_mode
  train
  --learning_rate
  0.001
  --deep_supervision
  --batch_size
  64
  --val_batch_size
  64
  --min_epochs
  30
  --max_epochs
  10000
  --train_batches
  0
  --test_batches
  0
  --use_torch_compile
  --save_ckpt
  --autocast
)

console_log="$fold_dir/train-$(date -u +%Y%m%dT%H%M%SZ).log"
set +e
"$runtime" "${run_args[@]}" "${resume_args[@]}" 2>&1 | tee "$console_log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  if grep -q 'synStatus' "$console_log"; then
    echo "gpipe: training hit the known early Gaudi failure (synStatus); a retry usually succeeds" >&2
  fi
  exit "$rc"
fi
ckpt=$(find "$fold_dir/checkpoints" -maxdepth 1 -name '*.ckpt' ! -name last.ckpt -printf '%T@ %p\n' |
  sort -n | tail -n 1 | cut -d' ' -f2-)
if [ -z "$ckpt" ]; then ckpt="$fold_dir/checkpoints/last.ckpt"; fi
if [ ! -f "$ckpt" ]; then
  echo "gpipe: no checkpoint in $fold_dir/checkpoints" >&2
  exit 1
fi
{
  echo "ckpt=$ckpt"
  echo "last_ckpt=$fold_dir/checkpoints/last.ckpt"
  echo "workdir=$fold_dir"
  echo "results=$results_url"
  echo "dllogger<<GPIPE_DLLOGGER_EOF"
  for ((n = 1; n <= attempt; n++)); do
    f="$fold_dir/logs-attempt-$n.json"
    if [ -f "$f" ]; then
      echo "gpipe-attempt $n"
      cat "$f"
      # A killed attempt may have left its last line unfinished.
      if [ -n "$(tail -c 1 "$f")" ]; then echo; fi
    fi
  done
  echo "GPIPE_DLLOGGER_EOF"
} >>"$GPIPE_OUTPUT"
