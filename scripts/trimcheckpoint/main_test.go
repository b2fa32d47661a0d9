package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestTrim trims a synthetic checkpoint and reads the result strictly: the
// pages of an executable mapping stay (cut out of a run that goes on into
// a large mapping), as do the stack, a small mapping and the first page of
// a shared memory object; the rest reads as never captured.
func TestTrim(t *testing.T) {
	const ps = 4096
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(100, 0)
	p.Comm = "srv"
	p.SetExe("/bin/srv")
	fill := func(i int, pg []byte) { pg[0], pg[ps-1] = byte(i+1), 0xee }
	p.AddVMA(0x10000000, 0x10004000, criuimg.ProtRead|criuimg.ProtWrite|criuimg.ProtExec, criuimg.MapPrivate|criuimg.MapAnonymous, 0, "")
	p.AddAnon(0x10004000, 0x10024000)
	p.AddPagesFunc(0x10000000, 4+32, fill) // one run over both
	p.AddAnon(0x20000000, 0x20001000)
	p.AddPages(0x20000000, []byte("small"), criuimg.PEPresent)
	p.AddAnon(0x30000000, 0x30002000)
	p.AddPagesFunc(0x30000000, 2, fill)
	stack := p.SetArgs([]string{"srv", "--flag"})
	p.AddPagesFunc(stack.GetStart(), 2, fill)
	s := c.AddShmem(7, 3*ps)
	s.AddPagesFunc(0, 3, fill)
	p.MapShmem(0x40000000, s, 0, criuimg.ProtRead|criuimg.ProtWrite)

	in := t.TempDir()
	if err := c.Write(filepath.Join(in, "images")); err != nil {
		t.Fatal(err)
	}
	info := filepath.Join(in, "info")
	files := map[string]string{
		"versions.txt":    "program=srv\nversion=srv 1.0\nroot_pid=100\nkernel=6.18\n",
		"maps-100.txt":    "10000000-10004000 rwxp 00000000 00:00 0 \n10004000-10024000 rw-p 00000000 00:00 0 \n",
		"cmdline-100.txt": "srv\n--flag\n",
		"status-100.txt":  "Name:\tsrv\nThreads:\t1\n",
	}
	if err := os.MkdirAll(info, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(info, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "srv")
	tr := trimmer{small: ps, shmem: ps}
	if err := tr.run(in, out, "test JIT"); err != nil {
		t.Fatal(err)
	}

	pr := imgtest.LoadProcess(t, filepath.Join(out, "images"), 100)
	kinds := func(start, end uint64) map[criuimg.ExtentKind]uint64 {
		got := map[criuimg.ExtentKind]uint64{}
		if err := pr.Mem.Extents(start, end, func(e criuimg.Extent) error {
			got[e.Kind] += e.End - e.Start
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, tt := range []struct {
		name           string
		start, end     uint64
		captured, zero uint64
	}{
		{name: "executable", start: 0x10000000, end: 0x10004000, captured: 4 * ps},
		{name: "large", start: 0x10004000, end: 0x10024000, zero: 32 * ps},
		{name: "small", start: 0x20000000, end: 0x20001000, captured: ps},
		{name: "large2", start: 0x30000000, end: 0x30002000, zero: 2 * ps},
		{name: "shmem", start: 0x40000000, end: 0x40003000, captured: ps, zero: 2 * ps},
		{name: "stack", start: stack.GetStart(), end: stack.GetEnd(), captured: 3 * ps, zero: stack.GetEnd() - stack.GetStart() - 3*ps},
	} {
		got := kinds(tt.start, tt.end)
		if got[criuimg.Captured] != tt.captured || got[criuimg.Zero] != tt.zero {
			t.Errorf("%s: %v, want %d captured, %d zero", tt.name, got, tt.captured, tt.zero)
		}
	}
	b := make([]byte, 4*ps)
	if _, err := pr.Mem.ReadAt(b, 0x10000000); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if b[i*ps] != byte(i+1) || b[i*ps+ps-1] != 0xee {
			t.Errorf("executable page %d: %#x ... %#x", i, b[i*ps], b[i*ps+ps-1])
		}
	}
	small := make([]byte, 5)
	if _, err := pr.Mem.ReadAt(small, 0x20000000); err != nil || string(small) != "small" {
		t.Errorf("small mapping %q (%v)", small, err)
	}
	args := make([]byte, pr.MM.GetMmArgEnd()-pr.MM.GetMmArgStart())
	if _, err := pr.Mem.ReadAt(args, int64(pr.MM.GetMmArgStart())); err != nil || !bytes.Equal(args, []byte("srv\x00--flag\x00")) {
		t.Errorf("argv %q (%v)", args, err)
	}

	var m Manifest
	mb, err := os.ReadFile(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	if m.Program != "srv" || m.RootPid != 100 || m.JIT != "test JIT" || len(m.Procs) != 1 ||
		len(m.Procs[0].AnonExec) != 1 || m.Procs[0].AnonExec[0] != (Mapping{Start: "0x10000000", End: "0x10004000", Perms: "rwxp"}) ||
		m.Procs[0].Comm != "srv" || len(m.Procs[0].Cmdline) != 2 {
		t.Errorf("manifest %+v", m)
	}
	want := map[string][2]uint64{"pagemap-100.img": {(4 + 1 + 3) * ps, (32 + 2) * ps}, "pagemap-shmem-7.img": {ps, 2 * ps}}
	for _, tr := range m.Trims {
		if w := want[tr.Pagemap]; tr.KeptBytes != w[0] || tr.DroppedBytes != w[1] {
			t.Errorf("%s: kept %d dropped %d, want %v", tr.Pagemap, tr.KeptBytes, tr.DroppedBytes, w)
		}
	}
	if len(m.Trims) != 2 {
		t.Errorf("trims %+v", m.Trims)
	}
}
