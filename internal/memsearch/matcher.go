package memsearch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"unicode/utf8"
)

// MaxPatternLen bounds the length of a literal pattern.
const MaxPatternLen = 64 << 10

// MaxRegexpMatch is the longest match a regular expression can report, in
// bytes. Regular expressions are run over windows of the stream that
// overlap by MaxRegexpMatch-1 bytes: every match of at most this length is
// found wherever it lies; a longer match may be reported cut short (at a
// window's end) or not at all.
const MaxRegexpMatch = 4096

// A Matcher finds a pattern in memory. Build one with NewLiteral or
// NewRegexp; a Matcher holds no per-search state and can be shared by
// concurrent searches.
type Matcher interface {
	// MaxLen is the length in bytes of the longest match the matcher
	// reports.
	MaxLen() int
	// String describes the pattern for messages.
	String() string

	// newScanner returns the per-search state of the matcher.
	newScanner() scanner
	// matchesZeros reports whether some match consists only of zero
	// bytes; if not, untouched memory far from captured bytes is skipped.
	matchesZeros() bool
}

// scanner finds matches in one buffer at a time.
type scanner interface {
	// load makes data the buffer that index searches.
	load(data []byte)
	// index returns the leftmost match in the loaded buffer that starts
	// at or after from, as [start, end); start is -1 when there is none.
	index(from int) (start, end int)
	// windowFree reports whether the matches found do not depend on
	// where the buffers begin and end (given that consecutive buffers
	// overlap by MaxLen-1 bytes): then the search may choose them.
	windowFree() bool
}

// literal matches a fixed byte string; with fold, ASCII letters match in
// either case.
type literal struct {
	pat  []byte // lower-cased if fold
	fold bool
}

// NewLiteral returns a Matcher of the bytes pat. With fold, ASCII letters
// match regardless of case (a pattern that is valid UTF-8 with non-ASCII
// letters is matched with Unicode case folding instead, through a regular
// expression). Matches do not overlap: after a match, the search goes on
// after its end.
func NewLiteral(pat []byte, fold bool) (Matcher, error) {
	if len(pat) == 0 {
		return nil, errors.New("empty pattern")
	}
	if len(pat) > MaxPatternLen {
		return nil, fmt.Errorf("pattern of %d bytes is longer than the limit of %d", len(pat), MaxPatternLen)
	}
	if fold && !isASCII(pat) && utf8.Valid(pat) {
		re, err := regexp.Compile("(?i)" + regexp.QuoteMeta(string(pat)))
		if err != nil {
			return nil, fmt.Errorf("case-folding pattern %q: %w", pat, err)
		}
		// Case variants of a rune take at most 4 bytes (UTF-8 maximum).
		m := &regexMatcher{re: re, expr: string(pat), maxLen: 4 * utf8.RuneCount(pat)}
		m.req, m.reqFold = requiredLiteral(re.String())
		return m, nil
	}
	l := &literal{pat: bytes.Clone(pat), fold: fold}
	if fold {
		lowerASCII(l.pat, l.pat)
	}
	return l, nil
}

func (l *literal) MaxLen() int { return len(l.pat) }

func (l *literal) String() string { return fmt.Sprintf("%q", l.pat) }

func (l *literal) matchesZeros() bool {
	for _, c := range l.pat {
		if c != 0 {
			return false
		}
	}
	return true
}

func (l *literal) newScanner() scanner {
	if l.fold {
		return &foldScanner{pat: l.pat}
	}
	return &literalScanner{pat: l.pat}
}

type literalScanner struct {
	pat, data []byte
}

func (s *literalScanner) load(data []byte) { s.data = data }

func (s *literalScanner) windowFree() bool { return true }

func (s *literalScanner) index(from int) (int, int) {
	i := bytes.Index(s.data[from:], s.pat)
	if i < 0 {
		return -1, -1
	}
	return from + i, from + i + len(s.pat)
}

// foldScanner searches a lower-cased copy of each buffer.
type foldScanner struct {
	pat, lower []byte
}

func (s *foldScanner) windowFree() bool { return true }

func (s *foldScanner) load(data []byte) {
	if cap(s.lower) < len(data) {
		s.lower = make([]byte, len(data))
	}
	s.lower = s.lower[:len(data)]
	lowerASCII(s.lower, data)
}

func (s *foldScanner) index(from int) (int, int) {
	i := bytes.Index(s.lower[from:], s.pat)
	if i < 0 {
		return -1, -1
	}
	return from + i, from + i + len(s.pat)
}

// regexMatcher matches a regular expression.
type regexMatcher struct {
	re     *regexp.Regexp
	expr   string
	maxLen int
	zeros  bool
	// req, if not nil, is a literal every match contains (lower-cased
	// and matched regardless of ASCII case if reqFold).
	req     []byte
	reqFold bool
}

// NewRegexp returns a Matcher of the Go regular expression expr (package
// regexp syntax), run over raw memory bytes. Bytes that are not valid
// UTF-8 each match '.' or a negated class as U+FFFD, and an escape such as
// \xde in expr stands for the rune U+00DE (its UTF-8 bytes c3 9e), not the
// byte 0xde: use a literal (--hex) for raw bytes. With fold, letters match
// regardless of case ((?i)). Matches are at most MaxRegexpMatch bytes
// long; ^, $, \A, \z and \b see window boundaries, not the mapping's, so
// do not rely on them. An expression that matches the empty string is
// refused, and empty matches (of \b, say) are never reported.
func NewRegexp(expr string, fold bool) (Matcher, error) {
	if expr == "" {
		return nil, errors.New("empty regular expression")
	}
	full := expr
	if fold {
		full = "(?i)" + expr
	}
	re, err := regexp.Compile(full)
	if err != nil {
		return nil, fmt.Errorf("regular expression: %w", err)
	}
	if re.Match(nil) {
		return nil, fmt.Errorf("regular expression %q matches the empty string", expr)
	}
	m := &regexMatcher{re: re, expr: expr, maxLen: MaxRegexpMatch}
	m.zeros = re.Match(make([]byte, MaxRegexpMatch))
	m.req, m.reqFold = requiredLiteral(full)
	return m, nil
}

func (m *regexMatcher) MaxLen() int { return m.maxLen }

func (m *regexMatcher) String() string { return "/" + m.expr + "/" }

func (m *regexMatcher) matchesZeros() bool { return m.zeros }

func (m *regexMatcher) newScanner() scanner {
	s := &regexScanner{re: m.re, maxLen: m.maxLen, region: minRegion}
	switch {
	case m.req == nil:
	case m.reqFold:
		s.lit = &foldScanner{pat: m.req}
	default:
		s.lit = &literalScanner{pat: m.req}
	}
	return s
}

// regexScanner runs the engine over the whole buffer or, with lit (the
// matcher's required literal), only over regions around the literal's
// occurrences.
type regexScanner struct {
	re     *regexp.Regexp
	maxLen int
	lit    scanner // nil: no required literal
	region int     // minRegion, smaller in tests
	data   []byte
}

// minRegion is the least number of bytes the engine is run over at a
// time around an occurrence of the required literal, so that dense
// occurrences cost one run, not one each.
const minRegion = 64 << 10

// windowFree is false: ^, $, \A, \z and \b see the buffers' edges.
func (s *regexScanner) windowFree() bool { return false }

func (s *regexScanner) load(data []byte) {
	s.data = data
	if s.lit != nil {
		s.lit.load(data)
	}
}

// index finds the leftmost match at or after from. With a required
// literal, every match of at most maxLen bytes that starts at or after
// from contains an occurrence c of the literal at or after from, so it
// lies in [c-maxLen, c+maxLen): the engine runs on a region around the
// first occurrence; where it finds nothing, no match (of at most maxLen
// bytes) starts before the region's end-maxLen+1, and the search goes on
// from there with the next occurrence. A match is taken only when the
// region holds maxLen bytes after its start (or reaches the buffer's
// end), so it is the one the engine finds on the whole buffer.
func (s *regexScanner) index(from int) (int, int) {
	if s.lit == nil {
		return s.find(from, len(s.data))
	}
	at := from // where the next occurrence of the literal is looked for
	for at < len(s.data) {
		c, _ := s.lit.index(at)
		if c < 0 {
			return -1, -1
		}
		start := max(from, c-s.maxLen)
		for n := 0; n < utf8.UTFMax-1 && start > from && !utf8.RuneStart(s.data[start]); n++ {
			start-- // begin at a character, as on the whole buffer
		}
		end := min(len(s.data), max(c+s.maxLen, start+s.region))
		for {
			i, j := s.find(start, end)
			if i < 0 {
				break
			}
			if i+s.maxLen <= end || end == len(s.data) {
				return i, j
			}
			end = min(len(s.data), i+s.maxLen) // the match may be cut: look again
		}
		if end == len(s.data) {
			return -1, -1
		}
		from = max(from, end-s.maxLen+1)
		at = max(c+1, from)
	}
	return -1, -1
}

// find returns the leftmost non-empty match in data[from:end].
func (s *regexScanner) find(from, end int) (int, int) {
	for from < end {
		loc := s.re.FindIndex(s.data[from:end])
		if loc == nil {
			return -1, -1
		}
		if loc[1] > loc[0] {
			return from + loc[0], from + loc[1]
		}
		from += loc[0] + 1 // an empty match: look further
	}
	return -1, -1
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// lowerASCII writes src with ASCII upper-case letters lowered into dst
// (len(dst) >= len(src); dst may be src). Eight bytes at a time: a byte
// is an upper-case letter when its high bit is clear and its low seven
// bits are >= 'A' and <= 'Z'.
func lowerASCII(dst, src []byte) {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
		low7 = 0x7f7f7f7f7f7f7f7f
	)
	dst = dst[:len(src)]
	i := 0
	for ; i+8 <= len(src); i += 8 {
		w := binary.LittleEndian.Uint64(src[i:])
		h := w & low7
		geA := h + (0x80-'A')*ones   // high bit set where h >= 'A'
		gtZ := h + (0x80-'Z'-1)*ones // high bit set where h > 'Z'
		up := geA &^ gtZ &^ w & high // upper-case ASCII letters
		binary.LittleEndian.PutUint64(dst[i:], w|up>>2)
	}
	for ; i < len(src); i++ {
		c := src[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
}
