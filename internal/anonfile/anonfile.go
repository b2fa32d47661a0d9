// Package anonfile creates scratch files that have no name, for the
// bytes of a checkpoint that must go to disk for a while (spooled archive
// members, a decompressed rootfs-diff.tar): they are reached by
// descriptor only, and the kernel frees them when the process ends,
// however it ends (SIGKILL included).
package anonfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// fallbackPrefix begins the name of the short-lived file New makes where
// the filesystem has no O_TMPFILE.
const fallbackPrefix = ".ckpt2core-anon-"

// New creates a file in dir ("" = os.TempDir()), mode 0600, open for
// reading and writing, that has no name: O_TMPFILE where the filesystem
// supports it, else a new file removed right after it is created (a
// SIGKILL between the two calls can leave that one behind, empty). what
// says what the file is for, in its Name and in errors.
func New(dir, what string) (*os.File, error) {
	return create(dir, what, false)
}

// create is New; noTmpfile takes the fallback (tests).
func create(dir, what string, noTmpfile bool) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	err := error(unix.EOPNOTSUPP)
	if !noTmpfile {
		var fd int
		fd, err = unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err == nil {
			return os.NewFile(uintptr(fd), filepath.Join(dir, "(anonymous "+what+")")), nil
		}
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return nil, fmt.Errorf("anonymous %s in %s: %w", what, dir, err)
	}
	// No O_TMPFILE here: a named file, unlinked at once.
	f, err := os.CreateTemp(dir, fallbackPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("anonymous %s: %w", what, err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("anonymous %s: %w", what, err)
	}
	return f, nil
}
