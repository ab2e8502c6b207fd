package template

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
	"github.com/gpipe/gpipe/steps/aws/ssmhost"
)

// userData returns the Fn::Sub source of the instance's UserData.
func userData(t *testing.T) string {
	t.Helper()
	doc := loadTemplate(t, Template())
	inst := props(doc["Resources"].(map[string]any), "Instance")
	var ud struct {
		B64 struct {
			Sub string `json:"Fn::Sub"`
		} `json:"Fn::Base64"`
	}
	raw, _ := json.Marshal(inst["UserData"])
	if err := json.Unmarshal(raw, &ud); err != nil || ud.B64.Sub == "" {
		t.Fatalf("UserData is not Fn::Base64 of an Fn::Sub string: %s", raw)
	}
	return ud.B64.Sub
}

// TestUserDataInstallsWatchdog: the UserData installs watchdog.sh as it is,
// runs it from a timer with the template's idle timeout, and passes
// shellcheck once CloudFormation has substituted its parameters.
func TestUserDataInstallsWatchdog(t *testing.T) {
	ud := userData(t)
	const open, end = "<<'GPIPE_WATCHDOG'\n", "\nGPIPE_WATCHDOG\n"
	i, j := strings.Index(ud, open), strings.Index(ud, end)
	if i < 0 || j < i {
		t.Fatalf("UserData has no GPIPE_WATCHDOG heredoc:\n%s", ud)
	}
	if got := ud[i+len(open) : j+1]; got != string(Watchdog()) {
		t.Errorf("the UserData's copy of watchdog.sh differs from the file")
	}
	for _, want := range []string{"Environment=GPIPE_IDLE_MINUTES=${" + ParamIdleTimeoutMinutes + "}",
		"systemctl enable --now gpipe-watchdog.timer", "OnUnitActiveSec=1min", "mkdir -p /usr/local/lib/gpipe " + ssmhost.StepMarkerDir} {
		if !strings.Contains(ud, want) {
			t.Errorf("UserData lacks %q", want)
		}
	}
	if strings.Contains(string(Watchdog()), "${") {
		t.Error("watchdog.sh uses ${...}, which Fn::Sub would substitute")
	}
	// What the instance runs: the parameters substituted.
	sub := regexp.MustCompile(`\$\{([A-Za-z0-9:]+)\}`).ReplaceAllString(ud, "X1")
	sc := testtool.Shellcheck(t)
	for name, script := range map[string]string{"userdata.sh": sub, "watchdog.sh": string(Watchdog())} {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(sc, p).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", name, err, out)
		}
	}
	// The watchdog's default folder is where the SSM wrapper puts markers.
	if !strings.Contains(string(Watchdog()), "dir=/run/gpipe\n") || ssmhost.StepMarkerDir != "/run/gpipe/steps" {
		t.Errorf("watchdog folder and SSM marker folder %s disagree", ssmhost.StepMarkerDir)
	}
}

// watchdogBox is a fake instance for the watchdog: a marker folder, a /proc
// with chosen processes, a clock and a power switch.
type watchdogBox struct {
	t         *testing.T
	dir, proc string
	idle      string
}

func newWatchdogBox(t *testing.T, idle string) *watchdogBox {
	b := &watchdogBox{t: t, dir: t.TempDir(), proc: t.TempDir(), idle: idle}
	return b
}

// at runs the watchdog at minute m and reports whether it powered off.
func (b *watchdogBox) at(m int) bool {
	b.t.Helper()
	off := filepath.Join(b.dir, "off")
	cmd := exec.Command("sh", "-c", string(Watchdog()))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GPIPE_IDLE_MINUTES=" + b.idle, "GPIPE_WATCHDOG_DIR=" + b.dir,
		"GPIPE_PROC=" + b.proc, "GPIPE_NOW=" + strconv.Itoa(1_700_000_000+60*m), "GPIPE_POWEROFF=touch " + off}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("watchdog at minute %d: %v\n%s", m, err, out)
	}
	_, err := os.Stat(off)
	return err == nil
}

func (b *watchdogBox) process(pid int, alive bool) {
	p := filepath.Join(b.proc, strconv.Itoa(pid))
	if alive {
		os.MkdirAll(p, 0o755)
	} else {
		os.RemoveAll(p)
	}
}

func (b *watchdogBox) step(pid int) {
	os.MkdirAll(filepath.Join(b.dir, "steps"), 0o755)
	if err := os.WriteFile(filepath.Join(b.dir, "steps", strconv.Itoa(pid)), nil, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func TestWatchdogIdleSinceBoot(t *testing.T) {
	b := newWatchdogBox(t, "30")
	for m := 0; m < 30; m++ {
		if b.at(m) {
			t.Fatalf("powered off at minute %d, before 30 idle minutes", m)
		}
	}
	if !b.at(30) {
		t.Fatal("still on after 30 minutes without a gpipe step (a runner that never came)")
	}
}

// A detached training step keeps its wrapper alive: the instance stays up
// for as long as it runs, then goes idle_timeout after it ends.
func TestWatchdogRunningStepKeepsItAlive(t *testing.T) {
	b := newWatchdogBox(t, "30")
	b.at(0)
	b.process(4242, true)
	b.step(4242)
	for m := 1; m <= 600; m += 7 {
		if b.at(m) {
			t.Fatalf("powered off at minute %d while a step runs", m)
		}
	}
	b.process(4242, false) // the step ended; the runner that would start the next one is gone
	if b.at(610) {
		t.Fatal("powered off at once when the step ended")
	}
	if _, err := os.Stat(filepath.Join(b.dir, "steps", "4242")); err == nil {
		t.Error("a marker of a dead process was kept")
	}
	if b.at(625) {
		t.Fatal("powered off before idle_timeout after the last step")
	}
	if !b.at(626) {
		t.Fatal("still on 30 minutes after the last step (last seen running at minute 596)")
	}
}

// A wrapper killed by kill -9 leaves its marker; a dead process's marker does
// not keep the instance up, and names that are not pids are ignored.
func TestWatchdogIgnoresStaleMarkers(t *testing.T) {
	b := newWatchdogBox(t, "5")
	b.at(0)
	b.step(999)
	if err := os.WriteFile(filepath.Join(b.dir, "steps", "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b.process(1, true)
	if !b.at(5) {
		t.Fatal("a stale marker kept the instance up")
	}
}

func TestWatchdogOffAndBadInput(t *testing.T) {
	b := newWatchdogBox(t, "0")
	for _, m := range []int{0, 100, 100000} {
		if b.at(m) {
			t.Fatal("idle_timeout 0 powered off")
		}
	}
	cmd := exec.Command("sh", "-c", string(Watchdog()))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "GPIPE_IDLE_MINUTES=30m", "GPIPE_WATCHDOG_DIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "want whole minutes") {
		t.Errorf("GPIPE_IDLE_MINUTES=30m: %v\n%s", err, out)
	}
}
