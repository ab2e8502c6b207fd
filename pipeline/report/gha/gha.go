// Package gha speaks GitHub Actions' side channels: workflow commands on
// stdout (annotations, masks), the $GITHUB_OUTPUT file and the
// $GITHUB_STEP_SUMMARY file. The event reporter that groups step logs lives
// in pipeline/report/console and uses this package's escaping.
//
// Everything writes to an io.Writer so tests compare exact bytes with golden
// files; AppendFile opens the files the runner names in its environment.
package gha

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Annotation is an ::error::, ::warning:: or ::notice:: workflow command
// pointing at a place in a file of the repository.
type Annotation struct {
	Level string // "error", "warning" or "notice"
	File  string // relative to the repository root (see Paths.Rel)
	Line  int    // 1-based; 0 when unknown
	Col   int
	Title string
	Msg   string
}

// WriteAnnotation writes a as one workflow command line.
func WriteAnnotation(w io.Writer, a Annotation) error {
	var props []string
	if a.File != "" {
		props = append(props, "file="+escapeProp(a.File))
		if a.Line > 0 {
			props = append(props, "line="+strconv.Itoa(a.Line))
			if a.Col > 0 {
				props = append(props, "col="+strconv.Itoa(a.Col))
			}
		}
	}
	if a.Title != "" {
		props = append(props, "title="+escapeProp(a.Title))
	}
	level := a.Level
	if level == "" {
		level = "error"
	}
	cmd := "::" + level
	if len(props) > 0 {
		cmd += " " + strings.Join(props, ",")
	}
	if _, err := io.WriteString(w, cmd+"::"+EscapeData(a.Msg)+"\n"); err != nil {
		return fmt.Errorf("write %s annotation: %w", level, err)
	}
	return nil
}

// EscapeData escapes a workflow command's message, as @actions/core does.
func EscapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeProp escapes a workflow command's property value.
func escapeProp(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// Paths turns spec file names into paths relative to the repository root,
// which is what annotations need to attach to a file on github.com.
type Paths struct {
	// Workspace is the repository root ($GITHUB_WORKSPACE); "" leaves paths
	// as they are.
	Workspace string
	// Dir is the directory relative spec paths start from (the process's
	// working directory; the action's working-directory input).
	Dir string
}

// Rel returns file relative to the workspace, with forward slashes; a file
// outside the workspace is returned as given.
func (p Paths) Rel(file string) string {
	if file == "" || p.Workspace == "" {
		return filepath.ToSlash(file)
	}
	abs := file
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(p.Dir, file)
	}
	ws, err := filepath.Abs(p.Workspace)
	if err != nil {
		return filepath.ToSlash(file)
	}
	rel, err := filepath.Rel(ws, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(file)
	}
	return filepath.ToSlash(rel)
}

// Masks writes ::add-mask:: for every secret value, before anything that
// could print them. The runner masks line by line, so a multi-line value is
// masked one line at a time; blank lines are not masked (that would mask
// every blank in the log).
func Masks(w io.Writer, values []string) error {
	var b strings.Builder
	for _, v := range values {
		for _, line := range strings.Split(strings.ReplaceAll(v, "\r\n", "\n"), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			b.WriteString("::add-mask::" + EscapeData(line) + "\n")
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write secret masks: %w", err)
	}
	return nil
}

// AppendFile appends what fn writes to the file at path: the runner creates
// $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY per step and reads them after it.
func AppendFile(path string, fn func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("append to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
