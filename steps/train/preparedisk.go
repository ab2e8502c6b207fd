package train

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/gpipe/gpipe/pipeline"
	"github.com/gpipe/gpipe/steps/host"
	"github.com/gpipe/gpipe/steps/internal/param"
)

// PrepareDisk turns the instance-store NVMe disks into one filesystem: it
// finds the devices whose model is "Amazon EC2 NVMe Instance Storage" (EBS
// volumes also show up as NVMe, with another model), stripes them with mdadm
// RAID0 when there are several, makes a filesystem, mounts it, and moves the
// listed directories (docker's data-root, caches, Habana logs) onto it, leaving
// symlinks behind. Each part is skipped when already done, so a rerun is
// harmless. The instance store is empty again after a stop/start, and the
// script then rebuilds it.
//
// $GPIPE_SYS_BLOCK (default /sys/block) and $GPIPE_DEV_DIR (default /dev)
// relocate device discovery, and $GPIPE_MOVE_ROOT (default empty) is put in
// front of every directory to move, so tests (and the end-to-end run of
// specs/unet-brain.yaml on a CI machine) run it against a fake sysfs tree
// without touching the machine's own /var/lib/docker.
//
// Outputs: mount, size_gib, avail_gib, devices (space-separated).
type PrepareDisk struct {
	Exec Executors
}

// DefaultMove is what prepare-disk moves onto the data disk when `move` is not
// given: docker's data-root (the Gaudi image is ~20 GB and the AMI's root
// disk is small), the pip/HF caches, and the Habana logs that grow with every
// training run.
func DefaultMove() []string {
	return []string{"/var/lib/docker", "~/.cache", "/var/log/habana_logs"}
}

// DiskConfig is the decoded `with` of a prepare-disk step.
type DiskConfig struct {
	Mount      string
	FSType     string // ext4 | xfs
	MinFreeGiB int
	Move       []string
}

// DecodeDisk applies defaults and checks values.
func DecodeDisk(with map[string]any) (*DiskConfig, error) {
	return param.Decode(TypePrepareDisk, with, decodeDisk)
}

func decodeDisk(p *param.Reader) *DiskConfig {
	c := &DiskConfig{
		Mount:      p.String("mount", "/data"),
		FSType:     p.OneOf("fs_type", "ext4", "ext4", "xfs"),
		MinFreeGiB: p.Int("min_free_gib", 0, 0, 1<<30),
		Move:       p.Strings("move", DefaultMove()),
	}
	if !strings.HasPrefix(c.Mount, "/") || path.Clean(c.Mount) == "/" || strings.Contains(c.Mount, "\n") {
		p.Fail("mount", "%q: want an absolute path other than /", c.Mount)
	}
	c.Mount = path.Clean(c.Mount)
	for i, d := range c.Move {
		ok := (strings.HasPrefix(d, "/") || strings.HasPrefix(d, "~/")) && !strings.Contains(d, "\n")
		clean := path.Clean(strings.TrimPrefix(d, "~"))
		if !ok || clean == "/" || strings.Contains(d, "/../") || strings.HasSuffix(d, "/..") {
			p.Fail(fmt.Sprintf("move[%d]", i), "%q: want an absolute or ~/ path below /", d)
		}
		if strings.HasPrefix(d, "/") && (clean == c.Mount || strings.HasPrefix(clean+"/", c.Mount+"/") || strings.HasPrefix(c.Mount+"/", clean+"/")) {
			p.Fail(fmt.Sprintf("move[%d]", i), "%q overlaps the mount point %s", d, c.Mount)
		}
	}
	return c
}

// Script renders the disk preparation script.
func (s *PrepareDisk) Script(sr *pipeline.StepRun) (string, error) {
	c, err := DecodeDisk(sr.With)
	if err != nil {
		return "", err
	}
	return c.render(), nil
}

func (c *DiskConfig) render() string {
	var b strings.Builder
	header(&b, "prepare-disk: NVMe instance store → RAID0 → "+c.FSType+" on "+c.Mount)
	assign(&b, "mount_point", c.Mount)
	assign(&b, "fs_type", c.FSType)
	fmt.Fprintf(&b, "min_free_gib=%d\n", c.MinFreeGiB)
	b.WriteString("move_dirs=(")
	for i, d := range c.Move {
		if i > 0 {
			b.WriteString(" ")
		}
		// ~ means the home of the user the script runs as; SSM runs
		// scripts as root, sometimes without HOME.
		if rest, ok := strings.CutPrefix(d, "~/"); ok {
			b.WriteString(`"${HOME:-/root}"/` + host.Quote(rest))
		} else {
			b.WriteString(host.Quote(d))
		}
	}
	b.WriteString(")\n")
	b.WriteString(diskScript)
	return b.String()
}

const diskScript = `sys_block="${GPIPE_SYS_BLOCK:-/sys/block}"
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
`

// Run renders and runs the script.
func (s *PrepareDisk) Run(ctx context.Context, sr *pipeline.StepRun) (pipeline.Result, error) {
	out, err := renderAndRun(ctx, s.Exec, sr, s)
	if err != nil {
		return pipeline.Result{}, err
	}
	return pipeline.Result{Outputs: out}, nil
}
