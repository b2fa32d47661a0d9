package ckptdiff

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"sort"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// MemoryDiff compares the memory of a process in A and in B. For a process
// only one side has, only VMAs and CapturedBytes are set.
type MemoryDiff struct {
	VMAs          int    `json:"vmas"`           // B's (A's if removed)
	CapturedBytes uint64 `json:"captured_bytes"` // B's (A's if removed)
	// Mappings lists the mappings added, removed, grown, shrunk, with
	// another protection, or whose captured pages changed.
	Mappings []MappingChange `json:"mappings"`
	// NotCompared says why the pages were not compared ("" if they were).
	NotCompared string `json:"not_compared"`
	// Page counts over the mappings in both: pages captured in both and
	// compared, those whose content differs, the bytes that differ in
	// them, pages captured in B only (never touched, not captured, or
	// beyond the mapping's end in A) and pages captured in A only.
	PagesCompared         uint64 `json:"pages_compared"`
	PagesChanged          uint64 `json:"pages_changed"`
	BytesChanged          uint64 `json:"bytes_changed"`
	PagesNewlyCaptured    uint64 `json:"pages_newly_captured"`
	PagesNoLongerCaptured uint64 `json:"pages_no_longer_captured"`
	// NewStrings are the longest printable strings of changed or newly
	// captured pages that the page did not hold in A (at most
	// Options.Strings); NewStringsTotal counts all of them.
	NewStrings      []NewString `json:"new_strings"`
	NewStringsTotal int         `json:"new_strings_total"`
}

// differs reports whether the memory differs; pages not compared (the
// reason is in NotCompared) are no difference by themselves.
func (m *MemoryDiff) differs() bool {
	if m == nil {
		return false
	}
	return countChanges(m.Mappings, func(x MappingChange) string { return x.Change }) > 0 ||
		m.PagesChanged > 0 || m.PagesNewlyCaptured > 0 || m.PagesNoLongerCaptured > 0
}

// MappingChange is one mapping of A, of B, or of both.
type MappingChange struct {
	Change string      `json:"change"` // added, removed, grown, shrunk, protection, changed (content), unchanged
	Start  inspect.Hex `json:"start"`  // B's (A's if removed)
	End    inspect.Hex `json:"end"`
	// StartBefore and EndBefore are A's bounds, when they differ.
	StartBefore inspect.Hex `json:"start_before"`
	EndBefore   inspect.Hex `json:"end_before"`
	Prot        string      `json:"prot"`        // "rwx" form, B's (A's if removed)
	ProtBefore  string      `json:"prot_before"` // A's, when it differs
	Path        string      `json:"path"`        // mapped file; "" anonymous
	Kind        string      `json:"kind"`        // as inspect's memory summary: "file", "anon", "heap", "stack", "shared", "sysv", "special"
	// Content of a mapping in both.
	PagesChanged       uint64 `json:"pages_changed"`
	BytesChanged       uint64 `json:"bytes_changed"`
	PagesNewlyCaptured uint64 `json:"pages_newly_captured"`
}

// NewString is a printable string that a page holds in B and did not in A.
type NewString struct {
	Addr    inspect.Hex `json:"addr"`
	Text    string      `json:"text"`
	Length  int         `json:"length"` // of the whole string (Text is cut at MaxStringLen)
	Count   int         `json:"count"`  // times seen in new content
	Mapping string      `json:"mapping"`
}

// MaxStringLen bounds the text kept of one string.
const MaxStringLen = 200

// chunkPages is how many pages are read at once.
const chunkPages = 256

// memComparer compares the memory of process pairs with one seed and
// reusable buffers.
type memComparer struct {
	seed       maphash.Seed
	opts       Options
	bufA, bufB []byte
	// ha and hb, when both set, are A's and B's page hashes: pages are
	// compared by them, and only those that differ are read.
	ha, hb *PageHashes
	// plan, if set, records the pages the comparison reads (of A and of
	// B), instead of reading them (with ha and hb).
	plan *[2]Reads
}

// Reads are, by pages image name, byte ranges of the pages files read.
type Reads map[string][][2]int64

func (r Reads) add(name string, off, end int64) {
	rs := r[name]
	if n := len(rs); n > 0 && rs[n-1][1] == off {
		rs[n-1][1] = end
		return
	}
	r[name] = append(rs, [2]int64{off, end})
}

// addMemory adds the captured bytes of mem in [start, end).
func (r Reads) addMemory(mem *criuimg.Memory, start, end uint64) {
	_ = mem.Extents(start, end, func(x criuimg.Extent) error {
		if x.Kind == criuimg.Captured && x.Src != nil {
			r.add(x.Src.Name(), x.Off, x.Off+int64(x.End-x.Start))
		}
		return nil
	})
}

func newMemComparer(opts Options) *memComparer {
	return &memComparer{seed: maphash.MakeSeed(), opts: opts}
}

// hashRun is the page hashes of consecutive captured pages from start.
type hashRun struct {
	start uint64
	h     []uint64
}

// mappingOf is the change of mapping v of p; its kind is the one
// inspect's memory summary counts it under.
func mappingOf(change string, p *criuimg.Process, v *criuimg.VMA) MappingChange {
	return MappingChange{Change: change, Start: inspect.Hex(v.Start), End: inspect.Hex(v.End), Prot: inspect.Prot(v.Prot), Path: v.Path, Kind: inspect.MemoryKind(p.VMAKind(v))}
}

// matchVMAs pairs B's mappings with A's: same start and path, then (for
// a stack that grew down) same end and path. It returns, for each B
// mapping, the index of its A mapping or -1, and which A mappings matched.
func matchVMAs(a, b []criuimg.VMA) ([]int, []bool) {
	byStart := map[uint64]int{}
	byEnd := map[uint64]int{}
	for i, v := range a {
		byStart[v.Start] = i
		byEnd[v.End] = i
	}
	match := make([]int, len(b))
	used := make([]bool, len(a))
	for j, v := range b {
		match[j] = -1
		if i, ok := byStart[v.Start]; ok && a[i].Path == v.Path && !used[i] {
			match[j], used[i] = i, true
		}
	}
	for j, v := range b {
		if match[j] >= 0 {
			continue
		}
		if i, ok := byEnd[v.End]; ok && a[i].Path == v.Path && !used[i] {
			match[j], used[i] = i, true
		}
	}
	return match, used
}

// compare compares the memory of pa (in A) and pb (in B). replaced says
// that the executable changed: the address space is another one, and its
// pages are not compared.
func (mc *memComparer) compare(pa, pb *criuimg.Process, replaced bool) (*MemoryDiff, error) {
	m := &MemoryDiff{VMAs: len(pb.VMAs)}
	if replaced {
		m.NotCompared = "the executable changed (execve, or another process under this pid)"
		return m, nil
	}
	match, used := matchVMAs(pa.VMAs, pb.VMAs)
	changes := make([]MappingChange, len(pb.VMAs))
	for j := range pb.VMAs {
		vb := &pb.VMAs[j]
		i := match[j]
		if i < 0 {
			changes[j] = mappingOf(Added, pb, vb)
			continue
		}
		va := &pa.VMAs[i]
		c := mappingOf(Unchanged, pb, vb)
		if va.Start != vb.Start || va.End != vb.End {
			c.StartBefore, c.EndBefore = inspect.Hex(va.Start), inspect.Hex(va.End)
			if vb.End-vb.Start > va.End-va.Start {
				c.Change = Grown
			} else {
				c.Change = Shrunk
			}
		}
		if va.Prot != vb.Prot {
			c.ProtBefore = inspect.Prot(va.Prot)
			if c.Change == Unchanged {
				c.Change = Protection
			}
		}
		changes[j] = c
	}
	var removed []MappingChange
	for i := range pa.VMAs {
		if !used[i] {
			removed = append(removed, mappingOf(Removed, pa, &pa.VMAs[i]))
		}
	}

	var errs []error
	switch {
	case pa.Mem == nil || pb.Mem == nil:
		m.NotCompared = "no memory view (page size unknown or images damaged)"
	case pa.PageSize != pb.PageSize:
		m.NotCompared = fmt.Sprintf("page sizes differ (%d and %d)", pa.PageSize, pb.PageSize)
	default:
		errs = mc.comparePages(pa, pb, match, changes, m)
	}

	for _, c := range changes {
		if c.Change == Unchanged && (c.PagesChanged > 0 || c.PagesNewlyCaptured > 0) {
			c.Change = Changed
		}
		if c.Change != Unchanged || mc.opts.ShowUnchanged {
			m.Mappings = append(m.Mappings, c)
		}
	}
	m.Mappings = append(m.Mappings, removed...)
	sort.SliceStable(m.Mappings, func(i, j int) bool { return m.Mappings[i].Start < m.Mappings[j].Start })
	if mem := pb.Mem; mem != nil {
		for i := range pb.VMAs {
			_ = mem.VMAExtents(&pb.VMAs[i], func(e criuimg.Extent) error {
				if e.Kind == criuimg.Captured {
					m.CapturedBytes += e.End - e.Start
				}
				return nil
			})
		}
	}
	return m, errors.Join(errs...)
}

// readCaptured calls fn for each captured page of v (in chunks of whole
// pages read into buf), in address order.
func readCaptured(mem *criuimg.Memory, v *criuimg.VMA, ps uint64, buf []byte, fn func(addr uint64, pages []byte) error) error {
	return mem.VMAExtents(v, func(e criuimg.Extent) error {
		if e.Kind != criuimg.Captured {
			return nil
		}
		for s := e.Start; s < e.End; {
			n := min(e.End-s, uint64(len(buf)))
			n -= n % ps
			if n == 0 {
				return nil
			}
			b := buf[:n]
			k, err := e.Src.ReadAt(b, e.Off+int64(s-e.Start))
			if k < len(b) {
				if err == nil {
					err = fmt.Errorf("short read")
				}
				return fmt.Errorf("%s at offset %d: %w", e.Src.Name(), e.Off+int64(s-e.Start), err)
			}
			if err := fn(s, b); err != nil {
				return err
			}
			s += n
		}
		return nil
	})
}

// comparePages hashes the captured pages of pa's mappings that B kept,
// then streams pb's and compares them.
func (mc *memComparer) comparePages(pa, pb *criuimg.Process, match []int, changes []MappingChange, m *MemoryDiff) []error {
	ps := pa.PageSize
	if ps == 0 || ps > 1<<20 {
		m.NotCompared = fmt.Sprintf("page size %d", ps)
		return nil
	}
	size := int(ps) * chunkPages
	if len(mc.bufA) < int(ps) || len(mc.bufB) != size {
		mc.bufA, mc.bufB = make([]byte, ps), make([]byte, size)
	}
	if mc.ha != nil && mc.hb != nil {
		return mc.comparePageHashes(pa, pb, match, changes, m)
	}
	var errs []error
	// Hash A's captured pages, in the mappings B kept.
	runs := map[int][]hashRun{}
	captured := map[int]uint64{} // A pages per mapping
	for j, i := range match {
		if i < 0 {
			continue
		}
		va := &pa.VMAs[i]
		var rs []hashRun
		err := readCaptured(pa.Mem, va, ps, mc.bufB, func(addr uint64, pages []byte) error {
			if len(rs) == 0 || rs[len(rs)-1].start+uint64(len(rs[len(rs)-1].h))*ps != addr {
				rs = append(rs, hashRun{start: addr})
			}
			r := &rs[len(rs)-1]
			for off := 0; off < len(pages); off += int(ps) {
				r.h = append(r.h, maphash.Bytes(mc.seed, pages[off:off+int(ps)]))
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("A: mapping [%#x-%#x): %w", va.Start, va.End, err))
		}
		runs[j] = rs
		for _, r := range rs {
			captured[j] += uint64(len(r.h))
		}
	}
	top := &topStrings{n: mc.opts.Strings}
	// Stream B's.
	for j := range pb.VMAs {
		if match[j] < 0 {
			continue
		}
		vb := &pb.VMAs[j]
		c := &changes[j]
		rs := runs[j]
		name := mappingName(pb, vb)
		var inA uint64 // B pages whose A page was captured
		err := readCaptured(pb.Mem, vb, ps, mc.bufB, func(addr uint64, pages []byte) error {
			for off := uint64(0); off < uint64(len(pages)); off += ps {
				pg := pages[off : off+ps]
				a := addr + off
				h, ok := lookup(rs, a, ps)
				if ok {
					inA++
					m.PagesCompared++
					if h == maphash.Bytes(mc.seed, pg) {
						continue
					}
					k, err := pa.Mem.ReadAt(mc.bufA[:ps], int64(a))
					if k < int(ps) {
						return fmt.Errorf("A: page %#x: %w", a, err)
					}
					old := mc.bufA[:ps]
					changedPage(m, c, top, a, pg, old, mc.opts.MinString, name) // equal bytes: a hash collision
					continue
				}
				m.PagesNewlyCaptured++
				c.PagesNewlyCaptured++
				m.NewStringsTotal += top.scan(a, pg, nil, mc.opts.MinString, name)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("B: mapping [%#x-%#x): %w", vb.Start, vb.End, err))
		}
		m.PagesNoLongerCaptured += noLongerCaptured(rs, vb, ps, inA)
		delete(runs, j)
	}
	m.NewStrings = top.sorted()
	return errs
}

// capturedPages calls fn for each whole captured page of v, in address
// order, with where its bytes are (the pages readCaptured reads).
func capturedPages(mem *criuimg.Memory, v *criuimg.VMA, ps uint64, fn func(addr uint64, src criuimg.File, off int64) error) error {
	return mem.VMAExtents(v, func(e criuimg.Extent) error {
		if e.Kind != criuimg.Captured {
			return nil
		}
		for s := e.Start; e.End-s >= ps; s += ps {
			if err := fn(s, e.Src, e.Off+int64(s-e.Start)); err != nil {
				return err
			}
		}
		return nil
	})
}

// comparePageHashes is comparePages by the page hashes of A and B (ha,
// hb): a page is read only when its hashes differ, or are not known, or
// B alone captured it; with plan, the pages it would read are recorded
// instead.
func (mc *memComparer) comparePageHashes(pa, pb *criuimg.Process, match []int, changes []MappingChange, m *MemoryDiff) []error {
	ps := pa.PageSize
	var errs []error
	// A's hashes, in the mappings B kept (known: A's hash was computed).
	type aRun struct {
		hashRun
		known []bool
	}
	runs := map[int][]aRun{}
	for j, i := range match {
		if i < 0 {
			continue
		}
		var rs []aRun
		_ = capturedPages(pa.Mem, &pa.VMAs[i], ps, func(addr uint64, src criuimg.File, off int64) error {
			if len(rs) == 0 || rs[len(rs)-1].start+uint64(len(rs[len(rs)-1].h))*ps != addr {
				rs = append(rs, aRun{hashRun: hashRun{start: addr}})
			}
			h, ok := mc.ha.page(src.Name(), off, ps)
			r := &rs[len(rs)-1]
			r.h, r.known = append(r.h, h), append(r.known, ok)
			return nil
		})
		runs[j] = rs
	}
	hashRuns := func(rs []aRun) []hashRun {
		out := make([]hashRun, len(rs))
		for i := range rs {
			out[i] = rs[i].hashRun
		}
		return out
	}
	knownAt := func(rs []aRun, addr uint64) bool {
		i := sort.Search(len(rs), func(i int) bool { return rs[i].start+uint64(len(rs[i].h))*ps > addr })
		return rs[i].known[(addr-rs[i].start)/ps]
	}
	top := &topStrings{n: mc.opts.Strings}
	pg, old := mc.bufB[:ps], mc.bufA[:ps]
	for j := range pb.VMAs {
		if match[j] < 0 {
			continue
		}
		vb := &pb.VMAs[j]
		c := &changes[j]
		rs := runs[j]
		hr := hashRuns(rs)
		name := mappingName(pb, vb)
		var inA uint64
		err := capturedPages(pb.Mem, vb, ps, func(a uint64, src criuimg.File, off int64) error {
			hb, okB := mc.hb.page(src.Name(), off, ps)
			ha, found := lookup(hr, a, ps)
			if found {
				inA++
				m.PagesCompared++
				if okB && knownAt(rs, a) && ha == hb {
					return nil
				}
			}
			if mc.plan != nil {
				mc.plan[1].add(src.Name(), off, off+int64(ps))
				if found {
					mc.plan[0].addMemory(pa.Mem, a, a+ps)
				}
				return nil
			}
			if k, err := src.ReadAt(pg, off); k < len(pg) {
				if err == nil {
					err = fmt.Errorf("short read")
				}
				return fmt.Errorf("%s at offset %d: %w", src.Name(), off, err)
			}
			if !found {
				m.PagesNewlyCaptured++
				c.PagesNewlyCaptured++
				m.NewStringsTotal += top.scan(a, pg, nil, mc.opts.MinString, name)
				return nil
			}
			k, err := pa.Mem.ReadAt(old, int64(a))
			if k < int(ps) {
				return fmt.Errorf("A: page %#x: %w", a, err)
			}
			changedPage(m, c, top, a, pg, old, mc.opts.MinString, name) // equal bytes: a hash collision, or hashes not known
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("B: mapping [%#x-%#x): %w", vb.Start, vb.End, err))
		}
		m.PagesNoLongerCaptured += noLongerCaptured(hr, vb, ps, inA)
	}
	m.NewStrings = top.sorted()
	return errs
}

// changedPage counts page pg of B at addr, whose bytes in A are old, as
// changed in m and c (its mapping), with its new strings, unless the
// bytes are the same.
func changedPage(m *MemoryDiff, c *MappingChange, top *topStrings, addr uint64, pg, old []byte, minString int, mapping string) {
	nb := uint64(0)
	for x := range pg {
		if pg[x] != old[x] {
			nb++
		}
	}
	if nb == 0 {
		return
	}
	m.PagesChanged++
	m.BytesChanged += nb
	c.PagesChanged++
	c.BytesChanged += nb
	m.NewStringsTotal += top.scan(addr, pg, old, minString, mapping)
}

// noLongerCaptured is how many of A's captured pages (rs) in the part of
// mapping vb that B still has B did not capture, inA of them being in B.
func noLongerCaptured(rs []hashRun, vb *criuimg.VMA, ps, inA uint64) uint64 {
	var aIn uint64
	for _, r := range rs {
		for k := range r.h {
			if a := r.start + uint64(k)*ps; a >= vb.Start && a < vb.End {
				aIn++
			}
		}
	}
	if aIn > inA {
		return aIn - inA
	}
	return 0
}

// lookup returns A's hash of the page at addr.
func lookup(rs []hashRun, addr, ps uint64) (uint64, bool) {
	i := sort.Search(len(rs), func(i int) bool { return rs[i].start+uint64(len(rs[i].h))*ps > addr })
	if i == len(rs) || addr < rs[i].start {
		return 0, false
	}
	return rs[i].h[(addr-rs[i].start)/ps], true
}

// mappingName names mapping v of p for its new strings: its path, or its
// kind.
func mappingName(p *criuimg.Process, v *criuimg.VMA) string {
	if v.Path != "" {
		return v.Path
	}
	return inspect.MemoryKind(p.VMAKind(v))
}

// topStrings keeps the n longest new strings (distinct texts).
type topStrings struct {
	n    int
	kept []NewString
}

// scan finds the printable strings of at least min bytes in page (at
// addr) that old does not contain (all of them if old is nil), keeps the
// longest, and returns how many it found.
func (t *topStrings) scan(addr uint64, page, old []byte, min int, mapping string) int {
	found := 0
	start := -1
	for i := 0; i <= len(page); i++ {
		if i < len(page) && printable(page[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 && i-start >= min {
			s := page[start:i]
			if old == nil || !bytes.Contains(old, s) {
				found++
				t.add(addr+uint64(start), s, mapping)
			}
		}
		start = -1
	}
	return found
}

func printable(c byte) bool { return c >= 0x20 && c < 0x7f || c == '\t' }

func (t *topStrings) add(addr uint64, s []byte, mapping string) {
	if t.n <= 0 {
		return
	}
	text := s
	if len(text) > MaxStringLen {
		text = text[:MaxStringLen]
	}
	for i := range t.kept {
		if t.kept[i].Text == string(text) && t.kept[i].Length == len(s) {
			t.kept[i].Count++
			return
		}
	}
	ns := NewString{Addr: inspect.Hex(addr), Text: string(text), Length: len(s), Count: 1, Mapping: mapping}
	if len(t.kept) < t.n {
		t.kept = append(t.kept, ns)
		return
	}
	shortest := 0
	for i := range t.kept {
		if t.kept[i].Length < t.kept[shortest].Length {
			shortest = i
		}
	}
	if len(s) > t.kept[shortest].Length {
		t.kept[shortest] = ns
	}
}

// sorted returns the kept strings by address.
func (t *topStrings) sorted() []NewString {
	sort.Slice(t.kept, func(i, j int) bool { return t.kept[i].Addr < t.kept[j].Addr })
	return t.kept
}
