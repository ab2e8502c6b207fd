#!/usr/bin/env bash
# gpipe prepare-disk: NVMe instance store → RAID0 → xfs on /mnt/scratch (rendered; every value below is a quoted literal)
set -euo pipefail

mount_point='/mnt/scratch'
fs_type='xfs'
min_free_gib=0
move_dirs=(/var/lib/docker)
sys_block="${GPIPE_SYS_BLOCK:-/sys/block}"
dev_dir="${GPIPE_DEV_DIR:-/dev}"
move_root="${GPIPE_MOVE_ROOT:-}"
md_name=gpipe-data
store_model='Amazon EC2 NVMe Instance Storage'

# Instance-store NVMe namespaces; EBS volumes are NVMe too but report
# "Amazon Elastic Block Store".
find_devices() {
  local d model
  for d in "$sys_block"/nvme*n*; do
    [ -r "$d/device/model" ] || continue
    model=$(sed -e 's/[[:space:]]*$//' "$d/device/model")
    if [ "$model" = "$store_model" ]; then
      printf '%s\n' "$dev_dir/${d##*/}"
    fi
  done
}

gib() { df -P -BG "$mount_point" | awk -v col="$1" 'NR == 2 { sub(/G$/, "", $col); print $col }'; }

mapfile -t devices < <(find_devices)
echo "gpipe: instance-store devices: ${devices[*]:-none}"

if mountpoint -q "$mount_point"; then
  echo "gpipe: $mount_point is already mounted"
else
  if [ "${#devices[@]}" -eq 0 ]; then
    echo "gpipe: no NVMe instance-store devices (model \"$store_model\") and $mount_point is not mounted;" >&2
    echo "gpipe: prepare-disk needs an instance type with instance storage, such as dl1.24xlarge" >&2
    exit 1
  fi
  if [ "${#devices[@]}" -eq 1 ]; then
    target=${devices[0]}
  else
    target="$dev_dir/md/$md_name"
    if [ -e "$target" ]; then
      echo "gpipe: RAID0 $target exists"
    else
      echo "gpipe: creating RAID0 $target over ${#devices[@]} devices"
      mdadm --create "$target" --run --level=0 --raid-devices="${#devices[@]}" "${devices[@]}"
    fi
  fi
  fs_now=$(blkid -o value -s TYPE "$target" || true)
  if [ -z "$fs_now" ]; then
    echo "gpipe: mkfs.$fs_type $target"
    if [ "$fs_type" = xfs ]; then mkfs.xfs -f "$target"; else mkfs.ext4 -F -m 0 -E nodiscard "$target"; fi
  elif [ "$fs_now" != "$fs_type" ]; then
    echo "gpipe: $target already holds $fs_now, not $fs_type; leaving it as it is" >&2
  fi
  mkdir -p "$mount_point"
  mount -o noatime "$target" "$mount_point"
  echo "gpipe: mounted $target on $mount_point"
fi

docker_stopped=0
restart_docker() {
  if [ "$docker_stopped" = 1 ]; then systemctl start docker; fi
}
trap restart_docker EXIT

for moved in "${move_dirs[@]}"; do
  dir="$move_root$moved"
  dest="$mount_point/moved$moved"
  if [ -L "$dir" ] && [ "$(readlink "$dir")" = "$dest" ]; then
    rm -rf "$dir.gpipe-old"
    echo "gpipe: $dir already on $mount_point"
    continue
  fi
  if [ "$moved" = /var/lib/docker ] && [ "$docker_stopped" = 0 ] &&
    command -v systemctl >/dev/null && systemctl is-active --quiet docker; then
    echo "gpipe: stopping docker to move its data-root"
    systemctl stop docker docker.socket
    docker_stopped=1
  fi
  mkdir -p "$dest"
  if [ -d "$dir" ] && [ ! -L "$dir" ]; then
    # Copy, then swap: a crash midway leaves the original in place and the
    # next run copies again.
    cp -a "$dir/." "$dest/"
    mv "$dir" "$dir.gpipe-old"
  elif [ -e "$dir" ] || [ -L "$dir" ]; then
    echo "gpipe: $dir is not a directory; not moving it" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dir")"
  ln -s "$dest" "$dir"
  rm -rf "$dir.gpipe-old"
  echo "gpipe: moved $dir to $dest"
done

size_gib=$(gib 2)
avail_gib=$(gib 4)
echo "gpipe: $mount_point: ${size_gib} GiB, ${avail_gib} GiB free"
if [ "$avail_gib" -lt "$min_free_gib" ]; then
  echo "gpipe: only ${avail_gib} GiB free on $mount_point, below min_free_gib ${min_free_gib}" >&2
  exit 1
fi
{
  echo "mount=$mount_point"
  echo "size_gib=$size_gib"
  echo "avail_gib=$avail_gib"
  echo "devices=${devices[*]}"
} >>"$GPIPE_OUTPUT"
