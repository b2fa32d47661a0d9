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

// regionCases are expressions with a required literal and a bound on the
// length of their matches in bytes (a '.' takes up to 4), with alphabets
// that give dense and sparse occurrences of the literal, with and without
// matches.
var regionCases = []struct {
	expr     string
	maxLen   int
	alphabet string
}{
	{`[ab]{0,10}xAB[xX]{0,5}`, 18, mixedAlphabet},
	{`(?i)[ab]{0,10}xab.{0,3}`, 25, mixedAlphabet},
	{`(?i)(?:xab){1,4}`, 12, mixedAlphabet},
	{`a.{0,20}xAB`, 84, mixedAlphabet},
	{`xAB.{2}b`, 12, mixedAlphabet},
	// Up to maxLen bytes, in runs of the class: matches that a region's
	// end cuts unless it is looked at again.
	{`xAB[abxX]{4,37}`, 40, "xABxABabxX\x00"},
}

const mixedAlphabet = "abxABX\x00\xc3\xa9"

// checkRegions compares the region search of regionCases[c] over data,
// with regions of at least region bytes, with the engine run on the whole
// buffer.
func checkRegions(t *testing.T, c int, data []byte, region int) {
	tc := regionCases[c]
	re := regexp.MustCompile(tc.expr)
	lit, fold := requiredLiteral(tc.expr)
	if lit == nil {
		t.Fatalf("%q: no required literal", tc.expr)
	}
	var want [][2]int
	for _, l := range re.FindAllIndex(data, -1) {
		want = append(want, [2]int{l[0], l[1]})
	}
	s := &regexScanner{re: re, maxLen: tc.maxLen, region: region}
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
		t.Fatalf("%q over %q (region %d): got %v\nwant %v", tc.expr, data, region, got, want)
	}
}

// TestRegexRegions checks the region search against the engine run on the
// whole buffer, with small regions so that every path of index is taken.
func TestRegexRegions(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for c, tc := range regionCases {
		for range 300 {
			data := make([]byte, 1+rng.IntN(3000))
			for i := range data {
				data[i] = tc.alphabet[rng.IntN(len(tc.alphabet))]
			}
			checkRegions(t, c, data, 1+rng.IntN(200))
		}
	}
}

// FuzzRegexRegions: the region search equals the whole-buffer engine on
// any bytes.
func FuzzRegexRegions(f *testing.F) {
	f.Add([]byte("aaxABxxxAB\x00xABabab"), uint8(0), uint16(3))
	f.Add([]byte("xABabxXabxXabxXxABabxXabxXabxXabxXabxXabxXabxX"), uint8(5), uint16(1))
	f.Add([]byte("a\xc3\xa9\xa9xAB\xc3xab"), uint8(3), uint16(7))
	f.Fuzz(func(t *testing.T, data []byte, c uint8, region uint16) {
		checkRegions(t, int(c)%len(regionCases), data, 1+int(region)%512)
	})
}
