package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gpipe/gpipe/internal/testtool"
)

// StartLeftover starts body with bash in a process group of its own marked as
// a step's, as a runner killed with SIGKILL leaves one running, and returns
// the resume data that runner had noted (see noteGroup).
func StartLeftover(t *testing.T, body string, env map[string]string) map[string]string {
	t.Helper()
	m := (&Local{}).machine()
	if !m.ok {
		testtool.Unavailable(t, "no /proc: Local notes nothing here")
	}
	token := newToken()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-c", body)
	cmd.Env = append(os.Environ(), tokenEnv+"="+token, "GPIPE_OUTPUT="+filepath.Join(t.TempDir(), "outputs"))
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGKILL); _ = cmd.Wait() })
	st, err := readProcStat(pgid)
	if err != nil {
		t.Fatal(err)
	}
	rec := pgroupRecord{Host: m.host, Boot: m.boot, Pgid: pgid, Start: st.start, Token: token}
	return map[string]string{resumeKeyPgroup: rec.String()}
}
