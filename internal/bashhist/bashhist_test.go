package bashhist

import (
	"encoding/binary"
	"errors"
	"testing"
)

// flat is a Memory of one readable range.
type flat struct {
	base uint64
	b    []byte
}

func (f *flat) ReadAt(p []byte, addr int64) (int, error) {
	a := uint64(addr)
	if a < f.base || a >= f.base+uint64(len(f.b)) {
		return 0, errors.New("not mapped")
	}
	n := copy(p, f.b[a-f.base:])
	if n < len(p) {
		return n, errors.New("not mapped")
	}
	return n, nil
}

type heap struct {
	flat
	next uint64
}

func newHeap(base uint64, size int) *heap {
	return &heap{flat: flat{base: base, b: make([]byte, size)}, next: base}
}

// alloc places b 16-aligned, as malloc does, and returns its address.
func (h *heap) alloc(b []byte) uint64 {
	a := h.next
	copy(h.b[a-h.base:], b)
	h.next += (uint64(len(b)) + 15) &^ 15
	return a
}

func (h *heap) str(s string) uint64 { return h.alloc(append([]byte(s), 0)) }

func words(ws ...uint64) []byte {
	var b []byte
	for _, w := range ws {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b
}

// entry allocates a struct hist_entry {line, timestamp, data}.
func (h *heap) entry(line, stamp string) uint64 {
	return h.alloc(words(h.str(line), h.str(stamp), 0))
}

func TestScan(t *testing.T) {
	tests := []struct {
		name  string
		build func(h *heap)
		want  []string // lines, in order
		index []int
	}{
		{"list order beats time order", func(h *heap) {
			a := h.entry("first", "#1700000009")
			b := h.entry("second", "#1700000001")
			h.alloc(words(a, b, 0))
		}, []string{"first", "second"}, []int{0, 1}},
		{"no list: by time", func(h *heap) {
			h.entry("later", "#1700000009")
			h.entry("earlier", "#1700000001")
		}, []string{"earlier", "later"}, []int{-1, -1}},
		{"freed entry after the listed ones", func(h *heap) {
			a := h.entry("kept", "#1700000005")
			h.entry("freed", "#1700000001")
			h.alloc(words(a))
		}, []string{"kept", "freed"}, []int{0, -1}},
		{"longest run is the list", func(h *heap) {
			a := h.entry("a", "#1700000001")
			b := h.entry("b", "#1700000002")
			c := h.entry("c", "#1700000003")
			h.alloc(words(c, 0))    // a stale single slot
			h.alloc(words(a, b, c)) // the list
		}, []string{"a", "b", "c"}, []int{0, 1, 2}},
		{"timestamp too short (8 digits)", func(h *heap) { h.entry("x", "#17000000") }, nil, nil},
		{"timestamp not digits", func(h *heap) { h.entry("x", "#17000000a0") }, nil, nil},
		{"timestamp without '#'", func(h *heap) { h.entry("x", "X1700000000") }, nil, nil},
		{"line with a control character", func(h *heap) { h.entry("rm\x1b[2J", "#1700000000") }, nil, nil},
		{"empty line", func(h *heap) { h.entry("", "#1700000000") }, nil, nil},
		{"line pointer unmapped", func(h *heap) {
			h.alloc(words(0xdead0000, h.str("#1700000000"), 0))
		}, nil, nil},
		{"tab and UTF-8 kept", func(h *heap) { h.entry("echo\t'héllo'", "#1700000000") }, []string{"echo\t'héllo'"}, []int{-1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHeap(0x55550000, 1<<16)
			tt.build(h)
			got, err := Scan(&h.flat, []Region{{h.base, h.base + uint64(len(h.b))}})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d entries %+v, want %q", len(got), got, tt.want)
			}
			for i, e := range got {
				if e.Line != tt.want[i] || e.Index != tt.index[i] {
					t.Errorf("entry %d: %q index %d, want %q index %d", i, e.Line, e.Index, tt.want[i], tt.index[i])
				}
			}
		})
	}
}

func TestLongLineTruncated(t *testing.T) {
	h := newHeap(0x10000, 3*MaxLine)
	long := make([]byte, MaxLine+100)
	for i := range long {
		long[i] = 'a'
	}
	h.entry(string(long), "#1700000000")
	got, err := Scan(&h.flat, []Region{{h.base, h.base + uint64(len(h.b))}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Truncated || len(got[0].Line) != MaxLine {
		t.Fatalf("got %+v", got)
	}
}

// A timestamp string across the boundary of two read chunks is found.
func TestStampAcrossChunks(t *testing.T) {
	h := newHeap(0x100000, 2*chunk)
	h.next = h.base + chunk - 5
	ts := h.str("#1700000000")
	h.next = h.base + 64
	line := h.str("across")
	h.alloc(words(line, ts, 0))
	got, err := Scan(&h.flat, []Region{{h.base, h.base + uint64(len(h.b))}})
	if err != nil || len(got) != 1 || got[0].Line != "across" {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// Recovery from a hostile heap never panics, and what it returns obeys
// the limits.
func FuzzScan(f *testing.F) {
	h := newHeap(0x1000, 512)
	a := h.entry("ls -la", "#1700000000")
	h.alloc(words(a, 0))
	f.Add(h.b)
	f.Add([]byte("#1234567890\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &flat{base: 0x1000, b: b}
		got, err := Scan(m, []Region{{0x1000, 0x1000 + uint64(len(b))}})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			if e.Line == "" || len(e.Line) > MaxLine {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}
