package report

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ckpt2core/ckpt2core/internal/outfile"
)

// ErrSymlink is returned by WriteFile when the output path is a symbolic
// link: it is neither followed nor replaced.
var ErrSymlink = errors.New("is a symbolic link (not followed, not replaced)")

// WriteFile writes what write produces to path, mode 0600: into an
// anonymous file in path's directory (outfile: O_TMPFILE; elsewhere a new
// file with a temporary name, O_EXCL), which is named path only once
// complete (rename(2), which replaces an existing regular file). A
// failure, and a SIGKILL with O_TMPFILE, leaves nothing behind.
func WriteFile(path string, write func(io.Writer) error) error {
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
	d, err := outfile.OpenDir(dir)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // path names the directory already
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	defer d.Close()
	f, err := outfile.Create(d, "."+name+".tmp-")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Discard()
	if err := write(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Replace(name); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
