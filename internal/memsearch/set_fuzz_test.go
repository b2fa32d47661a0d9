package memsearch

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzSetEqualsLiterals: over synthetic mappings (captured, zero and
// absent extents) searched with a small buffer, a Set's hits of each
// pattern are exactly (address, match and context) those of the pattern
// alone. The fuzzed bytes give the patterns (separated by '|', over a
// small alphabet so that they overlap and repeat) and the memory.
func FuzzSetEqualsLiterals(f *testing.F) {
	f.Add([]byte("ab|b|aab|\x00\x00"), []byte("aabab\x00\x00\x00bab"), uint8(3), false)
	f.Add([]byte("AB|ab|a"), []byte("xxaBAbab"), uint8(1), true)
	f.Fuzz(func(t *testing.T, patBytes, mem []byte, shape uint8, fold bool) {
		var pats [][]byte
		for _, p := range bytes.Split(patBytes, []byte("|")) {
			if len(p) > 0 && len(p) <= 16 && len(pats) < 8 {
				pats = append(pats, p)
			}
		}
		if len(pats) == 0 || len(mem) > 4096 {
			return
		}
		set, err := NewSet(pats, fold)
		if err != nil {
			return // non-ASCII UTF-8 with fold: refused by design
		}
		// Split mem into extents: every (shape%5+2)th piece is zeros or absent.
		var exts []fx
		step := int(shape%7) + 1
		for i := 0; len(mem) > 0; i++ {
			n := min(step+i%3, len(mem))
			switch {
			case shape&0x80 != 0 && i%5 == 4:
				exts = append(exts, absent(n*4096))
			case i%4 == 3:
				exts = append(exts, zero(n*3))
			default:
				exts = append(exts, fx{kind: 1, data: mem[:n]})
			}
			mem = mem[n:]
		}
		exts = fixKinds(exts)
		vmas := []fvma{{exts: exts}, {exts: []fx{cap_("ab"), zero(5)}}}
		s := Searcher{Context: 3, BufSize: int(shape%5) + 1}
		maps, extents := fakeProc(vmas)
		got := make([][]hitAt, len(pats))
		err = s.search(7, "fake", maps, extents, set, func(h Hit) error {
			got[h.Pattern] = append(got[h.Pattern], hitAt{h.Addr, h.Mapping, string(h.Match), string(h.Before), string(h.After)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pats {
			m, err := NewLiteral(p, fold)
			if err != nil {
				t.Fatal(err)
			}
			want := runFake(t, s, vmas, m)
			g := got[set.First(i)]
			slices.SortStableFunc(g, func(a, b hitAt) int {
				if a.Addr < b.Addr {
					return -1
				}
				if a.Addr > b.Addr {
					return 1
				}
				return 0
			})
			if len(g) != len(want) {
				t.Fatalf("pattern %q: set %v, alone %v", p, g, want)
			}
			for j := range g {
				if g[j] != want[j] {
					t.Fatalf("pattern %q hit %d: set %v, alone %v", p, j, g[j], want[j])
				}
			}
		}
	})
}

// fixKinds gives captured extents their kind constant.
func fixKinds(exts []fx) []fx {
	for i := range exts {
		if exts[i].data != nil {
			exts[i].kind = cap_("").kind
		}
	}
	return exts
}
