package memsearch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// memFile is an in-memory pages file. With lend, it lends its bytes in
// place (criuimg.Viewer) and counts the views.
type memFile struct {
	name string
	b    []byte
	lend bool
	lent int
}

func (f *memFile) View(off int64, n int) ([]byte, error) {
	if !f.lend || n > criuimg.MaxView || off+int64(n) > int64(len(f.b)) {
		return nil, nil
	}
	f.lent++
	return f.b[off : off+int64(n) : off+int64(n)], nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.b)) {
		return 0, io.EOF
	}
	n := copy(p, f.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (f *memFile) Close() error { return nil }
func (f *memFile) Name() string { return f.name }
func (f *memFile) Size() int64  { return int64(len(f.b)) }

// fx is one extent of a synthetic mapping: captured bytes (data), or n
// zero or absent bytes.
type fx struct {
	kind criuimg.ExtentKind
	data []byte
	n    int
}

func cap_(s string) fx { return fx{kind: criuimg.Captured, data: []byte(s)} }
func zero(n int) fx    { return fx{kind: criuimg.Zero, n: n} }
func absent(n int) fx  { return fx{kind: criuimg.Absent, n: n} }
func (e fx) size() int { return max(len(e.data), e.n) }

// fvma is a synthetic mapping at start (0: right after the previous one).
type fvma struct {
	start uint64
	exts  []fx
}

// fakeProc turns synthetic mappings into what search takes: mappings and
// an extent lister. Every captured extent lies in one pages file, at
// scattered offsets, so that contiguous addresses are not contiguous in the
// file (as with separate pagemap entries).
func fakeProc(vmas []fvma) ([]mapping, extentsFunc) {
	return fakeProcIn(&memFile{name: "pages-1.img"}, vmas)
}

// fakeProcIn is fakeProc with its pages in file.
func fakeProcIn(file *memFile, vmas []fvma) ([]mapping, extentsFunc) {
	ext := map[*criuimg.VMA][]criuimg.Extent{}
	var maps []mapping
	next := uint64(0x10000)
	for i, fv := range vmas {
		start := fv.start
		if start == 0 {
			start = next
		}
		v := &criuimg.VMA{Start: start}
		addr := start
		var list []criuimg.Extent
		for _, e := range fv.exts {
			x := criuimg.Extent{Start: addr, End: addr + uint64(e.size()), Kind: e.kind, VMA: v}
			if e.kind == criuimg.Captured {
				file.b = append(file.b, bytes.Repeat([]byte{0xee}, 7)...) // junk between runs
				x.Src, x.Off = file, int64(len(file.b))
				file.b = append(file.b, e.data...)
			}
			list = append(list, x)
			addr = x.End
		}
		v.End = addr
		ext[v] = list
		maps = append(maps, mapping{vma: v, name: fmt.Sprintf("[vma%d]", i)})
		next = addr
	}
	return maps, func(v *criuimg.VMA, fn func(criuimg.Extent) error) error {
		for _, e := range ext[v] {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
}

type hitAt struct {
	Addr                 uint64
	Mapping              string
	Match, Before, After string
}

func (h hitAt) String() string {
	return fmt.Sprintf("{%#x %s %q %q %q}", h.Addr, h.Mapping, h.Match, h.Before, h.After)
}

func runFake(t *testing.T, s Searcher, vmas []fvma, m Matcher) []hitAt {
	t.Helper()
	maps, extents := fakeProc(vmas)
	var hits []hitAt
	err := s.search(7, "fake", maps, extents, m, func(h Hit) error {
		if h.Pid != 7 || h.Comm != "fake" || h.Offset != h.Addr-h.MappingStart {
			t.Errorf("hit %+v: wrong pid, comm or offset", h)
		}
		hits = append(hits, hitAt{h.Addr, h.Mapping, string(h.Match), string(h.Before), string(h.After)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func mustLiteral(t testing.TB, pat string, fold bool) Matcher {
	t.Helper()
	m, err := NewLiteral([]byte(pat), fold)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustRegexp(t testing.TB, expr string, fold bool) Matcher {
	t.Helper()
	m, err := NewRegexp(expr, fold)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBoundaries checks the rules of what a match may span, on hand-made
// mappings: extents are not page-sized here, which the search does not
// care about.
func TestBoundaries(t *testing.T) {
	const base = 0x10000
	tests := []struct {
		name string
		vmas []fvma
		pat  string
		want []uint64 // hit addresses
	}{
		{"one extent", []fvma{{exts: []fx{cap_("xxSECRETxx")}}}, "SECRET", []uint64{base + 2}},
		{"across pagemap entries", []fvma{{exts: []fx{cap_("xxxSEC"), cap_("RETxx")}}}, "SECRET", []uint64{base + 3}},
		{"across three entries", []fvma{{exts: []fx{cap_("xxxSE"), cap_("CR"), cap_("ETxx")}}}, "SECRET", []uint64{base + 3}},
		{"not across an absent range", []fvma{{exts: []fx{cap_("xxxSEC"), absent(4), cap_("RETxx")}}}, "SECRET", nil},
		{"not across an empty-looking absent range", []fvma{{exts: []fx{cap_("xxxSEC"), absent(1), cap_("RETxx")}}}, "SEC\x00RET", nil},
		{"restarts after an absent range", []fvma{{exts: []fx{cap_("SECRET"), absent(4), cap_("SECRET")}}}, "SECRET", []uint64{base, base + 10}},
		{"not across two adjacent mappings", []fvma{{exts: []fx{cap_("xxxSEC")}}, {exts: []fx{cap_("RETxx")}}}, "SECRET", nil},
		{"not across an unmapped gap", []fvma{{start: base, exts: []fx{cap_("xxxSEC")}}, {start: base + 0x1000, exts: []fx{cap_("RETxx")}}}, "SECRET", nil},
		{"captured then zeros", []fvma{{exts: []fx{cap_("xxxKEY"), zero(100)}}}, "KEY\x00\x00", []uint64{base + 3}},
		{"zeros then captured", []fvma{{exts: []fx{zero(100), cap_("KEYxx")}}}, "\x00\x00KEY", []uint64{base + 98}},
		{"through a short zero extent", []fvma{{exts: []fx{cap_("xxA"), zero(3), cap_("Bxx")}}}, "A\x00\x00\x00B", []uint64{base + 2}},
		{"through a long zero extent", []fvma{{exts: []fx{cap_("xxA"), zero(5000), cap_("Bxx")}}}, "A" + string(make([]byte, 5000)) + "B", []uint64{base + 2}},
		{"not across zeros and absent", []fvma{{exts: []fx{cap_("xxA"), zero(3), absent(1), zero(3), cap_("Bxx")}}}, "A\x00\x00\x00\x00\x00\x00\x00B", nil},
		{"zero pattern in zeros", []fvma{{exts: []fx{cap_("ab"), zero(8), cap_("cd")}}}, "\x00\x00\x00\x00", []uint64{base + 2, base + 6}},
		{"zero pattern in a long zero extent", []fvma{{exts: []fx{zero(1 << 20)}}}, "\x00\x00\x00\x00", nil /* checked below by count */},
		{"no match in untouched memory", []fvma{{exts: []fx{zero(1 << 16)}}}, "KEY", nil},
		{"non-overlapping", []fvma{{exts: []fx{cap_("AAAAA")}}}, "AA", []uint64{base, base + 2}},
	}
	for _, tt := range tests {
		for _, buf := range []int{1, 3, 4096} {
			t.Run(fmt.Sprintf("%s/buf%d", tt.name, buf), func(t *testing.T) {
				hits := runFake(t, Searcher{BufSize: buf}, tt.vmas, mustLiteral(t, tt.pat, false))
				if tt.name == "zero pattern in a long zero extent" {
					if len(hits) != 1<<18 {
						t.Fatalf("%d hits, want %d", len(hits), 1<<18)
					}
					return
				}
				var got []uint64
				for _, h := range hits {
					got = append(got, h.Addr)
					if h.Match != tt.pat {
						t.Errorf("hit at %#x matched %q", h.Addr, h.Match)
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("hits at %#x, want %#x", got, tt.want)
				}
			})
		}
	}
}

// TestContext checks that context stops at the edges of the stretch a hit
// lies in (absent ranges, mapping ends) and is read across buffer fills.
func TestContext(t *testing.T) {
	vmas := []fvma{{exts: []fx{cap_("0123"), absent(2), cap_("abKEYcd"), cap_("efgh"), zero(2), absent(1), cap_("KEY")}}}
	for _, buf := range []int{3, 4, 5, 1000} {
		hits := runFake(t, Searcher{Context: 6, BufSize: buf}, vmas, mustLiteral(t, "KEY", false))
		want := []hitAt{
			{0x10000 + 8, "[vma0]", "KEY", "ab", "cdefgh"},
			{0x10000 + 20, "[vma0]", "KEY", "", ""},
		}
		if !slices.Equal(hits, want) {
			t.Errorf("buf %d: hits %v, want %v", buf, hits, want)
		}
	}
	// Context reaches into untouched memory as zeros.
	hits := runFake(t, Searcher{Context: 3}, []fvma{{exts: []fx{zero(10), cap_("KEY"), zero(10)}}}, mustLiteral(t, "KEY", false))
	want := []hitAt{{0x10000 + 10, "[vma0]", "KEY", "\x00\x00\x00", "\x00\x00\x00"}}
	if !slices.Equal(hits, want) {
		t.Errorf("hits %v, want %v", hits, want)
	}
}

// TestMatchersAgree checks the streaming search against a plain search of
// each stretch held whole in memory, on random mappings made of few
// distinct bytes (so that matches are many and cross extent and buffer
// boundaries), for literals, case folding and regular expressions.
func TestMatchersAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{'A', 'B', 'a', 0, 0, 'x'}
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	type pattern struct {
		lit   string
		fold  bool
		regex string
	}
	patterns := []pattern{
		{lit: "AB"}, {lit: "A"}, {lit: "aBA", fold: true}, {lit: "ab", fold: true},
		{lit: "A\x00\x00"}, {lit: "\x00\x00B"}, {lit: "\x00\x00\x00"}, {lit: "\x00"},
		{lit: "A\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00B"},
		{regex: "A[ab]{1,3}B"}, {regex: "B\x00{2,6}A"}, {regex: "x\x00+x"}, {regex: "\x00{5}"}, {regex: "ab", fold: true},
		{regex: "[Aa]*xAB"}, {regex: "(?:a|B)+aBA", fold: true}, {regex: "[AB]\x00*x\x00\x00a"},
	}
	for round := range 60 {
		vmas := randomVMAs(rng, randBytes, 3, 8, func() int { return 1 + rng.IntN(3000) }, 6, 3, 1)
		for _, p := range patterns {
			var m Matcher
			var ref func(b []byte) [][2]int
			if p.regex != "" {
				m = mustRegexp(t, p.regex, p.fold)
				re := regexp.MustCompile(map[bool]string{true: "(?i)", false: ""}[p.fold] + p.regex)
				ref = func(b []byte) [][2]int {
					var out [][2]int
					for _, l := range re.FindAllIndex(b, -1) {
						out = append(out, [2]int{l[0], l[1]})
					}
					return out
				}
			} else {
				m = mustLiteral(t, p.lit, p.fold)
				ref = func(b []byte) [][2]int { return literalMatches(b, []byte(p.lit), p.fold) }
			}
			const ctx = 5
			want := referenceHits(vmas, ctx, ref)
			buf := 1 + rng.IntN(5000)
			got := runFake(t, Searcher{Context: ctx, BufSize: buf}, vmas, m)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, pattern %+v, buffer %d: %d hits, want %d\n got %v\nwant %v", round, p, buf, len(got), len(want), got, want)
			}
		}
	}
}

// literalMatches is the reference search of a literal: the
// non-overlapping occurrences of pat in b, left to right (with fold,
// regardless of ASCII case).
func literalMatches(b, pat []byte, fold bool) [][2]int {
	if fold {
		b, pat = bytes.ToLower(b), bytes.ToLower(pat)
	}
	var out [][2]int
	for i := 0; i+len(pat) <= len(b); {
		if bytes.Equal(b[i:i+len(pat)], pat) {
			out = append(out, [2]int{i, i + len(pat)})
			i += len(pat)
		} else {
			i++
		}
	}
	return out
}

// randomVMAs returns 1 to maxVMAs synthetic mappings of 1 to maxExts
// extents of size() bytes each: captured (randBytes), zero or absent, in
// the proportions captured:zeros:absent.
func randomVMAs(rng *rand.Rand, randBytes func(int) []byte, maxVMAs, maxExts int, size func() int, captured, zeros, absents int) []fvma {
	var vmas []fvma
	for range 1 + rng.IntN(maxVMAs) {
		var exts []fx
		for range 1 + rng.IntN(maxExts) {
			n := size()
			switch k := rng.IntN(captured + zeros + absents); {
			case k < captured:
				exts = append(exts, fx{kind: criuimg.Captured, data: randBytes(n)})
			case k < captured+zeros:
				exts = append(exts, zero(n))
			default:
				exts = append(exts, absent(n))
			}
		}
		vmas = append(vmas, fvma{exts: exts})
	}
	return vmas
}

// referenceHits searches every stretch of the synthetic mappings held
// whole in memory.
func referenceHits(vmas []fvma, ctx int, find func([]byte) [][2]int) []hitAt {
	maps, extents := fakeProc(vmas)
	var out []hitAt
	for _, mp := range maps {
		var stretch []byte
		var start uint64
		flush := func() {
			for _, l := range find(stretch) {
				out = append(out, hitAt{
					Addr: start + uint64(l[0]), Mapping: mp.name,
					Match:  string(stretch[l[0]:l[1]]),
					Before: string(stretch[max(0, l[0]-ctx):l[0]]),
					After:  string(stretch[l[1]:min(len(stretch), l[1]+ctx)]),
				})
			}
			stretch = stretch[:0]
		}
		extents(mp.vma, func(e criuimg.Extent) error {
			if e.Kind == criuimg.Absent {
				flush()
				return nil
			}
			if len(stretch) == 0 {
				start = e.Start
			}
			b := make([]byte, e.End-e.Start)
			if e.Kind == criuimg.Captured {
				e.Src.ReadAt(b, e.Off)
			}
			stretch = append(stretch, b...)
			return nil
		})
		flush()
	}
	return out
}

func TestStopAndErrors(t *testing.T) {
	maps, extents := fakeProc([]fvma{{exts: []fx{cap_("KEY KEY KEY")}}})
	n := 0
	err := Searcher{}.search(1, "c", maps, extents, mustLiteral(t, "KEY", false), func(Hit) error {
		n++
		return ErrStop
	})
	if err != nil || n != 1 {
		t.Errorf("ErrStop: err %v after %d hits, want nil after 1", err, n)
	}
	boom := errors.New("boom")
	err = Searcher{}.search(1, "c", maps, extents, mustLiteral(t, "KEY", false), func(Hit) error { return boom })
	if err != boom {
		t.Errorf("callback error: got %v, want it as is", err)
	}
	// A pages file shorter than its extents says.
	short := &memFile{name: "pages-9.img", b: []byte("abc")}
	v := &criuimg.VMA{Start: 0x1000, End: 0x2000}
	err = Searcher{}.search(1, "c", []mapping{{vma: v, name: "[anon]"}}, func(v *criuimg.VMA, fn func(criuimg.Extent) error) error {
		return fn(criuimg.Extent{Start: v.Start, End: v.End, Kind: criuimg.Captured, VMA: v, Src: short})
	}, mustLiteral(t, "KEY", false), func(Hit) error { return nil })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short pages file: got %v, want an error wrapping io.ErrUnexpectedEOF", err)
	}
}

func TestNewMatcherErrors(t *testing.T) {
	if _, err := NewLiteral(nil, false); err == nil {
		t.Error("NewLiteral accepted an empty pattern")
	}
	if _, err := NewLiteral(make([]byte, MaxPatternLen+1), false); err == nil {
		t.Error("NewLiteral accepted an over-long pattern")
	}
	for _, expr := range []string{"", "a*", "(", "x|"} {
		if _, err := NewRegexp(expr, false); err == nil {
			t.Errorf("NewRegexp(%q) accepted", expr)
		}
	}
}

func TestFold(t *testing.T) {
	vmas := []fvma{{exts: []fx{cap_("..Random_1432_KEY..random_1432_key..GRÜSSE..grüsse..")}}}
	tests := []struct {
		pat  string
		want int
	}{
		{"RANDOM_1432_KEY", 2}, {"random_1432_key", 2}, {"grüsse", 2}, {"GRÜSSE", 2},
	}
	for _, tt := range tests {
		if got := len(runFake(t, Searcher{}, vmas, mustLiteral(t, tt.pat, true))); got != tt.want {
			t.Errorf("-i %q: %d hits, want %d", tt.pat, got, tt.want)
		}
		if got := len(runFake(t, Searcher{}, vmas, mustLiteral(t, tt.pat, false))); got != 1 && tt.pat != "RANDOM_1432_KEY" {
			t.Errorf("%q without -i: %d hits, want 1", tt.pat, got)
		}
	}
	// lowerASCII agrees with bytes.ToLower on every byte value, at every
	// position of a word.
	var all []byte
	for i := range 256 {
		all = append(all, byte(i))
	}
	all = append(all, all[:13]...)
	got := make([]byte, len(all))
	lowerASCII(got, all)
	for i, c := range all {
		want := c
		if 'A' <= c && c <= 'Z' {
			want += 'a' - 'A'
		}
		if got[i] != want {
			t.Fatalf("lowerASCII(%#x) = %#x, want %#x", c, got[i], want)
		}
	}
}

func TestMappingName(t *testing.T) {
	p := &criuimg.Process{}
	tests := []struct {
		v    criuimg.VMA
		want string
	}{
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAnonPrivate | criuimg.VMAAreaHeap}, "[heap]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAnonPrivate | criuimg.VMAAreaStack}, "[stack]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAreaVDSO}, "[vdso]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAreaVVAR}, "[vvar]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAreaVsyscall}, "[vsyscall]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAnonPrivate}, "[anon]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAFilePrivate, Path: "/usr/bin/x"}, "/usr/bin/x"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAnonShared, Path: "/dev/zero (deleted)", Shmem: 5, HasShmem: true}, "[shared]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAreaMemfd | criuimg.VMAFileShared, Path: "/dev/zero (deleted)", Shmem: 5, HasShmem: true}, "[shared]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAreaMemfd | criuimg.VMAFileShared, Path: "/memfd:buf (deleted)", Shmem: 6, HasShmem: true}, "/memfd:buf (deleted)"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAnonPrivate, Flags: criuimg.MapPrivate | criuimg.MapAnonymous | criuimg.MapGrowsdown}, "[stack]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAreaAIORing | criuimg.VMAAnonShared, Shmem: 7, HasShmem: true}, "[aio]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAreaSocket, Path: "socket:[12]"}, "[socket]"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAAreaSysVIPC, Path: "/SYSV00000001 (deleted)", Shmem: 8, HasShmem: true}, "/SYSV00000001 (deleted)"},
		{criuimg.VMA{Status: criuimg.VMAAreaRegular | criuimg.VMAFilePrivate | criuimg.VMAAreaStack, Path: "/x"}, "[stack]"},
	}
	for _, tt := range tests {
		if got := MappingName(p, &tt.v); got != tt.want {
			t.Errorf("MappingName(status %#x, path %q) = %q, want %q", tt.v.Status, tt.v.Path, got, tt.want)
		}
	}
}

// TestLentWindows checks that windows scanned in place, where the pages
// file lends them, give the hits that copied windows give, and the
// reference's: extents large enough to be lent (minView), buffers of
// every size, and the lending actually used.
func TestLentWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{'A', 'B', 'a', 0, 'x'}
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return b
	}
	set, err := NewSet([][]byte{[]byte("AB"), []byte("BAx"), []byte("xa")}, false)
	if err != nil {
		t.Fatal(err)
	}
	matchers := []Matcher{mustLiteral(t, "ABA", false), mustLiteral(t, "ab", true), mustLiteral(t, "A\x00\x00B", false), set}
	lentInAll := 0
	for round := range 12 {
		vmas := randomVMAs(rng, randBytes, 2, 4, func() int { return minView/2 + rng.IntN(5*minView) }, 6, 1, 1)
		buf := []int{0, 1 + rng.IntN(minView), minView + rng.IntN(4*minView)}[round%3]
		for _, m := range matchers {
			var got [2][]hitAt
			for i, lend := range []bool{false, true} {
				file := &memFile{name: "pages-1.img", lend: lend}
				maps, extents := fakeProcIn(file, vmas)
				before := bytes.Clone(file.b)
				err := Searcher{Context: 9, BufSize: buf}.search(7, "fake", maps, extents, m, func(h Hit) error {
					got[i] = append(got[i], hitAt{h.Addr, h.Mapping, string(h.Match), string(h.Before), string(h.After)})
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(file.b, before) {
					t.Fatalf("round %d, %s: the search wrote into the lent bytes", round, m)
				}
				lentInAll += file.lent
			}
			if !slices.Equal(got[0], got[1]) {
				t.Fatalf("round %d, %s, buffer %d: %d hits in lent windows, %d in copied ones\n lent %v\ncopied %v", round, m, buf, len(got[1]), len(got[0]), got[1], got[0])
			}
			if l, ok := m.(*literal); ok {
				want := referenceHits(vmas, 9, func(b []byte) [][2]int { return literalMatches(b, l.pat, l.fold) })
				if !slices.Equal(got[1], want) {
					t.Fatalf("round %d, %s, buffer %d: %d hits, reference %d", round, m, buf, len(got[1]), len(want))
				}
			}
		}
	}
	if lentInAll == 0 {
		t.Fatal("no window was lent: the test proves nothing")
	}
	// A regular expression sees its windows' edges: never lent.
	file := &memFile{name: "pages-1.img", lend: true}
	maps, extents := fakeProcIn(file, []fvma{{exts: []fx{{kind: criuimg.Captured, data: randBytes(4 * minView)}}}})
	if err := (Searcher{}).search(7, "fake", maps, extents, mustRegexp(t, "A[ab]B", false), func(Hit) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if file.lent != 0 {
		t.Errorf("a regular expression was given %d lent windows", file.lent)
	}
}
