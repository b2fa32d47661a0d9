package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ckpt2core/ckpt2core/internal/memsearch"
)

// maxPatternFile bounds the size of a -f pattern list.
const maxPatternFile = 64 << 20

// readPatternFile reads a -f list: one pattern per line (a trailing \r is
// dropped; empty lines are skipped), each hex bytes with --hex. It returns
// the patterns and their lines as given (for the counts).
func readPatternFile(name string, isHex bool) ([][]byte, []string, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxPatternFile+1))
	sc.Buffer(make([]byte, 64<<10), memsearch.MaxPatternLen*3+16)
	var pats [][]byte
	var lines []string
	read := 0
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		read += len(sc.Bytes()) + 1
		if read > maxPatternFile {
			return nil, nil, fmt.Errorf("-f %s: more than %d bytes", name, maxPatternFile)
		}
		if line == "" {
			continue
		}
		p := []byte(line)
		if isHex {
			var err error
			if p, err = parseHexPattern(line); err != nil {
				return nil, nil, fmt.Errorf("-f %s: line %d: %w", name, n, err)
			}
		}
		pats = append(pats, p)
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("-f %s: %w", name, err)
	}
	if len(pats) == 0 {
		return nil, nil, fmt.Errorf("-f %s: no pattern", name)
	}
	return pats, lines, nil
}

// patternCounts counts a Set's hits by pattern line.
type patternCounts struct {
	set   *memsearch.Set
	lines []string
	n     []int // by first index
}

func (c *patternCounts) add(h memsearch.Hit) { c.n[h.Pattern]++ }

// jsonCount is one pattern's count in grep -f --json.
type jsonCount struct {
	Pattern string `json:"pattern"`
	Count   int    `json:"count"`
}

func (c *patternCounts) list() []jsonCount {
	out := make([]jsonCount, len(c.lines))
	for i, l := range c.lines {
		out[i] = jsonCount{Pattern: l, Count: c.n[c.set.First(i)]}
	}
	return out
}

// writeText prints "count N PATTERN" per pattern line, in list order.
func (c *patternCounts) writeText(w io.Writer) {
	for _, jc := range c.list() {
		fmt.Fprintf(w, "count %d %s\n", jc.Count, safe(jc.Pattern))
	}
}

// writeJSON closes the hits array and adds the counts: grep -f --json
// prints {"hits": [...], "counts": [...]}.
func (c *patternCounts) writeJSON(w io.Writer) error {
	b, err := json.Marshal(c.list())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, ",\n\"counts\": %s}\n", b)
	return err
}
