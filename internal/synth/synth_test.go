package synth

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/coredump"
	"github.com/ckpt2core/ckpt2core/internal/elfcore"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// write writes s into a new directory of tb's.
func write(tb testing.TB, s *Shape) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "images")
	if err := s.Write(dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// load loads the single process of the checkpoint in dir and plans its
// core. The caller closes the process (not tb.Cleanup: the benchmarks
// load it on every iteration).
func load(tb testing.TB, dir string) (*criuimg.Process, *elfcore.Plan) {
	tb.Helper()
	p, err := imgtest.OpenDir(tb, dir).LoadProcess(Pid)
	if err != nil {
		tb.Fatal(err)
	}
	pl, err := elfcore.BuildWith(p, elfcore.Options{})
	if err != nil {
		p.Close()
		tb.Fatal(err)
	}
	return p, pl
}

// convert converts the single process of the checkpoint in dir into out
// and returns the core's path and the bytes of captured pages copied.
func convert(tb testing.TB, dir, out string) (string, uint64) {
	tb.Helper()
	p, plan := load(tb, dir)
	defer p.Close()
	var copied uint64
	name := fmt.Sprintf("core.%d", Pid)
	if err := elfcore.WriteFile(out, name, plan, true, func(n uint64) { copied += n }); err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(out, name), copied
}

// plan loads the process and plans its core, writing nothing.
func plan(tb testing.TB, dir string) *elfcore.Plan {
	tb.Helper()
	p, pl := load(tb, dir)
	p.Close()
	return pl
}

// check opens the core with internal/coredump (which reads PN_XNUM cores)
// and compares it with the shape: PT_LOAD count, threads, and the first 8
// bytes of the probe page and of the first captured page of every PT_LOAD
// with file bytes.
func check(t *testing.T, s *Shape, path string) {
	t.Helper()
	c, err := coredump.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Loads) != s.Loads {
		t.Errorf("%d PT_LOADs, want %d", len(c.Loads), s.Loads)
	}
	ts, err := c.ThreadsErr()
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != s.Threads {
		t.Errorf("%d threads, want %d", len(ts), s.Threads)
	}
	b, err := c.ReadAt(s.Probe, 8)
	if err != nil {
		t.Fatalf("probe %#x: %v", s.Probe, err)
	}
	if got := binary.LittleEndian.Uint64(b); got != s.Probe {
		t.Errorf("probe %#x reads %#x", s.Probe, got)
	}
}

// TestShapes converts small versions of the benchmark's checkpoints.
func TestShapes(t *testing.T) {
	for _, s := range []*Shape{Large(8 << 20), ManyVMAs(2000, false), Threads(64)} {
		t.Run(s.Name, func(t *testing.T) {
			dir := write(t, s)
			fi, err := os.Stat(filepath.Join(dir, "pages-1.img"))
			if err != nil {
				t.Fatal(err)
			}
			if uint64(fi.Size()) != s.Captured {
				t.Errorf("pages file has %d bytes, the shape says %d", fi.Size(), s.Captured)
			}
			path, copied := convert(t, dir, t.TempDir())
			if copied != s.Captured {
				t.Errorf("%d bytes of pages copied, want %d", copied, s.Captured)
			}
			check(t, s, path)
		})
	}
}

// TestPNXnum converts a checkpoint with more than 65,535 mappings: the
// core has more program headers than e_phnum can count, so it uses PN_XNUM
// (e_phnum 0xffff, the count in section 0's sh_info) as the kernel does.
// gdb must read it (if installed): every PT_LOAD, and the probe page in
// the last mapping.
func TestPNXnum(t *testing.T) {
	if testing.Short() {
		t.Skip("70,000 mappings")
	}
	start := time.Now()
	s := ManyVMAs(70000, true)
	dir := write(t, s)
	path, _ := convert(t, dir, t.TempDir())
	t.Logf("generated and converted in %v", time.Since(start))
	hdr := make([]byte, 64)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadAt(hdr, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if phnum := binary.LittleEndian.Uint16(hdr[56:]); phnum != 0xffff {
		t.Errorf("e_phnum %#x, want PN_XNUM", phnum)
	}
	check(t, s, path)

	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Skip("no gdb")
	}
	out, err := exec.Command(gdb, "-nx", "-batch", "-ex", fmt.Sprintf("x/gx %#x", s.Probe), "-ex", "info files", "--core", path).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	want := fmt.Sprintf("%#x:\t0x%016x", s.Probe, s.Probe)
	if !strings.Contains(string(out), want) {
		t.Errorf("gdb's x/gx does not show %q:\n%.2000s", want, out)
	}
	if n := strings.Count(string(out), " is load"); n != s.Loads {
		t.Errorf("gdb's info files lists %d load sections, want %d", n, s.Loads)
	}
}
