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
	"slices"
	"strings"
)

// UnsafeEntryError reports an archive entry that would land outside the
// destination: a `..` or absolute name, a link that points out, or a file
// written through a symlink.
type UnsafeEntryError struct {
	Name   string
	Reason string
}

// Permanent: the archive is what it is; fetching it again cannot help.
func (e *UnsafeEntryError) Permanent() bool { return true }

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
	// resumed: dir may hold what an interrupted run wrote past the resume
	// point; each non-directory entry replaces what is there instead of
	// writing into it (it could be a hardlink to an earlier file).
	resumed bool
	buf     []byte // file data goes to the kernel in writes this large
	direct  bool   // try O_DIRECT for large files (see direct.go)
	// directBytes is how much file data was written with O_DIRECT.
	directBytes int64
	// boundary is the archive offset of the header after the last regular
	// file written; onBoundary (may be nil) hears of each new one.
	boundary   int64
	onBoundary func(off int64)
	// Files and symlinks in creation order, and how many of them (and of
	// skipped entries) precede the boundary: a journal records exactly the
	// entries before its resume point.
	fileList, linkList []string
	mark               struct{ files, links, skipped int }
}

// writeBuf is the size of file writes: large writes cost the kernel much
// less per byte than io.Copy's 32 KiB.
const writeBuf = 4 << 20

// newExtractor opens dir (which must exist) with the state of the entries
// already extracted into it; resumed says an interrupted run left dir.
func newExtractor(dir string, st extractState, resumed bool) (*extractor, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open staging dir: %w", err)
	}
	x := &extractor{root: root, symlinks: map[string]bool{}, files: map[string]bool{}, skipped: st.Skipped,
		resumed: resumed, buf: alignedBuf(writeBuf), direct: oDirect != 0}
	for _, f := range st.Files {
		x.addFile(f)
	}
	for _, l := range st.Symlinks {
		x.addLink(l)
	}
	x.setMark()
	if resumed {
		if err := x.removeStrayLinks(); err != nil {
			root.Close()
			return nil, err
		}
	}
	return x, nil
}

func (x *extractor) Close() error { return x.root.Close() }

// removeStrayLinks deletes symlinks an interrupted run created past the
// resume point: the checks below know only of the ones before it, and a
// replayed entry must not be written through one.
func (x *extractor) removeStrayLinks() error {
	return fs.WalkDir(x.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("scan staging dir: %w", err)
		}
		if d.Type()&fs.ModeSymlink != 0 && !x.symlinks[p] {
			if err := x.root.Remove(p); err != nil {
				return fmt.Errorf("remove stray symlink: %w", err)
			}
		}
		return nil
	})
}

func (x *extractor) addFile(name string) {
	if !x.files[name] {
		x.files[name] = true
		x.fileList = append(x.fileList, name)
	}
}

func (x *extractor) addLink(name string) {
	if !x.symlinks[name] {
		x.symlinks[name] = true
		x.linkList = append(x.linkList, name)
	}
}

func (x *extractor) setMark() {
	x.mark.files, x.mark.links, x.mark.skipped = len(x.fileList), len(x.linkList), x.skipped
}

// state is what a resume journal records of the entries before the boundary.
func (x *extractor) state() extractState {
	return extractState{
		Files:    slices.Clone(x.fileList[:x.mark.files]),
		Symlinks: slices.Clone(x.linkList[:x.mark.links]),
		Skipped:  x.mark.skipped,
	}
}

// extractTar reads all of r and extracts it into dir, which must exist.
func extractTar(r io.Reader, dir string) (skipped int, err error) {
	x, err := newExtractor(dir, extractState{}, false)
	if err != nil {
		return 0, err
	}
	defer x.Close()
	err = x.run(r, 0)
	return x.skipped, err
}

// countingReader counts what the tar reader consumed, which (archive/tar
// reads no further than it needs) tells where each entry's data lies.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// run extracts the tar stream r, which starts at archive offset base (a
// header), reading all of it (also what follows the end-of-archive marker, so
// that the stream's producer is never left blocked).
func (x *extractor) run(r io.Reader, base int64) error {
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	x.boundary = base
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		start := base + cr.n
		wrote, err := x.entry(h, tr)
		if err != nil {
			return err
		}
		// A resume point must be a header: the end of a regular file's data
		// (when it was stored as is, not sparse), rounded up to a block.
		if end := base + cr.n; wrote && start%512 == 0 && end-start == h.Size {
			x.boundary = (end + 511) &^ 511
			x.setMark()
			if x.onBoundary != nil {
				x.onBoundary(x.boundary)
			}
		}
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return fmt.Errorf("read tar trailer: %w", err)
	}
	return nil
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

// entry extracts one member; wrote reports a regular file written.
func (x *extractor) entry(h *tar.Header, r io.Reader) (wrote bool, err error) {
	if h.Typeflag == tar.TypeXGlobalHeader || h.Typeflag == tar.TypeXHeader {
		return false, nil
	}
	name, err := cleanName(h.Name)
	if err != nil {
		return false, err
	}
	// macOS AppleDouble files ("._x.nii.gz") next to the real volumes.
	if strings.HasPrefix(path.Base(name), "._") {
		x.skipped++
		return false, nil
	}
	if name == "." {
		return false, nil
	}
	if l, ok := x.throughLink(name); ok {
		return false, &UnsafeEntryError{Name: h.Name, Reason: "written through symlink " + l}
	}
	switch h.Typeflag {
	case tar.TypeDir:
		return false, x.mkdirAll(name)
	case tar.TypeReg, tar.TypeRegA:
		if err := x.prepare(name); err != nil {
			return false, err
		}
		mode := fs.FileMode(0o644)
		if h.Mode&0o111 != 0 {
			mode = 0o755
		}
		if err := x.writeFile(name, mode, r, h.Size); err != nil {
			return false, err
		}
		x.addFile(name)
		return true, nil
	case tar.TypeSymlink:
		target := h.Linkname
		if strings.HasPrefix(target, "/") {
			return false, &UnsafeEntryError{Name: h.Name, Reason: "symlink to absolute path " + target}
		}
		resolved := path.Join(path.Dir(name), target)
		if resolved == ".." || strings.HasPrefix(resolved, "../") {
			return false, &UnsafeEntryError{Name: h.Name, Reason: "symlink points outside: " + target}
		}
		if err := x.prepare(name); err != nil {
			return false, err
		}
		if err := x.root.Symlink(target, name); err != nil {
			return false, fmt.Errorf("symlink %s: %w", name, err)
		}
		x.addLink(name)
		return false, nil
	case tar.TypeLink:
		target, err := cleanName(h.Linkname)
		if err != nil {
			return false, &UnsafeEntryError{Name: h.Name, Reason: "hardlink target " + h.Linkname + " is outside"}
		}
		if !x.files[target] {
			return false, &UnsafeEntryError{Name: h.Name, Reason: "hardlink to " + h.Linkname + ", not a file extracted before it"}
		}
		if err := x.prepare(name); err != nil {
			return false, err
		}
		if err := x.root.Link(target, name); err != nil {
			return false, fmt.Errorf("hardlink %s: %w", name, err)
		}
		x.addFile(name)
		return false, nil
	default:
		// Devices, fifos and the like have no place in a dataset.
		x.skipped++
		return false, nil
	}
}

// prepare makes the parent of a non-directory entry and, in a resumed run,
// removes what an interrupted run left at its name.
func (x *extractor) prepare(name string) error {
	if err := x.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if x.resumed {
		if fi, err := x.root.Lstat(name); err == nil && !fi.IsDir() {
			if err := x.root.Remove(name); err != nil {
				return fmt.Errorf("replace %s: %w", name, err)
			}
		}
	}
	return nil
}

// writeFile copies size bytes of r into a new file name.
func (x *extractor) writeFile(name string, mode fs.FileMode, r io.Reader, size int64) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	direct := x.direct && size >= directMin
	if direct {
		flags |= oDirect
	}
	f, err := x.root.OpenFile(name, flags, mode)
	if err != nil && direct { // e.g. tmpfs refuses O_DIRECT
		x.direct, direct = false, false
		f, err = x.root.OpenFile(name, flags&^oDirect, mode)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	d := &directFile{f: f, direct: direct}
	for left := size; left > 0; {
		n, err := io.ReadFull(r, x.buf[:min(left, int64(len(x.buf)))])
		if n > 0 {
			refused, werr := d.write(x.buf[:n])
			if refused {
				x.direct = false
			}
			if werr != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", name, werr)
			}
		}
		left -= int64(n)
		if err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	x.directBytes += d.directBytes
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
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
