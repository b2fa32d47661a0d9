package memsearch

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"testing"
)

func TestRequiredLiteral(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want string // "" for none
		fold bool
	}{
		{`RANDOM_[0-9]+_KEY`, "RANDOM_", false},
		{`(?i)random_[0-9]+_key`, "random_", true},
		{`(?i)RANDOM_[0-9]+_KEY`, "random_", true},
		{`[a-z]+(password)=\S+`, "password", false}, // the group ends the literal
		{`(?i)[a-z]+(password)=`, "word", true},     // 's' folds to U+017F
		{`(?i)kkkxyzzy`, "xyzzy", true},             // 'k' folds to U+212A
		{`(?:abcd)+x`, "abcd", false},
		{`(?:abcd){2,}`, "abcd", false},
		{`(?:abcd)*x`, "", false},
		{`abc|abd`, "", false},
		{`\babcdef`, "", false},
		{`abcdef$`, "", false},
		{`ab\x{FFFD}cde`, "cde", false},
		{`ab`, "", false},
		{`.*`, "", false},
	} {
		lit, fold := requiredLiteral(tc.expr)
		if string(lit) != tc.want || (lit != nil && fold != tc.fold) {
			t.Errorf("requiredLiteral(%q) = %q, %v; want %q, %v", tc.expr, lit, fold, tc.want, tc.fold)
		}
	}
}

// TestRegexRegions checks the region search against the engine run on the
// whole buffer, with small regions so that every path of index is taken:
// the patterns' matches are at most maxLen bytes, and dense and sparse
// occurrences of the required literal, with and without matches, occur.
func TestRegexRegions(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	const mixed = "abxABX\x00\xc3\xa9"
	for _, tc := range []struct{ expr, alphabet string }{
		{`[ab]{0,10}xAB[xX]{0,5}`, mixed},
		{`(?i)[ab]{0,10}xab.{0,3}`, mixed},
		{`(?i)(?:xab){1,4}`, mixed},
		{`a.{0,20}xAB`, mixed},
		{`xAB.{2}b`, mixed},
		// Up to maxLen bytes, in runs of the class: matches that a
		// region's end cuts unless it is looked at again.
		{`xAB[abxX]{4,37}`, "xABxABabxX\x00"},
	} {
		expr, alphabet := tc.expr, []byte(tc.alphabet)
		re := regexp.MustCompile(expr)
		lit, fold := requiredLiteral(expr)
		if lit == nil {
			t.Fatalf("%q: no required literal", expr)
		}
		const maxLen = 40
		for round := range 300 {
			data := make([]byte, 1+rng.IntN(3000))
			for i := range data {
				data[i] = alphabet[rng.IntN(len(alphabet))]
			}
			var want [][2]int
			for _, l := range re.FindAllIndex(data, -1) {
				want = append(want, [2]int{l[0], l[1]})
			}
			s := &regexScanner{re: re, maxLen: maxLen, region: 1 + rng.IntN(200)}
			if fold {
				s.lit = &foldScanner{pat: lit}
			} else {
				s.lit = &literalScanner{pat: lit}
			}
			s.load(data)
			var got [][2]int
			for from := 0; from < len(data); {
				i, j := s.index(from)
				if i < 0 {
					break
				}
				got = append(got, [2]int{i, j})
				from = j
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%q round %d (region %d): got %v\nwant %v", expr, round, s.region, got, want)
			}
		}
	}
}
