package msd

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// UnsafeEntryError reports an archive entry that would land outside the
// destination: a `..` or absolute name, a link that points out, or a file
// written through a symlink.
type UnsafeEntryError struct {
	Name   string
	Reason string
}

func (e *UnsafeEntryError) Error() string {
	return fmt.Sprintf("unsafe archive entry %q: %s", e.Name, e.Reason)
}

// extractor unpacks a tar stream into dir. Every path is checked by name
// before anything is created, and all writes go through an os.Root, so even a
// check this code got wrong cannot write outside dir.
type extractor struct {
	root     *os.Root
	symlinks map[string]bool // clean relative paths of symlinks created
	files    map[string]bool // regular files created (hardlink targets)
	skipped  int
}

// extractTar reads all of r (also what follows the end-of-archive marker, so
// that a checksum over the stream sees every byte) and extracts it into dir,
// which must exist.
func extractTar(r io.Reader, dir string) (skipped int, err error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("open staging dir: %w", err)
	}
	defer root.Close()
	x := &extractor{root: root, symlinks: map[string]bool{}, files: map[string]bool{}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.skipped, fmt.Errorf("read tar: %w", err)
		}
		if err := x.entry(h, tr); err != nil {
			return x.skipped, err
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return x.skipped, fmt.Errorf("read tar trailer: %w", err)
	}
	return x.skipped, nil
}

// cleanName validates an entry name and returns it relative and clean.
func cleanName(name string) (string, error) {
	n := strings.TrimSuffix(name, "/")
	if n == "" || n == "." || n == "./" {
		return ".", nil
	}
	if strings.HasPrefix(n, "/") || filepath.IsAbs(n) {
		return "", &UnsafeEntryError{Name: name, Reason: "absolute path"}
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", &UnsafeEntryError{Name: name, Reason: "path contains .."}
		}
	}
	if strings.ContainsRune(n, 0) || strings.Contains(n, "\\") {
		return "", &UnsafeEntryError{Name: name, Reason: "invalid character in path"}
	}
	return path.Clean(n), nil
}

// throughLink reports a symlink created earlier that p or one of its parents is.
func (x *extractor) throughLink(p string) (string, bool) {
	for q := p; q != "." && q != "/"; q = path.Dir(q) {
		if x.symlinks[q] {
			return q, true
		}
	}
	return "", false
}

func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	if h.Typeflag == tar.TypeXGlobalHeader || h.Typeflag == tar.TypeXHeader {
		return nil
	}
	name, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	// macOS AppleDouble files ("._x.nii.gz") next to the real volumes.
	if strings.HasPrefix(path.Base(name), "._") {
		x.skipped++
		return nil
	}
	if name == "." {
		return nil
	}
	if l, ok := x.throughLink(name); ok {
		return &UnsafeEntryError{Name: h.Name, Reason: "written through symlink " + l}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return x.mkdirAll(name)
	case tar.TypeReg, tar.TypeRegA:
		if err := x.mkdirAll(path.Dir(name)); err != nil {
			return err
		}
		mode := fs.FileMode(0o644)
		if h.Mode&0o111 != 0 {
			mode = 0o755
		}
		f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		x.files[name] = true
		return nil
	case tar.TypeSymlink:
		target := h.Linkname
		if strings.HasPrefix(target, "/") {
			return &UnsafeEntryError{Name: h.Name, Reason: "symlink to absolute path " + target}
		}
		resolved := path.Join(path.Dir(name), target)
		if resolved == ".." || strings.HasPrefix(resolved, "../") {
			return &UnsafeEntryError{Name: h.Name, Reason: "symlink points outside: " + target}
		}
		if err := x.mkdirAll(path.Dir(name)); err != nil {
			return err
		}
		if err := x.root.Symlink(target, name); err != nil {
			return fmt.Errorf("symlink %s: %w", name, err)
		}
		x.symlinks[name] = true
		return nil
	case tar.TypeLink:
		target, err := cleanName(h.Linkname)
		if err != nil {
			return &UnsafeEntryError{Name: h.Name, Reason: "hardlink target " + h.Linkname + " is outside"}
		}
		if !x.files[target] {
			return &UnsafeEntryError{Name: h.Name, Reason: "hardlink to " + h.Linkname + ", not a file extracted before it"}
		}
		if err := x.mkdirAll(path.Dir(name)); err != nil {
			return err
		}
		if err := x.root.Link(target, name); err != nil {
			return fmt.Errorf("hardlink %s: %w", name, err)
		}
		x.files[name] = true
		return nil
	default:
		// Devices, fifos and the like have no place in a dataset.
		x.skipped++
		return nil
	}
}

func (x *extractor) mkdirAll(dir string) error {
	if dir == "." {
		return nil
	}
	if l, ok := x.throughLink(dir); ok {
		return &UnsafeEntryError{Name: dir, Reason: "directory through symlink " + l}
	}
	if err := x.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	return nil
}
