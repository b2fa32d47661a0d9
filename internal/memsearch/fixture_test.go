package memsearch

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

var fixtures = imgtest.Testdata("x86_64")

// manifest is the part of a fixture's manifest.json these tests read.
type manifest struct {
	Processes []struct {
		Pid   uint32 `json:"pid"`
		Comm  string `json:"comm"`
		State string `json:"state"`
	} `json:"processes"`
	Secrets []struct {
		String  string        `json:"string"`
		Private []manifestHit `json:"private_page_hits"`
		Shared  []manifestHit `json:"shared_page_hits"`
	} `json:"secrets"`
}

type manifestHit struct {
	Pid   uint32 `json:"pid"`
	Vaddr string `json:"vaddr"`
}

type pidAddr struct {
	Pid  uint32
	Addr uint64
}

func (p pidAddr) String() string { return fmt.Sprintf("%d@%#x", p.Pid, p.Addr) }

func readManifest(t testing.TB, fixture string) manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, fixture, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s/manifest.json: %v", fixture, err)
	}
	return m
}

func (h manifestHit) pidAddr(t testing.TB) pidAddr {
	a, err := strconv.ParseUint(strings.TrimPrefix(h.Vaddr, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("manifest vaddr %q: %v", h.Vaddr, err)
	}
	return pidAddr{h.Pid, a}
}

func openFixture(t testing.TB, fixture string) *criuimg.Checkpoint {
	t.Helper()
	return imgtest.OpenDir(t, filepath.Join(fixtures, fixture, "images"))
}

// fixtureHit is a hit with the mapping it was found in.
type fixtureHit struct {
	Hit
	vma *criuimg.VMA
}

// searchAll searches every live process of ck, checking each hit against
// the process's mappings.
func searchAll(t testing.TB, ck *criuimg.Checkpoint, m Matcher) []fixtureHit {
	t.Helper()
	var hits []fixtureHit
	for _, pid := range ck.Pids() {
		p, err := ck.LoadProcess(pid)
		if err != nil {
			if p != nil && p.Zombie() {
				continue
			}
			t.Fatal(err)
		}
		err = (Searcher{Context: DefaultContext}).Search(p, m, func(h Hit) error {
			v, ok := p.FindVMA(h.Addr)
			switch {
			case !ok:
				t.Errorf("hit at %#x lies in no mapping", h.Addr)
			case h.MappingStart != v.Start || h.Offset != h.Addr-v.Start:
				t.Errorf("hit at %#x: mapping start %#x offset %#x, but its VMA is [%#x-%#x)", h.Addr, h.MappingStart, h.Offset, v.Start, v.End)
			case h.Addr+uint64(len(h.Match)) > v.End:
				t.Errorf("hit at %#x of %d bytes runs past its VMA [%#x-%#x)", h.Addr, len(h.Match), v.Start, v.End)
			case h.Mapping != MappingName(p, v):
				t.Errorf("hit at %#x names its mapping %q, want %q", h.Addr, h.Mapping, MappingName(p, v))
			}
			if h.Pid != p.Pid || h.Comm != p.Comm {
				t.Errorf("hit at %#x: pid %d comm %q, want %d %q", h.Addr, h.Pid, h.Comm, p.Pid, p.Comm)
			}
			hits = append(hits, fixtureHit{h, v})
			return nil
		})
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return hits
}

// TestManifestSecrets searches every secret of every x86_64 fixture in
// every process and compares the hits with the manifest: hits in private
// mappings must be exactly the manifest's private_page_hits, and hits in
// shared memory exactly its shared_page_hits. RANDOM_1432_KEY in counter
// has no other hit: bash never saw it, and tee, which copied Python's log
// line `... "GET /secret?RANDOM_1432_KEY HTTP/1.1" 200 -` from the pipe,
// read the shorter line of the later request "/" into the same stack
// buffer, which left only its tail `2_KEY HTTP/1.1" 200 -`
// (TestFixtureMappings shows it).
func TestManifestSecrets(t *testing.T) {
	for _, fixture := range []string{"counter", "static-c", "threads-c", "threads-c-criu411", "go-goroutines"} {
		man := readManifest(t, fixture)
		ck := openFixture(t, fixture)
		for _, sec := range man.Secrets {
			t.Run(fixture+"/"+sec.String, func(t *testing.T) {
				var wantPriv, wantShared, gotPriv, gotShared []pidAddr
				for _, h := range sec.Private {
					wantPriv = append(wantPriv, h.pidAddr(t))
				}
				for _, h := range sec.Shared {
					wantShared = append(wantShared, h.pidAddr(t))
				}
				for _, h := range searchAll(t, ck, mustLiteral(t, sec.String, false)) {
					if string(h.Match) != sec.String {
						t.Errorf("hit at %#x matched %q", h.Addr, h.Match)
					}
					if h.vma.HasShmem {
						gotShared = append(gotShared, pidAddr{h.Pid, h.Addr})
					} else {
						gotPriv = append(gotPriv, pidAddr{h.Pid, h.Addr})
					}
				}
				for _, s := range [][]pidAddr{wantPriv, wantShared, gotPriv, gotShared} {
					slices.SortFunc(s, func(a, b pidAddr) int {
						return cmpPidAddr(a, b)
					})
				}
				if !slices.Equal(gotPriv, wantPriv) {
					t.Errorf("private hits %v, manifest says %v", gotPriv, wantPriv)
				}
				if !slices.Equal(gotShared, wantShared) {
					t.Errorf("shared hits %v, manifest says %v", gotShared, wantShared)
				}
			})
		}
	}
}

func cmpPidAddr(a, b pidAddr) int {
	if a.Pid != b.Pid {
		return int(a.Pid) - int(b.Pid)
	}
	switch {
	case a.Addr < b.Addr:
		return -1
	case a.Addr > b.Addr:
		return 1
	}
	return 0
}

// TestFixtureMappings checks where the fixtures' secrets are reported:
// the mapping names, and the facts the fixtures were built to show.
func TestFixtureMappings(t *testing.T) {
	type want struct {
		pid     uint32
		addr    uint64
		mapping string
		offset  uint64 // checked when not 0
		shared  bool
	}
	tests := []struct {
		fixture, pat string
		want         []want
	}{
		{"counter", "RANDOM_1432_KEY", []want{
			{pid: 3760, addr: 0x7f6d0fb6fbad, mapping: "[anon]"},
			{pid: 3760, addr: 0x7f6d0fba0410, mapping: "[anon]"},
		}},
		// What tee's read buffer kept of the secret's log line (see
		// TestManifestSecrets). Python's heap holds the same overwritten
		// line (a buffer of its stderr writes), and its anonymous memory
		// the whole line.
		{"counter", `2_KEY HTTP/1.1" 200 -`, []want{
			{pid: 3760, addr: 0x2d62b95c, mapping: "[heap]"},
			{pid: 3760, addr: 0x7f6d0fb6fbb7, mapping: "[anon]"},
			{pid: 3761, addr: 0x7ffd33d0ca5c, mapping: "[stack]"},
		}},
		// The pattern straddles the page boundary 0x7f7519d01000.
		{"static-c", "SPARSE_SPANS_A_PAGE_BOUNDARY", []want{
			{pid: 1535, addr: 0x7f7519d00fa0, mapping: "[anon]"},
			{pid: 1539, addr: 0x7f7519d00fa0, mapping: "[anon]"},
		}},
		// Written by the child into the MAP_SHARED mapping: found only
		// through the shmem pages, in both processes that map it.
		{"static-c", "CHILD_WROTE_SHARED", []want{
			{pid: 1535, addr: 0x7f751a13a064, mapping: "[shared]", offset: 8292, shared: true},
			{pid: 1539, addr: 0x7f751a13a064, mapping: "[shared]", offset: 8292, shared: true},
		}},
		{"static-c", "STATIC_HEAP_SECRET_77aa", []want{
			{pid: 1535, addr: 0x258ca6d0, mapping: "[heap]"},
			{pid: 1539, addr: 0x258ca6d0, mapping: "[heap]"},
		}},
		{"threads-c", "THREADS_HEAP_SECRET_c41e", []want{{pid: 32484, addr: 0x5608f91d92a0, mapping: "[heap]"}}},
		{"threads-c", "THREADS_DATA_SECRET_6b2d", []want{{pid: 32484, addr: 0x5608f8fa90a0, mapping: "/opt/fixture/bin/threads-c"}}},
		// The environment lies on the main thread's stack.
		{"threads-c", "THREADS_ENV_TOKEN=env_token_0d5f", []want{{pid: 32484, mapping: "[stack]"}}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+"/"+tt.pat, func(t *testing.T) {
			hits := searchAll(t, openFixture(t, tt.fixture), mustLiteral(t, tt.pat, false))
			if len(hits) != len(tt.want) {
				t.Fatalf("%d hits, want %d: %v", len(hits), len(tt.want), hits)
			}
			for i, w := range tt.want {
				h := hits[i]
				if h.Pid != w.pid || (w.addr != 0 && h.Addr != w.addr) || h.Mapping != w.mapping ||
					(w.offset != 0 && h.Offset != w.offset) || (h.vma.HasShmem) != w.shared {
					t.Errorf("hit %d: pid %d at %#x in %q+%#x (shmem %d), want %+v", i, h.Pid, h.Addr, h.Mapping, h.Offset, h.vma.Shmem, w)
				}
				if len(h.Before) != DefaultContext || len(h.After) != DefaultContext {
					t.Errorf("hit %d: %d bytes of context before and %d after, want %d", i, len(h.Before), len(h.After), DefaultContext)
				}
			}
		})
	}
}

// TestMatcherKinds checks that --hex, --regex and -i (with the pattern
// lower-cased) find what the plain literal finds.
func TestMatcherKinds(t *testing.T) {
	for _, tc := range []struct{ fixture, pat string }{
		{"counter", "RANDOM_1432_KEY"},
		{"static-c", "SPARSE_SPANS_A_PAGE_BOUNDARY"},
		{"static-c", "CHILD_WROTE_SHARED"},
	} {
		ck := openFixture(t, tc.fixture)
		addrs := func(m Matcher) []pidAddr {
			var out []pidAddr
			for _, h := range searchAll(t, ck, m) {
				out = append(out, pidAddr{h.Pid, h.Addr})
			}
			return out
		}
		hexLit, err := hex.DecodeString(hex.EncodeToString([]byte(tc.pat)))
		if err != nil {
			t.Fatal(err)
		}
		want := addrs(mustLiteral(t, tc.pat, false))
		if len(want) == 0 {
			t.Fatalf("%s: %q not found", tc.fixture, tc.pat)
		}
		for name, m := range map[string]Matcher{
			"hex":          mustLiteral(t, string(hexLit), false),
			"regex":        mustRegexp(t, regexp.QuoteMeta(tc.pat), false),
			"regex-class":  mustRegexp(t, regexp.MustCompile(`[0-9]`).ReplaceAllString(regexp.QuoteMeta(tc.pat), `[0-9]`), false),
			"fold-lower":   mustLiteral(t, strings.ToLower(tc.pat), true),
			"regex-folded": mustRegexp(t, strings.ToLower(regexp.QuoteMeta(tc.pat)), true),
		} {
			if got := addrs(m); !slices.Equal(got, want) {
				t.Errorf("%s %s %q: hits %v, the literal finds %v", tc.fixture, name, tc.pat, got, want)
			}
		}
		if got := addrs(mustLiteral(t, strings.ToLower(tc.pat), false)); len(got) != 0 {
			t.Errorf("%s: lower-cased %q without -i found %v", tc.fixture, tc.pat, got)
		}
	}
}

// TestNoMatchAcrossMappings takes the last 8 bytes of a mapping and the
// first 8 of the next one, adjacent in address and both captured there,
// and searches for the 16 bytes: a match never spans two mappings, so it
// must not be reported at the boundary (it may occur elsewhere).
func TestNoMatchAcrossMappings(t *testing.T) {
	p := imgtest.LoadFrom(t, openFixture(t, "counter"), 3760)
	captured := func(v *criuimg.VMA, addr uint64) bool {
		ok := false
		p.Mem.Extents(addr, addr+8, func(e criuimg.Extent) error {
			ok = e.Kind == criuimg.Captured && e.Start <= addr && e.End >= addr+8 && e.VMA == v
			return nil
		})
		return ok
	}
	tried := 0
	for i := 0; i+1 < len(p.VMAs) && tried < 3; i++ {
		a, b := &p.VMAs[i], &p.VMAs[i+1]
		if a.End != b.Start || !captured(a, a.End-8) || !captured(b, b.Start) {
			continue
		}
		pat := make([]byte, 16)
		if _, err := p.Mem.ReadAt(pat, int64(a.End-8)); err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(pat[:8]), "\x00") > 4 || strings.Count(string(pat[8:]), "\x00") > 4 {
			continue // too common to say anything
		}
		tried++
		err := (Searcher{Context: DefaultContext}).Search(p, mustLiteral(t, string(pat), false), func(h Hit) error {
			if h.Addr == a.End-8 {
				t.Errorf("match %x at %#x spans mappings %q [%#x-%#x) and %q [%#x-%#x)", pat, h.Addr, MappingName(p, a), a.Start, a.End, MappingName(p, b), b.Start, b.End)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// The two halves are found where they are.
		for _, half := range []struct {
			b    []byte
			addr uint64
		}{{pat[:8], a.End - 8}, {pat[8:], b.Start}} {
			found := false
			(Searcher{Context: DefaultContext}).Search(p, mustLiteral(t, string(half.b), false), func(h Hit) error {
				found = found || h.Addr == half.addr
				return nil
			})
			if !found {
				t.Errorf("%x not found at %#x", half.b, half.addr)
			}
		}
	}
	if tried == 0 {
		t.Fatal("no adjacent mappings captured at their boundary in pid 3760")
	}
	t.Logf("checked %d mapping boundaries", tried)
}
