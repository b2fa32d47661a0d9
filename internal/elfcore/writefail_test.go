package elfcore

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// failingOutput passes writes to f until left bytes have been written,
// then fails like a full disk.
type failingOutput struct {
	f    *os.File
	left int64
}

func (o *failingOutput) WriteAt(b []byte, off int64) (int, error) {
	if int64(len(b)) <= o.left {
		o.left -= int64(len(b))
		return o.f.WriteAt(b, off)
	}
	n, _ := o.f.WriteAt(b[:o.left], off)
	o.left = 0
	return n, &os.PathError{Op: "write", Path: o.f.Name(), Err: syscall.ENOSPC}
}

func (o *failingOutput) Truncate(n int64) error { return o.f.Truncate(n) }

// testPlan is a core of two segments whose pieces come from a reader that
// is not a file (the buffered path) and more than one buffer long.
func testPlan() *Plan {
	data := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	src := bytes.NewReader(data)
	return &Plan{Machine: elf.EM_X86_64, PageSize: 4096,
		Notes: []Note{{Name: "CORE", Type: 1, Desc: make([]byte, 336)}},
		Segments: []Segment{
			{Vaddr: 0x400000, Memsz: 1 << 20, Filesz: 1 << 20, Flags: elf.PF_R, Pieces: []Piece{{Off: 0, Len: 1 << 20, Src: src}}},
			{Vaddr: 0x800000, Memsz: 2 << 20, Filesz: 2 << 20, Flags: elf.PF_R | elf.PF_W, Pieces: []Piece{{Off: 4096, Len: 2<<20 - 8192, Src: src, SrcOff: 1 << 20}}},
		}}
}

// dirNames lists dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestWriteFileFailingWrite: a write error anywhere in a core (disk full)
// leaves no file, neither the core nor its temporary file, and the error
// names the core and the cause.
func TestWriteFileFailingWrite(t *testing.T) {
	p := testPlan()
	if err := p.Layout(); err != nil {
		t.Fatal(err)
	}
	hdr := int64(len(p.header()))
	for _, after := range []int64{0, hdr - 1, hdr, hdr + 1000, hdr + 1<<20 + 5, hdr + 3<<20 - 8192 - 1} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			dir := t.TempDir()
			ops := fileOps{output: func(f *os.File) Output { return &failingOutput{f: f, left: after} }}
			err := writeFile(dir, "core.42", testPlan(), false, nil, ops)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), filepath.Join(dir, "core.42")) {
				t.Errorf("error %q: want ENOSPC and the core's path", err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("left behind: %v", names)
			}
		})
	}
	// The same plan with a working writer succeeds.
	dir := t.TempDir()
	if err := WriteFile(dir, "core.42", testPlan(), false, nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(filepath.Join(dir, "core.42"))
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Fatalf("core: %v %v", st, err)
	}
}

// TestWriteFileAppearedMeanwhile: a core that appears at the name
// between the check and the naming of the new core (made by the test
// output while the core is written) is kept, and the error says it
// exists. (Where renameat2(RENAME_NOREPLACE) is missing, outfile's
// TestLinkNoReplaceFallback.)
func TestWriteFileAppearedMeanwhile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "core.2"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeFileSkippingCheck(dir, "core.2", fileOps{})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("error %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "core.2")); string(b) != "old" {
		t.Errorf("existing core overwritten")
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("dir holds %v", names)
	}
}

// writeFileSkippingCheck runs WriteFile as if dir/name appeared after its
// Lstat check: the test output creates it when the core is written.
func writeFileSkippingCheck(dir, name string, ops fileOps) error {
	tmp := filepath.Join(dir, ".moved")
	if err := os.Rename(filepath.Join(dir, name), tmp); err != nil {
		return err
	}
	ops.output = func(f *os.File) Output {
		os.Rename(tmp, filepath.Join(dir, name))
		return f
	}
	return writeFile(dir, name, testPlan(), false, nil, ops)
}

// TestWriteFileSymlink: a symlink where the core goes is never followed:
// without force the core is refused, with force the link itself is
// replaced by the core.
func TestWriteFileSymlink(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	victim := filepath.Join(other, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "core.7")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dir, "core.7", testPlan(), false, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("without force: %v, want ErrExists", err)
	}
	if err := WriteFile(dir, "core.7", testPlan(), true, nil); err != nil {
		t.Fatalf("with force: %v", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Errorf("victim changed: %q", b)
	}
	st, err := os.Lstat(link)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Errorf("core.7 after force: %v %v", st, err)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("dir holds %v", names)
	}
}

// TestWriteFileDirInTheWay: a directory at the core's name is never
// replaced, also with force, and the error says it is a directory.
func TestWriteFileDirInTheWay(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "core.7"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		err := WriteFile(dir, "core.7", testPlan(), force, nil)
		if !errors.Is(err, ErrIsDir) || !strings.Contains(err.Error(), "core.7: is a directory") {
			t.Errorf("force %v: %v, want ErrIsDir", force, err)
		}
	}
	if st, err := os.Lstat(filepath.Join(dir, "core.7")); err != nil || !st.IsDir() {
		t.Errorf("core.7 is no longer the directory: %v %v", st, err)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("dir holds %v", names)
	}
}

// TestWriteFileNoTempNameInErrors: where the core cannot be created, the
// error names the core and the directory, not an internal temporary name.
func TestWriteFileNoTempNameInErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing") // ENOENT for root as well
	err := WriteFile(dir, "core.7", testPlan(), false, nil)
	if err == nil || !strings.HasPrefix(err.Error(), filepath.Join(dir, "core.7")+": creating the core in "+dir+": ") || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("error %v", err)
	}
}
