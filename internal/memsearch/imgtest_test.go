package memsearch

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// pageWith returns a 4 KiB page holding s at its start (atEnd false) or
// its end.
func pageWith(s string, atEnd bool) []byte {
	b := make([]byte, 4096)
	if atEnd {
		copy(b[len(b)-len(s):], s)
	} else {
		copy(b, s)
	}
	return b
}

// TestSyntheticCheckpoint writes a checkpoint with imgtest and searches it
// through Search, as the command does: matches across pagemap entries
// and into untouched memory are found; nothing is found across pages of a
// parent checkpoint, clean file pages, unmapped gaps or the boundary of
// adjacent mappings.
func TestSyntheticCheckpoint(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(10, 0)
	p.Comm = "synth"
	const rw = criuimg.ProtRead | criuimg.ProtWrite
	// A file mapping with its middle page clean (not captured).
	p.AddVMA(0x400000, 0x403000, criuimg.ProtRead, 0, 0, "/usr/lib/libx.so")
	p.AddPages(0x400000, pageWith("GAP_", true), criuimg.PEPresent)
	p.AddPages(0x402000, pageWith("SPLIT", false), criuimg.PEPresent)
	// The heap, with a pagemap-entry boundary, untouched pages and pages
	// in a parent checkpoint.
	p.AddVMA(0x500000, 0x510000, rw, 0, criuimg.VMAAreaRegular|criuimg.VMAAnonPrivate|criuimg.VMAAreaHeap, "")
	p.AddPages(0x500000, pageWith("SPLIT_", true), criuimg.PEPresent)
	p.AddPages(0x501000, pageWith("ACROSS", false), criuimg.PEPresent|criuimg.PELazy) // another entry
	p.AddPages(0x503000, pageWith("TAIL", true), criuimg.PEPresent)                   // then 0x504000 untouched
	p.AddPages(0x506000, pageWith("HEAD", false), criuimg.PEPresent)                  // after 0x505000 untouched
	p.AddPages(0x507000, pageWith("PAR", true), criuimg.PEPresent)
	p.AddPageEntry(0x508000, 1, criuimg.PEParent)
	p.AddPages(0x509000, pageWith("ENT", false), criuimg.PEPresent)
	p.AddPages(0x50b000, pageWith("ZER", true), criuimg.PEPresent) // then 0x50c000 untouched
	p.AddPages(0x50d000, pageWith("ROS", false), criuimg.PEPresent)
	// Two mappings with an unmapped page between them.
	p.AddAnon(0x600000, 0x601000)
	p.AddPages(0x600000, pageWith("UNMAP", true), criuimg.PEPresent)
	p.AddAnon(0x602000, 0x603000)
	p.AddPages(0x602000, pageWith("PED", false), criuimg.PEPresent)
	// Two adjacent mappings (different protections).
	p.AddAnon(0x700000, 0x701000)
	p.AddPages(0x700000, pageWith("ADJ", true), criuimg.PEPresent)
	p.AddVMA(0x701000, 0x702000, criuimg.ProtRead, 0, 0, "")
	p.AddPages(0x701000, pageWith("ACENT", false), criuimg.PEPresent)
	// Shared anonymous memory (as CRIU 4.2 dumps it) and a memfd.
	s := c.AddShmem(5, 0x4000)
	s.AddPages(0x1000, pageWith("SHARED_", true), criuimg.PEPresent)
	s.AddPages(0x2000, pageWith("SECRET", false), criuimg.PEPresent|criuimg.PELazy)
	p.MapMemfd(0x800000, s, 0, rw)
	m := c.AddShmem(6, 0x1000)
	m.MemfdName = "memfd:jit"
	m.AddPages(0, pageWith("JIT_CODE", false), criuimg.PEPresent)
	p.MapMemfd(0x900000, m, 0, rw)
	// The stack: the mapping holding mm_start_stack.
	p.AddAnon(0x7ff000000, 0x7ff004000)
	p.AddPages(0x7ff003000, pageWith("ON_THE_STACK", true), criuimg.PEPresent)
	p.MM.MmStartStack = proto.Uint64(0x7ff003ff0)
	pr := c.Load(t, 10)

	zeros := strings.Repeat("\x00", 4096)
	tests := []struct {
		name, pat string
		want      []string // "ADDR MAPPING+OFF"
	}{
		{"across pagemap entries", "SPLIT_ACROSS", []string{"0x500ffa [heap]+0xffa"}},
		{"into untouched memory", "TAIL\x00\x00\x00\x00", []string{"0x503ffc [heap]+0x3ffc"}},
		{"from untouched memory", "\x00\x00\x00\x00HEAD", []string{"0x505ffc [heap]+0x5ffc"}},
		{"through an untouched page", "ZER" + zeros + "ROS", []string{"0x50bffd [heap]+0xbffd"}},
		{"not through a parent page", "PAR" + zeros + "ENT", nil},
		{"not around a parent page", "PARENT", nil},
		{"not around a clean file page", "GAP_SPLIT", nil},
		{"not through a clean file page", "GAP_" + zeros + "SPLIT", nil},
		{"not across an unmapped gap", "UNMAPPED", nil},
		{"not across adjacent mappings", "ADJACENT", nil},
		{"adjacent mapping, first half", "ADJ", []string{"0x700ffd [anon]+0xffd"}},
		{"adjacent mapping, second half", "ACENT", []string{"0x701000 [anon]+0x0"}},
		{"shared memory across entries", "SHARED_SECRET", []string{"0x801ff9 [shared]+0x1ff9"}},
		{"memfd", "JIT_CODE", []string{"0x900000 /memfd:jit (deleted)+0x0"}},
		{"file", "SPLIT\x00", []string{"0x402000 /usr/lib/libx.so+0x2000"}},
		{"stack", "ON_THE_STACK", []string{"0x7ff003ff4 [stack]+0x3ff4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, fold := range []bool{false, true} {
				var got []string
				err := (Searcher{Context: DefaultContext}).Search(pr, mustLiteral(t, tt.pat, fold), func(h Hit) error {
					if h.Pid != 10 || h.Comm != "synth" || !bytes.EqualFold(h.Match, []byte(tt.pat)) {
						t.Errorf("hit %+v", h)
					}
					got = append(got, fmt.Sprintf("%#x %s+%#x", h.Addr, h.Mapping, h.Offset))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("fold %v: hits %q, want %q", fold, got, tt.want)
				}
			}
		})
	}
}
