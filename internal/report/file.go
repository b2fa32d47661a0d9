package report

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrSymlink is returned by WriteFile when the output path is a symbolic
// link: it is neither followed nor replaced.
var ErrSymlink = errors.New("is a symbolic link (not followed, not replaced)")

// WriteFile writes what write produces to path, mode 0600: into an
// anonymous file in path's directory (O_TMPFILE; elsewhere a new file
// with a temporary name, O_EXCL), which is named path only once complete
// (rename(2), which replaces an existing regular file). A failure, and a
// SIGKILL with O_TMPFILE, leaves nothing behind.
func WriteFile(path string, write func(io.Writer) error) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if st, err := os.Lstat(path); err == nil {
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			return fmt.Errorf("%s: %w", path, ErrSymlink)
		case !st.Mode().IsRegular():
			return fmt.Errorf("%s: not a regular file (not replaced)", path)
		}
	}
	var f *os.File
	tmp := ""
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		f = os.NewFile(uintptr(fd), path)
	} else {
		if f, err = os.CreateTemp(dir, "."+name+".tmp-*"); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		tmp = f.Name()
	}
	done := false
	defer func() {
		if !done {
			f.Close()
			if tmp != "" {
				os.Remove(tmp)
			}
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := write(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if tmp == "" {
		if tmp, err = linkTemp(f, dir, name); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	done = true
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// linkTemp names the anonymous file f in dir with a new temporary name.
func linkTemp(f *os.File, dir, name string) (string, error) {
	var buf [8]byte
	for range 100 {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.tmp-%x", name, buf))
		err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, syscall.ENOENT) {
			err = unix.Linkat(int(f.Fd()), "", unix.AT_FDCWD, tmp, unix.AT_EMPTY_PATH)
		}
		if errors.Is(err, syscall.EEXIST) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("naming the finished file: %w", err)
		}
		return tmp, nil
	}
	return "", fmt.Errorf("naming the finished file: no free temporary name in %s", dir)
}
