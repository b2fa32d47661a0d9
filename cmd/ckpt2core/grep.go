package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/memsearch"
)

// Exit statuses of grep, as grep(1) has them.
const (
	grepFound   = 0 // at least one hit
	grepNone    = 1 // no hit
	grepTrouble = 2 // usage error or an error while searching
)

const grepUsage = `Usage: ckpt2core grep [flags] PATTERN CHECKPOINT [CHECKPOINT...]

Searches the captured memory of every process of CHECKPOINT (private pages
and shared memory) for PATTERN, and prints one line per hit:

  PID COMM 0xADDRESS MAPPING+0xOFFSET  CONTEXT

MAPPING is the mapped file's path, [heap], [stack] (the initial stack or a
thread's), [vdso], [anon] (other anonymous memory), [shared] (shared
anonymous memory) or a memfd's /memfd:NAME (deleted); OFFSET is the hit's
offset from the mapping's start.
CONTEXT shows the hit with up to -C bytes on each side, non-printable bytes
as '.'.

Flags:
%s
Matching rules: a hit lies inside one mapping and never spans two, even
adjacent ones; it never spans memory the checkpoint does not hold (clean
file pages, pages left in a parent checkpoint) and matching restarts after
such a range. It does span page and pagemap-entry boundaries, and
untouched anonymous memory counts as zeros. Hits do not overlap. A
--regex hit is at most 4096 bytes long (longer ones may be cut or missed);
the expression uses Go syntax over raw bytes (see 'go doc regexp/syntax'):
\xNN there is a Unicode code point, so use --hex for raw bytes >= 0x80.
-i folds ASCII letters (Unicode letters with --regex, or a non-ASCII
UTF-8 PATTERN). A zombie process has no memory and is skipped.

Examples:
  ckpt2core grep RANDOM_1432_KEY /var/lib/criu/dump
  ckpt2core grep -i --pid 3760 random_1432_key dump/
  ckpt2core grep --hex 'de ad be ef' dump/
  ckpt2core grep --regex 'RANDOM_[0-9]+_KEY' -C 32 dump/
  ckpt2core grep --json --max-count 1 SECRET dump/ | jq '.[].address'
  ckpt2core grep -- -pattern-with-a-dash dump/
  ckpt2core grep -f indicators.txt --json checkpoint.tar.zst | jq '.counts'

A damaged process (a truncated or corrupt core, mm, pagemap or pages
image) is searched for what its images still hold, as inspect reads it:
a warning names the file, the entry and what is wrong, and then how many
bytes of its memory could not be read; matching restarts after them.

Exit status: 0 something was found; 1 nothing was found; 2 usage error or
an error while reading the checkpoint, a damaged process included (hits
found, in it and in the other processes, are still printed).
`

// maxContext bounds -C.
const maxContext = 1 << 16

func runGrep(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core grep", pflag.ContinueOnError)
	hexPat := fs.Bool("hex", false, "PATTERN is hex bytes (\"de ad be ef\", \"deadbeef\", \"de:ad:be:ef\")")
	regex := fs.BoolP("regex", "E", false, "PATTERN is a Go regular expression over bytes")
	fold := fs.BoolP("ignore-case", "i", false, "match letters regardless of case")
	context := fs.IntP("context", "C", memsearch.DefaultContext, "bytes of context shown on each side of a hit")
	pids := fs.UintSlice("pid", nil, "search only this process (repeatable)")
	asJSON := fs.Bool("json", false, "print one JSON array of hits")
	maxCount := fs.IntP("max-count", "m", 0, "stop after N hits in each process (0: no limit)")
	patFile := fs.StringP("file", "f", "", "search for every pattern of FILE (one per line, '-': stdin) in one pass, and count each")
	aopts := archiveFlags(fs)
	jobs := fs.IntP("jobs", "j", 1, "checkpoints searched in parallel (with several CHECKPOINTs)")
	verbose := fs.BoolP("verbose", "v", false, "say what a compressed archive could not stream (pages spooled whole)")
	help := func(w io.Writer) { fmt.Fprintf(w, grepUsage, fs.FlagUsages()) }
	if status, ok := parseFlags(fs, "grep", args, help, stdout, stderr, grepTrouble); !ok {
		return status
	}
	usageErr := func(format string, a ...any) int {
		return usageError(stderr, "grep", grepTrouble, format, a...)
	}
	ckArg := 1
	if *patFile != "" {
		ckArg = 0
		if *regex {
			return usageErr("-f takes literal patterns: --regex excludes it")
		}
	}
	if fs.NArg() < ckArg+1 {
		return usageErr("want PATTERN and CHECKPOINT (or -f FILE and CHECKPOINT), got %s", count(fs.NArg(), "argument"))
	}
	if *jobs < 1 {
		return usageErr("--jobs must be at least 1")
	}
	if *hexPat && *regex {
		return usageErr("--hex and --regex exclude each other")
	}
	if *context < 0 || *context > maxContext {
		return usageErr("-C %d: context must be from 0 to %d bytes", *context, maxContext)
	}
	if *maxCount < 0 {
		return usageErr("--max-count must not be negative")
	}
	var m memsearch.Matcher
	var counts *patternCounts
	var err error
	if *patFile != "" {
		pats, lines, err := readPatternFile(*patFile, *hexPat)
		if err != nil {
			return usageErr("%s", safe(err.Error()))
		}
		set, err := memsearch.NewSet(pats, *fold)
		if err != nil {
			return usageErr("-f %s: %s", safe(*patFile), safe(err.Error()))
		}
		m, counts = set, &patternCounts{set: set, lines: lines, n: make([]int, len(pats))}
	} else if m, err = grepMatcher(fs.Arg(0), *hexPat, *regex, *fold); err != nil {
		return usageErr("%v", err)
	}

	// A compressed archive streams: each process's pages are searched as
	// they are decompressed, and freed.
	aopts.Stream = true
	g := grepRun{m: m, counts: counts, pids: *pids, context: *context, asJSON: *asJSON, maxCount: *maxCount, aopts: aopts, verbose: *verbose}
	if fs.NArg() == ckArg+1 {
		return g.one(stop, fs.Arg(ckArg), stdout, stderr)
	}
	if aopts.ExtractDir != "" {
		return usageErr("--extract takes one CHECKPOINT")
	}
	// Many checkpoints: grouped per checkpoint, in argument order; 2 if
	// any failed, else 0 if any matched.
	oneDecoderEach(aopts, *jobs)
	statuses := runEach(fs.Args()[ckArg:], *jobs, *asJSON, stdout, stderr, func(path string, out, errw io.Writer) int {
		return g.one(stop, path, out, errw)
	})
	code := grepNone
	for _, st := range statuses {
		switch {
		case st == grepTrouble:
			code = grepTrouble
		case st == grepFound && code == grepNone:
			code = grepFound
		}
	}
	return code
}

// grepRun is a grep command line, run on one checkpoint at a time.
type grepRun struct {
	m        memsearch.Matcher
	counts   *patternCounts // with -f: the patterns to count (each run counts afresh)
	pids     []uint
	context  int
	asJSON   bool
	maxCount int
	aopts    *archive.Options
	verbose  bool
	// container names a pod checkpoint's container in every hit, when
	// all of them are searched (pod.go).
	container string
}

// one searches one checkpoint and returns grep's exit status.
func (g grepRun) one(stop *stopper, path string, stdout, stderr io.Writer) int {
	usageErr := func(format string, a ...any) int {
		return usageError(stderr, "grep", grepTrouble, format, a...)
	}
	aopts := *g.aopts
	endBar := readProgress(&aopts, path, stderr, "searching")
	defer endBar()
	m, pids, context, asJSON, maxCount, verbose := g.m, &g.pids, &g.context, &g.asJSON, &g.maxCount, &g.verbose
	var counts *patternCounts
	if g.counts != nil {
		counts = &patternCounts{set: g.counts.set, lines: g.counts.lines, n: make([]int, len(g.counts.n))}
	}
	src, closeSrc, err := openCheckpoint(stop, path, &aopts)
	if pod := podChoice(err); pod != nil && g.container == "" {
		endBar()
		return g.pod(stop, pod, stdout, stderr) // every container (pod.go)
	}
	if err != nil {
		complain(stderr, "grep", "%s", err)
		return grepTrouble
	}
	defer closeSrc()
	ck, provisional, err := openStreamTree(src)
	if pod := podChoice(podOf(err, aopts)); pod != nil && g.container == "" {
		endBar()
		return g.pod(stop, pod, stdout, stderr)
	}
	if err != nil {
		complain(stderr, "grep", "%s", err)
		return grepTrouble
	}
	want, err := selectPids(ck, *pids)
	if err != nil {
		return usageErr("%v", err)
	}
	dropUnwanted(src, ck, want)

	out := &grepOutput{out: bufio.NewWriterSize(stdout, 64<<10), stderr: stderr, asJSON: *asJSON, container: g.container, counts: counts}
	defer out.discard()
	out.begin()
	// The processes are searched in the order their pages stream
	// (searchOrder) and reported in pid order (grepOutput holds those
	// searched before their turn).
	searcher := memsearch.Searcher{Context: *context}
	out.expect(len(want))
	for _, i := range searchOrder(src, want) {
		w, errw, done := out.process(i)
		err := grepProcess(ck, src, want[i], searcher, m, *maxCount, len(*pids) > 0, errw, w)
		var we *writeError
		if errors.As(err, &we) {
			complain(stderr, "grep", "writing output: %v", we.err)
			return grepTrouble
		}
		if err != nil && !errors.Is(err, errDamaged) {
			complain(errw, "grep", "%s", err)
		}
		if err := done(err != nil); err != nil {
			complain(stderr, "grep", "writing output: %v", err)
			return grepTrouble
		}
	}
	err = checkStreamTree(src, ck, provisional, *verbose, stderr, "grep")
	endBar()
	if err != nil {
		complain(stderr, "grep", "%s", err)
		out.failed = true
	}
	if err := out.end(); err != nil {
		complain(stderr, "grep", "writing output: %v", err)
		return grepTrouble
	}
	failed, hits := out.failed, out.hits
	switch {
	case failed:
		return grepTrouble
	case hits > 0:
		return grepFound
	}
	return grepNone
}

// writeError marks a failure to write the output, which ends the search.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// grepMatcher builds the matcher of the command line's PATTERN.
func grepMatcher(pat string, isHex, isRegex, fold bool) (memsearch.Matcher, error) {
	switch {
	case isRegex:
		return memsearch.NewRegexp(pat, fold)
	case isHex:
		b, err := parseHexPattern(pat)
		if err != nil {
			return nil, err
		}
		return memsearch.NewLiteral(b, fold)
	}
	return memsearch.NewLiteral([]byte(pat), fold)
}

// parseHexPattern decodes hex bytes, allowing a leading 0x and spaces,
// tabs, colons or dashes between digits.
func parseHexPattern(s string) ([]byte, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "0x"), "0X")
	t = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', ':', '-':
			return -1
		}
		return r
	}, t)
	if len(t)%2 != 0 {
		return nil, fmt.Errorf("--hex %q: odd number of hex digits", s)
	}
	b, err := hex.DecodeString(t)
	if err != nil {
		return nil, fmt.Errorf("--hex %q: %w", s, err)
	}
	return b, nil
}

// grepProcess searches one process. A zombie is skipped, with a notice
// when it was asked for by --pid. A damaged process is searched for what
// its images still hold (criuimg.SalvageProcess, as inspect reads it):
// each problem is said on stderr (file, entry, what is wrong), then how
// many bytes of its memory could not be searched; the search goes on and
// the returned error (errDamaged) makes the exit status 2.
func grepProcess(ck *criuimg.Checkpoint, src criuimg.Source, pid uint32, s memsearch.Searcher, m memsearch.Matcher, maxCount int, asked bool, stderr io.Writer, emit func(memsearch.Hit) error) error {
	p, problems := ck.SalvageProcess(pid)
	if p == nil {
		return errors.Join(problems...)
	}
	defer p.Close()
	who := fmt.Sprintf("pid %d (%s)", pid, p.Comm)
	if p.Zombie() && len(problems) == 0 {
		if asked {
			complain(stderr, "grep", "%s: zombie: no memory to search", who)
		}
		return nil
	}
	for _, pr := range problems {
		complain(stderr, "grep", "%s: %v", who, pr)
	}
	var damaged error
	if len(problems) > 0 {
		damaged = errDamaged
		if p.Mem == nil {
			complain(stderr, "grep", "%s: damaged images: no memory left to search", who)
			return damaged
		}
		if n := unreadableBytes(p); n > 0 {
			complain(stderr, "grep", "%s: damaged images: %d bytes of memory unreadable, not searched", who, n)
		}
	}
	defer consumeOnce(src, p)()
	n := 0
	err := s.Search(p, m, func(h memsearch.Hit) error {
		if err := emit(h); err != nil {
			return err
		}
		if n++; maxCount > 0 && n >= maxCount {
			return memsearch.ErrStop
		}
		return nil
	})
	if err != nil {
		return err
	}
	return damaged
}

// errDamaged is grepProcess's error for a process searched in part: its
// problems are said already.
var errDamaged = errors.New("damaged images")

// unreadableBytes counts the bytes of p's mappings that its damaged images
// hide (Unreadable extents).
func unreadableBytes(p *criuimg.Process) uint64 {
	var n uint64
	for i := range p.VMAs {
		p.Mem.VMAExtents(&p.VMAs[i], func(e criuimg.Extent) error {
			if e.Kind == criuimg.Unreadable {
				n += e.End - e.Start
			}
			return nil
		})
	}
	return n
}

// grepContext renders a hit with its context, non-printable bytes as '.'.
func grepContext(h memsearch.Hit) string {
	var b strings.Builder
	b.Grow(len(h.Before) + len(h.Match) + len(h.After))
	for _, part := range [][]byte{h.Before, h.Match, h.After} {
		for _, c := range part {
			if c < 0x20 || c > 0x7e {
				c = '.'
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// jsonHit is a hit as --json prints it. Byte strings appear twice: escaped
// (printable ASCII as is, '\\' for a backslash, \xNN for other bytes) and
// as hex.
type jsonHit struct {
	Container    string `json:"container,omitempty"` // a pod checkpoint's container
	Pid          uint32 `json:"pid"`
	Comm         string `json:"comm"`
	Address      string `json:"address"`
	Mapping      string `json:"mapping"`
	MappingStart string `json:"mapping_start"`
	Offset       uint64 `json:"offset"`
	Match        string `json:"match"`
	MatchHex     string `json:"match_hex"`
	Before       string `json:"before"`
	BeforeHex    string `json:"before_hex"`
	After        string `json:"after"`
	AfterHex     string `json:"after_hex"`
	Context      string `json:"context"`
}

func newJSONHit(h memsearch.Hit) jsonHit {
	return jsonHit{
		Pid:          h.Pid,
		Comm:         h.Comm,
		Address:      fmt.Sprintf("%#x", h.Addr),
		Mapping:      h.Mapping,
		MappingStart: fmt.Sprintf("%#x", h.MappingStart),
		Offset:       h.Offset,
		Match:        escapeBytes(h.Match),
		MatchHex:     hex.EncodeToString(h.Match),
		Before:       escapeBytes(h.Before),
		BeforeHex:    hex.EncodeToString(h.Before),
		After:        escapeBytes(h.After),
		AfterHex:     hex.EncodeToString(h.After),
		Context:      grepContext(h),
	}
}

// escapeBytes renders b as printable ASCII: '\\' for a backslash and \xNN
// for bytes outside 0x20-0x7e.
func escapeBytes(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch {
		case c == '\\':
			s.WriteString(`\\`)
		case c < 0x20 || c > 0x7e:
			fmt.Fprintf(&s, `\x%02x`, c)
		default:
			s.WriteByte(c)
		}
	}
	return s.String()
}
