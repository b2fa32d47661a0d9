package main

// The corruption suite: systematic mutations of real checkpoints (truncated
// images, wrong magics, absurd entry sizes, bad pagemaps, bad mappings,
// bad page sizes, missing threads, broken process trees, missing files),
// each converted in-process. Every case checks the exit status, that
// stderr names the file and what is wrong, that nothing panicked, that the
// broken process got no core and left no temporary file while the others
// were converted, and that memory stayed bounded whatever the images
// claim.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"google.golang.org/protobuf/proto"
)

// corruptFixture is a real multi-process checkpoint of testdata/.
type corruptFixture struct {
	dir  string   // testdata/x86_64/<name>/images
	live []uint32 // processes that get a core
}

var corruptFixtures = map[string]corruptFixture{
	// bash (3757) -> python3 (3760), tee (3761). pagemap-3757 uses
	// pages-1, 3760 pages-2, 3761 pages-3.
	"counter": {imgtest.Testdata("x86_64/counter/images"), []uint32{3757, 3760, 3761}},
	// 1535 -> 1538 (zombie), 1539; pagemap-1535 uses pages-2, 1539
	// pages-3, the shared mapping (pagemap-shmem-1972) pages-1.
	"static-c": {imgtest.Testdata("x86_64/static-c/images"), []uint32{1535, 1539}},
}

// Memory bounds for one conversion: a claimed size must never turn into an
// allocation.
const (
	memLimit     = 512 << 20 // debug.SetMemoryLimit during the suite
	maxPeakHeap  = 256 << 20 // sampled live heap
	maxAllocated = 256 << 20 // bytes allocated by one conversion
)

type corruptCase struct {
	name   string
	fx     string
	mutate func(t *testing.T, dir string)
	status int
	// fail lists the processes that get no core (for status 1, all do).
	fail []uint32
	// want are substrings of stderr: the file and what is wrong.
	want []string
}

func TestCorruptionSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	cases := corruptCases(t)
	base := t.TempDir()
	for name, fx := range corruptFixtures {
		if err := imgtest.CopyImages(filepath.Join(base, name), fx.dir); err != nil {
			t.Fatalf("fixture %s: %v", name, err)
		}
	}
	old := debug.SetMemoryLimit(memLimit)
	defer debug.SetMemoryLimit(old)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fx := corruptFixtures[c.fx]
			dir := filepath.Join(t.TempDir(), "images")
			if err := linkDir(dir, filepath.Join(base, c.fx)); err != nil {
				t.Fatal(err)
			}
			c.mutate(t, dir)
			out := filepath.Join(t.TempDir(), "out")
			var stdout, stderr bytes.Buffer
			var status int
			peak, allocated := measure(func() {
				status = run([]string{dir, "-o", out, "-q"}, &stdout, &stderr)
			})
			errText := stderr.String()
			if status != c.status {
				t.Errorf("exit status %d, want %d", status, c.status)
			}
			for _, w := range c.want {
				if !strings.Contains(errText, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			for _, bad := range []string{"panic", "internal error", "goroutine "} {
				if strings.Contains(errText, bad) {
					t.Errorf("stderr has %q", bad)
				}
			}
			var want []string
			if c.status != exitFailed {
				for _, pid := range fx.live {
					if !slices.Contains(c.fail, pid) {
						want = append(want, fmt.Sprintf("core.%d", pid))
					}
				}
			}
			got := listDir(t, out)
			if !slices.Equal(got, want) {
				t.Errorf("OUT holds %v, want %v", got, want)
			}
			if n := strings.Count(stdout.String(), "\n"); n != len(want) {
				t.Errorf("%d lines on stdout, want %d:\n%s", n, len(want), stdout.String())
			}
			if peak > maxPeakHeap || allocated > maxAllocated {
				t.Errorf("memory: peak heap %d MiB, allocated %d MiB", peak>>20, allocated>>20)
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("status %d, stderr:\n%s", status, errText)
			}
		})
	}
}

// measure runs fn and returns the peak live heap seen while it ran and
// the bytes it allocated.
func measure(fn func()) (peak, allocated uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	var max atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > max.Load() {
				max.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	metrics.Read(s)
	return max.Load(), s[0].Value.Uint64() - before
}

func corruptCases(t *testing.T) []corruptCase {
	var cases []corruptCase
	add := func(c corruptCase) { cases = append(cases, c) }

	// Which processes a broken image takes down, and the exit status.
	type target struct {
		fx     string
		image  string
		status int
		fail   []uint32
	}
	targets := []target{
		{"counter", "inventory.img", exitFailed, nil},
		// files.img is optional (without it mappings have no names), but
		// a broken one is not.
		{"counter", "pstree.img", exitFailed, nil},
		{"counter", "files.img", exitFailed, nil},
		{"counter", "core-3760.img", exitPartial, []uint32{3760}},
		{"counter", "mm-3760.img", exitPartial, []uint32{3760}},
		{"counter", "pagemap-3760.img", exitPartial, []uint32{3760}},
		{"static-c", "core-1538.img", exitPartial, []uint32{1538}}, // the zombie
		{"static-c", "mm-1539.img", exitPartial, []uint32{1539}},
		{"static-c", "pagemap-1539.img", exitPartial, []uint32{1539}},
		// Both live processes map the shared memory.
		{"static-c", "pagemap-shmem-1972.img", exitFailed, nil},
	}
	for _, tg := range targets {
		size := fileSize(t, corruptFixtures[tg.fx].dir, tg.image)
		hdr := int64(8)
		if tg.image == "inventory.img" {
			hdr = 4
		}
		first := int64(binary.LittleEndian.Uint32(readFile(t, corruptFixtures[tg.fx].dir, tg.image)[hdr:]))
		// Truncated: in the header, in the first size field, in the first
		// entry, in the last byte.
		for _, tr := range []struct {
			at   int64
			what string
		}{
			{0, "short header"},
			{hdr - 1, "short header"},
			{hdr + 2, "truncated size field"},
			{hdr + 4 + first/2, "exceeds the"},
			{size - 1, "exceeds the"},
		} {
			add(corruptCase{fmt.Sprintf("truncated/%s/%s@%d", tg.fx, tg.image, tr.at), tg.fx,
				truncateTo(tg.image, tr.at), tg.status, tg.fail, []string{tg.image, tr.what}})
		}
		// Wrong magics.
		if hdr == 8 {
			add(corruptCase{"magic/" + tg.fx + "/" + tg.image + "/common", tg.fx, patchAt(tg.image, 0, []byte{0xde, 0xad}), tg.status, tg.fail, []string{tg.image, "common magic"}})
		}
		add(corruptCase{"magic/" + tg.fx + "/" + tg.image, tg.fx, patchAt(tg.image, hdr-4, []byte{0xde, 0xad}), tg.status, tg.fail, []string{tg.image, "magic 0x"}})
		// Absurd entry sizes.
		for _, sz := range []uint64{uint64(size), math.MaxUint32} {
			add(corruptCase{fmt.Sprintf("entrysize/%s/%s/%d", tg.fx, tg.image, sz), tg.fx,
				patchAt(tg.image, hdr, binary.LittleEndian.AppendUint32(nil, uint32(sz))), tg.status, tg.fail, []string{tg.image, "exceeds the"}})
		}
		add(corruptCase{"entrysize/" + tg.fx + "/" + tg.image + "/0", tg.fx,
			patchAt(tg.image, hdr, []byte{0, 0, 0, 0}), tg.status, tg.fail, []string{tg.image}})
		// Missing, or empty.
		if tg.image == "files.img" {
			add(corruptCase{"missing/" + tg.fx + "/" + tg.image, tg.fx, remove(tg.image), exitOK, nil, nil})
		} else {
			add(corruptCase{"missing/" + tg.fx + "/" + tg.image, tg.fx, remove(tg.image), tg.status, tg.fail, []string{tg.image, "no such file"}})
		}
		add(corruptCase{"empty/" + tg.fx + "/" + tg.image, tg.fx, truncateTo(tg.image, 0), tg.status, tg.fail, []string{tg.image, "short header"}})
	}
	// Pages files: truncated, missing, empty.
	for _, tg := range []target{
		{"counter", "pages-2.img", exitPartial, []uint32{3760}},
		{"static-c", "pages-3.img", exitPartial, []uint32{1539}},
		{"static-c", "pages-1.img", exitFailed, nil}, // the shared memory's pages
	} {
		size := fileSize(t, corruptFixtures[tg.fx].dir, tg.image)
		for _, at := range []int64{0, 4096, size / 2, size - 1} {
			add(corruptCase{fmt.Sprintf("truncated/%s/%s@%d", tg.fx, tg.image, at), tg.fx, truncateTo(tg.image, at), tg.status, tg.fail, []string{tg.image, "which has"}})
		}
		add(corruptCase{"missing/" + tg.fx + "/" + tg.image, tg.fx, remove(tg.image), tg.status, tg.fail, []string{tg.image, "no such file"}})
	}

	// Pagemap entries (counter's python3: pagemap-3760.img, entries 1...
	// after pagemap_head).
	const pm = "pagemap-3760.img"
	pmFail := func(name string, fn func(es []*pagemap.PagemapEntry), want ...string) {
		add(corruptCase{"pagemap/" + name, "counter", editPagemap(pm, fn), exitPartial, []uint32{3760}, append([]string{pm}, want...)})
	}
	pmFail("unsorted", func(es []*pagemap.PagemapEntry) { es[1], es[2] = es[2], es[1] }, "overlaps or precedes")
	pmFail("overlapping", func(es []*pagemap.PagemapEntry) { es[2].Vaddr = proto.Uint64(es[1].GetVaddr() + 4096) }, "overlaps or precedes")
	pmFail("duplicate", func(es []*pagemap.PagemapEntry) { es[2] = proto.Clone(es[1]).(*pagemap.PagemapEntry) }, "overlaps or precedes")
	pmFail("past-pages-end", func(es []*pagemap.PagemapEntry) {
		es[len(es)-1].NrPages = proto.Uint64(es[len(es)-1].GetNrPages() + 1)
	}, "pages-2.img, which has")
	pmFail("far-past-pages-end", func(es []*pagemap.PagemapEntry) { es[0].NrPages = proto.Uint64(1 << 40) }, "pages-2.img, which has")
	pmFail("count-overflows", func(es []*pagemap.PagemapEntry) { es[0].NrPages = proto.Uint64(1<<52 + 1) }, "overflow the address space")
	pmFail("count-max", func(es []*pagemap.PagemapEntry) { es[0].NrPages = proto.Uint64(math.MaxUint64) }, "overflow the address space")
	pmFail("end-overflows", func(es []*pagemap.PagemapEntry) {
		es[len(es)-1].Vaddr = proto.Uint64(math.MaxUint64 &^ 4095)
		es[len(es)-1].NrPages = proto.Uint64(2)
	}, "overflow the address space")
	pmFail("zero-pages", func(es []*pagemap.PagemapEntry) { es[1].NrPages = proto.Uint64(0) }, "zero pages")
	pmFail("unaligned", func(es []*pagemap.PagemapEntry) { es[1].Vaddr = proto.Uint64(es[1].GetVaddr() + 1) }, "not page-aligned")
	add(corruptCase{"pagemap/pages-id-missing", "counter", editEntry(pm, 0, func(h *pagemap.PagemapHead) { h.PagesId = proto.Uint32(77) }),
		exitPartial, []uint32{3760}, []string{pm, "pages-77.img"}})
	add(corruptCase{"pagemap/head-only", "counter", keepEntries(pm, 1), exitOK, nil, nil})
	add(corruptCase{"pagemap/no-head", "counter", keepEntries(pm, 0), exitPartial, []uint32{3760}, []string{pm, "no pagemap_head"}})
	// Pages left in a parent checkpoint are a notice, not a failure (-q
	// hides it).
	add(corruptCase{"pagemap/in-parent", "counter", editPagemap(pm, func(es []*pagemap.PagemapEntry) {
		es[1].Flags = proto.Uint32(1) // PE_PARENT
	}), exitOK, nil, nil})

	// Mappings (mm-3760.img).
	const mmi = "mm-3760.img"
	mmFail := func(name string, fn func(m *mm.MmEntry), want ...string) {
		add(corruptCase{"mm/" + name, "counter", editEntry(mmi, 0, fn), exitPartial, []uint32{3760}, append([]string{mmi}, want...)})
	}
	mmFail("vma-empty", func(m *mm.MmEntry) { m.Vmas[3].End = proto.Uint64(m.Vmas[3].GetStart()) }, "start is not below end")
	mmFail("vma-reversed", func(m *mm.MmEntry) { m.Vmas[3].End = proto.Uint64(m.Vmas[3].GetStart() - 4096) }, "start is not below end")
	mmFail("vma-unaligned-start", func(m *mm.MmEntry) { m.Vmas[3].Start = proto.Uint64(m.Vmas[3].GetStart() + 1) }, "not aligned")
	mmFail("vma-unaligned-end", func(m *mm.MmEntry) { m.Vmas[3].End = proto.Uint64(m.Vmas[3].GetEnd() - 8) }, "not aligned")
	mmFail("vma-overlapping", func(m *mm.MmEntry) { m.Vmas[4].Start = proto.Uint64(m.Vmas[3].GetEnd() - 4096) }, "overlaps or is out of order")
	mmFail("vma-unsorted", func(m *mm.MmEntry) { m.Vmas[3], m.Vmas[4] = m.Vmas[4], m.Vmas[3] }, "overlaps or is out of order")
	mmFail("vma-whole-space", func(m *mm.MmEntry) {
		m.Vmas[len(m.Vmas)-1].End = proto.Uint64(math.MaxUint64 &^ 4095)
		m.Vmas[len(m.Vmas)-1].Pgoff = proto.Uint64(math.MaxUint64 &^ 4095)
	}, "overflows")
	for _, ps := range []uint64{0, 3, 1 << 40, 2048} {
		mmFail(fmt.Sprintf("at-pagesz-%d", ps), func(m *mm.MmEntry) { setAuxv(m, 6, ps) }, fmt.Sprintf("AT_PAGESZ %d", ps))
	}
	mmFail("at-pagesz-absent", func(m *mm.MmEntry) { setAuxv(m, 6, math.MaxUint64) }, "AT_PAGESZ 0")
	mmFail("auxv-odd", func(m *mm.MmEntry) { m.MmSavedAuxv = append(m.MmSavedAuxv, 7) }, "odd number")
	// A shared mapping whose offset runs off the end of its object
	// (static-c's child maps the shared memory).
	add(corruptCase{"mm/shmem-pgoff-overflows", "static-c", editEntry("mm-1539.img", 0, func(m *mm.MmEntry) {
		for _, v := range m.Vmas {
			if v.GetStatus()&(1<<14) != 0 { // VMA_AREA_MEMFD: shmem 1972
				v.Pgoff = proto.Uint64(math.MaxUint64 &^ 4095)
			}
		}
	}), exitPartial, []uint32{1539}, []string{"mm-1539.img", "overflows"}})
	add(corruptCase{"mm/shmem-unknown", "static-c", editEntry("mm-1539.img", 0, func(m *mm.MmEntry) {
		for _, v := range m.Vmas {
			if v.GetStatus()&(1<<14) != 0 {
				v.Shmid = proto.Uint64(4242) // the memfd's file id
			}
		}
	}), exitPartial, []uint32{1539}, []string{"mm-1539.img", "memfd file 4242 is not in files.img"}})
	add(corruptCase{"mm/trailing-bytes", "counter", appendBytes(mmi, []byte{1, 2, 3}), exitPartial, []uint32{3760}, []string{mmi, "after the image's only entry"}})

	// Threads and cores.
	add(corruptCase{"threads/no-core", "counter", editPstree(func(es []*pstree.PstreeEntry) {
		es[1].Threads = append(es[1].Threads, 99999)
	}), exitPartial, []uint32{3760}, []string{"core-99999.img", "no such file"}})
	add(corruptCase{"threads/twice", "counter", editPstree(func(es []*pstree.PstreeEntry) {
		es[1].Threads = append(es[1].Threads, es[1].Threads[0])
	}), exitPartial, []uint32{3760}, []string{"pstree.img", "thread 3760 twice"}})
	add(corruptCase{"threads/none", "counter", editPstree(func(es []*pstree.PstreeEntry) { es[1].Threads = nil }),
		exitPartial, []uint32{3760}, []string{"pstree.img", "no thread"}})
	add(corruptCase{"threads/main-missing", "counter", editPstree(func(es []*pstree.PstreeEntry) { es[1].Threads = []uint32{3761} }),
		exitPartial, []uint32{3760}, []string{"main thread"}})
	add(corruptCase{"core/arch-unknown", "counter", editEntry("core-3760.img", 0, func(c *criucore.CoreEntry) {
		c.Mtype = criucore.CoreEntry_S390.Enum()
	}), exitPartial, []uint32{3760}, []string{"core-3760.img", "architecture"}})
	add(corruptCase{"core/no-thread-info", "counter", editEntry("core-3760.img", 0, func(c *criucore.CoreEntry) {
		c.ThreadInfo = nil
	}), exitPartial, []uint32{3760}, []string{"core-3760.img"}})
	add(corruptCase{"core/zombie-missing", "static-c", remove("core-1538.img"), exitPartial, []uint32{1538}, []string{"core-1538.img", "no such file"}})

	// The process tree.
	add(corruptCase{"pstree/cycle", "counter", editPstree(func(es []*pstree.PstreeEntry) { es[0].Ppid = proto.Uint32(3760) }),
		exitFailed, nil, []string{"pstree.img", "cycle"}})
	add(corruptCase{"pstree/self-parent", "counter", editPstree(func(es []*pstree.PstreeEntry) { es[1].Ppid = proto.Uint32(3760) }),
		exitFailed, nil, []string{"pstree.img", "cycle"}})
	add(corruptCase{"pstree/duplicate-pid", "counter", editPstree(func(es []*pstree.PstreeEntry) { es[2].Pid = proto.Uint32(3760) }),
		exitFailed, nil, []string{"pstree.img", "pid 3760 already listed"}})
	add(corruptCase{"pstree/unknown-parent", "counter", editPstree(func(es []*pstree.PstreeEntry) { es[1].Ppid = proto.Uint32(424242) }),
		exitFailed, nil, []string{"pstree.img", "parent 424242 is not in the tree"}})
	add(corruptCase{"pstree/pid-0", "counter", editPstree(func(es []*pstree.PstreeEntry) { es[1].Pid = proto.Uint32(0) }),
		exitFailed, nil, []string{"pstree.img", "pid 0"}})
	add(corruptCase{"pstree/no-process", "counter", keepEntries("pstree.img", 0), exitFailed, nil, []string{"pstree.img", "no process"}})
	add(corruptCase{"pstree/unknown-pid", "counter", editPstree(func(es []*pstree.PstreeEntry) {
		es[2].Pid = proto.Uint32(5555) // no core-5555.img
		es[2].Threads = []uint32{5555}
	}), exitPartial, []uint32{3761}, []string{"core-5555.img", "no such file"}})
	return cases
}

// setAuxv sets tag's value in the saved auxv (MaxUint64: removes the tag).
func setAuxv(m *mm.MmEntry, tag, val uint64) {
	a := m.MmSavedAuxv
	for i := 0; i+1 < len(a); i += 2 {
		if a[i] == tag {
			if val == math.MaxUint64 {
				a[i] = 0x7fff // an unknown tag
			} else {
				a[i+1] = val
			}
			return
		}
	}
	panic("no such auxv tag")
}

// Mutations. Each replaces the file (the image directory holds hard links
// to a shared copy: never write through them).

func truncateTo(name string, size int64) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		b := readFile(t, dir, name)
		replaceFile(t, dir, name, b[:size])
	}
}

func patchAt(name string, off int64, p []byte) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		b := bytes.Clone(readFile(t, dir, name))
		copy(b[off:], p)
		replaceFile(t, dir, name, b)
	}
}

func appendBytes(name string, p []byte) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		replaceFile(t, dir, name, append(bytes.Clone(readFile(t, dir, name)), p...))
	}
}

func remove(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// keepEntries keeps the first n entries of an image.
func keepEntries(name string, n int) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		hdr, ents := splitImage(t, readFile(t, dir, name))
		replaceFile(t, dir, name, joinImage(hdr, ents[:n]))
	}
}

// editEntry decodes entry i of an image as an M, lets fn change it and
// writes it back.
func editEntry[M proto.Message](name string, i int, fn func(M)) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		hdr, ents := splitImage(t, readFile(t, dir, name))
		var zero M
		m := zero.ProtoReflect().Type().New().Interface().(M)
		if err := proto.Unmarshal(ents[i], m); err != nil {
			t.Fatal(err)
		}
		fn(m)
		ents[i] = marshal(t, m)
		replaceFile(t, dir, name, joinImage(hdr, ents))
	}
}

// editPagemap lets fn change the pagemap entries (the head excluded).
func editPagemap(name string, fn func([]*pagemap.PagemapEntry)) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		hdr, ents := splitImage(t, readFile(t, dir, name))
		es := make([]*pagemap.PagemapEntry, len(ents)-1)
		for i := range es {
			es[i] = &pagemap.PagemapEntry{}
			if err := proto.Unmarshal(ents[i+1], es[i]); err != nil {
				t.Fatal(err)
			}
		}
		if len(es) < 3 {
			t.Fatalf("%s has %d entries", name, len(es))
		}
		fn(es)
		for i, e := range es {
			ents[i+1] = marshal(t, e)
		}
		replaceFile(t, dir, name, joinImage(hdr, ents))
	}
}

// editPstree lets fn change the entries of pstree.img.
func editPstree(fn func([]*pstree.PstreeEntry)) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		hdr, ents := splitImage(t, readFile(t, dir, "pstree.img"))
		es := make([]*pstree.PstreeEntry, len(ents))
		for i := range es {
			es[i] = &pstree.PstreeEntry{}
			if err := proto.Unmarshal(ents[i], es[i]); err != nil {
				t.Fatal(err)
			}
		}
		fn(es)
		for i, e := range es {
			ents[i] = marshal(t, e)
		}
		replaceFile(t, dir, "pstree.img", joinImage(hdr, ents))
	}
}

func marshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// splitImage splits an image into its header and entry payloads.
func splitImage(t *testing.T, b []byte) (hdr []byte, ents [][]byte) {
	n := 8
	if binary.LittleEndian.Uint32(b) == 0x58313116 { // inventory.img
		n = 4
	}
	hdr, b = b[:n], b[n:]
	for len(b) > 0 {
		sz := int(binary.LittleEndian.Uint32(b))
		if len(b) < 4+sz {
			t.Fatalf("image truncated")
		}
		ents = append(ents, b[4:4+sz])
		b = b[4+sz:]
	}
	return hdr, ents
}

func joinImage(hdr []byte, ents [][]byte) []byte {
	b := bytes.Clone(hdr)
	for _, e := range ents {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileSize(t *testing.T, dir, name string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// replaceFile replaces dir/name (a hard link to the shared copy) with a new
// file holding b.
func replaceFile(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// linkDir fills a new directory dst with hard links to the files of src
// (copies where links fail).
func linkDir(dst, src string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.Link(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			// Copy instead, into a fresh directory: copying over the
			// links made so far would truncate the fixture's files.
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
			return imgtest.CopyImages(dst, src)
		}
	}
	return nil
}

// listDir lists dir (none if it does not exist), sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
