// Package bashhist recovers the command history of a bash process from
// its captured heap, as Volatility 3's linux.bash plugin does from a RAM
// image.
//
// Readline (bash 5.x, x86_64 and arm64, both LP64 little-endian) keeps
// each history line in a struct hist_entry { char *line; char *timestamp;
// histdata_t data; }, and add_history always gives it a timestamp string
// "#<seconds since the epoch>" (hist_inittime: history_comment_char '#'
// and the time, whether or not HISTTIMEFORMAT is set). Recovery therefore
// is: find every "#<digits>" string in the heap, find the 8-byte aligned
// words of the heap that point at one of them (the timestamp field of a
// hist_entry, 8 bytes into it), and read the line its first field points
// at. The history list itself (the_history, an array of pointers to the
// entries) gives the entries' order where it is still in the heap.
//
// Only captured pages are read; memory use grows with the number of
// timestamp strings found, never with the heap's size.
package bashhist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// MaxLine bounds the bytes read of one history line; a longer line is
// kept truncated.
const MaxLine = 64 << 10

// MaxEntries bounds the entries recovered from one process (bash's
// HISTSIZE is 500 by default; a hostile heap could fake many more).
const MaxEntries = 1 << 16

// chunk is how much of a region is read at a time (a multiple of 8).
const chunk = 1 << 20

// Memory is the address space the heap is read from (a
// *criuimg.Memory).
type Memory interface {
	ReadAt(p []byte, addr int64) (int, error)
}

// Region is a range [Start, End) of readable heap bytes.
type Region struct{ Start, End uint64 }

// Entry is one recovered history entry.
type Entry struct {
	Line string // the command line (truncated to MaxLine bytes)
	// Time is the timestamp, in seconds since the epoch.
	Time int64
	// EntryAddr is the address of the struct hist_entry, LineAddr that
	// of the line and TimeAddr that of the timestamp string.
	EntryAddr, LineAddr, TimeAddr uint64
	// Index is the entry's position in the history list (the_history;
	// 0 is the oldest entry still listed), or -1 if no list in the heap
	// points at it (an entry freed, or a list overwritten).
	Index     int
	Truncated bool
}

// ErrArch is returned by Recover for a process of an architecture whose
// bash layout is not known.
var ErrArch = errors.New("bash history: unsupported architecture (x86_64 and arm64 only)")

// Recover returns the history entries found in the captured pages of p's
// heap ([heap] mappings), oldest first.
func Recover(p *criuimg.Process) ([]Entry, error) {
	if p.Arch != criuimg.ArchX86_64 && p.Arch != criuimg.ArchARM64 {
		return nil, ErrArch
	}
	if p.Mem == nil {
		return nil, nil
	}
	var regions []Region
	for i := range p.VMAs {
		v := &p.VMAs[i]
		if p.VMAKind(v) != criuimg.KindHeap {
			continue
		}
		err := p.Mem.VMAExtents(v, func(e criuimg.Extent) error {
			if e.Kind != criuimg.Captured {
				return nil
			}
			if n := len(regions); n > 0 && regions[n-1].End == e.Start {
				regions[n-1].End = e.End // one run: strings may cross extents
			} else {
				regions = append(regions, Region{e.Start, e.End})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("heap [%#x-%#x): %w", v.Start, v.End, err)
		}
	}
	return Scan(p.Mem, regions)
}

// Scan recovers the history entries whose hist_entry, timestamp and
// history list lie in regions of m (lines may lie anywhere m can read),
// oldest first.
func Scan(m Memory, regions []Region) ([]Entry, error) {
	// Pass 1: the timestamp strings.
	stamps := map[uint64]int64{}
	err := eachChunk(m, regions, 24, func(base uint64, b []byte, limit int) error {
		for i := 0; i < limit; i++ {
			if b[i] != '#' {
				continue
			}
			if t, ok := parseStamp(b[i+1:]); ok {
				if len(stamps) >= MaxEntries {
					return nil
				}
				stamps[base+uint64(i)] = t
			}
		}
		return nil
	})
	if err != nil || len(stamps) == 0 {
		return nil, err
	}
	// Pass 2: words pointing at a timestamp: the timestamp field of a
	// hist_entry, whose line pointer is the word before it.
	var entries []Entry
	byAddr := map[uint64]int{}
	err = eachWord(m, regions, func(addr, w uint64) {
		t, ok := stamps[w]
		if !ok || addr < 8 || len(entries) >= MaxEntries {
			return
		}
		e := Entry{EntryAddr: addr - 8, TimeAddr: w, Time: t, Index: -1}
		var lp [8]byte
		if _, err := m.ReadAt(lp[:], int64(e.EntryAddr)); err != nil {
			return
		}
		e.LineAddr = binary.LittleEndian.Uint64(lp[:])
		line, trunc, ok := readLine(m, e.LineAddr)
		if !ok {
			return
		}
		e.Line, e.Truncated = line, trunc
		if _, dup := byAddr[e.EntryAddr]; dup {
			return
		}
		byAddr[e.EntryAddr] = len(entries)
		entries = append(entries, e)
	})
	if err != nil || len(entries) == 0 {
		return nil, err
	}
	// Pass 3: the history list, the longest run of consecutive words
	// pointing at entries.
	type slot struct{ addr, entry uint64 }
	var slots []slot
	err = eachWord(m, regions, func(addr, w uint64) {
		if _, ok := byAddr[w]; ok && len(slots) < MaxEntries {
			slots = append(slots, slot{addr, w})
		}
	})
	if err != nil {
		return nil, err
	}
	bestStart, bestLen := 0, 0
	for i := 0; i < len(slots); {
		j := i + 1
		for j < len(slots) && slots[j].addr == slots[j-1].addr+8 {
			j++
		}
		if j-i >= bestLen {
			bestStart, bestLen = i, j-i
		}
		i = j
	}
	for k := 0; k < bestLen; k++ {
		e := &entries[byAddr[slots[bestStart+k].entry]]
		if e.Index < 0 {
			e.Index = k
		}
	}
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if (a.Index >= 0) != (b.Index >= 0) {
			return a.Index >= 0
		}
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		if a.Time != b.Time {
			return a.Time < b.Time
		}
		return a.EntryAddr < b.EntryAddr
	})
	return entries, nil
}

// parseStamp parses the digits of a timestamp string after its '#': 9 to
// 19 digits and a NUL (Volatility asks for at least 10 characters with
// the '#').
func parseStamp(b []byte) (int64, bool) {
	var t int64
	for i, c := range b {
		switch {
		case c == 0:
			return t, i >= 9
		case c < '0' || c > '9' || i >= 19:
			return 0, false
		}
		t = t*10 + int64(c-'0')
	}
	return 0, false
}

// readLine reads the NUL-terminated line at addr: at most MaxLine bytes,
// not empty, valid UTF-8 without control characters but tab.
func readLine(m Memory, addr uint64) (string, bool, bool) {
	if addr == 0 {
		return "", false, false
	}
	var out []byte
	buf := make([]byte, 256)
	for len(out) < MaxLine {
		n := len(buf)
		// Do not read across a page boundary: the next page may be
		// missing while the line ends before it.
		if rest := 4096 - (addr+uint64(len(out)))%4096; uint64(n) > rest {
			n = int(rest)
		}
		k, _ := m.ReadAt(buf[:n], int64(addr)+int64(len(out)))
		if k == 0 {
			return "", false, false
		}
		for i := 0; i < k; i++ {
			if buf[i] == 0 {
				out = append(out, buf[:i]...)
				return validLine(out, false)
			}
		}
		out = append(out, buf[:k]...)
		if k < n {
			return "", false, false // unterminated before unreadable memory
		}
	}
	return validLine(out[:MaxLine], true)
}

func validLine(b []byte, trunc bool) (string, bool, bool) {
	if len(b) == 0 {
		return "", false, false
	}
	if trunc {
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1] // a rune cut by the limit
		}
	}
	if !utf8.Valid(b) {
		return "", false, false
	}
	for _, c := range b {
		if (c < 0x20 && c != '\t') || c == 0x7f {
			return "", false, false
		}
	}
	return string(b), trunc, true
}

// eachChunk calls fn with the bytes of regions, chunk by chunk; each
// chunk carries up to overlap bytes of the next one after limit, so that
// a short string starting before limit is seen whole.
func eachChunk(m Memory, regions []Region, overlap int, fn func(base uint64, b []byte, limit int) error) error {
	size := uint64(0)
	for _, r := range regions {
		size = max(size, min(r.End-r.Start, chunk))
	}
	buf := make([]byte, size+uint64(overlap))
	for _, r := range regions {
		for a := r.Start; a < r.End; a += chunk {
			n := uint64(chunk)
			if r.End-a < n {
				n = r.End - a
			}
			ext := n + uint64(overlap)
			if r.End-a < ext {
				ext = r.End - a
			}
			k, err := m.ReadAt(buf[:ext], int64(a))
			if uint64(k) < n {
				return fmt.Errorf("heap at %#x: %w", a+uint64(k), err)
			}
			if err := fn(a, buf[:k], int(n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// eachWord calls fn with every 8-byte aligned little-endian word of
// regions.
func eachWord(m Memory, regions []Region, fn func(addr, w uint64)) error {
	return eachChunk(m, regions, 0, func(base uint64, b []byte, limit int) error {
		i := 0
		if r := base % 8; r != 0 {
			i = int(8 - r)
		}
		for ; i+8 <= limit; i += 8 {
			fn(base+uint64(i), binary.LittleEndian.Uint64(b[i:]))
		}
		return nil
	})
}
