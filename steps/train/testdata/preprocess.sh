#!/usr/bin/env bash
# gpipe preprocess: Model-References preprocess.py for task 01 (rendered; every value below is a quoted literal)
set -euo pipefail

task_dir='/data/Task01_BrainTumour'
results='/data'
out='/data/01_2d'

if [ ! -f "$task_dir/dataset.json" ]; then
  echo "gpipe: $task_dir/dataset.json not found: fetch the dataset first (fetch-msd)" >&2
  exit 1
fi
mkdir -p "$results"

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

container='gpipe-preprocess-d3ea46b1'
stop_container() { "$runtime" rm -f "$container" >/dev/null 2>&1 || true; }
stop_container
trap 'stop_container; exit 130' INT
trap 'stop_container; exit 143' TERM

mode='training'
marker="$out/.gpipe-preprocess-$mode.done"
if [ -f "$marker" ]; then
  echo "gpipe: preprocess $mode already done ($marker)"
else
run_args=(
  run --rm --name "$container"
  --runtime=habana
  -e HABANA_VISIBLE_DEVICES=all
  -e OMPI_MCA_btl_vader_single_copy_mechanism=none
  --cap-add=sys_nice --net=host --ipc=host
  -v /data:/data
  "$unet_image"
  python3
  -u
  preprocess.py
  --task
  01
  --dim
  2
  --data
  /data
  --results
  /data
  --exec_mode
  training
  --n_jobs
  -1
)
  "$runtime" "${run_args[@]}"
  touch "$marker"
fi

echo "data=$out" >>"$GPIPE_OUTPUT"
