package state

import (
	"errors"
	"fmt"
)

// ErrInvalidName is wrapped by the error every Store returns for a run id,
// blob name or log name it cannot store safely.
var ErrInvalidName = errors.New("invalid name")

// maxNameLen keeps names well under file-system (255 bytes) and S3 key
// (1024 bytes) limits once a prefix and a chunk suffix are added.
const maxNameLen = 200

// CheckName reports whether name is usable as a run id, blob name or log name
// in every store: 1 to 200 characters from [A-Za-z0-9._-], not starting with a
// dot. That keeps names portable as file names and S3 key segments, and rules
// out path tricks such as "..". kind names the thing in the message ("run id").
func CheckName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidName, kind)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: %s %.20q... longer than %d characters", ErrInvalidName, kind, name, maxNameLen)
	}
	if name[0] == '.' {
		return fmt.Errorf("%w: %s %q starts with a dot", ErrInvalidName, kind, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			return fmt.Errorf("%w: %s %q contains %q (allowed: letters, digits, '.', '-', '_')",
				ErrInvalidName, kind, name, c)
		}
	}
	return nil
}
