package msd

import (
	"bytes"
	"crypto/md5"
	"encoding"
	"encoding/json"
	"fmt"
	"hash"
	"os"
	"strings"
)

// journal is the resume state of an interrupted fetch. The staging
// directory itself holds the extracted bytes; the journal only says how far
// they are complete and how to carry on from there without reading them
// again:
//
//   - Offset is the archive offset of a tar header: every entry before it is
//     fully written in the staging directory;
//   - MD5State is the MD5 state after the first Part parts (Part is
//     Offset/PartSize), so a resumed fetch downloads from that part on, hashes
//     it, and extracts from Offset;
//   - Files and Symlinks are what the extractor's safety checks need to know
//     about the entries before Offset.
//
// The extracted files are not fsynced (that would put the disk on the
// critical path): page-cache data survives a crashed or killed process but
// not a crashed machine. The journal therefore records the boot it was
// written in, and one from another boot (or from a system whose boot we
// cannot identify) is ignored: the fetch starts over.
type journal struct {
	Object   object `json:"object"`
	BootID   string `json:"boot_id"`
	Offset   int64  `json:"offset"`
	Part     int    `json:"part"`
	MD5State []byte `json:"md5_state"`
	extractState
}

// extractState is what the extractor knows about the entries it wrote.
type extractState struct {
	Files    []string `json:"files"`
	Symlinks []string `json:"symlinks"`
	Skipped  int      `json:"skipped"`
}

// bootID identifies the running boot of the machine; "" when unknown.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// loadJournal returns the journal at path when it belongs to obj and to this
// boot, and its MD5 state can be restored.
func loadJournal(path string, obj object) (*journal, hash.Hash, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, false
	}
	var j journal
	if json.Unmarshal(b, &j) != nil || j.Object != obj || j.BootID == "" || j.BootID != bootID() ||
		j.Offset < 0 || j.Offset > obj.Size || int64(j.Part) != j.Offset/obj.PartSize {
		return nil, nil, false
	}
	h := md5.New()
	if h.(encoding.BinaryUnmarshaler).UnmarshalBinary(j.MD5State) != nil {
		return nil, nil, false
	}
	return &j, h, true
}

// save replaces the journal at path; a crash leaves the old or the new one.
func (j *journal) save(path string) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(j); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write resume journal: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write resume journal: %w", err)
	}
	return nil
}

// md5State saves h's state; crypto/md5 documents that it can.
func md5State(h hash.Hash) ([]byte, error) {
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return nil, fmt.Errorf("%T cannot save its state", h)
	}
	return m.MarshalBinary()
}
