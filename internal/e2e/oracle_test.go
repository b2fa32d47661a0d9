package e2e

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/ckpt2core/ckpt2core/internal/coredump"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"google.golang.org/protobuf/proto"
)

// pair is one converted core with its oracle.
type pair struct {
	fx                   fixture
	info                 fixtureInfo
	proc                 process
	ours                 *coredump.Core
	oracle               *coredump.Core
	oursPath, oraclePath string
	// selfCheck marks a pair whose "ours" is the oracle itself
	// (TestFixtureSelfCheck): struct rseq then differs from pages-*.img.
	selfCheck bool
}

// TestOracle converts every fixture with the CLI and compares each core with
// the oracle of the same process.
func TestOracle(t *testing.T) {
	eachFixture(t, func(t *testing.T, fx fixture, info fixtureInfo) {
		res := runCLI(t, fx.images())
		if res.exit != 0 {
			t.Fatalf("ckpt2core exited %d\nstdout:\n%s\nstderr:\n%s", res.exit, res.stdout, res.stderr)
		}
		checkOutputs(t, info, res)
		withSecrets := secretPids(t, fx, info)
		eachOracle(t, fx, info, func(t *testing.T, p process, oraclePath string, oracle *coredump.Core) {
			pr := pair{fx: fx, info: info, proc: p, oracle: oracle, oraclePath: oraclePath,
				oursPath: filepath.Join(res.out, fmt.Sprintf("core.%d", p.pid))}
			var err error
			if pr.ours, err = coredump.Open(pr.oursPath); err != nil {
				t.Fatalf("our core: %v", err)
			}
			defer pr.ours.Close()
			if pr.ours.Machine != pr.oracle.Machine {
				t.Fatalf("machine %v, oracle %v", pr.ours.Machine, pr.oracle.Machine)
			}
			t.Run("threads", pr.testThreads)
			t.Run("fpu", pr.testFPU)
			t.Run("memory", pr.testMemory)
			t.Run("pagemap", pr.testPagemap)
			t.Run("anon-coverage", pr.testAnonCoverage)
			if withSecrets[p.pid] {
				t.Run("secrets", pr.testSecrets)
			}
			t.Run("notes", pr.testNotes)
			t.Run("gdb", pr.testGDB)
			if fx.arch == "arm64" {
				t.Run("facts-regs", pr.testFactsRegs)
				t.Run("regset-notes", pr.testRegsetNotes)
			} else if !fx.gcore {
				t.Run("note-sequence", pr.testNoteSequenceX86)
			}
			if len(info.goFuncs) > 0 {
				t.Run("delve", pr.testDelve)
			}
		})
	})
}

// eachFixture runs test, in parallel, in a subtest per fixture (skipped
// with its reason if the fixture is pending), with the fixture's facts.
func eachFixture(t *testing.T, test func(t *testing.T, fx fixture, info fixtureInfo)) {
	for _, fx := range fixtures {
		t.Run(fx.String(), func(t *testing.T) {
			if fx.pending != "" {
				t.Skip(fx.pending)
			}
			t.Parallel()
			test(t, fx, loadFixture(t, fx))
		})
	}
}

// eachOracle runs compare in a subtest per process of info that has an
// oracle core (named by its pid), with the oracle unpacked into a
// directory of t's and opened (closed after compare), and then fails t
// unless every oracle core of fx was opened (checkOracleCount).
func eachOracle(t *testing.T, fx fixture, info fixtureInfo, compare func(t *testing.T, p process, oraclePath string, oracle *coredump.Core)) {
	t.Helper()
	unpacked := t.TempDir()
	compared := 0
	for _, p := range info.procs {
		if p.oracle == "" {
			continue
		}
		t.Run(fmt.Sprint(p.pid), func(t *testing.T) {
			path := imgtest.Gunzip(t, filepath.Join(fx.dir(), p.oracle), unpacked)
			oracle, err := coredump.Open(path)
			if err != nil {
				t.Fatalf("oracle: %v", err)
			}
			defer oracle.Close()
			compared++
			compare(t, p, path, oracle)
		})
	}
	checkOracleCount(t, fx, compared)
}

// checkOracleCount fails the fixture unless n, the oracle comparisons made,
// is one per oracle core (core.*.gz) it holds: a process whose oracle the
// manifest does not name must not be skipped silently.
func checkOracleCount(t *testing.T, fx fixture, n int) {
	t.Helper()
	gz, err := filepath.Glob(filepath.Join(fx.dir(), "core.*.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != len(gz) {
		t.Fatalf("%d oracle comparisons made; the fixture holds %d oracle cores %v", n, len(gz), gz)
	}
}

// secretPids returns the processes the manifest places secrets in. It fails
// the fixture if the manifest declares secrets and none has an address, or
// if a secret lies in a process without an oracle (its check would never
// run).
func secretPids(t *testing.T, fx fixture, info fixtureInfo) map[int]bool {
	t.Helper()
	if len(info.secretStrings) > 0 && len(info.secrets) == 0 {
		t.Fatalf("%s declares secrets %q but lists no address for any", fx, info.secretStrings)
	}
	oracle := map[int]bool{}
	for _, p := range info.procs {
		oracle[p.pid] = p.oracle != ""
	}
	pids := map[int]bool{}
	for _, s := range info.secrets {
		if !oracle[s.pid] {
			t.Fatalf("%s: secret %q at %#x is in pid %d, which has no oracle", fx, s.str, s.vaddr, s.pid)
		}
		pids[s.pid] = true
	}
	return pids
}

// checkOutputs checks the CLI's output directory and stdout: one core.<pid>
// per live process, none for zombies, one stdout line per core.
func checkOutputs(t *testing.T, info fixtureInfo, res cliResult) {
	t.Helper()
	lines := nonEmptyLines(res.stdout)
	live := 0
	for _, p := range info.procs {
		_, err := os.Stat(filepath.Join(res.out, fmt.Sprintf("core.%d", p.pid)))
		switch {
		case p.zombie && err == nil:
			t.Errorf("core.%d written for a zombie", p.pid)
		case !p.zombie && err != nil:
			t.Errorf("no core for live process %d: %v", p.pid, err)
		}
		if !p.zombie {
			live++
			if !anyContains(lines, fmt.Sprintf("core.%d", p.pid)) {
				t.Errorf("stdout names no core.%d:\n%s", p.pid, res.stdout)
			}
		}
	}
	if len(lines) != live {
		t.Errorf("stdout has %d lines, want one per core (%d):\n%s", len(lines), live, res.stdout)
	}
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func anyContains(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

func byTid(t *testing.T, c *coredump.Core, what string) map[int64]coredump.Thread {
	t.Helper()
	ts, err := c.ThreadsErr()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	m := map[int64]coredump.Thread{}
	for _, th := range ts {
		if _, dup := m[int64(th.Pid)]; dup {
			t.Errorf("%s: tid %d appears twice", what, th.Pid)
		}
		m[int64(th.Pid)] = th
	}
	return m
}

func keys(m map[int64]coredump.Thread) []int64 {
	var k []int64
	for tid := range m {
		k = append(k, tid)
	}
	return sortedInt64(k)
}

func regName(m elf.Machine, i int) string {
	if m == elf.EM_X86_64 {
		return coredump.X86RegNames[i]
	}
	switch i {
	case coredump.ARM64SP:
		return "sp"
	case coredump.ARM64PC:
		return "pc"
	case coredump.ARM64PState:
		return "pstate"
	}
	return fmt.Sprintf("x%d", i)
}

// testThreads (a): the same threads; every general register, the ids and
// the blocked mask equal.
func (p *pair) testThreads(t *testing.T) {
	ours, orc := byTid(t, p.ours, "our core"), byTid(t, p.oracle, "oracle")
	if got, want := keys(ours), sortedInt64(p.proc.tids); !reflect.DeepEqual(got, want) {
		t.Errorf("our threads %v, manifest %v", got, want)
	}
	if got, want := keys(orc), sortedInt64(p.proc.tids); !reflect.DeepEqual(got, want) {
		t.Fatalf("oracle threads %v, manifest %v (fixture broken?)", got, want)
	}
	// The kernel writes the dumping thread first; CRIU's main thread is the
	// thread group leader, which is also the one that took the signal here.
	if ts := p.ours.Threads(); len(ts) > 0 && int(ts[0].Pid) != p.proc.pid {
		t.Errorf("first NT_PRSTATUS is tid %d, want the main thread %d", ts[0].Pid, p.proc.pid)
	}
	for _, tid := range keys(orc) {
		o, ok := ours[tid]
		if !ok {
			continue
		}
		w := orc[tid]
		if len(o.Regs) != len(w.Regs) {
			t.Errorf("tid %d: %d registers, oracle %d", tid, len(o.Regs), len(w.Regs))
			continue
		}
		for i := range w.Regs {
			if o.Regs[i] != w.Regs[i] {
				t.Errorf("tid %d: %s = %#x, oracle %#x", tid, regName(p.ours.Machine, i), o.Regs[i], w.Regs[i])
			}
		}
		if o.Pid != w.Pid {
			t.Errorf("tid %d: pr_pid %d", tid, o.Pid)
		}
		// pr_ppid: the oracle shows the parent at the time of the core
		// dump (the shell that started the fixture, or 1 for children
		// whose parent was killed first to make its own oracle). A
		// checkpoint records only the tree it contains (pstree.img: 0
		// for the root), which is what the manifest lists.
		if int(o.Ppid) != p.proc.ppid {
			t.Errorf("tid %d: pr_ppid %d, checkpoint's ppid %d (oracle had %d)", tid, o.Ppid, p.proc.ppid, w.Ppid)
		}
		if p.fx.gcore {
			// gcore leaves pr_pgrp, pr_sid and pr_sighold zero: compare
			// with the manifest and with CRIU's blocked mask instead.
			if int(o.Pgrp) != p.proc.pgid || int(o.Sid) != p.proc.sid {
				t.Errorf("tid %d: pgrp/sid %d/%d, manifest %d/%d", tid, o.Pgrp, o.Sid, p.proc.pgid, p.proc.sid)
			}
			want := threadCore(t, p.fx, tid).GetThreadCore().GetBlkSigset()
			if o.Sighold != want {
				t.Errorf("tid %d: pr_sighold %#x, core-%d.img blk_sigset %#x", tid, o.Sighold, tid, want)
			}
			continue
		}
		if o.Pgrp != w.Pgrp || o.Sid != w.Sid {
			t.Errorf("tid %d: pgrp/sid %d/%d, oracle %d/%d", tid, o.Pgrp, o.Sid, w.Pgrp, w.Sid)
		}
		// pr_sighold is the thread's blocked mask. The oracle was taken by
		// a fatal signal that runs no handler, so the kernel did not
		// change the mask: it equals what CRIU saved (e.g. threads-c:
		// SIGQUIT blocked in all threads but main, SIGUSR1 too in reader).
		// pr_cursig, pr_sigpend and pr_info are the signal's and may
		// differ (README).
		if o.Sighold != w.Sighold {
			t.Errorf("tid %d: pr_sighold %#x, oracle %#x", tid, o.Sighold, w.Sighold)
		}
	}
}

// testFPU (b): FP/SSE/AVX/AVX-512 values equal, each core decoded with its
// own layout.
func (p *pair) testFPU(t *testing.T) {
	ours, orc := byTid(t, p.ours, "our core"), byTid(t, p.oracle, "oracle")
	for _, tid := range keys(orc) {
		o, ok := ours[tid]
		if !ok {
			t.Errorf("tid %d missing", tid)
			continue
		}
		w := orc[tid]
		if p.ours.Machine == elf.EM_AARCH64 {
			fo, err1 := coredump.DecodeARM64FP(o.FPRegs)
			fw, err2 := coredump.DecodeARM64FP(w.FPRegs)
			if err1 != nil || err2 != nil {
				t.Errorf("tid %d: NT_PRFPREG: ours %v, oracle %v", tid, err1, err2)
				continue
			}
			if *fo != *fw {
				t.Errorf("tid %d: fpsimd state differs:\nours   %+v\noracle %+v", tid, *fo, *fw)
			}
			if len(o.TLS) < 8 || len(w.TLS) < 8 || !bytes.Equal(o.TLS[:8], w.TLS[:8]) {
				t.Errorf("tid %d: NT_ARM_TLS %x, oracle %x", tid, o.TLS, w.TLS)
			}
			continue
		}
		// gdb's gcore rebuilds the XSAVE area from register values: it
		// writes mxcsr_mask 0 and sets every XCR0 bit in xstate_bv (all
		// components "in use"), where the kernel writes the CPU's
		// mxcsr_mask and the live xstate_bv. The values compare equal.
		gcoreOnly := map[string]bool{"MXCSRMask": p.fx.gcore, "XstateBV": p.fx.gcore}
		if len(o.FPRegs) < 416 || len(w.FPRegs) < 416 {
			t.Errorf("tid %d: NT_FPREGSET %d bytes, oracle %d", tid, len(o.FPRegs), len(w.FPRegs))
		} else {
			// Bytes 0..415 are fcw..xmm15 (fxsave layout); the rest is
			// reserved/software-defined. Bytes 28..31: mxcsr_mask.
			a, b := bytes.Clone(o.FPRegs[:416]), bytes.Clone(w.FPRegs[:416])
			if p.fx.gcore {
				copy(a[28:32], b[28:32])
			}
			if !bytes.Equal(a, b) {
				i := firstDiff(a, b)
				t.Errorf("tid %d: NT_FPREGSET byte %d is %#02x, oracle %#02x", tid, i, a[i], b[i])
			}
		}
		if o.XSaveLayout == nil {
			t.Errorf("tid %d: our core has no NT_X86_XSAVE_LAYOUT note", tid)
		} else if comps, err := coredump.DecodeXSaveLayout(o.XSaveLayout); err != nil {
			t.Errorf("tid %d: our layout note: %v", tid, err)
		} else {
			for _, c := range comps {
				if std, ok := coredump.StandardXSaveOffsets[int(c.Type)]; ok && c.Offset != std {
					t.Errorf("tid %d: our layout puts component %d at %d, standard offset %d (gdb 13 assumes the standard layout)", tid, c.Type, c.Offset, std)
				}
			}
		}
		xo, err := coredump.DecodeXState(o.XState, o.XSaveLayout)
		if err != nil {
			t.Errorf("tid %d: our xstate: %v", tid, err)
			continue
		}
		xw, err := coredump.DecodeXState(w.XState, w.XSaveLayout)
		if err != nil {
			t.Fatalf("tid %d: oracle xstate: %v", tid, err)
		}
		vo, vw := reflect.ValueOf(*xo), reflect.ValueOf(*xw)
		for i := 0; i < vo.NumField(); i++ {
			if gcoreOnly[vo.Type().Field(i).Name] {
				continue
			}
			if !reflect.DeepEqual(vo.Field(i).Interface(), vw.Field(i).Interface()) {
				t.Errorf("tid %d: %s differs:\nours   %x\noracle %x", tid, vo.Type().Field(i).Name, vo.Field(i).Interface(), vw.Field(i).Interface())
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// span is an address range [lo, hi).
type span struct{ lo, hi uint64 }

// captured lists the ranges of a core that have file bytes.
func captured(c *coredump.Core) []span {
	var s []span
	for _, l := range c.Loads {
		if l.Filesz > 0 {
			s = append(s, span{l.Vaddr, l.Vaddr + l.Filesz})
		}
	}
	return s
}

// rseqAreas returns each thread's struct rseq, from core-<tid>.img.
func (p *pair) rseqAreas(t *testing.T) []span {
	t.Helper()
	var out []span
	for _, tid := range p.proc.tids {
		r := threadCore(t, p.fx, tid).GetThreadCore().GetRseqEntry()
		if r.GetRseqAbiPointer() != 0 {
			out = append(out, span{r.GetRseqAbiPointer(), r.GetRseqAbiPointer() + uint64(r.GetRseqAbiSize())})
		}
	}
	return out
}

func inSpans(s []span, a uint64) bool {
	for _, x := range s {
		if x.lo <= a && a < x.hi {
			return true
		}
	}
	return false
}

// testMemory (c): our PT_LOADs are laid out as the oracle's (checkLayout),
// and every byte both cores hold must be equal, except the threads' struct
// rseq.
func (p *pair) testMemory(t *testing.T) {
	p.checkLayout(t)
	rseq := p.rseqAreas(t)
	a, b := captured(p.ours), captured(p.oracle)
	var compared, excluded uint64
	type diff struct {
		addr         uint64
		ours, oracle byte
	}
	var diffs []diff
	ndiff := 0
	const chunk = 4 << 20
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo, hi := max(a[i].lo, b[j].lo), min(a[i].hi, b[j].hi)
		for at := lo; at < hi; at += chunk {
			n := int(min(chunk, hi-at))
			x, err := p.ours.ReadAt(at, n)
			if err != nil {
				t.Fatal(err)
			}
			y, err := p.oracle.ReadAt(at, n)
			if err != nil {
				t.Fatal(err)
			}
			compared += uint64(n)
			if bytes.Equal(x, y) {
				continue
			}
			for k := range x {
				if x[k] == y[k] {
					continue
				}
				addr := at + uint64(k)
				if inSpans(rseq, addr) {
					excluded++
					continue
				}
				ndiff++
				if len(diffs) < 20 {
					diffs = append(diffs, diff{addr, x[k], y[k]})
				}
			}
		}
		if a[i].hi < b[j].hi {
			i++
		} else {
			j++
		}
	}
	t.Logf("compared %d bytes held by both cores; %d differing bytes inside struct rseq ignored", compared, excluded)
	if compared == 0 {
		t.Errorf("the cores share no captured bytes")
	}
	if ndiff > 0 {
		var sb strings.Builder
		for _, d := range diffs {
			fmt.Fprintf(&sb, "\n  %#x: ours %#02x, oracle %#02x", d.addr, d.ours, d.oracle)
		}
		t.Errorf("%d bytes differ from the oracle (first %d):%s", ndiff, len(diffs), sb.String())
	}
}

// checkLayout compares our PT_LOAD headers with the oracle's. The kernel
// (and gcore) writes one PT_LOAD per VMA, sometimes splitting vvar; we write
// one per VMA, or none where the checkpoint holds no byte of it (README). So:
//   - every PT_LOAD of ours lies inside a single PT_LOAD of the oracle, with
//     the same p_flags (but gdb's gcore sets PF_R on every segment,
//     gdb/gcore.c make_output_phdrs: a PROT_NONE mapping, p_flags 0 in
//     ours as in a kernel core, is PF_R in a gcore oracle);
//   - where ours has file bytes, so has the oracle's (the reverse need not
//     hold: we write p_filesz 0 for a mapping of known zeros, and no
//     segment for clean file pages);
//   - a private anonymous mapping (mm-<pid>.img: no file, not shared) with
//     captured pages is one segment of ours with exactly the oracle's
//     p_vaddr and p_memsz, written whole (p_filesz = p_memsz, README) where
//     the oracle's is.
func (p *pair) checkLayout(t *testing.T) {
	t.Helper()
	vmas := readMM(t, p.fx, p.proc.pid).GetVmas()
	protNone := func(a uint64) bool {
		for _, v := range vmas {
			if v.GetStart() <= a && a < v.GetEnd() {
				return v.GetProt() == 0
			}
		}
		return false
	}
	for _, l := range p.ours.Loads {
		w, ok := p.oracle.Segment(l.Vaddr)
		if !ok || l.End() > w.End() {
			t.Errorf("our PT_LOAD [%#x, %#x) (p_flags %v) lies in no single PT_LOAD of the oracle (oracle's at %#x: [%#x, %#x), found %v)",
				l.Vaddr, l.End(), l.Flags, l.Vaddr, w.Vaddr, w.End(), ok)
			continue
		}
		if l.Flags != w.Flags && !(p.fx.gcore && l.Flags == 0 && w.Flags == elf.PF_R && protNone(l.Vaddr)) {
			t.Errorf("our PT_LOAD [%#x, %#x): p_flags %v, the oracle's [%#x, %#x) %v", l.Vaddr, l.End(), l.Flags, w.Vaddr, w.End(), w.Flags)
		}
		if l.Filesz > 0 && w.Filesz == 0 {
			t.Errorf("our PT_LOAD [%#x, %#x) has p_filesz %#x, the oracle's [%#x, %#x) none", l.Vaddr, l.End(), l.Filesz, w.Vaddr, w.End())
		}
	}
	ranges, err := readPagemap(filepath.Join(p.fx.images(), fmt.Sprintf("pagemap-%d.img", p.proc.pid)))
	if err != nil {
		t.Fatal(err)
	}
	const pg = 4096
	capturedIn := func(lo, hi uint64) bool {
		for _, r := range ranges {
			if r.flags&pePRESENT != 0 && r.start < hi && lo < r.start+r.n*pg {
				return true
			}
		}
		return false
	}
	anon := 0
	for _, v := range vmas {
		st := v.GetStatus()
		if st&vmaAreaRegular == 0 || st&vmaAnonPrivate == 0 ||
			st&(vmaFilePrivate|vmaFileShared|vmaAnonShared|vmaSysVIPC|vmaSocket|vmaAIORing|vmaMemfd) != 0 ||
			!capturedIn(v.GetStart(), v.GetEnd()) {
			continue
		}
		anon++
		o, ok := p.ours.Segment(v.GetStart())
		if !ok {
			t.Errorf("anonymous mapping [%#x, %#x) (status %#x) with captured pages: no PT_LOAD of ours at its start", v.GetStart(), v.GetEnd(), st)
			continue
		}
		w, ok := p.oracle.Segment(v.GetStart())
		if !ok {
			t.Errorf("anonymous mapping [%#x, %#x) (status %#x): no PT_LOAD of the oracle at its start", v.GetStart(), v.GetEnd(), st)
			continue
		}
		if o.Vaddr != w.Vaddr || o.Memsz != w.Memsz {
			t.Errorf("anonymous mapping [%#x, %#x) (status %#x): our PT_LOAD [%#x, %#x), the oracle's [%#x, %#x)",
				v.GetStart(), v.GetEnd(), st, o.Vaddr, o.End(), w.Vaddr, w.End())
		}
		if w.Filesz == w.Memsz && o.Filesz != o.Memsz {
			t.Errorf("anonymous mapping [%#x, %#x): our p_filesz %#x of p_memsz %#x, the oracle writes it whole", v.GetStart(), v.GetEnd(), o.Filesz, o.Memsz)
		}
	}
	if anon == 0 {
		t.Errorf("mm-%d.img has no private anonymous mapping with captured pages (decoder broken?)", p.proc.pid)
	}
	t.Logf("%d PT_LOADs inside the oracle's %d; %d anonymous mappings with captured pages match exactly", len(p.ours.Loads), len(p.oracle.Loads), anon)
}

// testPagemap (c): every page CRIU captured (PE_PRESENT in the pagemap) is
// in our core with the bytes of pages-<id>.img.
func (p *pair) testPagemap(t *testing.T) {
	pm := filepath.Join(p.fx.images(), fmt.Sprintf("pagemap-%d.img", p.proc.pid))
	ranges, err := readPagemap(pm)
	if err != nil {
		t.Fatal(err)
	}
	head, err := readImage(pm, func(int) proto.Message { return &pagemap.PagemapHead{} })
	if err != nil {
		t.Fatal(err)
	}
	pagesID := head[0].(*pagemap.PagemapHead).GetPagesId()
	pages, err := os.ReadFile(filepath.Join(p.fx.images(), fmt.Sprintf("pages-%d.img", pagesID)))
	if err != nil {
		t.Fatal(err)
	}
	var rseq []span
	if p.selfCheck {
		rseq = p.rseqAreas(t)
	}
	const pg = 4096
	var off, present uint64
	missing := 0
	for _, r := range ranges {
		if r.flags&pePRESENT == 0 {
			continue
		}
		for k := uint64(0); k < r.n; k++ {
			addr := r.start + k*pg
			present++
			want := []byte(nil)
			if off+pg <= uint64(len(pages)) {
				want = pages[off : off+pg]
			}
			off += pg
			got, err := p.ours.ReadAt(addr, pg)
			if err != nil {
				missing++
				if missing <= 10 {
					t.Errorf("captured page %#x (pagemap entry %#x+%d pages, flags %#x) not in our core: %v", addr, r.start, r.n, r.flags, err)
				}
				continue
			}
			if want == nil {
				t.Fatalf("pages-%d.img too short for the pagemap", pagesID)
			}
			if !bytes.Equal(got, want) {
				i := firstDiff(got, want)
				if inSpans(rseq, addr+uint64(i)) {
					continue
				}
				t.Errorf("page %#x: byte %#x is %#02x in our core, %#02x in pages-%d.img", addr, addr+uint64(i), got[i], want[i], pagesID)
			}
		}
	}
	if missing > 10 {
		t.Errorf("... %d captured pages missing in all", missing)
	}
	if present == 0 {
		t.Errorf("pagemap lists no present page (decoder broken?)")
	}
	if off != uint64(len(pages)) {
		// pages-<id>.img is per process; a mismatch means the pagemap
		// was misread (e.g. the page count field).
		t.Errorf("pagemap accounts for %d bytes, pages-%d.img has %d", off, pagesID, len(pages))
	}
	t.Logf("%d captured pages checked", present)
}

// VMA status bits (criu/include/image.h).
const (
	vmaAreaRegular = 1 << 0
	vmaVsyscall    = 1 << 2
	vmaVDSO        = 1 << 3
	vmaVVAR        = 1 << 12
	vmaAnonShared  = 1 << 8
	vmaAnonPrivate = 1 << 9
	// The kinds that are not private anonymous memory.
	vmaFilePrivate = 1 << 6
	vmaFileShared  = 1 << 7
	vmaSysVIPC     = 1 << 10
	vmaSocket      = 1 << 11
	vmaAIORing     = 1 << 13
	vmaMemfd       = 1 << 14
)

// testAnonCoverage (c): every page the oracle holds in an anonymous mapping
// is in our core too (the kernel dumps anonymous memory whole; CRIU saved
// every such page that was not zero).
func (p *pair) testAnonCoverage(t *testing.T) {
	m := readMM(t, p.fx, p.proc.pid)
	missing := 0
	for _, v := range m.GetVmas() {
		st := v.GetStatus()
		// vvar/vdso/vsyscall are the kernel's: CRIU saves no contents
		// for them (the kernel dumps vvar's live data).
		if st&vmaAreaRegular == 0 || st&(vmaAnonPrivate|vmaAnonShared) == 0 || st&(vmaVsyscall|vmaVDSO|vmaVVAR) != 0 {
			continue
		}
		for a := v.GetStart(); a < v.GetEnd(); a += 4096 {
			if p.oracle.Captured(a) && !p.ours.Captured(a) {
				missing++
				if missing <= 10 {
					t.Errorf("oracle holds page %#x of anonymous mapping [%#x, %#x) (status %#x); our core does not", a, v.GetStart(), v.GetEnd(), st)
				}
			}
		}
	}
	if missing > 10 {
		t.Errorf("... %d pages in all", missing)
	}
}

// testSecrets: each manifest secret is at its address in our core.
func (p *pair) testSecrets(t *testing.T) {
	n := 0
	for _, s := range p.info.secrets {
		if s.pid != p.proc.pid {
			continue
		}
		n++
		b, err := p.ours.ReadAt(s.vaddr, len(s.str))
		if err != nil {
			t.Errorf("secret %q at %#x: %v", s.str, s.vaddr, err)
		} else if string(b) != s.str {
			t.Errorf("at %#x: %q, manifest says %q", s.vaddr, b, s.str)
		}
	}
	if n == 0 {
		t.Fatal("no secret recorded for this process (the subtest should not exist)")
	}
}

// kernelPsargs is pr_psargs by the kernel's rule (fs/binfmt_elf.c,
// fill_psinfo): the first 79 bytes at most of the argument area, NULs
// turned into spaces, the rest of the 80 bytes zero.
func kernelPsargs(area []byte) [80]byte {
	var out [80]byte
	n := min(len(area), len(out)-1)
	copy(out[:], area[:n])
	for i := range n {
		if out[i] == 0 {
			out[i] = ' '
		}
	}
	return out
}

// wantPsargs builds the pr_psargs the kernel would write for the process:
// from the oracle's own bytes at [mm_arg_start, mm_arg_end) of
// mm-<pid>.img (the oracle holds the stack pages), which must also equal
// facts.json's argv where it lists the exact command line.
func (p *pair) wantPsargs(t *testing.T) [80]byte {
	t.Helper()
	m := readMM(t, p.fx, p.proc.pid)
	lo, hi := m.GetMmArgStart(), m.GetMmArgEnd()
	if hi <= lo || hi-lo > 1<<20 {
		t.Fatalf("mm-%d.img: argument area [%#x, %#x)", p.proc.pid, lo, hi)
	}
	area, err := p.oracle.ReadAt(lo, int(hi-lo))
	if err != nil {
		t.Fatalf("oracle lacks the argument area [%#x, %#x): %v", lo, hi, err)
	}
	if p.proc.argv != nil {
		if exact := strings.Join(p.proc.argv, "\x00") + "\x00"; string(area) != exact {
			t.Errorf("oracle's argument area %q, facts.json's argv %q", area, exact)
		}
	}
	return kernelPsargs(area)
}

// testNotes (d): NT_PRPSINFO, NT_AUXV and NT_FILE.
func (p *pair) testNotes(t *testing.T) {
	po, err := p.ours.PSInfo()
	if err != nil {
		t.Fatal(err)
	}
	pw, err := p.oracle.PSInfo()
	if err != nil {
		t.Fatal(err)
	}
	if po.Fname != pw.Fname || po.Fname != p.proc.comm {
		t.Errorf("pr_fname %q, oracle %q, manifest comm %q", po.Fname, pw.Fname, p.proc.comm)
	}
	want := p.wantPsargs(t)
	if po.RawPsargs != want {
		t.Errorf("pr_psargs %q, want %q (kernel rule)", po.RawPsargs, want)
	}
	if p.fx.gcore {
		// gdb's gcore writes argv[0] only; the kernel rule gives more.
		if !strings.HasPrefix(po.Psargs, pw.Psargs) {
			t.Errorf("pr_psargs %q does not start with gcore's %q", po.Psargs, pw.Psargs)
		}
	} else if po.RawPsargs != pw.RawPsargs {
		t.Errorf("pr_psargs %q, oracle %q", po.Psargs, pw.Psargs)
	} else if want != pw.RawPsargs {
		t.Errorf("the kernel rule gives pr_psargs %q, the kernel wrote %q (test broken?)", want, pw.RawPsargs)
	}
	if int(po.Pid) != p.proc.pid || int(po.Pgrp) != p.proc.pgid || int(po.Sid) != p.proc.sid || int(po.Ppid) != p.proc.ppid {
		t.Errorf("psinfo pid/ppid/pgrp/sid %d/%d/%d/%d, checkpoint %d/%d/%d/%d",
			po.Pid, po.Ppid, po.Pgrp, po.Sid, p.proc.pid, p.proc.ppid, p.proc.pgid, p.proc.sid)
	}
	if po.UID != pw.UID || po.GID != pw.GID {
		t.Errorf("psinfo uid/gid %d/%d, oracle %d/%d", po.UID, po.GID, pw.UID, pw.GID)
	}

	ao, err := p.ours.Auxv()
	if err != nil {
		t.Error(err)
	}
	aw, err := p.oracle.Auxv()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ao, aw) {
		t.Errorf("NT_AUXV differs:\nours   %#x\noracle %#x", ao, aw)
	}

	fo, pso, err := p.ours.Files()
	if err != nil {
		t.Fatal(err)
	}
	fw, psw, err := p.oracle.Files()
	if err != nil {
		t.Fatal(err)
	}
	if pso != 4096 {
		t.Errorf("NT_FILE page size %d, want 4096 as the kernel writes", pso)
	}
	type ent struct {
		start, end, byteOff uint64
		name                string
	}
	set := func(fs []coredump.FileEntry, ps uint64) map[ent]bool {
		m := map[ent]bool{}
		for _, f := range fs {
			m[ent{f.Start, f.End, f.PageOffset * ps, f.Name}] = true
		}
		return m
	}
	so, sw := set(fo, pso), set(fw, psw)
	var extra, miss []string
	for e := range sw {
		if !so[e] {
			miss = append(miss, fmt.Sprintf("%#x-%#x @%#x %s", e.start, e.end, e.byteOff, e.name))
		}
	}
	for e := range so {
		if !sw[e] {
			extra = append(extra, fmt.Sprintf("%#x-%#x @%#x %s", e.start, e.end, e.byteOff, e.name))
		}
	}
	sort.Strings(miss)
	sort.Strings(extra)
	if len(miss) > 0 {
		t.Errorf("NT_FILE lacks %d oracle entries:\n  %s", len(miss), strings.Join(miss, "\n  "))
	}
	// gcore lists fewer mappings than the kernel; only a kernel oracle
	// bounds our entries from above.
	if len(extra) > 0 && !p.fx.gcore {
		t.Errorf("NT_FILE has %d entries the oracle lacks:\n  %s", len(extra), strings.Join(extra, "\n  "))
	}
	// Kernel order: by address.
	for i := 1; i < len(fo); i++ {
		if fo[i].Start < fo[i-1].Start {
			t.Errorf("NT_FILE not sorted by address at entry %d", i)
			break
		}
	}
}

// testNoteSequenceX86 (x86_64 kernel oracles): each thread carries the
// notes of the kernel's core in the kernel's order, of the same sizes,
// allowing exactly what the README documents: no NT_SIGINFO in ours (a
// checkpoint was not made by a signal); NT_X86_XSTATE in the standard
// layout, whose size may differ from the CPU's own layout the kernel
// writes (2688 vs 2432 bytes on the fixtures' AMD CPU), each the size its
// layout note describes; and NT_X86_XSAVE_LAYOUT, once in both cores, the
// last note, sizes free. Threads are matched by pid (the order of threads
// after the main one may differ). NT_AUXV and NT_FILE are byte for byte the
// oracle's.
func (p *pair) testNoteSequenceX86(t *testing.T) {
	for _, c := range []struct {
		core *coredump.Core
		what string
	}{{p.ours, "our core"}, {p.oracle, "oracle"}} {
		ns := c.core.Notes
		n := 0
		for _, x := range ns {
			if x.Type == coredump.NTX86XSaveLayout {
				n++
			}
		}
		if n != 1 || len(ns) == 0 || ns[len(ns)-1].Type != coredump.NTX86XSaveLayout || ns[len(ns)-1].Name != "LINUX" {
			t.Errorf("%s: %d NT_X86_XSAVE_LAYOUT notes, want one, LINUX, the last note", c.what, n)
		}
		if len(ns) == 0 || ns[0].Type != ntPRStatus || ns[0].Name != "CORE" {
			t.Errorf("%s: the first note is not NT_PRSTATUS", c.what)
		}
	}
	for _, n := range p.ours.Notes {
		if n.Type == ntSigInfo {
			t.Errorf("our core has an NT_SIGINFO note")
		}
	}
	ours, orc := noteBlocks(t, p.ours, "our core"), noteBlocks(t, p.oracle, "oracle")
	if len(ours) != len(orc) {
		t.Errorf("%d threads, oracle %d", len(ours), len(orc))
	}
	// xstateSize is the NT_X86_XSTATE size a layout note describes: the end
	// of its last component, at least the legacy area and XSAVE header.
	xstateSize := func(what string, tid int64, layout []byte) int {
		comps, err := coredump.DecodeXSaveLayout(layout)
		if err != nil {
			t.Errorf("%s tid %d: %v", what, tid, err)
			return -1
		}
		end := 576
		for _, c := range comps {
			end = max(end, int(c.Offset+c.Size))
		}
		return end
	}
	layoutOf := func(c *coredump.Core) []byte {
		if n := c.Notes; len(n) > 0 && n[len(n)-1].Type == coredump.NTX86XSaveLayout {
			return n[len(n)-1].Desc
		}
		return nil
	}
	seq := func(ns []coredump.Note) string {
		var s []string
		for _, n := range ns {
			if n.Type == coredump.NTX86XState {
				s = append(s, fmt.Sprintf("%s/%#x[xstate]", n.Name, n.Type))
			} else {
				s = append(s, fmt.Sprintf("%s/%#x[%d]", n.Name, n.Type, len(n.Desc)))
			}
		}
		return strings.Join(s, " ")
	}
	for tid, w := range orc {
		o, ok := ours[tid]
		if !ok {
			t.Errorf("tid %d: no NT_PRSTATUS in our core", tid)
			continue
		}
		var want, got []coredump.Note
		for _, n := range w.notes {
			if n.Type != ntSigInfo && n.Type != coredump.NTX86XSaveLayout {
				want = append(want, n)
			}
		}
		for _, n := range o.notes {
			if n.Type != coredump.NTX86XSaveLayout {
				got = append(got, n)
			}
		}
		if seq(got) != seq(want) {
			t.Errorf("tid %d notes:\nours   %s\noracle %s", tid, seq(got), seq(want))
			continue
		}
		for i, n := range got {
			switch n.Type {
			case coredump.NTX86XState:
				if sz := xstateSize("our core", tid, layoutOf(p.ours)); len(n.Desc) != sz {
					t.Errorf("tid %d: our NT_X86_XSTATE has %d bytes, our layout note describes %d", tid, len(n.Desc), sz)
				}
				if sz := xstateSize("oracle", tid, layoutOf(p.oracle)); len(want[i].Desc) != sz {
					t.Errorf("tid %d: the oracle's NT_X86_XSTATE has %d bytes, its layout note describes %d", tid, len(want[i].Desc), sz)
				}
			case ntAuxv, ntFile:
				if !bytes.Equal(n.Desc, want[i].Desc) {
					t.Errorf("tid %d: note %s/%#x differs from the oracle's at byte %d", tid, n.Name, n.Type, firstDiff(n.Desc, want[i].Desc))
				}
			}
		}
	}
}
