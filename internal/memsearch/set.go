package memsearch

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxSetStates bounds the automaton of a Set (states of its pattern
// trie): 1<<20 states of 256 transitions of 4 bytes is 1 GiB, so sets
// above MaxDenseStates keep sparse transitions instead.
const (
	MaxSetStates   = 1 << 22
	MaxDenseStates = 1 << 16
)

// Set matches many literal patterns in one pass over memory (an
// Aho-Corasick automaton). Each pattern's hits are exactly those a search
// for that pattern alone reports: non-overlapping among themselves, but
// free to overlap other patterns' hits. Hit.Pattern is the index of the
// pattern in the list given to NewSet (identical patterns share their
// hits: each is reported once, under the first index). Hits come in the
// order of their last byte.
type Set struct {
	pats   [][]byte // lower-cased if fold
	first  []int    // index of the first identical pattern, by pattern
	fold   bool
	maxLen int
	zeros  bool
	// the automaton: dense (next, numStates*256) or sparse (goto edges +
	// fail links)
	next  []int32
	edges []map[byte]int32
	fail  []int32
	out   []int32 // pattern ending at the state, -1 if none
	dict  []int32 // next state on the fail chain with an output, -1
}

// NewSet returns a Set of the literal patterns pats; with fold, ASCII
// letters match in either case (a non-ASCII UTF-8 pattern with fold is
// refused: a search for it alone would use Unicode case folding).
func NewSet(pats [][]byte, fold bool) (*Set, error) {
	if len(pats) == 0 {
		return nil, errors.New("no pattern")
	}
	s := &Set{fold: fold, first: make([]int, len(pats))}
	byPat := map[string]int{}
	states := 1
	for i, p := range pats {
		if len(p) == 0 {
			return nil, fmt.Errorf("pattern %d: empty pattern", i+1)
		}
		if len(p) > MaxPatternLen {
			return nil, fmt.Errorf("pattern %d: %d bytes, longer than the limit of %d", i+1, len(p), MaxPatternLen)
		}
		if fold && !isASCII(p) && utf8.Valid(p) {
			return nil, fmt.Errorf("pattern %d: a non-ASCII UTF-8 pattern cannot ignore case in a pattern list", i+1)
		}
		q := bytes.Clone(p)
		if fold {
			lowerASCII(q, q)
		}
		s.pats = append(s.pats, q)
		if j, dup := byPat[string(q)]; dup {
			s.first[i] = j
			continue
		}
		byPat[string(q)] = i
		s.first[i] = i
		s.maxLen = max(s.maxLen, len(q))
		if !s.zeros && !bytes.ContainsFunc(q, func(r rune) bool { return r != 0 }) {
			s.zeros = true
		}
		states += len(q)
		if states > MaxSetStates {
			return nil, fmt.Errorf("patterns of more than %d bytes in all", MaxSetStates)
		}
	}
	s.build()
	return s, nil
}

// build makes the trie, its fail and dictionary links, and (for small
// sets) the dense transition table.
func (s *Set) build() {
	s.edges = []map[byte]int32{{}}
	s.out = []int32{-1}
	for i, p := range s.pats {
		if s.first[i] != i {
			continue
		}
		st := int32(0)
		for _, c := range p {
			nx, ok := s.edges[st][c]
			if !ok {
				nx = int32(len(s.edges))
				s.edges = append(s.edges, map[byte]int32{})
				s.out = append(s.out, -1)
				s.edges[st][c] = nx
			}
			st = nx
		}
		s.out[st] = int32(i)
	}
	n := len(s.edges)
	s.fail = make([]int32, n)
	s.dict = make([]int32, n)
	s.dict[0] = -1
	queue := make([]int32, 0, n)
	for _, nx := range s.edges[0] {
		s.fail[nx] = 0
		s.dict[nx] = -1
		queue = append(queue, nx)
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		for c, nx := range s.edges[st] {
			f := s.fail[st]
			for {
				if t, ok := s.edges[f][c]; ok {
					s.fail[nx] = t
					break
				}
				if f == 0 {
					s.fail[nx] = 0
					break
				}
				f = s.fail[f]
			}
			if ft := s.fail[nx]; s.out[ft] >= 0 {
				s.dict[nx] = ft
			} else {
				s.dict[nx] = s.dict[ft]
			}
			queue = append(queue, nx)
		}
	}
	if n <= MaxDenseStates {
		s.next = make([]int32, n*256)
		// States in BFS order: a state's fail state comes before it.
		order := append([]int32{0}, bfs(s.edges)...)
		for _, st := range order {
			for c := 0; c < 256; c++ {
				if t, ok := s.edges[st][byte(c)]; ok {
					s.next[int(st)*256+c] = t
				} else if st != 0 {
					s.next[int(st)*256+c] = s.next[int(s.fail[st])*256+c]
				}
			}
		}
		s.edges = nil
	}
}

func bfs(edges []map[byte]int32) []int32 {
	var order []int32
	queue := []int32{0}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		for _, nx := range edges[st] {
			order = append(order, nx)
			queue = append(queue, nx)
		}
	}
	return order
}

func (s *Set) step(st int32, c byte) int32 {
	if s.next != nil {
		return s.next[int(st)*256+int(c)]
	}
	for {
		if t, ok := s.edges[st][c]; ok {
			return t
		}
		if st == 0 {
			return 0
		}
		st = s.fail[st]
	}
}

// Len is the number of patterns.
func (s *Set) Len() int { return len(s.pats) }

// First returns the index under which the hits of pattern i are reported
// (i itself, or an earlier identical pattern's).
func (s *Set) First(i int) int { return s.first[i] }

// MaxLen is the length of the longest pattern.
func (s *Set) MaxLen() int { return s.maxLen }

func (s *Set) String() string { return fmt.Sprintf("%d patterns", len(s.pats)) }

func (s *Set) matchesZeros() bool { return s.zeros }

func (s *Set) newScanner() scanner {
	return &setScanner{set: s, lastEnd: make(map[int32]uint64)}
}

// multiScanner is a scanner of several patterns whose matches may
// overlap: the search loop hands it each buffer whole.
type multiScanner interface {
	// reset forgets the matches of the previous run.
	reset()
	// each calls fn with each match [s, e) of pattern pat in data (whose
	// first byte is at address base) that starts before limit and not
	// before the end of the pattern's previous match.
	each(data []byte, base uint64, limit int, fn func(s, e, pat int) error) error
}

type setScanner struct {
	set     *Set
	lower   []byte
	lastEnd map[int32]uint64 // by pattern: address after its last match
}

func (s *setScanner) load([]byte) {}

func (s *setScanner) windowFree() bool { return true }

func (s *setScanner) index(int) (int, int) { return -1, -1 } // unused: each

func (s *setScanner) reset() { clear(s.lastEnd) }

func (s *setScanner) each(data []byte, base uint64, limit int, fn func(s, e, pat int) error) error {
	set := s.set
	if set.fold {
		if cap(s.lower) < len(data) {
			s.lower = make([]byte, len(data))
		}
		s.lower = s.lower[:len(data)]
		lowerASCII(s.lower, data)
		data = s.lower
	}
	st := int32(0)
	for i, c := range data {
		st = set.step(st, c)
		o := st
		if set.out[o] < 0 {
			o = set.dict[o]
		}
		for ; o >= 0; o = set.dict[o] {
			p := set.out[o]
			start := i + 1 - len(set.pats[p])
			if start >= limit {
				continue
			}
			if le, ok := s.lastEnd[p]; ok && base+uint64(start) < le {
				continue
			}
			s.lastEnd[p] = base + uint64(i+1)
			if err := fn(start, i+1, int(p)); err != nil {
				return err
			}
		}
	}
	return nil
}
