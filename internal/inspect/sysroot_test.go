package inspect

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestSysrootRefusesSpecialFiles: the checkpoint names the files whose
// code inspect --root reads. Where libc.so.6 (the code of three threads
// of the arm64 threads-c fixture) is a FIFO, a directory or a symbolic
// link leaving the sysroot, it must not be read (nor a FIFO opened: that
// blocks), and the code is reported as not captured.
func TestSysrootRefusesSpecialFiles(t *testing.T) {
	dir := filepath.Join(testdata, "arm64/threads-c")
	realLibc, err := filepath.Abs(filepath.Join(dir, "sysroot/usr/lib/aarch64-linux-gnu/libc.so.6"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(realLibc); err != nil {
		t.Fatalf("fixture missing: %v", err)
	}
	for _, tc := range []struct {
		name string
		make func(string) error
	}{
		{"regular", func(p string) error { // the control: libc is used
			b, err := os.ReadFile(realLibc)
			if err != nil {
				return err
			}
			return os.WriteFile(p, b, 0o644)
		}},
		{"another-libc", func(p string) error { // not the file CRIU recorded
			b, err := os.ReadFile(realLibc)
			if err != nil {
				return err
			}
			return os.WriteFile(p, b[:len(b)-1], 0o644)
		}},
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }},
		{"escaping-symlink", func(p string) error { return os.Symlink(realLibc, p) }},
		{"dotdot-symlink", func(p string) error {
			return os.Symlink("../../../../../../../../../../../../.."+realLibc, p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			lib := filepath.Join(root, "usr/lib/aarch64-linux-gnu")
			if err := os.MkdirAll(lib, 0o755); err != nil {
				t.Fatal(err)
			}
			libc := filepath.Join(lib, "libc.so.6")
			if err := tc.make(libc); err != nil {
				t.Fatal(err)
			}
			ck := imgtest.OpenDir(t, filepath.Join(dir, "images"))
			files := openRoot(t, root, ck)
			type outcome struct {
				rep *Report
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				rep, err := Inspect(ck, Options{Files: files})
				done <- outcome{rep, err}
			}()
			var rep *Report
			select {
			case o := <-done:
				if o.err != nil {
					t.Fatal(o.err)
				}
				rep = o.rep
			case <-time.After(10 * time.Second):
				// Release an open blocked on the FIFO, then fail.
				if f, err := os.OpenFile(libc, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
				t.Fatal("inspect still running after 10 s: blocked opening a mapped file")
			}
			fromSysroot := 0
			for _, p := range rep.Processes {
				for _, th := range p.Threads {
					if th.Code == CodeSysroot {
						fromSysroot++
					}
				}
			}
			want := 0
			if tc.name == "regular" {
				want = 3
			}
			if fromSysroot != want {
				t.Errorf("%d threads with code from the sysroot, want %d", fromSysroot, want)
			}
			// A refused file is named, once.
			warned := 0
			for _, p := range rep.Processes {
				for _, w := range p.Warnings {
					if strings.Contains(w, "/usr/lib/aarch64-linux-gnu/libc.so.6: code not read from the root filesystem: ") {
						warned++
					}
				}
			}
			if want == 0 && warned != 1 || want != 0 && warned != 0 {
				t.Errorf("%d warnings about libc.so.6: %q", warned, rep.Warnings)
			}
		})
	}
}
