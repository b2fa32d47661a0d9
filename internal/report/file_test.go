package report

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestWriteFile: the page is written 0600 and replaces an earlier one; a
// symlink or a directory at the path is left alone (ErrSymlink, not a
// regular file); a failing write or a missing directory leaves nothing,
// and the error names the path, never a temporary name.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "r.html")
	for _, body := range []string{"first", "second"} {
		if err := WriteFile(page, func(w io.Writer) error { _, err := io.WriteString(w, body); return err }); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(page)
		st, err := os.Lstat(page)
		if string(b) != body || err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("page %q, %v %v", b, st, err)
		}
	}
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	link := filepath.Join(dir, "link.html")
	os.Symlink(victim, link)
	if err := WriteFile(link, func(io.Writer) error { return nil }); !errors.Is(err, ErrSymlink) {
		t.Errorf("symlink: %v, want ErrSymlink", err)
	}
	os.Mkdir(filepath.Join(dir, "d.html"), 0o700)
	if err := WriteFile(filepath.Join(dir, "d.html"), func(io.Writer) error { return nil }); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	full := errors.New("disk full")
	if err := WriteFile(filepath.Join(dir, "failed.html"), func(w io.Writer) error { io.WriteString(w, "part"); return full }); !errors.Is(err, full) {
		t.Errorf("failing write: %v", err)
	}
	missing := filepath.Join(dir, "missing", "r.html")
	err := WriteFile(missing, func(io.Writer) error { return nil })
	if !errors.Is(err, syscall.ENOENT) || !strings.HasPrefix(err.Error(), missing+": ") || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("missing directory: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("victim %q", b)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "d.html link.html r.html" {
		t.Errorf("dir holds %v", names)
	}
}
