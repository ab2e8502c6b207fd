//go:build !linux

package msd

import "os"

// Direct I/O is only used on Linux.
const oDirect = 0

func clearDirect(*os.File) error { return nil }
