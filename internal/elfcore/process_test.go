package elfcore_test

import (
	"bytes"
	"debug/elf"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/elfcore"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/regs"
)

const pg = 4096

func page(s string) []byte {
	b := make([]byte, pg)
	copy(b, s)
	return b
}

type seg struct {
	vaddr, memsz, filesz uint64
}

// segmentsOf writes the plan and reads back its PT_LOADs with debug/elf.
func segmentsOf(t *testing.T, plan *elfcore.Plan) (*elf.File, []seg) {
	t.Helper()
	dir := t.TempDir()
	if err := elfcore.WriteFile(dir, "core", plan, false, nil); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(filepath.Join(dir, "core"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var segs []seg
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			segs = append(segs, seg{p.Vaddr, p.Memsz, p.Filesz})
		}
	}
	return f, segs
}

// TestSegmentPolicy checks, mapping kind by mapping kind, which bytes a
// core carries (see addSegments).
func TestSegmentPolicy(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(7, 0)
	// Anonymous, two captured pages of eight: written whole, holes between.
	p.AddAnon(0x10000, 0x18000)
	p.AddPages(0x11000, page("ANON-1"), criuimg.PEPresent)
	p.AddPages(0x16000, page("ANON-6"), criuimg.PEPresent|criuimg.PELazy)
	// Anonymous, never touched: p_filesz 0.
	p.AddAnon(0x20000, 0x24000)
	// PROT_NONE reservation: p_filesz 0.
	p.AddVMA(0x30000, 0x40000, 0, 0, 0, "")
	// A file mapping with one COW page: only that page has a PT_LOAD.
	p.AddVMA(0x50000, 0x54000, criuimg.ProtRead|criuimg.ProtWrite, 0, 0, "/usr/lib/libx.so")
	p.AddPages(0x52000, page("COW"), criuimg.PEPresent)
	// Anonymous with a page in a parent checkpoint: that page is not
	// written (no PT_LOAD), the captured one is.
	p.AddAnon(0x60000, 0x63000)
	p.AddPageEntry(0x60000, 1, criuimg.PEParent)
	p.AddPages(0x62000, page("AFTER-PARENT"), criuimg.PEPresent)
	pr := c.Load(t, 7)
	plan, err := elfcore.BuildWith(pr, elfcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, got := segmentsOf(t, plan)
	want := []seg{
		{0x10000, 0x8000, 0x8000},
		{0x20000, 0x4000, 0},
		{0x30000, 0x10000, 0},
		{0x52000, 0x1000, 0x1000},
		{0x61000, 0x2000, 0x2000},
	}
	// Stacks and arg pages the builder adds lie above 0x7f0000000000.
	var low []seg
	for _, s := range got {
		if s.vaddr < 0x7f0000000000 {
			low = append(low, s)
		}
	}
	if len(low) != len(want) {
		t.Fatalf("segments %x, want %x", low, want)
	}
	for i := range want {
		if low[i] != want[i] {
			t.Errorf("segment %d: %x, want %x", i, low[i], want[i])
		}
	}
	for _, tc := range []struct {
		addr uint64
		want string
	}{{0x11000, "ANON-1"}, {0x16000, "ANON-6"}, {0x52000, "COW"}, {0x62000, "AFTER-PARENT"}, {0x12000, "\x00\x00\x00"}} {
		if b := readVaddr(t, f, tc.addr, len(tc.want)); string(b) != tc.want {
			t.Errorf("%#x: %q, want %q", tc.addr, b, tc.want)
		}
	}
	if !slices.ContainsFunc(pr.Notes, func(n criuimg.Note) bool { return n.Kind == criuimg.NoteParentPages && n.Bytes > 0 }) {
		t.Errorf("no note about the parent checkpoint's pages: %v", pr.Notes)
	}
}

func readVaddr(t *testing.T, f *elf.File, addr uint64, n int) []byte {
	t.Helper()
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && addr >= p.Vaddr && addr+uint64(n) <= p.Vaddr+p.Filesz {
			b := make([]byte, n)
			if _, err := p.ReadAt(b, int64(addr-p.Vaddr)); err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("%#x is not in the core's file bytes", addr)
	return nil
}

// mapped serves one file's bytes for every file mapping.
type mapped struct{ data []byte }

func (m mapped) OpenMapped(v *criuimg.VMA) (io.ReaderAt, int64, error) {
	return bytes.NewReader(m.data), int64(len(m.data)), nil
}

// TestSegmentsWithFiles: with the mapped files supplied, a file mapping is
// written whole: clean pages from the file (at the mapping's offset; zero
// past its end), captured pages from the checkpoint.
func TestSegmentsWithFiles(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(7, 0)
	v := p.AddVMA(0x50000, 0x54000, criuimg.ProtRead, 0, 0, "/usr/lib/libx.so")
	v.Pgoff = new(uint64)
	*v.Pgoff = pg
	p.AddPages(0x52000, page("COW"), criuimg.PEPresent)
	pr := c.Load(t, 7)
	file := append(page("FILE-0"), page("FILE-1")...)
	file = append(file, []byte("FILE-2 ends early")...)
	plan, err := elfcore.BuildWith(pr, elfcore.Options{Files: mapped{file}})
	if err != nil {
		t.Fatal(err)
	}
	f, segs := segmentsOf(t, plan)
	found := false
	for _, s := range segs {
		if s.vaddr == 0x50000 && s.memsz == 0x4000 && s.filesz == 0x4000 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no whole segment for the file mapping: %x", segs)
	}
	for _, tc := range []struct {
		addr uint64
		want string
	}{{0x50000, "FILE-1"}, {0x51000, "FILE-2 ends early\x00"}, {0x52000, "COW"}, {0x53000, "\x00\x00"}} {
		if b := readVaddr(t, f, tc.addr, len(tc.want)); string(b) != tc.want {
			t.Errorf("%#x: %q, want %q", tc.addr, b, tc.want)
		}
	}
}

// TestNoFPUState: a thread whose images hold only the legacy FXSAVE area
// (fpregs is required in CRIU's proto; xsave is not) still converts, with
// the notes the kernel would write for it.
func TestNoFPUState(t *testing.T) {
	for _, tc := range []struct {
		name  string
		strip func(*imgtest.Thread)
		want  []elf.NType
	}{
		{"no xsave", func(th *imgtest.Thread) { th.Core.ThreadInfo.Fpregs.Xsave = nil }, []elf.NType{regs.NT_PRFPREG}},
		{"full", func(*imgtest.Thread) {}, []elf.NType{regs.NT_PRFPREG, regs.NT_X86_XSTATE}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := imgtest.New(imgtest.X86_64)
			p := c.AddProcess(7, 0)
			tc.strip(p.Threads[0])
			plan, err := elfcore.BuildWith(c.Load(t, 7), elfcore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []elf.NType
			for _, n := range plan.Notes {
				if n.Type == regs.NT_PRFPREG || n.Type == regs.NT_X86_XSTATE {
					got = append(got, elf.NType(n.Type))
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("FP notes %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("FP notes %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestPsargsFromParent: when the argument pages are in a parent checkpoint
// (an incremental dump), the core is still written, with an empty
// pr_psargs and a warning, as the kernel ignores a failed read there.
func TestPsargsFromParent(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(7, 0)
	p.SetArgs([]string{"/bin/server", "--port", "8080"})
	run := p.Pages[len(p.Pages)-1]
	run.Flags = criuimg.PEParent
	pr := c.Load(t, 7)
	plan, err := elfcore.BuildWith(pr, elfcore.Options{})
	if err != nil {
		t.Fatalf("no core for a process whose argument pages are in a parent checkpoint: %v", err)
	}
	if w := strings.Join(plan.Warnings, "\n"); !strings.Contains(w, "pr_psargs") {
		t.Errorf("no warning about pr_psargs: %q", plan.Warnings)
	}
	for _, n := range plan.Notes {
		if n.Type == regs.NT_PRPSINFO {
			if args := n.Desc[56:136]; !bytes.Equal(args, make([]byte, 80)) {
				t.Errorf("pr_psargs %q, want empty", args)
			}
		}
	}
}
