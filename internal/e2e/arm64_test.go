package e2e

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/coredump"
	"github.com/ckpt2core/ckpt2core/internal/verify"
)

// Note types the arm64 checks name (include/uapi/linux/elf.h).
const (
	ntPRStatus     = 1
	ntPRFPReg      = 2
	ntPRPSInfo     = 3
	ntAuxv         = 6
	ntSigInfo      = 0x53494749
	ntFile         = 0x46494c45
	ntARMTLS       = 0x401
	ntARMHWBreak   = 0x402
	ntARMHWWatch   = 0x403
	ntARMSyscall   = 0x404
	ntARMTaggedCtl = 0x409
)

var sysroots struct {
	sync.Mutex
	dirs map[string]string // fixture -> sysroot to give gdb
	tmp  []string
}

// sysroot returns the directory to give gdb's `set sysroot` for an arm64
// fixture ("" if it has none): its sysroot/, or a mirror of it where files that hold nothing but
// the name of a sibling ELF file (symlinks that lost their link mode when
// committed, e.g. pipeline's libtinfo.so.6 -> libtinfo.so.6.4) are real
// symlinks again. Without that gdb stops at "not in executable format" and
// loads none of the libraries.
func sysroot(t *testing.T, fx fixture) string {
	t.Helper()
	sysroots.Lock()
	defer sysroots.Unlock()
	if d, ok := sysroots.dirs[fx.String()]; ok {
		return d
	}
	if sysroots.dirs == nil {
		sysroots.dirs = map[string]string{}
	}
	src := filepath.Join(fx.dir(), "sysroot")
	if _, err := os.Stat(src); err != nil {
		// A static program (go-goroutines) has none: gdb loads no library.
		sysroots.dirs[fx.String()] = ""
		return ""
	}
	stubs := map[string]string{} // path relative to src -> link target
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil || info.Size() > 255 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		target := strings.TrimSpace(string(b))
		if target == "" || bytes.HasPrefix(b, []byte(elf.ELFMAG)) || strings.ContainsAny(target, "\n\x00") {
			return nil
		}
		if hdr, err := readHead(filepath.Join(filepath.Dir(path), target), 4); err == nil && string(hdr) == elf.ELFMAG {
			rel, _ := filepath.Rel(src, path)
			stubs[rel] = target
		}
		return nil
	})
	if err != nil {
		t.Fatalf("sysroot %s: %v", src, err)
	}
	if len(stubs) == 0 {
		sysroots.dirs[fx.String()] = src
		return src
	}
	dst, err := os.MkdirTemp("", "ckpt2core-sysroot-")
	if err != nil {
		t.Fatal(err)
	}
	sysroots.tmp = append(sysroots.tmp, dst)
	abs, err := filepath.Abs(src)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		out := filepath.Join(dst, rel)
		switch {
		case rel == ".":
			return nil
		case d.Type()&os.ModeSymlink != 0:
			l, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(l, out)
		case d.IsDir():
			return os.Mkdir(out, 0o755)
		case stubs[rel] != "":
			return os.Symlink(stubs[rel], out)
		default:
			return os.Symlink(filepath.Join(abs, rel), out)
		}
	})
	if err != nil {
		t.Fatalf("mirroring sysroot %s: %v", src, err)
	}
	t.Logf("%s: gdb gets a mirror of sysroot/ in which %v are symlinks (committed as files naming their target)", fx, stubs)
	sysroots.dirs[fx.String()] = dst
	return dst
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, 0)
	return b, err
}

func removeSysroots() {
	for _, d := range sysroots.tmp {
		os.RemoveAll(d)
	}
}

// checkGDBVectorsARM64 prints vec-1's v0, v1, v31 (as 128-bit integers),
// fpsr, fpcr and x19..x21 with gdb-multiarch and compares them with
// facts.json's known_registers.
func (p *pair) checkGDBVectorsARM64(t *testing.T, gdb, exe string) {
	t.Helper()
	k := p.info.arm64Vec
	tid, num := p.gdbThread(t, gdb, exe, k.thread)
	type reg struct {
		expr string
		want *big.Int
	}
	u := func(v uint64) *big.Int { return new(big.Int).SetUint64(v) }
	regs := []reg{
		{"p/x $v0.q.u", k.v[0]},
		{"p/x $v1.q.u", k.v[1]},
		{"p/x $v31.q.u", k.v[31]},
		{"p/x $fpsr", u(k.fpsr)},
		{"p/x $fpcr", u(k.fpcr)},
		{"p/x $x19", u(k.x19)},
		{"p/x $x20", u(k.x20)},
		{"p/x $x21", u(k.x21)},
	}
	var exprs []string
	for _, r := range regs {
		exprs = append(exprs, r.expr)
	}
	vals, out := p.gdbPrint(t, gdb, exe, num, exprs)
	for i, r := range regs {
		got := valueRe.FindAllString(vals[i+1], -1)
		if len(got) != 1 {
			t.Errorf("gdb %q on %s (LWP %d): %q, want one value %#x\n%s", r.expr, k.thread, tid, vals[i+1], r.want, out)
			continue
		}
		g, ok := new(big.Int).SetString(got[0][2:], 16)
		if !ok || g.Cmp(r.want) != 0 {
			t.Errorf("gdb %q on %s (LWP %d) of %s: %s, facts.json %#x", r.expr, k.thread, tid, filepath.Base(p.oursPath), got[0], r.want)
		}
	}
}

// testFactsRegs: every thread's x0..x30, sp, pc, pstate, fpsr and fpcr
// equal what gdb-multiarch read from the oracle in the guest (facts.json),
// a reading independent of internal/coredump.
func (p *pair) testFactsRegs(t *testing.T) {
	want := p.info.oracleRegs[p.proc.pid]
	if len(want) == 0 {
		t.Skip("facts.json has no registers for this process")
	}
	ours := byTid(t, p.ours, "our core")
	if got, w := keys(ours), keysOfRegs(want); !reflect.DeepEqual(got, w) {
		t.Errorf("threads %v, facts %v", got, w)
	}
	for tid, w := range want {
		th, ok := ours[tid]
		if !ok {
			continue
		}
		fp, err := coredump.DecodeARM64FP(th.FPRegs)
		if err != nil {
			t.Errorf("tid %d: NT_PRFPREG: %v", tid, err)
			continue
		}
		got := map[string]uint64{"sp": th.Regs[coredump.ARM64SP], "pc": th.Regs[coredump.ARM64PC],
			"cpsr": th.Regs[coredump.ARM64PState], "fpsr": uint64(fp.FPSR), "fpcr": uint64(fp.FPCR)}
		for i := 0; i <= 30; i++ {
			got[fmt.Sprintf("x%d", i)] = th.Regs[i]
		}
		if len(w) != len(got) {
			t.Errorf("tid %d: facts list %d registers, want the %d of user_pt_regs + fpsr/fpcr", tid, len(w), len(got))
		}
		for name, v := range w {
			g, ok := got[name]
			if !ok {
				t.Errorf("tid %d: facts register %q unknown to the test", tid, name)
			} else if g != v {
				t.Errorf("tid %d: %s = %#x, gdb read %#x from the oracle", tid, name, g, v)
			}
		}
	}
}

func keysOfRegs(m map[int64]map[string]uint64) []int64 {
	var k []int64
	for tid := range m {
		k = append(k, tid)
	}
	return sortedInt64(k)
}

// noteBlock is the notes from one NT_PRSTATUS up to the next, in file order.
type noteBlock struct {
	tid   int64
	notes []coredump.Note
}

func noteBlocks(t *testing.T, c *coredump.Core, what string) map[int64]noteBlock {
	t.Helper()
	ts, err := c.ThreadsErr()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	out := map[int64]noteBlock{}
	i := -1
	var cur noteBlock
	for _, n := range c.Notes {
		if n.Type == ntPRStatus && n.Name == "CORE" {
			if i >= 0 {
				out[cur.tid] = cur
			}
			i++
			cur = noteBlock{tid: int64(ts[i].Pid)}
		}
		if i >= 0 {
			cur.notes = append(cur.notes, n)
		}
	}
	if i >= 0 {
		out[cur.tid] = cur
	}
	return out
}

// testRegsetNotes (kernel oracles; gcore oracles: testGcoreRegsets): each
// thread carries the notes of the
// kernel's core in the kernel's order (NT_SIGINFO aside: a checkpoint was
// not made by a signal), of the same sizes; NT_AUXV, NT_FILE, NT_PRFPREG,
// NT_ARM_TLS, NT_ARM_SYSTEM_CALL and NT_ARM_TAGGED_ADDR_CTRL are byte for
// byte the oracle's, NT_ARM_HW_BREAK/HW_WATCH too but for dbg_info (the
// CPU's debug architecture and slot count, which CRIU does not record).
// NT_PRSTATUS and NT_PRPSINFO are compared field by field elsewhere.
func (p *pair) testRegsetNotes(t *testing.T) {
	if p.fx.gcore {
		p.testGcoreRegsets(t)
		return
	}
	ours, orc := noteBlocks(t, p.ours, "our core"), noteBlocks(t, p.oracle, "oracle")
	for tid, w := range orc {
		o, ok := ours[tid]
		if !ok {
			t.Errorf("tid %d: no NT_PRSTATUS in our core", tid)
			continue
		}
		var want []coredump.Note
		for _, n := range w.notes {
			if n.Type != ntSigInfo {
				want = append(want, n)
			}
		}
		seq := func(ns []coredump.Note) string {
			var s []string
			for _, n := range ns {
				s = append(s, fmt.Sprintf("%s/%#x[%d]", n.Name, n.Type, len(n.Desc)))
			}
			return strings.Join(s, " ")
		}
		if seq(o.notes) != seq(want) {
			t.Errorf("tid %d notes:\nours   %s\noracle %s", tid, seq(o.notes), seq(want))
			continue
		}
		for i, n := range o.notes {
			wd := want[i].Desc
			od := n.Desc
			switch n.Type {
			case ntPRStatus, ntPRPSInfo:
				continue
			case ntARMHWBreak, ntARMHWWatch:
				if binary.LittleEndian.Uint32(od) != 0 {
					t.Errorf("tid %d: note %#x dbg_info %#x, want 0 (not recorded by CRIU)", tid, n.Type, binary.LittleEndian.Uint32(od))
				}
				od, wd = od[4:], wd[4:]
			}
			if !bytes.Equal(od, wd) {
				j := firstDiff(od, wd)
				t.Errorf("tid %d: note %s/%#x differs from the oracle's at byte %d", tid, n.Name, n.Type, j)
			}
		}
	}
}

// testGcoreRegsets (gcore oracles): gdb 13's gcore writes, per thread,
// NT_PRSTATUS, NT_PRFPREG and NT_ARM_TLS (NT_PRPSINFO before the first
// thread; NT_AUXV, NT_FILE and its own GDB note after the last). Each
// thread's NT_PRFPREG and NT_ARM_TLS of ours are byte for byte gcore's.
func (p *pair) testGcoreRegsets(t *testing.T) {
	ours, orc := noteBlocks(t, p.ours, "our core"), noteBlocks(t, p.oracle, "oracle")
	if len(ours) != len(orc) {
		t.Errorf("%d threads, oracle %d", len(ours), len(orc))
	}
	gcoreWrites := map[uint32]bool{ntPRStatus: true, ntPRFPReg: true, ntARMTLS: true, ntAuxv: true, ntFile: true, 0xff000000: true}
	only := func(what string, tid int64, ns []coredump.Note, name string, typ uint32) []byte {
		var d []byte
		n := 0
		for _, x := range ns {
			if x.Type == typ && x.Name == name {
				d = x.Desc
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s tid %d: %d %s/%#x notes, want 1", what, tid, n, name, typ)
			return nil
		}
		return d
	}
	checked := 0
	for tid, w := range orc {
		for _, n := range w.notes {
			if !gcoreWrites[n.Type] {
				t.Errorf("oracle tid %d: note %s/%#x, which this test does not compare", tid, n.Name, n.Type)
			}
		}
		o, ok := ours[tid]
		if !ok {
			t.Errorf("tid %d: no NT_PRSTATUS in our core", tid)
			continue
		}
		for _, nt := range []struct {
			name string
			typ  uint32
		}{{"CORE", ntPRFPReg}, {"LINUX", ntARMTLS}} {
			wd := only("oracle", tid, w.notes, nt.name, nt.typ)
			od := only("our core", tid, o.notes, nt.name, nt.typ)
			if wd == nil || od == nil {
				continue
			}
			checked++
			if !bytes.Equal(od, wd) {
				t.Errorf("tid %d: note %s/%#x (%d bytes) differs from gcore's (%d bytes) at byte %d", tid, nt.name, nt.typ, len(od), len(wd), firstDiff(od, wd))
			}
		}
	}
	if checked == 0 {
		t.Error("no note compared")
	}
}

// testDelve: Delve (internal/verify, `ckpt2core verify`) lists the same
// threads and goroutines, with the same functions and stacks, on our core as
// on the oracle, and the goroutines stand in facts.json's functions.
func (p *pair) testDelve(t *testing.T) {
	exe := p.executable(t)
	ro, err := verify.Verify(p.oursPath, exe, nil)
	if err != nil {
		t.Fatalf("our core: %v", err)
	}
	rw, err := verify.Verify(p.oraclePath, exe, nil)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	if !reflect.DeepEqual(ro.Threads, rw.Threads) {
		t.Errorf("threads:\nours   %+v\noracle %+v", ro.Threads, rw.Threads)
	}
	if !reflect.DeepEqual(ro.Goroutines, rw.Goroutines) {
		t.Errorf("goroutines:\nours   %+v\noracle %+v", ro.Goroutines, rw.Goroutines)
	}
	if !reflect.DeepEqual(ro.Warnings, rw.Warnings) {
		t.Errorf("warnings:\nours   %q\noracle %q", ro.Warnings, rw.Warnings)
	}
	var tids []int64
	for _, th := range ro.Threads {
		tids = append(tids, int64(th.ID))
		if th.Function == "" {
			t.Errorf("thread %d: Delve finds no function at pc %#x", th.ID, th.PC)
		}
	}
	if !reflect.DeepEqual(sortedInt64(tids), sortedInt64(p.proc.tids)) {
		t.Errorf("Delve threads %v, facts %v", tids, p.proc.tids)
	}
	for _, fn := range p.info.goFuncs {
		found := false
		for _, g := range ro.Goroutines {
			found = found || g.UserFunction == fn || contains(g.Stack, fn)
		}
		if !found {
			t.Errorf("no goroutine of our core stands in %s (facts.json)", fn)
		}
	}
	t.Logf("%d threads, %d goroutines", len(ro.Threads), len(ro.Goroutines))
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// guestRoot builds a root filesystem of the guest's files for `--root`: the
// libraries of sysroot/ (stubs resolved) and the fixture's executables at
// the paths they ran from (facts.json exe.guest_path). Files are copied:
// --root does not follow links out of the root.
func guestRoot(t *testing.T, fx fixture) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fx.dir(), "facts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Exe json.RawMessage
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	type exe struct {
		GuestPath string `json:"guest_path"`
		File      string
	}
	var exes []exe
	var one exe
	if json.Unmarshal(m.Exe, &one) == nil && one.GuestPath != "" {
		exes = append(exes, one)
	} else {
		var per map[string]exe
		if err := json.Unmarshal(m.Exe, &per); err != nil {
			t.Fatalf("facts exe: %v", err)
		}
		for _, e := range per {
			exes = append(exes, e)
		}
	}
	root := t.TempDir()
	put := func(dst, src string) {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range exes {
		put(filepath.Join(root, e.GuestPath), filepath.Join(fx.dir(), e.File))
	}
	if sr := sysroot(t, fx); sr != "" {
		err := filepath.WalkDir(sr, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(sr, path)
			if strings.HasPrefix(rel, "lib"+string(filepath.Separator)) {
				return nil // lib -> usr/lib: the files are under usr/
			}
			if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
				return nil
			}
			put(filepath.Join(root, rel), path)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestARM64RootEveryOracleByte converts the arm64 fixtures with --root
// pointing at the guest's files: the clean pages of file mappings (among
// them the ELF header pages the kernel dumps) are then in our core too, and
// every byte the oracle holds must be in our core with the same value, but
// for struct rseq and the kernel's vvar page (live kernel data, which CRIU
// does not save).
func TestARM64RootEveryOracleByte(t *testing.T) {
	for _, fx := range fixtures {
		if fx.arch != "arm64" || fx.pending != "" {
			continue
		}
		t.Run(fx.name, func(t *testing.T) {
			t.Parallel()
			info := loadFixture(t, fx)
			res := runCLI(t, fx.images(), "--root", guestRoot(t, fx))
			if res.exit != 0 {
				t.Fatalf("ckpt2core --root exited %d\nstdout:\n%s\nstderr:\n%s", res.exit, res.stdout, res.stderr)
			}
			if strings.Contains(res.stderr, "reading its build-id") {
				// The Go linker puts .note.gnu.build-id outside the
				// PT_NOTE segment; rootfs must find it anyway (a bug
				// once, fixed).
				t.Fatalf("rootfs cannot read the build-id of an executable of the guest:\n%s", res.stderr)
			}
			if strings.Contains(res.stderr, "left to the debugger") {
				t.Errorf("--root refused files of the guest:\n%s", res.stderr)
			}
			eachOracle(t, fx, info, func(t *testing.T, p process, _ string, orc *coredump.Core) {
				ours, err := coredump.Open(filepath.Join(res.out, fmt.Sprintf("core.%d", p.pid)))
				if err != nil {
					t.Fatal(err)
				}
				defer ours.Close()
				pr := pair{fx: fx, info: info, proc: p}
				rseq := pr.rseqAreas(t)
				pg, ok := orc.AuxvValue(6)
				if !ok {
					t.Fatal("oracle has no AT_PAGESZ")
				}
				var held, missing, differ uint64
				for _, v := range readMM(t, fx, p.pid).GetVmas() {
					if v.GetStatus()&(vmaVVAR|vmaVsyscall) != 0 {
						continue
					}
					for a := v.GetStart(); a < v.GetEnd(); a += pg {
						if !orc.Captured(a) {
							continue
						}
						held += pg
						w, err := orc.ReadAt(a, int(pg))
						if err != nil {
							t.Fatal(err)
						}
						o, err := ours.ReadAt(a, int(pg))
						if err != nil {
							if missing++; missing <= 5 {
								t.Errorf("oracle page %#x (mapping %#x-%#x): %v", a, v.GetStart(), v.GetEnd(), err)
							}
							continue
						}
						for i := range o {
							if o[i] != w[i] && !inSpans(rseq, a+uint64(i)) {
								if differ++; differ <= 5 {
									t.Errorf("%#x: ours %#02x, oracle %#02x", a+uint64(i), o[i], w[i])
								}
							}
						}
					}
				}
				if held == 0 {
					t.Error("the oracle holds no page")
				}
				if missing > 0 || differ > 0 {
					t.Errorf("%d oracle pages missing, %d bytes differ", missing, differ)
				}
				t.Logf("all %d bytes the oracle holds outside vvar are in our core", held)
			})
		})
	}
}
