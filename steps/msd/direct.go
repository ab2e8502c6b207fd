package msd

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// Large extracted files are written with direct I/O where the filesystem
// allows it: the data goes from our (reused) buffer to the device instead of
// into freshly allocated page cache. On the benchmark VM that allocation is
// what writing costs — 1 to 2 CPU seconds per GiB, as much as the MD5 — while
// direct writes of 4 MiB cost about 0.1 and overlap the MD5 as device time.
// Small files (labels, dataset.json) are written normally: a direct write is
// a synchronous device round trip. One writer is enough: this VM's disk takes
// 4 MiB direct writes at 1.4-2 GB/s, twice the MD5's pace, so a pool of
// writers would only add buffers. The price: the data is not left in the page
// cache for the next step (preprocess reads it from disk, which on the DL1's
// NVMe RAID0 is quick next to preprocessing itself).
const (
	directMin   = 1 << 20 // smaller files are written through the page cache
	directAlign = 4096    // offset, length and memory alignment of direct writes
)

// alignedBuf returns n bytes starting at a directAlign boundary.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	off := int(-uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	return b[off : off+n : off+n]
}

// directFile writes a file opened with O_DIRECT: whole aligned blocks go
// directly, the unaligned tail (and everything, once the filesystem refused
// a direct write) through the page cache.
type directFile struct {
	f      *os.File
	direct bool
	// directBytes counts what went to the file with O_DIRECT, for tests to
	// tell direct I/O from a silent fall back to the page cache.
	directBytes int64
}

// write writes p, which is aligned in memory; only the last write of a file
// may have a length that is not a multiple of directAlign.
func (d *directFile) write(p []byte) (refused bool, err error) {
	if d.direct {
		a := len(p) &^ (directAlign - 1)
		if a > 0 {
			n, err := d.f.Write(p[:a])
			d.directBytes += int64(n)
			p = p[n:] // what was written stays; the rest goes below
			if errors.Is(err, syscall.EINVAL) {
				refused = true
			} else if err != nil {
				return false, err
			}
		}
		if len(p) > 0 || refused {
			if err := clearDirect(d.f); err != nil {
				return refused, err
			}
			d.direct = false
		}
	}
	if len(p) > 0 {
		_, err = d.f.Write(p)
	}
	return refused, err
}
