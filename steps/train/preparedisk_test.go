package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSystemctl keeps each unit's state: $STATE/units/<unit> exists while it
// is active. From systemctl(1): a name without a suffix is NAME.service;
// `is-active` exits 0 when any unit is active, else 3; start and stop change
// the state, and starting docker.service starts docker.socket, which it
// Requires= (moby, contrib/init/systemd/docker.service).
const fakeSystemctl = `echo "systemctl $*" >>"$STATE/calls"
mkdir -p "$STATE/units"
cmd=$1
shift
units=()
for u in "$@"; do
  case "$u" in -*) ;; *.*) units+=("$u") ;; *) units+=("$u.service") ;; esac
done
case "$cmd" in
  is-active)
    for u in "${units[@]}"; do [ ! -e "$STATE/units/$u" ] || exit 0; done
    exit 3 ;;
  start)
    for u in "${units[@]}"; do touch "$STATE/units/$u"; done
    if [ -e "$STATE/units/docker.service" ]; then touch "$STATE/units/docker.socket"; fi ;;
  stop) for u in "${units[@]}"; do rm -f "$STATE/units/$u"; done ;;
  *) echo "fake systemctl: unexpected $cmd" >&2; exit 2 ;;
esac`

// fakeTools writes stand-ins for the disk tools: each records its call, and
// mount/mountpoint/df agree on what is mounted.
func fakeTools(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	tools := map[string]string{
		"mountpoint": `[ -e "$STATE/mounted" ] && [ "$(cat "$STATE/mounted")" = "$2" ]`,
		"mdadm":      `echo "mdadm $*" >>"$STATE/calls"; mkdir -p "$(dirname "$2")"; touch "$2"`,
		"blkid":      `[ -e "$STATE/fs" ] && cat "$STATE/fs"; true`,
		"mkfs.ext4":  `echo "mkfs.ext4 $*" >>"$STATE/calls"; echo ext4 >"$STATE/fs"`,
		"mkfs.xfs":   `echo "mkfs.xfs $*" >>"$STATE/calls"; echo xfs >"$STATE/fs"`,
		"mount":      `echo "mount $*" >>"$STATE/calls"; printf %s "$4" >"$STATE/mounted"`,
		"systemctl":  fakeSystemctl,
		"df":         `printf 'Filesystem 1073741824-blocks Used Available Capacity Mounted on\n/dev/md/gpipe-data 3540G 1G %sG 1%% %s\n' "$AVAIL" "$4"`,
	}
	for name, body := range tools {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/usr/bin/env bash\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

func fakeSys(t *testing.T, models map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for dev, model := range models {
		d := filepath.Join(root, dev, "device")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		// sysfs pads the NVMe model field with spaces.
		if err := os.WriteFile(filepath.Join(d, "model"), []byte(model+"        \n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestPrepareDiskOnFakeSysfs(t *testing.T) {
	state := t.TempDir()
	sys := fakeSys(t, map[string]string{
		"nvme0n1": "Amazon Elastic Block Store",
		"nvme1n1": "Amazon EC2 NVMe Instance Storage",
		"nvme2n1": "Amazon EC2 NVMe Instance Storage",
	})
	devDir := t.TempDir()
	mnt := filepath.Join(t.TempDir(), "data")
	home := t.TempDir()
	// /var/log/habana_logs of a machine rooted at moveRoot.
	moveRoot := t.TempDir()
	logs := filepath.Join(moveRoot, "var/log/habana_logs")
	if err := os.MkdirAll(filepath.Join(home, ".cache", "pip"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".cache", "pip", "wheel"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PATH":            fakeTools(t) + ":" + os.Getenv("PATH"),
		"STATE":           state,
		"AVAIL":           "3300",
		"HOME":            home,
		"GPIPE_SYS_BLOCK": sys,
		"GPIPE_DEV_DIR":   devDir,
		"GPIPE_MOVE_ROOT": moveRoot,
	}
	// ~/.cache is relocated too: under moveRoot, HOME's path.
	cacheHome := filepath.Join(moveRoot, home)
	if err := os.MkdirAll(filepath.Dir(cacheHome), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(home, cacheHome); err != nil {
		t.Fatal(err)
	}
	with := map[string]any{"mount": mnt, "min_free_gib": 1000, "move": []any{"~/.cache", "/var/log/habana_logs"}}
	pd := &PrepareDisk{Exec: localExecutors{}}
	log := &syncBuf{}
	res, err := pd.Run(t.Context(), stepRun(TypePrepareDisk, "disk", with, env, log))
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	calls, _ := os.ReadFile(filepath.Join(state, "calls"))
	md := devDir + "/md/gpipe-data"
	for _, want := range []string{
		"mdadm --create " + md + " --run --level=0 --raid-devices=2 " + devDir + "/nvme1n1 " + devDir + "/nvme2n1",
		"mkfs.ext4 -F -m 0 -E nodiscard " + md,
		"mount -o noatime " + md + " " + mnt,
	} {
		if !strings.Contains(string(calls), want) {
			t.Errorf("calls lack %q:\n%s", want, calls)
		}
	}
	if strings.Contains(string(calls), "nvme0n1") {
		t.Error("the EBS volume was used")
	}
	want := map[string]string{"mount": mnt, "size_gib": "3540", "avail_gib": "3300", "devices": devDir + "/nvme1n1 " + devDir + "/nvme2n1"}
	for k, v := range want {
		if res.Outputs[k] != v {
			t.Errorf("output %s = %q, want %q", k, res.Outputs[k], v)
		}
	}
	cache := filepath.Join(cacheHome, ".cache")
	if target, err := os.Readlink(cache); err != nil || target != mnt+"/moved"+filepath.Join(home, ".cache") {
		t.Errorf("~/.cache link: %q, %v", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(cache, "pip", "wheel")); err != nil || string(b) != "w" {
		t.Errorf("moved content: %q, %v", b, err)
	}
	if target, err := os.Readlink(logs); err != nil || target != mnt+"/moved/var/log/habana_logs" {
		t.Errorf("%s link: %q, %v", logs, target, err)
	}

	// Rerun: everything is in place, nothing is created again.
	if err := os.Remove(filepath.Join(state, "calls")); err != nil {
		t.Fatal(err)
	}
	if _, err := pd.Run(t.Context(), stepRun(TypePrepareDisk, "disk", with, env, log)); err != nil {
		t.Fatalf("rerun: %v\n%s", err, log)
	}
	if calls, err := os.ReadFile(filepath.Join(state, "calls")); err == nil {
		t.Errorf("rerun ran tools again:\n%s", calls)
	}

	// Too little space fails clearly.
	env["AVAIL"] = "20"
	log = &syncBuf{}
	if _, err := pd.Run(t.Context(), stepRun(TypePrepareDisk, "disk", with, env, log)); err == nil ||
		!strings.Contains(log.String(), "below min_free_gib 1000") {
		t.Errorf("20 GiB free with min 1000: err %v\n%s", err, log)
	}
}

func TestPrepareDiskNoInstanceStore(t *testing.T) {
	state := t.TempDir()
	env := map[string]string{
		"PATH":            fakeTools(t) + ":" + os.Getenv("PATH"),
		"STATE":           state,
		"GPIPE_SYS_BLOCK": fakeSys(t, map[string]string{"nvme0n1": "Amazon Elastic Block Store"}),
		"GPIPE_DEV_DIR":   t.TempDir(),
	}
	log := &syncBuf{}
	_, err := (&PrepareDisk{Exec: localExecutors{}}).Run(t.Context(), stepRun(TypePrepareDisk, "disk",
		map[string]any{"mount": filepath.Join(t.TempDir(), "d"), "move": []any{}}, env, log))
	if err == nil || !strings.Contains(log.String(), "no NVMe instance-store devices") {
		t.Errorf("err %v\n%s", err, log)
	}
}

// TestPrepareDiskRestartsDocker moves docker's data-root: a running docker is
// stopped (with its socket, which would start it again) for the move and
// runs again afterwards; a stopped one is left stopped.
func TestPrepareDiskRestartsDocker(t *testing.T) {
	for _, running := range []bool{true, false} {
		state := t.TempDir()
		moveRoot := t.TempDir()
		if err := os.MkdirAll(filepath.Join(moveRoot, "var/lib/docker/image"), 0o755); err != nil {
			t.Fatal(err)
		}
		if running {
			for _, u := range []string{"docker.service", "docker.socket"} {
				if err := os.MkdirAll(filepath.Join(state, "units"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(state, "units", u), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		env := map[string]string{
			"PATH":            fakeTools(t) + ":" + os.Getenv("PATH"),
			"STATE":           state,
			"AVAIL":           "3300",
			"GPIPE_SYS_BLOCK": fakeSys(t, map[string]string{"nvme1n1": "Amazon EC2 NVMe Instance Storage"}),
			"GPIPE_DEV_DIR":   t.TempDir(),
			"GPIPE_MOVE_ROOT": moveRoot,
		}
		mnt := filepath.Join(t.TempDir(), "data")
		log := &syncBuf{}
		if _, err := (&PrepareDisk{Exec: localExecutors{}}).Run(t.Context(), stepRun(TypePrepareDisk, "disk",
			map[string]any{"mount": mnt, "move": []any{"/var/lib/docker"}}, env, log)); err != nil {
			t.Fatalf("docker running %v: %v\n%s", running, err, log)
		}
		calls, _ := os.ReadFile(filepath.Join(state, "calls"))
		_, err := os.Stat(filepath.Join(state, "units", "docker.service"))
		if active := err == nil; active != running {
			t.Errorf("docker running before: %v; active after: %v, want the same\n%s", running, active, calls)
		}
		if stopped := strings.Contains(string(calls), "systemctl stop docker docker.socket"); stopped != running {
			t.Errorf("docker running %v: stopped with its socket: %v\n%s", running, stopped, calls)
		}
		if target, err := os.Readlink(filepath.Join(moveRoot, "var/lib/docker")); err != nil || target != mnt+"/moved/var/lib/docker" {
			t.Errorf("/var/lib/docker link: %q, %v", target, err)
		}
	}
}
