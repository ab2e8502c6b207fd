#!/usr/bin/env bash
# gpipe evaluate: task 01, 2D, fold 0 (rendered; every value below is a quoted literal)
set -euo pipefail

data='/data/01_2d'
fold_dir='/data/results/01_2d/fold_0'
eval_dir='/data/results/01_2d/fold_0/eval'
results_url='s3://bucket/runs/r1/01_2d/fold_0'
ckpt=''
aws="${GPIPE_AWS_CLI:-aws}"

if [ ! -f "$data/config.pkl" ]; then
  echo "gpipe: $data/config.pkl not found: preprocess the dataset first" >&2
  exit 1
fi
if [ -z "$ckpt" ]; then
  mkdir -p "$fold_dir/checkpoints"
if [ -n "$results_url" ] && [ ! -f "$fold_dir/checkpoints/last.ckpt" ]; then
  echo "gpipe: looking for checkpoints in $results_url/checkpoints"
  "$aws" s3 sync --only-show-errors "$results_url/checkpoints" "$fold_dir/checkpoints"
fi
ckpt=$(find "$fold_dir/checkpoints" -maxdepth 1 -name '*.ckpt' ! -name last.ckpt -printf '%T@ %p\n' |
  sort -n | tail -n 1 | cut -d' ' -f2-)
if [ -z "$ckpt" ]; then ckpt="$fold_dir/checkpoints/last.ckpt"; fi
if [ ! -f "$ckpt" ]; then
  echo "gpipe: no checkpoint in $fold_dir/checkpoints" >&2
  exit 1
fi
elif [ ! -f "$ckpt" ]; then
  echo "gpipe: checkpoint $ckpt not found" >&2
  exit 1
fi
echo "gpipe: evaluating $ckpt"
# A failed evaluation must not leave the previous one's result to be read.
mkdir -p "$eval_dir"
rm -f "$eval_dir/eval_log.json"
# main.py --exec_mode evaluate rebuilds the model from the checkpoint
# (NNUnet.load_from_checkpoint), with the training's saved arguments, and its
# __init__ opens the dllogger of the training's --results, the directory that
# holds checkpoints/: <that>/logs.json, mode "w" (Model-References 1.21.0
# models/nn_unet.py, utils/utils.py get_dllogger). There logs.json links to
# the last training attempt's epoch log: drop the link, so the evaluation
# truncates a file of its own instead of the training's history.
train_results=$(dirname "$(dirname "$ckpt")")
if [ -L "$train_results/logs.json" ]; then rm -f "$train_results/logs.json"; fi

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

container='gpipe-evaluate-ff0c295a'
stop_container() { "$runtime" rm -f "$container" >/dev/null 2>&1 || true; }
stop_container
trap 'stop_container; exit 130' INT
trap 'stop_container; exit 143' TERM

run_args=(
  run --rm --name "$container"
  --runtime=habana
  -e HABANA_VISIBLE_DEVICES=all
  -e 'HABANA_VISIBLE_MODULES=5'
  -e OMPI_MCA_btl_vader_single_copy_mechanism=none
  -e PT_HPU_LAZY_MODE=0
  --cap-add=sys_nice --net=host --ipc=host
  -v /data/01_2d:/data/01_2d
  -v /data/results/01_2d/fold_0:/data/results/01_2d/fold_0
  "$unet_image"
  python3
  -u
  main.py
  --exec_mode
  evaluate
  --data
  /data/01_2d
  --hpus
  1
  --gpus
  0
  --fold
  0
  --seed
  1
  --batch_size
  64
  --val_batch_size
  64
  --task
  01
  --dim
  2
  --results
  /data/results/01_2d/fold_0/eval
  --logname
  eval_log.json
  --use_torch_compile
  --autocast
)
"$runtime" "${run_args[@]}" --ckpt_path "$ckpt"
if [ ! -s "$eval_dir/eval_log.json" ]; then
  echo "gpipe: evaluation wrote no $eval_dir/eval_log.json" >&2
  exit 1
fi
if [ -n "$results_url" ]; then
  "$aws" s3 sync --only-show-errors "$eval_dir" "$results_url/eval"
fi
{
  echo "ckpt=$ckpt"
  echo "eval_log=$eval_dir/eval_log.json"
  echo "dllogger<<GPIPE_DLLOGGER_EOF"
  cat "$eval_dir/eval_log.json"
  echo "GPIPE_DLLOGGER_EOF"
} >>"$GPIPE_OUTPUT"
