package outfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
)

// modes are the two ways a file is created: anonymous (O_TMPFILE) and,
// as where the filesystem has none, under a temporary name.
var modes = []struct {
	name      string
	noTmpfile bool
}{{"O_TMPFILE", false}, {"temporary name", true}}

func openDir(t *testing.T, path string) *os.File {
	t.Helper()
	d, err := OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func write(t *testing.T, d *os.File, noTmpfile bool, data string) *File {
	t.Helper()
	f, err := create(d, ".t.tmp-", noTmpfile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Discard)
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	return f
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCommit: a committed file has its name, its bytes, mode 0600 (also
// under a umask that would take bits), and nothing else is left in the
// directory.
func TestCommit(t *testing.T) {
	old := syscall.Umask(0o277)
	defer syscall.Umask(old)
	for _, m := range modes {
		for _, replace := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/replace=%v", m.name, replace), func(t *testing.T) {
				dir := t.TempDir()
				d := openDir(t, dir)
				f := write(t, d, m.noTmpfile, "hello")
				if m.noTmpfile == (f.TempName() == "") {
					t.Fatalf("TempName %q with noTmpfile %v", f.TempName(), m.noTmpfile)
				}
				var err error
				if replace {
					err = f.Replace("out")
				} else {
					err = f.Link("out")
				}
				if err != nil {
					t.Fatal(err)
				}
				f.Discard() // after a commit: nothing
				if got := readFile(t, filepath.Join(dir, "out")); got != "hello" {
					t.Errorf("content %q", got)
				}
				st, err := os.Lstat(filepath.Join(dir, "out"))
				if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
					t.Errorf("out: %v %v, want a regular file 0600", st, err)
				}
				if n := names(t, dir); len(n) != 1 {
					t.Errorf("dir holds %v", n)
				}
			})
		}
	}
}

// TestExistingTarget: Link never replaces an existing file (fs.ErrExist,
// and the file may then be linked under another name); Replace does.
func TestExistingTarget(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			old := filepath.Join(dir, "out")
			if err := os.WriteFile(old, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			d := openDir(t, dir)
			f := write(t, d, m.noTmpfile, "new")
			if err := f.Link("out"); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Link over a file: %v, want fs.ErrExist", err)
			}
			if got := readFile(t, old); got != "old" {
				t.Errorf("existing file now %q", got)
			}
			if err := f.Link("out-2"); err != nil {
				t.Fatalf("Link under a free name after EEXIST: %v", err)
			}
			if got := readFile(t, filepath.Join(dir, "out-2")); got != "new" {
				t.Errorf("out-2 %q", got)
			}
			g := write(t, d, m.noTmpfile, "newer")
			if err := g.Replace("out"); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, old); got != "newer" {
				t.Errorf("replaced file %q", got)
			}
			if n := names(t, dir); len(n) != 2 {
				t.Errorf("dir holds %v", n)
			}
		})
	}
}

// TestSymlinkAtTarget: a symlink at the name is never followed: Link
// fails and Replace replaces the link itself.
func TestSymlinkAtTarget(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir, other := t.TempDir(), t.TempDir()
			victim := filepath.Join(other, "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(dir, "out")
			if err := os.Symlink(victim, link); err != nil {
				t.Fatal(err)
			}
			// A dangling symlink is not followed either.
			if err := os.Symlink(filepath.Join(other, "missing"), filepath.Join(dir, "dangling")); err != nil {
				t.Fatal(err)
			}
			d := openDir(t, dir)
			f := write(t, d, m.noTmpfile, "x")
			for _, n := range []string{"out", "dangling"} {
				if err := f.Link(n); !errors.Is(err, fs.ErrExist) {
					t.Errorf("Link over symlink %s: %v, want fs.ErrExist", n, err)
				}
			}
			if err := f.Replace("out"); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, victim); got != "precious" {
				t.Errorf("victim now %q", got)
			}
			if _, err := os.Stat(filepath.Join(other, "missing")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("dangling symlink target created: %v", err)
			}
			st, err := os.Lstat(link)
			if err != nil || !st.Mode().IsRegular() {
				t.Errorf("out: %v %v, want the regular file", st, err)
			}
		})
	}
}

// TestDirectoryAtTarget: a directory at the name is never replaced.
func TestDirectoryAtTarget(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "out"), 0o700); err != nil {
				t.Fatal(err)
			}
			d := openDir(t, dir)
			f := write(t, d, m.noTmpfile, "x")
			if err := f.Link("out"); !errors.Is(err, fs.ErrExist) {
				t.Errorf("Link: %v, want fs.ErrExist", err)
			}
			if err := f.Replace("out"); !errors.Is(err, syscall.EISDIR) {
				t.Errorf("Replace: %v, want EISDIR", err)
			}
			f.Discard()
			if n := names(t, dir); len(n) != 1 || n[0] != "out" {
				t.Errorf("dir holds %v", n)
			}
		})
	}
}

// TestWriteErrorLeavesNothing: a file whose writing fails (here: the
// disk is full, a 4 KiB tmpfs) and is discarded leaves nothing, in
// either mode. Without a tmpfs to mount (not root), a closed-file write
// error stands in.
func TestWriteErrorLeavesNothing(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			dir := t.TempDir()
			full := false
			if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4k"); err == nil {
				full = true
				// Registered before openDir's: runs after the
				// directory is closed.
				t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
			}
			d := openDir(t, dir)
			f, err := create(d, ".t.tmp-", m.noTmpfile)
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			if full {
				_, werr = f.Write(make([]byte, 1<<20))
				if !errors.Is(werr, syscall.ENOSPC) {
					t.Errorf("write on a full tmpfs: %v, want ENOSPC", werr)
				}
			} else {
				f.File.Close()
				_, werr = f.Write([]byte("x"))
			}
			if werr == nil {
				t.Fatal("no write error")
			}
			f.Discard()
			if n := names(t, dir); len(n) != 0 {
				t.Errorf("left behind: %v", n)
			}
		})
	}
}

// TestNameConfinement: only single path components are accepted as
// names; nothing is written outside the directory, even through a
// directory symlink inside it.
func TestNameConfinement(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "out")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(parent, filepath.Join(dir, "up")); err != nil {
				t.Fatal(err)
			}
			d := openDir(t, dir)
			f := write(t, d, m.noTmpfile, "x")
			for _, n := range []string{"", ".", "..", "../escape", "up/escape", "/tmp/escape", "a\x00b"} {
				if err := f.Link(n); !errors.Is(err, ErrName) {
					t.Errorf("Link(%q): %v, want ErrName", n, err)
				}
				if err := f.Replace(n); !errors.Is(err, ErrName) {
					t.Errorf("Replace(%q): %v, want ErrName", n, err)
				}
			}
			if _, err := create(d, "../x", m.noTmpfile); !errors.Is(err, ErrName) {
				t.Errorf("prefix with a slash: %v, want ErrName", err)
			}
			f.Discard()
			if n := names(t, parent); len(n) != 1 || n[0] != "out" {
				t.Errorf("parent holds %v", n)
			}
			if n := names(t, dir); len(n) != 1 || n[0] != "up" {
				t.Errorf("dir holds %v", n)
			}
		})
	}
}

// TestDirFdConfinement: the file goes into the directory that was
// opened, even when its path is swapped for a symlink elsewhere
// afterwards.
func TestDirFdConfinement(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			parent, other := t.TempDir(), t.TempDir()
			dir := filepath.Join(parent, "out")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			d := openDir(t, dir)
			if err := os.Rename(dir, filepath.Join(parent, "moved")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, dir); err != nil {
				t.Fatal(err)
			}
			f := write(t, d, m.noTmpfile, "x")
			if err := f.Link("core"); err != nil {
				t.Fatal(err)
			}
			if n := names(t, other); len(n) != 0 {
				t.Errorf("written through the swapped symlink: %v", n)
			}
			if n := names(t, filepath.Join(parent, "moved")); len(n) != 1 || n[0] != "core" {
				t.Errorf("opened directory holds %v", n)
			}
		})
	}
}

// TestLinkNoReplaceFallback: where renameat2(RENAME_NOREPLACE) is not
// supported, a file with a temporary name is linked into place, still
// never over an existing file.
func TestLinkNoReplaceFallback(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EINVAL, syscall.ENOSYS} {
		t.Run(errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "taken"), []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			d := openDir(t, dir)
			calls := 0
			unsupported := func(int, string, int, string) error { calls++; return errno }
			f := write(t, d, true, "x")
			f.renameNoReplace = unsupported
			if err := f.Link("taken"); !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Link over a file: %v, want fs.ErrExist", err)
			}
			if got := readFile(t, filepath.Join(dir, "taken")); got != "old" {
				t.Errorf("existing file overwritten: %q", got)
			}
			if err := f.Link("core"); err != nil {
				t.Fatal(err)
			}
			if calls != 2 {
				t.Errorf("renameat2 called %d times, want 2", calls)
			}
			if n := names(t, dir); len(n) != 2 || n[0] != "core" || n[1] != "taken" {
				t.Errorf("dir holds %v, want [core taken]", n)
			}
		})
	}
}
