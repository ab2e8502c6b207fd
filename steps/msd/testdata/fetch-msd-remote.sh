#!/usr/bin/env bash
# gpipe fetch-msd: Task04_Hippocampus → /DEST/Task04_Hippocampus (every value below is a quoted literal)
set -euo pipefail

source='s3://msd-for-monai-eu/Task04_Hippocampus.tar'
md5='MD5'
dest='/DEST'
task='Task04_Hippocampus'
marker_json='{"source":"s3://msd-for-monai-eu/Task04_Hippocampus.tar","md5":"MD5","bytes":0}'
aws_args=(--only-show-errors --region 'eu-west-2' --no-sign-request)
aws="${GPIPE_AWS_CLI:-aws}"
final="$dest/$task"
stage="$dest/.gpipe-msd-$task.staging"

outputs() {
  local ds="$final/dataset.json" num_training num_test
  num_training=$(sed -n 's/.*"numTraining"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$ds" | head -n 1)
  num_test=$(sed -n 's/.*"numTest"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$ds" | head -n 1)
  {
    echo "data_dir=$final"
    echo "num_training=$num_training"
    echo "num_test=$num_test"
    echo "md5=$md5"
    echo "skipped=$1"
  } >>"$GPIPE_OUTPUT"
}

if [ -f "$final/.gpipe-msd.json" ] && grep -Eq "\"md5\": ?\"$md5\"" "$final/.gpipe-msd.json"; then
  echo "fetch-msd: $final already extracted and verified (md5 $md5)"
  outputs true
  exit 0
fi

mkdir -p "$dest"
rm -rf "$stage" "$stage.fifo" "$stage.md5"
mkdir -p "$stage"
trap 'rm -rf "$stage" "$stage.fifo" "$stage.md5"' EXIT
mkfifo "$stage.fifo"
md5sum <"$stage.fifo" >"$stage.md5" &
md5_pid=$!
echo "fetch-msd: streaming $source into md5sum and tar"
"$aws" s3 cp "${aws_args[@]}" "$source" - |
  tee "$stage.fifo" |
  {
    tar -x -C "$stage" --no-same-owner --no-same-permissions --exclude='._*'
    cat >/dev/null # the MD5 must see the bytes after the end-of-archive marker too
  }
wait "$md5_pid"
got=$(cut -d' ' -f1 <"$stage.md5")
if [ "$got" != "$md5" ]; then
  echo "fetch-msd: $source has MD5 $got, want $md5; nothing was kept" >&2
  exit 1
fi
if [ ! -f "$stage/$task/dataset.json" ]; then
  echo "fetch-msd: the archive has no $task/dataset.json" >&2
  exit 1
fi
printf '%s\n' "$marker_json" >"$stage/$task/.gpipe-msd.json"
if [ -e "$final" ]; then
  rm -rf "$final.gpipe-old"
  mv "$final" "$final.gpipe-old"
fi
mv "$stage/$task" "$final"
rm -rf "$final.gpipe-old"
echo "fetch-msd: $final verified and in place"
outputs false
