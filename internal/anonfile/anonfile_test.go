package anonfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNew: with O_TMPFILE and without, the file holds what is written,
// is mode 0600, and has no name in its directory from the moment New
// returns; a missing directory is an error naming it.
func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name      string
		noTmpfile bool
	}{
		{"O_TMPFILE", false},
		{"created and removed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f, err := create(dir, "test file", tc.noTmpfile)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("names in the directory: %v", ents)
			}
			if _, err := f.WriteAt([]byte("secret"), 100); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 6)
			if _, err := f.ReadAt(b, 100); err != nil || string(b) != "secret" {
				t.Errorf("read back %q, %v", b, err)
			}
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm()&^0o600 != 0 {
				t.Errorf("mode %v, want at most 0600", st.Mode())
			}
			link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(link, dir+"/") || !strings.HasSuffix(link, " (deleted)") {
				t.Errorf("/proc/self/fd link %q, want a deleted file of %s", link, dir)
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "missing")
	for _, noTmpfile := range []bool{false, true} {
		_, err := create(missing, "test file", noTmpfile)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "test file") {
			t.Errorf("noTmpfile %v: %v, want a not-exist error naming %s and the file", noTmpfile, err, missing)
		}
	}
}
