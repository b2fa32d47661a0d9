package criuimg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"google.golang.org/protobuf/proto"
)

// salvagePrefixes name the images a process is loaded from, which
// FuzzSalvage damages.
var salvagePrefixes = []string{"core-", "mm-", "pagemap-", "pages-", "files.img", "memfd.img"}

func salvageImages(s *memSource) []string {
	var names []string
	for _, p := range salvagePrefixes {
		names = append(names, imagesLike(s, p)...)
	}
	return names
}

// FuzzSalvage fuzzes SalvageProcess over a real checkpoint (see
// checkSalvage) one of whose images is cut to cut bytes (data empty) or
// replaced by data.
func FuzzSalvage(f *testing.F) {
	srcs := loadFixtures(f)
	for fi, s := range srcs {
		for wi, name := range salvageImages(s) {
			size := len(s.files[name])
			f.Add(uint8(fi), uint8(wi), uint32(size/2), []byte{})
			f.Add(uint8(fi), uint8(wi), uint32(max(size-1, 0)), []byte{})
			if size <= 1<<16 {
				f.Add(uint8(fi), uint8(wi), uint32(0), s.files[name])
			}
		}
	}
	f.Fuzz(func(t *testing.T, fix, which uint8, cut uint32, data []byte) {
		sound := srcs[int(fix)%len(srcs)]
		names := salvageImages(sound)
		name := names[int(which)%len(names)]
		orig := sound.files[name]
		if len(data) > 0 {
			checkSalvage(t, nil, sound.with(name, data))
			return
		}
		data = orig[:int(cut%uint32(len(orig)+1))]
		if strings.HasPrefix(name, "pagemap-") && cleanCut(orig, len(data)) {
			// A pagemap cut between entries is a shorter, sound one:
			// LoadProcess reads it too (checked), and the pages it no
			// longer lists read as zeros or as the shared object's.
			checkSalvage(t, nil, sound.with(name, data))
			return
		}
		checkSalvage(t, sound, sound.with(name, data))
	})
}

// cleanCut reports whether the first n bytes of image img end between two
// entries.
func cleanCut(img []byte, n int) bool {
	off := 8
	for off < n && off+4 <= len(img) {
		off += 4 + int(binary.LittleEndian.Uint32(img[off:]))
	}
	return off == n
}

// checkSalvage salvages every process of src and checks that
// SalvageProcess does not panic and returns a Process for each, with
// SalvageErrors; that its memory view is consistent (extents tile each
// mapping, captured ones lie in their pages file, ReadAt reads captured
// bytes and zeros and fails with ErrUnreadable exactly at unreadable
// ones); that where LoadProcess succeeds SalvageProcess returns the same
// Process and memory and no error, and where LoadProcess fails (but for a
// zombie) at least one error. If sound is set, src is sound with one image
// cut short: every byte the salvaged view reads must then be the one
// LoadProcess reads from sound.
func checkSalvage(t *testing.T, sound, src *memSource) {
	t.Helper()
	sc, err := SalvageOpen(src)
	if err != nil {
		checkErr(t, err)
		if _, err := Open(src); err == nil {
			t.Fatal("SalvageOpen fails where Open does not")
		}
		return
	}
	lc, err := SalvageOpen(src) // for LoadProcess: no cache shared
	if err != nil {
		t.Fatal(err)
	}
	var ref *Checkpoint
	if sound != nil {
		if ref, err = Open(sound); err != nil {
			t.Fatal(err)
		}
	}
	for _, pid := range sc.Pids() {
		sp, errs := sc.SalvageProcess(pid)
		if sp == nil {
			t.Fatalf("pid %d: no process: %v", pid, errs)
		}
		for _, err := range errs {
			var se *SalvageError
			if !errors.As(err, &se) || err.Error() == "" || se.Err == nil {
				t.Fatalf("pid %d: %#v is not a SalvageError", pid, err)
			}
		}
		checkSalvaged(t, sp)
		lp, err := lc.LoadProcess(pid)
		switch {
		case err == nil:
			if len(errs) > 0 {
				t.Fatalf("pid %d: LoadProcess succeeds, SalvageProcess finds %v", pid, errs)
			}
			sameProcess(t, lp, sp)
			lp.Close()
		case errors.Is(err, ErrZombie):
			if len(errs) > 0 || !sp.Zombie() {
				t.Fatalf("pid %d: zombie, but SalvageProcess finds %v", pid, errs)
			}
		case len(errs) == 0:
			t.Fatalf("pid %d: LoadProcess fails (%v), SalvageProcess finds nothing wrong", pid, err)
		}
		if ref != nil && sp.Mem != nil {
			rp, err := ref.LoadProcess(pid)
			if err != nil {
				t.Fatalf("pid %d of the sound checkpoint: %v", pid, err)
			}
			sameBytes(t, sp, rp)
			rp.Close()
		}
		sp.Close()
	}
}

// checkSalvaged checks the mappings and the memory view of a salvaged
// process.
func checkSalvaged(t *testing.T, p *Process) {
	t.Helper()
	ps := p.PageSize
	for i, v := range p.VMAs {
		if v.Start >= v.End || (ps != 0 && (v.Start%ps != 0 || v.End%ps != 0)) || (i > 0 && v.Start < p.VMAs[i-1].End) {
			t.Fatalf("pid %d: bad vma %d [%#x-%#x)", p.Pid, i, v.Start, v.End)
		}
	}
	if p.Mem == nil {
		return
	}
	if ps == 0 || p.MM == nil {
		t.Fatalf("pid %d: memory view without page size or mm", p.Pid)
	}
	budget := 1 << 20 // bytes read through ReadAt
	for i := range p.VMAs {
		v := &p.VMAs[i]
		exts := vmaExtents(t, p.Mem, v)
		if len(exts) == 0 || exts[0].Start != v.Start || exts[len(exts)-1].End != v.End {
			t.Fatalf("extents %v do not cover vma [%#x-%#x)", exts, v.Start, v.End)
		}
		for j, e := range exts {
			if e.End <= e.Start || (j > 0 && e.Start != exts[j-1].End) {
				t.Fatalf("extents %v do not tile vma [%#x-%#x)", exts, v.Start, v.End)
			}
			checkExtent(t, p.Mem, e, &budget)
		}
	}
	for _, addr := range []int64{math.MaxInt64 - 8, -1} { // no panic
		p.Mem.ReadAt(make([]byte, 16), addr)
	}
}

// checkExtent checks extent e of m and that ReadAt agrees with it (while
// *budget lasts).
func checkExtent(t *testing.T, m *Memory, e Extent, budget *int) {
	t.Helper()
	switch {
	case e.Kind == Captured && (e.Src == nil || e.Off < 0 || uint64(e.Off) > uint64(e.Src.Size()) || e.End-e.Start > uint64(e.Src.Size())-uint64(e.Off)):
		t.Fatalf("captured extent [%#x-%#x) at offset %d outside its pages file", e.Start, e.End, e.Off)
	case e.Kind == Unreadable && e.Err == nil:
		t.Fatalf("unreadable extent [%#x-%#x) says not why", e.Start, e.End)
	case *budget <= 0 || e.Start > math.MaxInt64-4096:
		return
	}
	n := min(e.End-e.Start, 4096)
	*budget -= int(n)
	b := make([]byte, n)
	k, err := m.ReadAt(b, int64(e.Start))
	var ok bool
	switch e.Kind {
	case Captured:
		ok = err == nil && uint64(k) == n
	case Zero:
		ok = err == nil && uint64(k) == n && allZero(b)
	case Unreadable:
		ok = k == 0 && errors.Is(err, ErrUnreadable) && !errors.Is(err, ErrNotCaptured)
	case Absent:
		ok = k == 0 && errors.Is(err, ErrNotCaptured)
	}
	if !ok {
		t.Fatalf("ReadAt(%#x, %d) of a %v extent: %d, %v", e.Start, n, e.Kind, k, err)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// extentOf is what an Extent says, comparable.
type extentOf struct {
	Start, End   uint64
	Kind         ExtentKind
	Src          string
	Off          int64
	Parent, Lazy bool
}

func extentsOf(t *testing.T, m *Memory, v *VMA) []extentOf {
	var out []extentOf
	for _, e := range vmaExtents(t, m, v) {
		x := extentOf{Start: e.Start, End: e.End, Kind: e.Kind, Off: e.Off, Parent: e.Parent, Lazy: e.Lazy}
		if e.Src != nil {
			x.Src = e.Src.Name()
		}
		out = append(out, x)
	}
	return out
}

// vmaExtents returns the extents of v in m.
func vmaExtents(t *testing.T, m *Memory, v *VMA) []Extent {
	var out []Extent
	if err := m.VMAExtents(v, func(e Extent) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameProcess checks that the salvaged process sp is the loaded one lp.
func sameProcess(t *testing.T, lp, sp *Process) {
	t.Helper()
	if lp.Arch != sp.Arch || lp.Comm != sp.Comm || lp.State != sp.State || lp.ExitCode != sp.ExitCode || lp.PageSize != sp.PageSize || lp.ExePath != sp.ExePath ||
		!slices.Equal(lp.VMAs, sp.VMAs) || !slices.Equal(lp.Auxv, sp.Auxv) || fmt.Sprint(lp.Notes) != fmt.Sprint(sp.Notes) ||
		!proto.Equal(lp.Task, sp.Task) || !proto.Equal(lp.MM, sp.MM) || len(lp.Threads) != len(sp.Threads) {
		t.Fatalf("pid %d: salvaged process differs from the loaded one", lp.Pid)
	}
	for i := range lp.Threads {
		if lp.Threads[i].Tid != sp.Threads[i].Tid || !proto.Equal(lp.Threads[i].Core, sp.Threads[i].Core) {
			t.Fatalf("pid %d: thread %d differs", lp.Pid, lp.Threads[i].Tid)
		}
	}
	for i := range lp.VMAs {
		if !slices.Equal(extentsOf(t, lp.Mem, &lp.VMAs[i]), extentsOf(t, sp.Mem, &sp.VMAs[i])) {
			t.Fatalf("pid %d: vma [%#x-%#x): extents differ", lp.Pid, lp.VMAs[i].Start, lp.VMAs[i].End)
		}
	}
}

// sameBytes checks that every byte the salvaged process sp reads (captured
// or zero) is the one the process rp of the sound checkpoint reads.
func sameBytes(t *testing.T, sp, rp *Process) {
	t.Helper()
	budget := 1 << 20
	for i := range sp.VMAs {
		v := &sp.VMAs[i]
		err := sp.Mem.VMAExtents(v, func(e Extent) error {
			if (e.Kind != Captured && e.Kind != Zero) || budget <= 0 || e.Start > math.MaxInt64-4096 {
				return nil
			}
			n := min(e.End-e.Start, 4096)
			budget -= int(n)
			got, want := make([]byte, n), make([]byte, n)
			if _, err := sp.Mem.ReadAt(got, int64(e.Start)); err != nil {
				t.Fatalf("pid %d: ReadAt(%#x): %v", sp.Pid, e.Start, err)
			}
			if k, err := rp.Mem.ReadAt(want, int64(e.Start)); err != nil || uint64(k) != n || !bytes.Equal(got, want) {
				t.Fatalf("pid %d: %v bytes at %#x differ from the sound checkpoint's (%d, %v)", sp.Pid, e.Kind, e.Start, k, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSalvageSound: from sound images SalvageProcess returns what
// LoadProcess does, and no error.
func TestSalvageSound(t *testing.T) {
	for _, s := range loadFixtures(t) {
		checkSalvage(t, s, s)
	}
}

// TestSalvageDamaged damages one image of threads-c at a time: the
// salvaged process lacks only what the image held, and one error names
// the file, the entry and what is wrong.
func TestSalvageDamaged(t *testing.T) {
	sound := loadFixtures(t)[1] // threads-c
	const pid = 32484
	c, err := Open(sound)
	if err != nil {
		t.Fatal(err)
	}
	good, err := c.LoadProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	cut := func(name string, n int) *memSource { return sound.with(name, sound.files[name][:n]) }
	editMM := func(fn func(m *mm.MmEntry)) *memSource {
		m := &mm.MmEntry{}
		if err := proto.Unmarshal(entryPayload(sound.files["mm-32484.img"], 0), m); err != nil {
			t.Fatal(err)
		}
		fn(m)
		return sound.with("mm-32484.img", frame(MagicMM, m))
	}
	for _, tc := range []struct {
		name    string
		src     *memSource
		part    Part
		tid     uint32
		msg     []string
		truncd  bool // cut short: the bytes read are the sound ones
		threads int
		vmas    int // -1: none (no mm)
		check   func(t *testing.T, p *Process)
	}{
		{"pages", cut("pages-1.img", 100000), PartNone, 0,
			[]string{"pagemap-32484.img: the data of entries 10-14 ends at byte 147456 of pages-1.img, which has 100000", "47456 bytes of captured memory are unreadable"},
			true, 4, len(good.VMAs), func(t *testing.T, p *Process) {
				r := p.Mem.Private().Runs[13] // entry 14
				_, err := p.Mem.ReadAt(make([]byte, 1), int64(r.Addr))
				if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "pagemap-32484.img entry 14: its data is at bytes") {
					t.Errorf("ReadAt of entry 14: %v", err)
				}
			}},
		{"pagemap", cut("pagemap-32484.img", 150), PartNone, 0,
			[]string{"pagemap-32484.img: entry 8 at offset 140", "exceeds the 6 bytes left", "the pagemap is read up to there: what it says from address 0x7f39700cb000 on is lost"},
			true, 4, len(good.VMAs), func(t *testing.T, p *Process) {
				x := p.Mem.Private()
				if x.Lost == nil || x.Known != 0x7f39700cb000 || len(x.Runs) != 7 {
					t.Errorf("index: lost %v known %#x, %d runs", x.Lost, x.Known, len(x.Runs))
				}
				_, err := p.Mem.ReadAt(make([]byte, 1), int64(x.Known))
				if !errors.Is(err, ErrUnreadable) || !errors.Is(err, ErrFormat) {
					t.Errorf("ReadAt beyond the index: %v", err)
				}
			}},
		{"pagemap-missing", sound.with("pagemap-32484.img", nil), PartNone, 0,
			[]string{"pagemap-32484.img", "every page it describes is unreadable"}, true, 4, len(good.VMAs), nil},
		{"pages-missing", sound.with("pages-1.img", nil), PartNone, 0,
			[]string{"pagemap-32484.img: pages file of pagemap_head", "pages-1.img", "the pages it holds are unreadable"}, true, 4, len(good.VMAs), nil},
		{"core", cut("core-32484.img", 1000), PartTask, pid,
			[]string{"core-32484.img: entry 0 at offset 8", "exceeds the 988 bytes left"}, true, 3, len(good.VMAs), func(t *testing.T, p *Process) {
				if p.Task != nil || p.Comm != "" || p.Arch != ArchX86_64 {
					t.Errorf("task %v comm %q arch %v", p.Task != nil, p.Comm, p.Arch)
				}
			}},
		{"thread-core", cut("core-32487.img", 600), PartThread, 32487,
			[]string{"thread 32487: core-32487.img: entry 0 at offset 8"}, true, 3, len(good.VMAs), nil},
		{"mm", cut("mm-32484.img", 600), PartMM, 0,
			[]string{"mm-32484.img: entry 0 at offset 8", "exceeds the 588 bytes left"}, true, 4, -1, nil},
		{"mm-trailing", sound.with("mm-32484.img", append(slices.Clone(sound.files["mm-32484.img"]), 1, 2, 3)), PartNone, 0,
			[]string{"mm-32484.img: entry 1 at offset", "3 bytes after the image's only entry: ignored"}, false, 4, len(good.VMAs), nil},
		{"vma", editMM(func(m *mm.MmEntry) { m.Vmas[3].End = proto.Uint64(m.Vmas[3].GetStart()) }), PartNone, 0,
			[]string{"mm-32484.img: vma 3 [", "start is not below end: left out of the mappings"}, false, 4, len(good.VMAs) - 1, nil},
		{"page-size", editMM(func(m *mm.MmEntry) {
			for i := 0; i+1 < len(m.MmSavedAuxv); i += 2 {
				if m.MmSavedAuxv[i] == atPagesz {
					m.MmSavedAuxv[i+1] = 3
				}
			}
		}), PartMemory, 0, []string{"mm-32484.img: AT_PAGESZ 3"}, false, 4, len(good.VMAs), func(t *testing.T, p *Process) {
			if p.PageSize != 0 || p.Mem != nil {
				t.Errorf("page size %d, memory %v", p.PageSize, p.Mem)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ck, err := Open(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ck.LoadProcess(pid); err == nil {
				t.Fatal("LoadProcess accepts the damaged images")
			}
			p, errs := ck.SalvageProcess(pid)
			defer p.Close()
			var se *SalvageError
			if len(errs) != 1 || !errors.As(errs[0], &se) || se.Part != tc.part || se.Tid != tc.tid {
				t.Fatalf("errors %v (%#v), want one of part %d, tid %d", errs, se, tc.part, tc.tid)
			}
			for _, m := range tc.msg {
				if !strings.Contains(errs[0].Error(), m) {
					t.Errorf("error %q lacks %q", errs[0], m)
				}
			}
			if len(p.Threads) != tc.threads || (tc.vmas < 0) != (p.VMAs == nil) || (tc.vmas >= 0 && len(p.VMAs) != tc.vmas) {
				t.Errorf("%d threads, %d vmas; want %d, %d", len(p.Threads), len(p.VMAs), tc.threads, tc.vmas)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
			sound := sound
			if !tc.truncd {
				sound = nil
			}
			checkSalvage(t, sound, tc.src)
		})
	}
}
