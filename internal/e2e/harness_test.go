package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"google.golang.org/protobuf/proto"
)

// fixture is one row of the end-to-end table.
type fixture struct {
	arch string // directory under testdata/: "x86_64" or "arm64"
	name string // fixture directory
	// gcore marks oracles written by gdb's gcore instead of the kernel: they
	// have no signal fields, pgrp/sid 0 in NT_PRSTATUS, argv[0] only in
	// pr_psargs, gdb's note order and byte offsets (page size 1) in NT_FILE.
	gcore bool
	// exe overrides exe/<name> for gdb (a path relative to the fixture).
	exe string
	// pending, when set, skips the row with this reason (fixtures whose
	// conversion is not supported yet).
	pending string
}

func (f fixture) String() string { return f.arch + "/" + f.name }
func (f fixture) dir() string    { return filepath.Join(testdataDir(), f.arch, f.name) }
func (f fixture) images() string { return filepath.Join(f.dir(), "images") }

// fixtures lists every checkpoint with an oracle. arm64 rows use facts.json
// instead of manifest.json (see loadFixture).
var fixtures = []fixture{
	{arch: "x86_64", name: "threads-c"},
	// The same threads-c binary (the oracle's first ELF page carries its
	// build-id 4d91e41c...); the fixture has no exe/ of its own.
	{arch: "x86_64", name: "threads-c-criu411", exe: "../threads-c/exe/threads-c"},
	{arch: "x86_64", name: "static-c"},
	{arch: "x86_64", name: "go-goroutines", gcore: true},
	{arch: "x86_64", name: "counter"},
	{arch: "arm64", name: "threads-c"},
	{arch: "arm64", name: "pipeline"},
	{arch: "arm64", name: "go-goroutines", gcore: true},
}

// testdataDir is the repository's testdata/.
func testdataDir() string { return imgtest.Testdata() }

func repoRoot() string { return filepath.Join(testdataDir(), "..") }

// build is the one piece of shared state: the CLI built once per run, in a
// directory that TestMain removes.
var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	removeSysroots()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// cli returns the path of the ckpt2core binary, building it on first use.
func cli(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "ckpt2core-e2e-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "ckpt2core")
		cmd := exec.Command("go", "build", "-o", build.bin, "./cmd/ckpt2core")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/ckpt2core: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("cannot build the CLI: %v", build.err)
	}
	return build.bin
}

// cliResult is one run of the CLI.
type cliResult struct {
	out            string // output directory
	stdout, stderr string
	exit           int
}

// runCLI runs `ckpt2core [args] IMAGES -o OUT` into a fresh directory.
func runCLI(t *testing.T, images string, args ...string) cliResult {
	t.Helper()
	out := t.TempDir()
	argv := append(append([]string{}, args...), images, "-o", out)
	r := cliResult{out: out}
	r.stdout, r.stderr, r.exit = runExit(t, cli(t), argv...)
	return r
}

// runExit runs name with args and returns its stdout, its stderr and its
// exit code; it fails t if the command cannot be run.
func runExit(t *testing.T, name string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	default:
		t.Fatalf("run %s %v: %v", name, args, err)
	}
	return so.String(), se.String(), exit
}

// process is what the fixture's manifest (or facts.json) says of one process.
type process struct {
	pid, ppid, pgid, sid int
	comm                 string
	zombie               bool
	tids                 []int64
	threadName           map[int64]string
	oracle               string // core.<pid>.gz, "" if none
	// argv is the exact command line (facts.json), nil if unknown.
	argv []string
}

// fixtureInfo is the manifest of a fixture, arch-independent.
type fixtureInfo struct {
	procs []process
	vec1  string   // x86 manifest "vec-1 registers"
	ids   []string // "path build-id" pairs of the manifest's build_ids
	// secrets: string -> addresses per pid where it lies in captured pages.
	secrets []secretHit
	// secretStrings are the secrets the manifest or facts.json declares,
	// each of which loadFixture has checked to yield an address.
	secretStrings []string
	// arm64 facts.json only: vec-1's known registers, the registers gdb
	// read from the oracle (pid -> tid -> name -> value) and the functions
	// the goroutines were parked in.
	arm64Vec   *arm64Vec
	oracleRegs map[int]map[int64]map[string]uint64
	goFuncs    []string
}

type secretHit struct {
	str   string
	pid   int
	vaddr uint64
}

func loadFixture(t *testing.T, f fixture) fixtureInfo {
	t.Helper()
	if f.arch == "arm64" {
		return loadFacts(t, f)
	}
	b, err := os.ReadFile(filepath.Join(f.dir(), "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Processes []struct {
			Pid, Ppid, Pgid, Sid int
			Comm                 string
			State                string
			Threads              []struct {
				Tid  int64
				Comm *string
			}
			Oracle *string
		}
		Secrets []struct {
			String          string
			PrivatePageHits []struct {
				Pid   int
				Vaddr string
			} `json:"private_page_hits"`
			SharedPageHits []struct {
				Pid   int
				Vaddr string
			} `json:"shared_page_hits"`
		}
		Vec1     string `json:"vec-1 registers"`
		BuildIDs string `json:"build_ids"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s manifest: %v", f, err)
	}
	var fi fixtureInfo
	for _, p := range m.Processes {
		pr := process{pid: p.Pid, ppid: p.Ppid, pgid: p.Pgid, sid: p.Sid, comm: p.Comm,
			zombie: strings.HasPrefix(p.State, "zombie"), threadName: map[int64]string{}}
		if p.Oracle != nil {
			pr.oracle = *p.Oracle
		}
		for _, th := range p.Threads {
			pr.tids = append(pr.tids, th.Tid)
			if th.Comm != nil {
				pr.threadName[th.Tid] = *th.Comm
			}
		}
		fi.procs = append(fi.procs, pr)
	}
	for _, s := range m.Secrets {
		hits := append(s.PrivatePageHits, s.SharedPageHits...)
		if len(hits) == 0 {
			t.Fatalf("%s manifest: secret %q lists no address", f, s.String)
		}
		fi.secretStrings = append(fi.secretStrings, s.String)
		for _, h := range hits {
			v, err := strconv.ParseUint(strings.TrimPrefix(h.Vaddr, "0x"), 16, 64)
			if err != nil {
				t.Fatalf("manifest secret %q at %q: %v", s.String, h.Vaddr, err)
			}
			fi.secrets = append(fi.secrets, secretHit{s.String, h.Pid, v})
		}
	}
	fi.vec1 = m.Vec1
	for _, kv := range strings.Split(m.BuildIDs, ";") {
		if kv = strings.TrimSpace(kv); kv != "" {
			fi.ids = append(fi.ids, kv)
		}
	}
	return fi
}

// loadFacts reads an arm64 fixture's facts.json.
func loadFacts(t *testing.T, f fixture) fixtureInfo {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir(), "facts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Processes []struct {
			Pid, Ppid     int
			Comm          string
			NSpgid, NSsid string
			Argv          []string
			Threads       []struct {
				Tid  int64
				Name string
			}
		}
		Secrets map[string]json.RawMessage
		Known   map[string]any `json:"known_registers"`
		Oracle  struct {
			Files map[string]struct{ Pid int }
			// pid -> tid -> register -> value, as gdb read them from
			// the oracle in the guest.
			Regs map[string]map[string]map[string]string `json:"thread_regs_from_core"`
		}
		GoFuncs []string `json:"goroutine_functions"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s facts: %v", f, err)
	}
	var fi fixtureInfo
	inTree := map[int]bool{}
	for _, p := range m.Processes {
		inTree[p.Pid] = true
	}
	for _, p := range m.Processes {
		pr := process{pid: p.Pid, ppid: p.Ppid, comm: p.Comm, threadName: map[int64]string{}, argv: p.Argv}
		// facts.json has the parent /proc showed. A checkpoint records
		// only the tree it holds: pstree.img gives the root 0 as parent
		// (as the x86_64 manifests list it).
		if !inTree[p.Ppid] {
			pr.ppid = 0
		}
		if pr.pgid, err = strconv.Atoi(p.NSpgid); err != nil {
			t.Fatalf("%s facts: pid %d NSpgid %q: %v", f, p.Pid, p.NSpgid, err)
		}
		if pr.sid, err = strconv.Atoi(p.NSsid); err != nil {
			t.Fatalf("%s facts: pid %d NSsid %q: %v", f, p.Pid, p.NSsid, err)
		}
		for gz, o := range m.Oracle.Files {
			if o.Pid == p.Pid {
				pr.oracle = gz
			}
		}
		for _, th := range p.Threads {
			pr.tids = append(pr.tids, th.Tid)
			pr.threadName[th.Tid] = th.Name
		}
		fi.procs = append(fi.procs, pr)
	}
	fi.secrets = factsSecrets(t, f, m.Secrets, fi.procs)
	for _, s := range fi.secrets {
		if !contains(fi.secretStrings, s.str) {
			fi.secretStrings = append(fi.secretStrings, s.str)
		}
	}
	fi.goFuncs = m.GoFuncs
	if len(m.Oracle.Regs) > 0 {
		fi.oracleRegs = map[int]map[int64]map[string]uint64{}
		for pid, threads := range m.Oracle.Regs {
			p, err := strconv.Atoi(pid)
			if err != nil {
				t.Fatalf("%s facts: thread_regs_from_core pid %q", f, pid)
			}
			fi.oracleRegs[p] = map[int64]map[string]uint64{}
			for tid, rs := range threads {
				id, err := strconv.ParseInt(tid, 10, 64)
				if err != nil {
					t.Fatalf("%s facts: thread_regs_from_core tid %q", f, tid)
				}
				vals := map[string]uint64{}
				for name, v := range rs {
					vals[name] = parseHex(t, "thread_regs_from_core "+tid+" "+name, v)
				}
				fi.oracleRegs[p][id] = vals
			}
		}
	}
	if len(m.Known) > 0 {
		fi.arm64Vec = parseKnownARM64(t, m.Known)
	}
	return fi
}

// factsSecrets lists the secrets of facts.json with their addresses: the
// "vaddr" of each, else (one process) where the fact finder saw the string
// in the oracle core.
func factsSecrets(t *testing.T, f fixture, raw map[string]json.RawMessage, procs []process) []secretHit {
	t.Helper()
	var seen map[string][]string
	if r, ok := raw["found_in_oracle_core_at"]; ok && len(procs) == 1 {
		// Per pid in multi-process fixtures; string -> addresses here.
		if err := json.Unmarshal(r, &seen); err != nil {
			t.Fatalf("%s facts: found_in_oracle_core_at: %v", f, err)
		}
	}
	var out []secretHit
	for key, r := range raw {
		var s struct {
			String, Vaddr string
			Pid           int
		}
		if json.Unmarshal(r, &s) != nil || s.String == "" {
			continue // not a secret (addresses of symbols, notes)
		}
		if s.Pid == 0 {
			if len(procs) != 1 {
				t.Fatalf("%s facts: secret %s names no pid", f, key)
			}
			s.Pid = procs[0].pid
		}
		addrs := seen[s.String]
		if s.Vaddr != "" {
			addrs = []string{s.Vaddr}
		}
		if len(addrs) == 0 {
			t.Fatalf("%s facts: secret %s has no address", f, key)
		}
		for _, a := range addrs {
			out = append(out, secretHit{s.String, s.Pid, parseHex(t, "secret "+key, a)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].vaddr < out[j].vaddr })
	return out
}

// arm64Vec is facts.json's known_registers: what vec-1 set before it
// parked, as gdb would print them.
type arm64Vec struct {
	thread        string // thread name
	v             map[int]*big.Int
	fpsr, fpcr    uint64
	x19, x20, x21 uint64
}

func parseKnownARM64(t *testing.T, k map[string]any) *arm64Vec {
	t.Helper()
	str := func(name string) string {
		s, ok := k[name].(string)
		if !ok {
			t.Fatalf("facts known_registers: no %s", name)
		}
		return s
	}
	a := &arm64Vec{thread: str("thread_name"), v: map[int]*big.Int{}}
	for _, n := range []int{0, 1, 31} {
		v, ok := new(big.Int).SetString(strings.TrimPrefix(str(fmt.Sprintf("v%d", n)), "0x"), 16)
		if !ok {
			t.Fatalf("facts known_registers: v%d %q", n, str(fmt.Sprintf("v%d", n)))
		}
		a.v[n] = v
	}
	a.fpsr = parseHex(t, "fpsr", str("fpsr"))
	a.fpcr = parseHex(t, "fpcr", str("fpcr"))
	a.x19 = parseHex(t, "x19", str("x19"))
	a.x20 = parseHex(t, "x20", str("x20"))
	a.x21 = parseHex(t, "x21", str("x21"))
	return a
}

// parseHex parses "0x..." (a leading hex number; trailing words ignored).
func parseHex(t *testing.T, what, s string) uint64 {
	t.Helper()
	f := strings.Fields(s)
	if len(f) == 0 {
		t.Fatalf("facts %s: empty value", what)
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(f[0], "0x"), 16, 64)
	if err != nil {
		t.Fatalf("facts %s %q: %v", what, s, err)
	}
	return v
}

// readImage decodes a CRIU image: two u32 magics, then entries of u32 size
// and protobuf payload. newMsg makes the message of the i-th entry.
func readImage(path string, newMsg func(i int) proto.Message) ([]proto.Message, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	if len(b) < 8 {
		return nil, fmt.Errorf("%s: %d bytes, no magic", path, len(b))
	}
	b = b[8:]
	var out []proto.Message
	for i := 0; len(b) > 0; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("%s: truncated entry %d size", path, i)
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("%s: entry %d of %d bytes past the end", path, i, n)
		}
		msg := newMsg(i)
		if err := proto.Unmarshal(b[4:4+n], msg); err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", path, i, err)
		}
		out = append(out, msg)
		b = b[4+n:]
	}
	return out, nil
}

// threadCore decodes core-<tid>.img.
func threadCore(t *testing.T, f fixture, tid int64) *criucore.CoreEntry {
	t.Helper()
	msgs, err := readImage(filepath.Join(f.images(), fmt.Sprintf("core-%d.img", tid)),
		func(int) proto.Message { return &criucore.CoreEntry{} })
	if err != nil || len(msgs) != 1 {
		t.Fatalf("core-%d.img: %d entries, %v", tid, len(msgs), err)
	}
	return msgs[0].(*criucore.CoreEntry)
}

// Pagemap entry flags (criu/include/pagemap.h).
const (
	pePARENT  = 1 << 0 // pages are in the parent snapshot
	peLAZY    = 1 << 1 // pages may be restored lazily
	pePRESENT = 1 << 2 // pages are in pages-<id>.img
)

// pageRange is a run of pages [start, start+n*4096).
type pageRange struct {
	start, n, flags uint64
}

// readPagemap decodes pagemap-<pid>.img (or pagemap-shmem-<id>.img) and
// returns its entries with the page count resolved: nr_pages (field 5) when
// present, else compat_nr_pages (field 2, what CRIU < 4.2 wrote); entries
// without flags (very old images) count as present unless in_parent.
func readPagemap(path string) ([]pageRange, error) {
	msgs, err := readImage(path, func(i int) proto.Message {
		if i == 0 {
			return &pagemap.PagemapHead{}
		}
		return &pagemap.PagemapEntry{}
	})
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("%s: no pagemap_head", path)
	}
	var out []pageRange
	for _, m := range msgs[1:] {
		e := m.(*pagemap.PagemapEntry)
		r := pageRange{start: e.GetVaddr(), n: uint64(e.GetCompatNrPages())}
		if e.NrPages != nil {
			r.n = e.GetNrPages()
		}
		switch {
		case e.Flags != nil:
			r.flags = uint64(e.GetFlags())
		case e.GetInParent():
			r.flags = pePARENT
		default:
			r.flags = pePRESENT
		}
		out = append(out, r)
	}
	return out, nil
}

// readMM decodes mm-<pid>.img.
func readMM(t *testing.T, f fixture, pid int) *mm.MmEntry {
	t.Helper()
	msgs, err := readImage(filepath.Join(f.images(), fmt.Sprintf("mm-%d.img", pid)),
		func(int) proto.Message { return &mm.MmEntry{} })
	if err != nil || len(msgs) != 1 {
		t.Fatalf("mm-%d.img: %d entries, %v", pid, len(msgs), err)
	}
	return msgs[0].(*mm.MmEntry)
}

// sortedInt64 returns a sorted copy.
func sortedInt64(s []int64) []int64 {
	c := append([]int64(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c
}
