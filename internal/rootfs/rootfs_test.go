package rootfs_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/coredump"
	"github.com/ckpt2core/ckpt2core/internal/elfcore"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/rootfs"
)

var counter = imgtest.Testdata("x86_64/counter/images")

func convert(t *testing.T, files elfcore.MappedFiles, pid uint32) (string, *elfcore.Plan) {
	t.Helper()
	p := imgtest.LoadProcess(t, counter, pid)
	plan, err := elfcore.BuildWith(p, elfcore.Options{Files: files})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := elfcore.WriteFile(dir, "core", plan, false, nil); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "core"), plan
}

// openRoot opens a Root over dir for the counter fixture.
func openRoot(t *testing.T, dir string) *rootfs.Root {
	t.Helper()
	r, err := rootfs.Open(dir, imgtest.OpenDir(t, counter))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestHostRoot converts python3 of the counter fixture with --root / and
// checks that every file-backed mapping whose host file has the build-id
// CRIU recorded is in the core whole, with the file's bytes.
func TestHostRoot(t *testing.T) {
	path, plan := convert(t, openRoot(t, "/"), 3760)
	c, err := coredump.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	files, _, err := c.Files()
	if err != nil {
		t.Fatal(err)
	}
	refused := strings.Join(plan.Warnings, "\n")
	checked := 0
	for _, fe := range files {
		if strings.Contains(refused, fe.Name) {
			continue // the host's file does not fit: left to the debugger
		}
		data, err := os.ReadFile(fe.Name)
		if err != nil {
			t.Fatalf("%s accepted but unreadable: %v", fe.Name, err)
		}
		// Only pages CRIU did not capture come from the file; pages it
		// captured (relocations, COW) may differ from the file.
		for a := fe.Start; a < fe.End; a += 4096 {
			off := fe.PageOffset*4096 + (a - fe.Start)
			got, err := c.ReadAt(a, 4096)
			if err != nil {
				t.Fatalf("%s at %#x: not in the core: %v", fe.Name, a, err)
			}
			want := make([]byte, 4096)
			if off < uint64(len(data)) {
				copy(want, data[off:])
			}
			if !bytes.Equal(got, want) && !capturedPage(t, a) {
				t.Fatalf("%s at %#x (file offset %#x): core bytes differ from the file", fe.Name, a, off)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Skipf("no host file matched the checkpoint's build-ids (warnings: %s)", refused)
	}
	t.Logf("%d file pages checked; refused: %q", checked, plan.Warnings)
}

var capturedSet map[uint64]bool

func capturedPage(t *testing.T, a uint64) bool {
	if capturedSet == nil {
		idx, err := criuimg.ReadPageIndex(imgtest.DirSource(t, counter), "pagemap-3760.img", 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer idx.Close()
		capturedSet = map[uint64]bool{}
		for _, r := range idx.Runs {
			for x := r.Addr; x < r.Addr+r.Len; x += 4096 {
				capturedSet[x] = true
			}
		}
	}
	return capturedSet[a]
}

// TestRefusesWrongFile offers files of the wrong size and content under
// the recorded paths: none may be used, each refusal names the file.
func TestRefusesWrongFile(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"usr/bin/bash", "usr/lib/x86_64-linux-gnu/libc.so.6"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("not the right file"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink escaping the root must not be followed.
	if err := os.Symlink("/usr/lib/x86_64-linux-gnu/libtinfo.so.6.4", filepath.Join(dir, "usr/lib/x86_64-linux-gnu/libtinfo.so.6.4")); err != nil {
		t.Fatal(err)
	}
	path, plan := convert(t, openRoot(t, dir), 3757)
	w := strings.Join(plan.Warnings, "\n")
	for _, want := range []string{"/usr/bin/bash", "libc.so.6", "libtinfo.so.6.4"} {
		if !strings.Contains(w, want) {
			t.Errorf("no warning naming %s; warnings:\n%s", want, w)
		}
	}
	// Without usable files the core equals the one written without --root.
	plain, _ := convert(t, nil, 3757)
	a, _ := os.ReadFile(path)
	b, _ := os.ReadFile(plain)
	if !bytes.Equal(a, b) {
		t.Errorf("core with refused files differs from the core without --root")
	}
}
