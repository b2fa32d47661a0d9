// Package memsearch searches the captured memory of checkpointed processes
// for byte strings and regular expressions, as a stream: each mapping's
// bytes pass through one fixed buffer, so memory use does not grow with the
// size of the pages files.
//
// The rules of what can match:
//
//   - A match lies inside one mapping (VMA): it never spans two mappings,
//     even when they are adjacent in address.
//   - A match lies inside one readable stretch of a mapping: captured bytes
//     and untouched (zero) anonymous or shared memory, in address order.
//     It never spans a range the checkpoint does not hold (an Absent
//     extent: clean file pages, pages in a parent checkpoint or left to
//     lazy migration, vvar); matching restarts after it. Unmapped gaps
//     lie between mappings, so they are never spanned either.
//   - Inside a stretch, matches span page and pagemap-entry boundaries,
//     and the boundaries between captured bytes and zeros: a pattern whose
//     tail is zero bytes matches captured bytes followed by untouched
//     memory.
//   - Untouched memory is read (as zeros) only within MaxLen-1 bytes of
//     captured bytes, unless the pattern can match zeros alone (a literal
//     of zero bytes, or a regular expression that matches a run of zeros),
//     in which case it is scanned in full.
//   - Matches do not overlap: after a match, the search resumes at its end.
//   - Regular-expression matches are at most MaxRegexpMatch bytes long.
//
// Context bytes around a hit follow the same rule: they stop at the edges
// of the stretch the hit lies in.
package memsearch

import (
	"errors"
	"fmt"
	"sort"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/readat"
)

// DefaultContext is the number of context bytes on each side of a hit that
// Search reports.
const DefaultContext = 16

// DefaultBufSize is the size of the buffer a search streams memory
// through.
const DefaultBufSize = 1 << 20

// Hit is one match in a process's memory.
type Hit struct {
	Pid  uint32
	Comm string
	// Addr is the virtual address of the match's first byte.
	Addr uint64
	// Mapping names the mapping the match lies in (see MappingName) and
	// MappingStart is its first address; Offset is Addr - MappingStart.
	Mapping      string
	MappingStart uint64
	Offset       uint64
	// Match holds the matched bytes; Before and After hold up to the
	// searcher's Context bytes on each side (fewer at the edges of the
	// readable stretch of the mapping). The slices belong to the Hit.
	Match         []byte
	Before, After []byte
	// Pattern is, for a Set, the index of the pattern matched; 0 for
	// other matchers.
	Pattern int
}

// ErrStop, returned by the function given to Search, ends the search
// early; Search then returns nil.
var ErrStop = errors.New("memsearch: stop")

// Searcher holds the settings of a search. The zero value reports no
// context and uses DefaultBufSize.
type Searcher struct {
	// Context is the number of bytes reported on each side of a hit.
	Context int
	// BufSize is the number of new bytes each fill of the buffer reads
	// (raised to the matcher's MaxLen if smaller; the buffer also keeps
	// MaxLen-1 bytes of the previous fill). 0 means DefaultBufSize.
	BufSize int
}

// Search calls fn for each match of m in the captured memory of p, private
// and shared, in address order. It stops at the first error of fn and
// returns it (nil for ErrStop).
func (s Searcher) Search(p *criuimg.Process, m Matcher, fn func(Hit) error) error {
	if p.Mem == nil {
		return fmt.Errorf("pid %d: no memory view (a zombie has no memory)", p.Pid)
	}
	maps := make([]mapping, len(p.VMAs))
	for i := range p.VMAs {
		v := &p.VMAs[i]
		maps[i] = mapping{vma: v, name: MappingName(p, v)}
	}
	return s.search(p.Pid, p.Comm, maps, p.Mem.VMAExtents, m, fn)
}

// MappingName is how hits name the mapping v of p, by its kind
// (criuimg's Process.VMAKind): for shared memory, "[shared]" (shared
// anonymous memory, whose shmem file is "/dev/zero (deleted)") or the
// path of a memfd ("/memfd:NAME (deleted)") or SysV segment; the path of
// a mapped file; else the kind in brackets: "[heap]", "[stack]" (the
// initial stack or a thread's), "[vdso]", "[vvar]", "[vsyscall]",
// "[aio]", "[socket]", or "[anon]" for other anonymous memory.
func MappingName(p *criuimg.Process, v *criuimg.VMA) string {
	switch k := p.VMAKind(v); k {
	case criuimg.KindShared, criuimg.KindSysV:
		// CRIU >= 4.2 records shared anonymous memory as a memfd named
		// "dev/zero", the name of the kernel's shmem file for it.
		if v.Path == "" || v.Path == criuimg.AnonSharedPath {
			return "[shared]"
		}
		return v.Path
	case criuimg.KindFile:
		return v.Path
	default:
		return "[" + k.String() + "]"
	}
}

// mapping is one VMA to search and the name hits give it.
type mapping struct {
	vma  *criuimg.VMA
	name string
}

// extentsFunc lists the extents of a mapping in address order
// (criuimg.Memory.VMAExtents).
type extentsFunc func(v *criuimg.VMA, fn func(criuimg.Extent) error) error

// piece is a contiguous range of readable bytes: captured bytes at off in
// src, or zeros when src is nil.
type piece struct {
	start, end uint64
	src        criuimg.File
	off        int64
}

// state is one search in progress.
type state struct {
	Searcher
	pid    uint32
	comm   string
	m      mapping
	maxLen int
	zeros  bool // the matcher can match zeros alone: scan zeros in full
	sc     scanner
	buf    []byte // maxLen-1 bytes of carry + the chunk
	seg    []piece
	run    []piece
	fn     func(Hit) error
	// lend: windows may be scanned in place (view): the scanner's matches
	// do not depend on where windows begin, and context reads stay
	// within criuimg.ViewSlack of them.
	lend bool
	// pattern is the Set pattern of the match being reported.
	pattern int
}

func (s Searcher) search(pid uint32, comm string, maps []mapping, extents extentsFunc, m Matcher, fn func(Hit) error) error {
	st := &state{Searcher: s, pid: pid, comm: comm, maxLen: m.MaxLen(), zeros: m.matchesZeros(), sc: m.newScanner(), fn: fn}
	if st.Context < 0 {
		st.Context = 0
	}
	st.lend = st.sc.windowFree() && st.Context <= criuimg.ViewSlack
	chunk := s.BufSize
	if chunk == 0 {
		chunk = DefaultBufSize
	}
	chunk = max(chunk, st.maxLen)
	st.buf = make([]byte, st.maxLen-1+chunk)
	for _, mp := range maps {
		st.m = mp
		st.seg = st.seg[:0]
		err := extents(mp.vma, func(e criuimg.Extent) error {
			switch e.Kind {
			case criuimg.Captured:
				st.seg = append(st.seg, piece{start: e.Start, end: e.End, src: e.Src, off: e.Off})
			case criuimg.Zero:
				st.seg = append(st.seg, piece{start: e.Start, end: e.End})
			default:
				// Absent: matching restarts after it.
				err := st.scanSegment()
				st.seg = st.seg[:0]
				return err
			}
			return nil
		})
		if err == nil {
			err = st.scanSegment()
		}
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// scanSegment searches st.seg, a readable stretch of the mapping. Unless
// the matcher can match zeros alone, every match holds a non-zero byte,
// hence a captured byte, and lies within maxLen-1 bytes of one: a zero
// piece longer than 2*(maxLen-1) contributes only its first and last
// maxLen-1 bytes, and splits the stretch into runs searched apart.
func (st *state) scanSegment() error {
	seg := st.seg
	if len(seg) == 0 {
		return nil
	}
	if st.zeros {
		return st.scanRun(seg)
	}
	k := uint64(st.maxLen - 1)
	run := st.run[:0]
	data := false
	for _, pc := range seg {
		if pc.src != nil {
			run, data = append(run, pc), true
			continue
		}
		if pc.end-pc.start <= 2*k {
			run = append(run, pc)
			continue
		}
		if k > 0 && len(run) > 0 {
			run = append(run, piece{start: pc.start, end: pc.start + k})
		}
		if data {
			if err := st.scanRun(run); err != nil {
				return err
			}
		}
		run, data = run[:0], false
		if k > 0 {
			run = append(run, piece{start: pc.end - k, end: pc.end})
		}
	}
	st.run = run
	if data {
		return st.scanRun(run)
	}
	return nil
}

// scanRun streams the contiguous pieces of run through the buffer: each
// fill keeps the last maxLen-1 bytes of the previous one, and only matches
// that start before those bytes are taken from a buffer that is not the
// last (the next one holds the others whole).
func (st *state) scanRun(run []piece) error {
	carry := st.maxLen - 1
	if ms, ok := st.sc.(multiScanner); ok {
		ms.reset()
	}
	buf := st.buf
	keep := 0
	bufStart := run[0].start
	pos := run[0].start // next address to read
	pi := 0
	lastEnd := bufStart // matches start at or after the end of the previous one
	// consumed moves past k bytes of the current piece, to the next one
	// at its end.
	consumed := func(k int) {
		if pos += uint64(k); pos == run[pi].end {
			if pi++; pi < len(run) {
				pos = run[pi].start
			}
		}
	}
	for {
		// The window [bufStart, bufStart+n): lent in place by the pages
		// file when it can, else the carry and what follows in buf.
		data, err := st.view(run[pi], bufStart, pos, len(buf)-keep)
		if err != nil {
			return err
		}
		if data != nil {
			consumed(len(data) - keep)
		} else {
			n := keep
			for n < len(buf) && pi < len(run) {
				pc := run[pi]
				want := int(min(uint64(len(buf)-n), pc.end-pos))
				b := buf[n : n+want]
				if pc.src == nil {
					clear(b)
				} else if err := st.read(pc, pos, b); err != nil {
					return err
				}
				n += want
				consumed(want)
			}
			data = buf[:n]
		}
		n := len(data)
		final := pi == len(run)
		limit := n
		if !final {
			limit = n - carry
		}
		if ms, ok := st.sc.(multiScanner); ok {
			err := ms.each(data, bufStart, limit, func(s, e, pat int) error {
				st.pattern = pat
				return st.report(bufStart+uint64(s), data, bufStart, s, e)
			})
			if err != nil {
				return err
			}
			if final {
				return nil
			}
			keep = copy(buf, data[limit:])
			bufStart += uint64(limit)
			continue
		}
		st.sc.load(data)
		from := 0
		if lastEnd > bufStart {
			from = int(lastEnd - bufStart)
		}
		for from < limit {
			s, e := st.sc.index(from)
			if s < 0 || s >= limit {
				break
			}
			if err := st.report(bufStart+uint64(s), data, bufStart, s, e); err != nil {
				return err
			}
			lastEnd = bufStart + uint64(e)
			from = e
		}
		if final {
			return nil
		}
		keep = copy(buf, data[limit:])
		bufStart += uint64(limit)
	}
}

// minView is the least window worth scanning in place: below it, the
// bytes are copied (with the pieces that follow) into the buffer.
const minView = 64 << 10

// view returns the window [bufStart, pos+k) of piece pc in place, when
// its file lends it (criuimg.Viewer) and the search may scan windows of
// its own choosing (st.lend): k is the most of pc the window may take
// after pos, less if pc ends first. The window's first pos-bufStart bytes
// are the carry, which must lie in pc too. It returns nil when the window
// is to be copied instead.
func (st *state) view(pc piece, bufStart, pos uint64, k int) ([]byte, error) {
	if !st.lend || pc.src == nil || bufStart < pc.start {
		return nil, nil
	}
	v, ok := pc.src.(criuimg.Viewer)
	if !ok {
		return nil, nil
	}
	want := min(uint64(k), pc.end-pos)
	n := pos - bufStart + want
	if want < minView || n > criuimg.MaxView {
		return nil, nil
	}
	off := pc.off + int64(bufStart-pc.start)
	b, err := v.View(off, int(n))
	if err != nil {
		return nil, st.readError(pc, off, err)
	}
	return b, nil
}

// read fills b with the captured bytes of pc from address addr.
func (st *state) read(pc piece, addr uint64, b []byte) error {
	off := pc.off + int64(addr-pc.start)
	if _, err := readat.Full(pc.src, b, off); err != nil {
		return st.readError(pc, off, err)
	}
	return nil
}

// readError says which process, mapping, file and offset a read of pc
// failed at.
func (st *state) readError(pc piece, off int64, err error) error {
	return fmt.Errorf("pid %d: %s [%#x-%#x): reading %s at offset %d: %w", st.pid, st.m.name, st.m.vma.Start, st.m.vma.End, pc.src.Name(), off, err)
}

// report builds the hit data[s:e] at addr, with its context, and passes it
// on.
func (st *state) report(addr uint64, data []byte, bufStart uint64, s, e int) error {
	v := st.m.vma
	h := Hit{
		Pid: st.pid, Comm: st.comm, Addr: addr,
		Mapping: st.m.name, MappingStart: v.Start, Offset: addr - v.Start,
		Match: append([]byte(nil), data[s:e]...), Pattern: st.pattern,
	}
	if c := uint64(st.Context); c > 0 {
		segStart, segEnd := st.seg[0].start, st.seg[len(st.seg)-1].end
		end := addr + uint64(e-s)
		lo := max(segStart, addr-min(c, addr-segStart))
		hi := min(segEnd, end+min(c, segEnd-end))
		var err error
		if h.Before, err = st.context(lo, addr, data, bufStart); err != nil {
			return err
		}
		if h.After, err = st.context(end, hi, data, bufStart); err != nil {
			return err
		}
	}
	return st.fn(h)
}

// context returns the bytes [lo, hi) of the current stretch: from the
// buffer when it holds them, else from the pieces.
func (st *state) context(lo, hi uint64, data []byte, bufStart uint64) ([]byte, error) {
	out := make([]byte, hi-lo)
	if lo >= bufStart && hi <= bufStart+uint64(len(data)) {
		copy(out, data[lo-bufStart:hi-bufStart])
		return out, nil
	}
	seg := st.seg
	i := sort.Search(len(seg), func(i int) bool { return seg[i].end > lo })
	for addr := lo; addr < hi; i++ {
		pc := seg[i]
		b := out[addr-lo : min(hi, pc.end)-lo]
		if pc.src == nil {
			clear(b)
		} else if err := st.read(pc, addr, b); err != nil {
			return nil, err
		}
		addr += uint64(len(b))
	}
	return out, nil
}
