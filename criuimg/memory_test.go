package criuimg_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"google.golang.org/protobuf/proto"
)

// rawPagemap decodes a pagemap image independently of criuimg.
func rawPagemap(t *testing.T, path string) (*pagemap.PagemapHead, []*pagemap.PagemapEntry) {
	t.Helper()
	_, ents, err := imgtest.ReadEntries(path)
	if err != nil || len(ents) == 0 {
		t.Fatalf("%s: %d entries, %v", path, len(ents), err)
	}
	head := &pagemap.PagemapHead{}
	if err := proto.Unmarshal(ents[0], head); err != nil {
		t.Fatal(err)
	}
	var out []*pagemap.PagemapEntry
	for _, b := range ents[1:] {
		e := &pagemap.PagemapEntry{}
		if err := proto.Unmarshal(b, e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return head, out
}

// TestPageIndexFixtures: on every fixture, the captured bytes of each
// pagemap add up to the size of the pages file it names, and every pages
// file belongs to exactly one pagemap. The count field is field 5 in CRIU
// >= 4.2 images and field 2 before.
func TestPageIndexFixtures(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.Arch+"/"+f.Name, func(t *testing.T) {
			src := imgtest.DirSource(t, f.Dir)
			names, _ := src.Names()
			pagesFiles := map[string]int{}
			for _, n := range names {
				if strings.HasPrefix(n, "pages-") {
					pagesFiles[n] = 0
				}
			}
			npm := 0
			for _, name := range names {
				if !strings.HasPrefix(name, "pagemap-") {
					continue
				}
				npm++
				head, raw := rawPagemap(t, filepath.Join(f.Dir, name))
				pagesName := fmt.Sprintf("pages-%d.img", head.GetPagesId())
				st, err := os.Stat(filepath.Join(f.Dir, pagesName))
				if err != nil {
					t.Fatal(err)
				}
				pagesFiles[pagesName]++
				for i, e := range raw {
					if f.CRIU42 && (e.NrPages == nil || e.GetCompatNrPages() != 0) {
						t.Errorf("%s entry %d: CRIU 4.2 image without field 5: %v", name, i+1, e)
					}
					if !f.CRIU42 && (e.NrPages != nil || e.GetCompatNrPages() == 0) {
						t.Errorf("%s entry %d: pre-4.2 image with field 5: %v", name, i+1, e)
					}
				}
				idx, err := criuimg.ReadPageIndex(src, name, 4096)
				if err != nil {
					t.Fatal(err)
				}
				if idx.Pages.Name() != pagesName {
					t.Errorf("%s: pages file %s, head says %s", name, idx.Pages.Name(), pagesName)
				}
				if len(idx.Runs) != len(raw) {
					t.Errorf("%s: %d runs, %d entries", name, len(idx.Runs), len(raw))
				}
				var captured int64
				lazyPresent := 0
				for _, r := range idx.Runs {
					if r.InFile() {
						captured += int64(r.Len)
					}
					if r.Flags == criuimg.PELazy|criuimg.PEPresent {
						lazyPresent++
						if !r.InFile() {
							t.Errorf("%s: lazy+present run at %#x not in the file", name, r.Addr)
						}
					}
				}
				if captured != st.Size() || captured == 0 {
					t.Errorf("%s: runs capture %d bytes, %s has %d", name, captured, pagesName, st.Size())
				}
				if f.CRIU42 && !strings.HasPrefix(name, "pagemap-shmem") && lazyPresent == 0 {
					t.Errorf("%s: no PE_LAZY|PE_PRESENT run in a CRIU 4.2 pagemap", name)
				}
				idx.Close()
			}
			if npm == 0 {
				t.Fatal("no pagemap")
			}
			for n, k := range pagesFiles {
				if k != 1 {
					t.Errorf("%s is named by %d pagemaps", n, k)
				}
			}
		})
	}
}

// writePagemap writes pagemap-1.img (pages 1) and pages-1.img of
// filePages pages.
func writePagemap(t *testing.T, dir string, filePages int, ents ...*pagemap.PagemapEntry) criuimg.Source {
	t.Helper()
	msgs := []proto.Message{&pagemap.PagemapHead{PagesId: proto.Uint32(1)}}
	for _, e := range ents {
		msgs = append(msgs, e)
	}
	if err := imgtest.WriteImage(filepath.Join(dir, "pagemap-1.img"), criuimg.MagicPagemap, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pages-1.img"), make([]byte, filePages*4096), 0o644); err != nil {
		t.Fatal(err)
	}
	return imgtest.DirSource(t, dir)
}

func pe(vaddr, n uint64, flags uint32) *pagemap.PagemapEntry {
	return &pagemap.PagemapEntry{Vaddr: proto.Uint64(vaddr), CompatNrPages: proto.Uint32(0), NrPages: proto.Uint64(n), Flags: proto.Uint32(flags)}
}

func TestPageIndexSynthetic(t *testing.T) {
	const P = criuimg.PEPresent
	compat := func(vaddr uint64, n uint32, flags uint32) *pagemap.PagemapEntry {
		return &pagemap.PagemapEntry{Vaddr: proto.Uint64(vaddr), CompatNrPages: proto.Uint32(n), Flags: proto.Uint32(flags)}
	}
	legacy := func(vaddr uint64, n uint32, parent bool) *pagemap.PagemapEntry {
		e := &pagemap.PagemapEntry{Vaddr: proto.Uint64(vaddr), CompatNrPages: proto.Uint32(n)}
		if parent {
			e.InParent = proto.Bool(true)
		}
		return e
	}
	type run struct {
		addr, len uint64
		off       int64
	}
	for _, c := range []struct {
		name      string
		filePages int
		ents      []*pagemap.PagemapEntry
		want      []run  // on success
		err       string // substring of the error; the entry is named too
		errEntry  int
	}{
		{"field 5", 3, []*pagemap.PagemapEntry{pe(0x10000, 1, P), pe(0x20000, 2, P)},
			[]run{{0x10000, 0x1000, 0}, {0x20000, 0x2000, 0x1000}}, "", 0},
		{"compat field 2 only", 3, []*pagemap.PagemapEntry{compat(0x10000, 2, P), compat(0x13000, 1, P)},
			[]run{{0x10000, 0x2000, 0}, {0x13000, 0x1000, 0x2000}}, "", 0},
		{"field 5 wins over field 2", 3, []*pagemap.PagemapEntry{{Vaddr: proto.Uint64(0x10000), CompatNrPages: proto.Uint32(7), NrPages: proto.Uint64(3), Flags: proto.Uint32(P)}},
			[]run{{0x10000, 0x3000, 0}}, "", 0},
		{"lazy present in file, parent and lazy not", 2, []*pagemap.PagemapEntry{pe(0x10000, 1, criuimg.PELazy|P), pe(0x11000, 4, criuimg.PEParent), pe(0x20000, 2, criuimg.PELazy), pe(0x30000, 1, P)},
			[]run{{0x10000, 0x1000, 0}, {0x11000, 0x4000, -1}, {0x20000, 0x2000, -1}, {0x30000, 0x1000, 0x1000}}, "", 0},
		{"no flags field: in_parent or present", 1, []*pagemap.PagemapEntry{legacy(0x10000, 2, true), legacy(0x20000, 1, false)},
			[]run{{0x10000, 0x2000, -1}, {0x20000, 0x1000, 0}}, "", 0},
		{"holes between runs", 2, []*pagemap.PagemapEntry{pe(0x10000, 1, P), pe(0x50000, 1, P)},
			[]run{{0x10000, 0x1000, 0}, {0x50000, 0x1000, 0x1000}}, "", 0},
		{"unsorted", 2, []*pagemap.PagemapEntry{pe(0x20000, 1, P), pe(0x10000, 1, P)}, nil, "overlaps or precedes", 2},
		{"overlapping", 3, []*pagemap.PagemapEntry{pe(0x10000, 2, P), pe(0x11000, 1, P)}, nil, "overlaps or precedes", 2},
		{"past the end of pages", 2, []*pagemap.PagemapEntry{pe(0x10000, 1, P), pe(0x20000, 2, P)}, nil, "end at byte 12288 of pages-1.img, which has 8192", 2},
		{"one entry larger than the file", 1, []*pagemap.PagemapEntry{pe(0x10000, 2, P)}, nil, "pages-1.img", 1},
		{"unaligned", 1, []*pagemap.PagemapEntry{pe(0x10010, 1, P)}, nil, "not page-aligned", 1},
		{"zero pages", 1, []*pagemap.PagemapEntry{pe(0x10000, 0, P)}, nil, "zero pages", 1},
		{"n*pagesize overflows", 0, []*pagemap.PagemapEntry{pe(0x10000, 1<<60, criuimg.PEParent)}, nil, "overflow", 1},
		{"end overflows", 0, []*pagemap.PagemapEntry{pe(0xffff_ffff_ffff_0000, 0x100, criuimg.PEParent)}, nil, "overflow", 1},
		{"huge present run", 1, []*pagemap.PagemapEntry{pe(0x10000, 1<<40, P)}, nil, "pages-1.img", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := writePagemap(t, t.TempDir(), c.filePages, c.ents...)
			idx, err := criuimg.ReadPageIndex(src, "pagemap-1.img", 4096)
			if c.err != "" {
				if err == nil {
					idx.Close()
					t.Fatal("no error")
				}
				off, _ := imgtest.EntryOffset(filepath.Join(src.String(), "pagemap-1.img"), c.errEntry)
				prefix := fmt.Sprintf("pagemap-1.img: entry %d at offset %d: ", c.errEntry, off)
				if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), c.err) || !errors.Is(err, criuimg.ErrFormat) {
					t.Errorf("error %q, want %q...%q", err, prefix, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer idx.Close()
			var got []run
			for _, r := range idx.Runs {
				got = append(got, run{r.Addr, r.Len, r.Offset})
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("runs %x, want %x", got, c.want)
			}
		})
	}
}

func TestPageIndexMissingFiles(t *testing.T) {
	dir := t.TempDir()
	src := writePagemap(t, dir, 1, pe(0x10000, 1, criuimg.PEPresent))
	if err := os.Remove(filepath.Join(dir, "pages-1.img")); err != nil {
		t.Fatal(err)
	}
	_, err := criuimg.ReadPageIndex(src, "pagemap-1.img", 4096)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "pagemap-1.img") || !strings.Contains(err.Error(), "pages-1.img") {
		t.Errorf("error %v", err)
	}
	// A pagemap without pagemap_head.
	if err := imgtest.WriteImage(filepath.Join(dir, "pagemap-2.img"), criuimg.MagicPagemap); err != nil {
		t.Fatal(err)
	}
	_, err = criuimg.ReadPageIndex(src, "pagemap-2.img", 4096)
	if err == nil || !strings.HasPrefix(err.Error(), "pagemap-2.img: entry 0 at offset 8: no pagemap_head") {
		t.Errorf("error %v", err)
	}
}

// TestMemorySecrets reads every secret of the manifests at every address
// listed (x86_64 manifests: private_page_hits; arm64 facts: vaddr, else
// found_in_oracle_core_at of a single-process fixture).
func TestMemorySecrets(t *testing.T) {
	for _, f := range loadFixtures(t) {
		if f.DeclaredSecrets == 0 {
			continue
		}
		t.Run(f.Arch+"/"+f.Name, func(t *testing.T) {
			if len(f.Secrets) == 0 {
				t.Fatalf("%d secrets declared, none with a known address", f.DeclaredSecrets)
			}
			c := imgtest.OpenDir(t, f.Dir)
			procs := map[uint32]*criuimg.Process{}
			for _, s := range f.Secrets {
				p := procs[s.Pid]
				if p == nil {
					p = imgtest.LoadFrom(t, c, s.Pid)
					procs[s.Pid] = p
				}
				b := make([]byte, len(s.String))
				n, err := p.Mem.ReadAt(b, int64(s.Addr))
				if err != nil || n != len(b) || string(b) != s.String {
					t.Errorf("pid %d %#x: read %q (%d bytes, %v), want %q", s.Pid, s.Addr, b[:n], n, err, s.String)
				}
			}
		})
	}
}

// TestMemoryArgv reads the argument area of the arm64 processes, whose
// facts list the exact argv.
func TestMemoryArgv(t *testing.T) {
	for _, f := range loadFixtures(t) {
		if len(f.Argv) == 0 {
			continue
		}
		t.Run(f.Arch+"/"+f.Name, func(t *testing.T) {
			c := imgtest.OpenDir(t, f.Dir)
			for pid, argv := range f.Argv {
				p := imgtest.LoadFrom(t, c, pid)
				start, end := p.MM.GetMmArgStart(), p.MM.GetMmArgEnd()
				want := strings.Join(argv, "\x00") + "\x00"
				if end-start != uint64(len(want)) {
					t.Errorf("pid %d: arg area %d bytes, argv %d", pid, end-start, len(want))
					continue
				}
				b := make([]byte, len(want))
				if _, err := p.Mem.ReadAt(b, int64(start)); err != nil || string(b) != want {
					t.Errorf("pid %d: argv %q (%v), want %q", pid, b, err, want)
				}
			}
		})
	}
}

// TestMemoryStaticC checks the shared mapping, the sparse mapping and the
// reservation of the static-c fixture (manifest "shared", "sparse",
// "reserve"; src/static.c).
func TestMemoryStaticC(t *testing.T) {
	f := fixtureByName(t, "x86_64", "static-c")
	c := imgtest.OpenDir(t, f.Dir)
	const sharedHit = 0x7f751a13a064 // manifest: CHILD_WROTE_SHARED in both processes
	shmHead, _ := rawPagemap(t, filepath.Join(f.Dir, "pagemap-shmem-1972.img"))
	shmPages := fmt.Sprintf("pages-%d.img", shmHead.GetPagesId())
	for _, pid := range []uint32{1535, 1539} {
		t.Run(fmt.Sprint(pid), func(t *testing.T) {
			p := imgtest.LoadFrom(t, c, pid)
			var shared, sparse, reserve *criuimg.VMA
			for i := range p.VMAs {
				v := &p.VMAs[i]
				switch {
				case v.HasShmem && v.End-v.Start == 64<<10:
					shared = v
				case v.Anon() && v.End-v.Start == 8<<20:
					sparse = v
				case v.Anon() && v.End-v.Start == 1<<30:
					reserve = v
				}
			}
			if shared == nil || sparse == nil || reserve == nil {
				t.Fatalf("shared %v sparse %v reserve %v", shared, sparse, reserve)
			}
			if shared.Path != "/dev/zero (deleted)" || shared.Start+8292 != sharedHit {
				t.Errorf("shared mapping %+v", shared)
			}
			read := func(addr uint64, n int) []byte {
				t.Helper()
				b := make([]byte, n)
				if k, err := p.Mem.ReadAt(b, int64(addr)); err != nil || k != n {
					t.Fatalf("read %d at %#x: %d, %v", n, addr, k, err)
				}
				return b
			}
			for i := 0; i < 16; i++ {
				want := fmt.Sprintf("SHMEM_PAGE_%02d_PATTERN\x00", i)
				if got := read(shared.Start+uint64(i)*4096, len(want)); string(got) != want {
					t.Errorf("shared page %d: %q", i, got)
				}
			}
			if got := read(sharedHit, 19); string(got) != "CHILD_WROTE_SHARED\x00" {
				t.Errorf("shared +8292: %q", got)
			}
			err := p.Mem.Extents(sharedHit, sharedHit+1, func(e criuimg.Extent) error {
				if e.Kind != criuimg.Captured || e.Src.Name() != shmPages {
					return fmt.Errorf("extent %v from %v", e.Kind, e.Src)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
			// SPARSE_SPANS_A_PAGE_BOUNDARY at +5 MiB+4000: read on into the
			// next page, never touched, hence zero.
			at := sparse.Start + 5<<20 + 4000
			got := read(at, 200)
			want := append([]byte("SPARSE_SPANS_A_PAGE_BOUNDARY"), make([]byte, 200-28)...)
			if !bytes.Equal(got, want) {
				t.Errorf("sparse +5MiB+4000: %q", got)
			}
			if got := read(sparse.Start+1<<20, 20); string(got) != "SPARSE_PAGE_AT_1MIB\x00" {
				t.Errorf("sparse +1MiB: %q", got)
			}
			if got := read(sparse.Start+2<<20, 8192); !bytes.Equal(got, make([]byte, 8192)) {
				t.Error("untouched sparse pages are not zero")
			}
			var kinds []string
			p.Mem.Extents(reserve.Start, reserve.End, func(e criuimg.Extent) error {
				kinds = append(kinds, fmt.Sprintf("%v %#x", e.Kind, e.End-e.Start))
				return nil
			})
			if fmt.Sprint(kinds) != "[zero 0x40000000]" {
				t.Errorf("reservation extents %v", kinds)
			}
		})
	}
}

// TestMemoryNotCaptured: reads across an unmapped gap or into clean pages
// of a file mapping stop with ErrNotCaptured.
func TestMemoryNotCaptured(t *testing.T) {
	f := fixtureByName(t, "x86_64", "static-c")
	c := imgtest.OpenDir(t, f.Dir)
	p := imgtest.LoadFrom(t, c, 1535)
	_, raw := rawPagemap(t, filepath.Join(f.Dir, "pagemap-1535.img"))
	captured := func(addr uint64) bool {
		for _, e := range raw {
			if addr >= e.GetVaddr() && addr < e.GetVaddr()+e.GetNrPages()*4096 {
				return true
			}
		}
		return false
	}
	gap, clean := false, false
	for i, v := range p.VMAs {
		if !gap && v.Anon() && !v.Special() && i+1 < len(p.VMAs) && p.VMAs[i+1].Start > v.End {
			gap = true
			b := make([]byte, 32)
			n, err := p.Mem.ReadAt(b, int64(v.End-16))
			if n != 16 || !errors.Is(err, criuimg.ErrNotCaptured) || !strings.Contains(err.Error(), fmt.Sprintf("%#x", v.End)) {
				t.Errorf("read across the gap after %#x: %d, %v", v.End, n, err)
			}
		}
		if !clean && v.Path == "/opt/fixture/bin/static-c" {
			for a := v.Start; a < v.End; a += 4096 {
				if !captured(a) {
					clean = true
					b := make([]byte, 8)
					n, err := p.Mem.ReadAt(b, int64(a))
					if n != 0 || !errors.Is(err, criuimg.ErrNotCaptured) {
						t.Errorf("clean file page %#x: %d, %v", a, n, err)
					}
					break
				}
			}
		}
	}
	if !gap || !clean {
		t.Fatalf("gap %v clean page %v found", gap, clean)
	}
	// Below the first mapping.
	if n, err := p.Mem.ReadAt(make([]byte, 4), 0x1000); n != 0 || !errors.Is(err, criuimg.ErrNotCaptured) {
		t.Errorf("unmapped: %d, %v", n, err)
	}
}

type extentDesc struct {
	Start, End uint64
	Kind       criuimg.ExtentKind
	Parent     bool
	Lazy       bool
	Data       string // first bytes of captured extents
}

func (d extentDesc) String() string {
	return fmt.Sprintf("{%#x-%#x %v parent=%v lazy=%v %q}", d.Start, d.End, d.Kind, d.Parent, d.Lazy, d.Data)
}

func collectExtents(t *testing.T, m *criuimg.Memory, start, end uint64) []extentDesc {
	t.Helper()
	var out []extentDesc
	err := m.Extents(start, end, func(e criuimg.Extent) error {
		d := extentDesc{Start: e.Start, End: e.End, Kind: e.Kind, Parent: e.Parent, Lazy: e.Lazy}
		if e.Kind == criuimg.Captured {
			b := make([]byte, 4)
			if _, err := e.Src.ReadAt(b, e.Off); err != nil {
				return err
			}
			d.Data = string(bytes.TrimRight(b, "\x00"))
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func page(s string) []byte {
	b := make([]byte, 4096)
	copy(b, s)
	return b
}

// TestExtentsSynthetic: kinds of extents in anonymous, file, special and
// shared mappings, with holes, parent and lazy runs.
func TestExtentsSynthetic(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(10, 0)
	p.AddVMA(0x400000, 0x404000, criuimg.ProtRead|criuimg.ProtExec, 0, 0, "/bin/x")
	p.AddPages(0x401000, page("FILE"), criuimg.PEPresent)
	p.AddAnon(0x500000, 0x510000)
	p.AddPages(0x500000, page("AAAA"), criuimg.PEPresent|criuimg.PELazy)
	p.AddPages(0x503000, append(page("BBBB"), page("CCCC")...), criuimg.PEPresent)
	p.AddPageEntry(0x506000, 2, criuimg.PEParent)
	p.AddPageEntry(0x509000, 1, criuimg.PELazy)
	s := c.AddShmem(5, 0x4000)
	s.AddPages(0x1000, page("SHM1"), criuimg.PEPresent)
	p.MapShmem(0x600000, s, 0, criuimg.ProtRead)
	p.AddVMA(0x7000000, 0x7004000, criuimg.ProtRead, 0, criuimg.VMAAreaRegular|criuimg.VMAAreaVVAR|criuimg.VMAAnonPrivate, "")
	pr := c.Load(t, 10)
	C, Z, A := criuimg.Captured, criuimg.Zero, criuimg.Absent
	want := []extentDesc{
		{0x400000, 0x401000, A, false, false, ""},
		{0x401000, 0x402000, C, false, false, "FILE"},
		{0x402000, 0x404000, A, false, false, ""},
		{0x500000, 0x501000, C, false, false, "AAAA"},
		{0x501000, 0x503000, Z, false, false, ""},
		{0x503000, 0x504000, C, false, false, "BBBB"},
		{0x504000, 0x505000, C, false, false, "CCCC"},
		{0x505000, 0x506000, Z, false, false, ""},
		{0x506000, 0x508000, A, true, false, ""},
		{0x508000, 0x509000, Z, false, false, ""},
		{0x509000, 0x50a000, A, false, true, ""},
		{0x50a000, 0x510000, Z, false, false, ""},
		{0x600000, 0x601000, Z, false, false, ""},
		{0x601000, 0x602000, C, false, false, "SHM1"},
		{0x602000, 0x604000, Z, false, false, ""},
		{0x7000000, 0x7004000, A, false, false, ""},
	}
	got := collectExtents(t, pr.Mem, 0, 1<<47)
	// Adjacent captured runs may be reported as one extent or two; split
	// ours per page for comparison.
	var split []extentDesc
	for _, e := range got {
		if e.Kind == C && e.End-e.Start > 0x1000 {
			for a := e.Start; a < e.End; a += 0x1000 {
				b := make([]byte, 4)
				pr.Mem.ReadAt(b, int64(a))
				split = append(split, extentDesc{a, a + 0x1000, C, false, false, string(bytes.TrimRight(b, "\x00"))})
			}
			continue
		}
		split = append(split, e)
	}
	if fmt.Sprint(split) != fmt.Sprint(want) {
		t.Errorf("extents\n got %v\nwant %v", split, want)
	}
	// A sub-range starting inside a captured run.
	sub := collectExtents(t, pr.Mem, 0x503800, 0x505800)
	if len(sub) < 2 || sub[0].Start != 0x503800 || sub[len(sub)-1].End != 0x505800 || sub[len(sub)-1].Kind != Z {
		t.Errorf("sub-range extents %v", sub)
	}
	b := make([]byte, 8)
	if _, err := pr.Mem.ReadAt(b, 0x503ffc); err != nil || string(b) != "\x00\x00\x00\x00CCCC" {
		t.Errorf("read across runs: %q %v", b, err)
	}
	if n, err := pr.Mem.ReadAt(b, 0x505ffc); n != 4 || !errors.Is(err, criuimg.ErrNotCaptured) {
		t.Errorf("read into a parent run: %d %v", n, err)
	}
	wantNotes := []criuimg.Note{{Kind: criuimg.NoteParentPages, Bytes: 8192}, {Kind: criuimg.NoteLazyPages, Bytes: 4096}}
	if !slices.Equal(pr.Notes, wantNotes) {
		t.Errorf("notes %v, want %v", pr.Notes, wantNotes)
	}
}

// TestMemoryPrivateMemfdCOW: a MAP_PRIVATE mapping of a memfd (status
// VMA_AREA_MEMFD|VMA_FILE_PRIVATE) has the pages the process wrote in its
// own pagemap (CRIU dumps private VMAs' pages there); they, not the
// memfd's pages, are the process's memory.
func TestMemoryPrivateMemfdCOW(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(10, 0)
	s := c.AddShmem(9, 0x2000)
	s.MemfdName = "memfd:jit"
	s.AddPages(0, append(page("ORIG"), page("ORI2")...), criuimg.PEPresent)
	v := p.MapMemfd(0x700000, s, 0, criuimg.ProtRead|criuimg.ProtWrite)
	v.Flags = proto.Uint32(criuimg.MapPrivate)
	v.Status = proto.Uint32(criuimg.VMAAreaRegular | criuimg.VMAFilePrivate | criuimg.VMAAreaMemfd)
	p.AddPages(0x700000, page("COW!"), criuimg.PEPresent)
	pr := c.Load(t, 10)
	b := make([]byte, 4)
	if _, err := pr.Mem.ReadAt(b, 0x700000); err != nil || string(b) != "COW!" {
		t.Errorf("private page of a memfd mapping: %q, %v; want the process's copy \"COW!\"", b, err)
	}
	if _, err := pr.Mem.ReadAt(b, 0x701000); err != nil || string(b) != "ORI2" {
		t.Errorf("unwritten page of a private memfd mapping: %q, %v; want the memfd's \"ORI2\"", b, err)
	}
}
