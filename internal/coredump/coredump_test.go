package coredump

import (
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

var testdata = imgtest.Testdata()

func openOracle(t *testing.T, gz string) *Core {
	t.Helper()
	c, err := Open(imgtest.Gunzip(t, gz, t.TempDir()))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type manifest struct {
	Processes []struct {
		Pid     int    `json:"pid"`
		Ppid    int    `json:"ppid"`
		Pgid    int    `json:"pgid"`
		Sid     int    `json:"sid"`
		Comm    string `json:"comm"`
		Threads []struct {
			Tid  int64   `json:"tid"`
			Comm *string `json:"comm"`
		} `json:"threads"`
		Oracle *string `json:"oracle"`
	} `json:"processes"`
	Argv string `json:"argv"`
	Vec1 string `json:"vec-1 registers"`
}

func readManifest(t *testing.T, dir string) manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return m
}

func TestX86Oracles(t *testing.T) {
	for _, fx := range []string{"threads-c", "threads-c-criu411", "static-c", "go-goroutines", "counter"} {
		t.Run(fx, func(t *testing.T) {
			dir := filepath.Join(testdata, "x86_64", fx)
			m := readManifest(t, dir)
			// gdb's gcore leaves pr_pgrp/pr_sid of NT_PRSTATUS zero, writes
			// only argv[0] to pr_psargs and page size 1 in NT_FILE.
			gcore := fx == "go-goroutines"
			n := 0
			for _, p := range m.Processes {
				if p.Oracle == nil {
					continue
				}
				n++
				t.Run(strconv.Itoa(p.Pid), func(t *testing.T) {
					c := openOracle(t, filepath.Join(dir, *p.Oracle))
					if c.Machine != elf.EM_X86_64 {
						t.Fatalf("machine %v", c.Machine)
					}
					ts, err := c.ThreadsErr()
					if err != nil {
						t.Fatal(err)
					}
					var got, want []int64
					for _, th := range ts {
						got = append(got, int64(th.Pid))
						if len(th.Regs) != RegsX86_64 {
							t.Errorf("tid %d: %d regs", th.Pid, len(th.Regs))
						}
						if th.XState == nil || th.FPRegs == nil {
							t.Errorf("tid %d: no NT_X86_XSTATE or NT_FPREGSET", th.Pid)
						}
						if !gcore && (int(th.Pgrp) != p.Pgid || int(th.Sid) != p.Sid) {
							t.Errorf("tid %d: pgrp/sid %d/%d, manifest %d/%d", th.Pid, th.Pgrp, th.Sid, p.Pgid, p.Sid)
						}
						x, err := DecodeXState(th.XState, th.XSaveLayout)
						if err != nil {
							t.Errorf("tid %d: %v", th.Pid, err)
						} else if x.XCR0&0xe7 != 0xe7 || x.XstateBV&^x.XCR0 != 0 {
							t.Errorf("tid %d: xcr0 %#x xstate_bv %#x", th.Pid, x.XCR0, x.XstateBV)
						}
					}
					for _, th := range p.Threads {
						want = append(want, th.Tid)
					}
					sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
					sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("thread ids %v, manifest %v", got, want)
					}
					ps, err := c.PSInfo()
					if err != nil {
						t.Fatal(err)
					}
					// pr_ppid is not compared with the manifest: the manifest
					// has CRIU's tree (0 for the root), the oracle the real
					// parent when the core was written (children were
					// reparented to 1 by then).
					if ps.Fname != p.Comm || int(ps.Pid) != p.Pid || int(ps.Pgrp) != p.Pgid || int(ps.Sid) != p.Sid {
						t.Errorf("psinfo fname %q pid %d pgrp %d sid %d, manifest %q %d %d %d", ps.Fname, ps.Pid, ps.Pgrp, ps.Sid, p.Comm, p.Pid, p.Pgid, p.Sid)
					}
					if p.Pid == m.Processes[0].Pid && m.Argv != "" {
						checkPsargs(t, ps.Psargs, m.Argv)
					}
					av, err := c.Auxv()
					if err != nil {
						t.Fatal(err)
					}
					if pg, ok := c.AuxvValue(6); !ok || pg != 4096 || av[len(av)-1][0] != 0 {
						t.Errorf("AT_PAGESZ %d %v; auxv %v", pg, ok, av)
					}
					files, pgsz, err := c.Files()
					if wantPg := map[bool]uint64{false: 4096, true: 1}[gcore]; err != nil || pgsz != wantPg || len(files) == 0 {
						t.Fatalf("NT_FILE: %d entries, page size %d, %v", len(files), pgsz, err)
					}
					entry, _ := c.AuxvValue(9) // AT_ENTRY lies in a mapped file
					if !inFiles(files, entry) {
						t.Errorf("AT_ENTRY %#x in no NT_FILE entry", entry)
					}
					// The stack pointer of every thread points into captured memory.
					for _, th := range ts {
						if !c.Captured(th.Regs[X86RSP]) {
							t.Errorf("tid %d: rsp %#x not captured", th.Pid, th.Regs[X86RSP])
						}
						if _, err := c.ReadAt(th.Regs[X86RSP], 8); err != nil {
							t.Error(err)
						}
					}
					if m.Vec1 != "" {
						checkVec1(t, c, ts, p.Threads, m.Vec1)
					}
				})
			}
			if n == 0 {
				t.Fatal("no oracle in manifest")
			}
		})
	}
}

func inFiles(files []FileEntry, a uint64) bool {
	for _, f := range files {
		if f.Start <= a && a < f.End {
			return true
		}
	}
	return false
}

// checkPsargs checks pr_psargs against the manifest's argv, in which the
// ready-file path is the placeholder "<ready-file>" and shell quotes may
// appear. The kernel copies the argument area (NULs, the final one included,
// become spaces) cut to 79 bytes.
func checkPsargs(t *testing.T, got, argv string) {
	t.Helper()
	argv = strings.ReplaceAll(argv, "'", "") + " "
	re := strings.ReplaceAll(regexp.QuoteMeta(argv), regexp.QuoteMeta("<ready-file>"), `\S+`)
	m := regexp.MustCompile("^" + re + "$")
	if len(got) > 79 {
		t.Fatalf("psargs has %d bytes", len(got))
	}
	// A cut psargs must be a prefix of a string matching the manifest:
	// try the completions that the manifest allows.
	ok := m.MatchString(got)
	if !ok && len(got) == 79 {
		parts := strings.SplitN(argv, "<ready-file>", 2)
		if len(parts) == 2 && strings.HasPrefix(got, parts[0]) {
			rest := got[len(parts[0]):]
			i := strings.IndexByte(rest, ' ')
			ok = i < 0 || strings.HasPrefix(parts[1], rest[i:])
		} else {
			ok = strings.HasPrefix(argv, got)
		}
	}
	if !ok {
		t.Errorf("psargs %q does not match manifest argv %q (cut to 79 bytes)", got, argv)
	}
}

// vecLanes parses "name {a,b,...}" lanes of the manifest; "first,...,last"
// stands for an arithmetic progression of 8 lanes.
func vecLanes(t *testing.T, spec, name string) []uint64 {
	t.Helper()
	m := regexp.MustCompile(`\b` + name + ` \{([^}]*)\}`).FindStringSubmatch(spec)
	if m == nil {
		t.Fatalf("manifest has no %s in %q", name, spec)
	}
	parts := strings.Split(m[1], ",")
	var lanes []uint64
	for _, p := range parts {
		if p == "..." {
			lanes = append(lanes, 0) // filled below
			continue
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(p, "0x"), 16, 64)
		if err != nil {
			t.Fatalf("%s lane %q: %v", name, p, err)
		}
		lanes = append(lanes, v)
	}
	if len(lanes) == 3 && parts[1] == "..." {
		first, last := lanes[0], lanes[2]
		step := (last - first) / 7
		if step*7 != last-first {
			t.Fatalf("%s: %#x..%#x is no 8-lane progression", name, first, last)
		}
		lanes = make([]uint64, 8)
		for i := range lanes {
			lanes[i] = first + uint64(i)*step
		}
	}
	return lanes
}

func lanesOf(b []byte) []uint64 {
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}

func checkVec1(t *testing.T, c *Core, ts []Thread, threads []struct {
	Tid  int64   `json:"tid"`
	Comm *string `json:"comm"`
}, spec string) {
	t.Helper()
	var tid int64 = -1
	for _, th := range threads {
		if th.Comm != nil && *th.Comm == "vec-1" {
			tid = th.Tid
		}
	}
	var vec *Thread
	for i := range ts {
		if int64(ts[i].Pid) == tid {
			vec = &ts[i]
		}
	}
	if vec == nil {
		t.Fatalf("no thread vec-1 (tid %d) in core", tid)
	}
	if vec.XSaveLayout == nil {
		t.Fatalf("oracle has no NT_X86_XSAVE_LAYOUT")
	}
	// The oracle was written on AMD: its layout differs from the standard one.
	comps, err := DecodeXSaveLayout(vec.XSaveLayout)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range comps {
		if cp.Type == XFeatureZMMHi256 && cp.Offset == StandardXSaveOffsets[XFeatureZMMHi256] {
			t.Errorf("oracle's layout has the standard ZMM_Hi256 offset; expected AMD's")
		}
	}
	x, err := DecodeXState(vec.XState, vec.XSaveLayout)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got []uint64) {
		t.Helper()
		want := vecLanes(t, spec, name)
		if fmt.Sprintf("%#x", got) != fmt.Sprintf("%#x", want) {
			t.Errorf("vec-1 %s = %#x, manifest %#x", name, got, want)
		}
	}
	check("xmm0", lanesOf(x.XMM[0][:]))
	y := x.YMM(1)
	check("ymm1", lanesOf(y[:]))
	z := x.ZMM(2)
	check("zmm2", lanesOf(z[:]))
	z = x.ZMM(17)
	check("zmm17", lanesOf(z[:]))
	k := regexp.MustCompile(`\bk1 (0x[0-9a-f]+)`).FindStringSubmatch(spec)
	if k == nil {
		t.Fatalf("no k1 in %q", spec)
	}
	if want, _ := strconv.ParseUint(k[1][2:], 16, 64); x.Opmask[1] != want {
		t.Errorf("vec-1 k1 = %#x, manifest %#x", x.Opmask[1], want)
	}
	// Decoding the oracle with the standard offsets must NOT give these
	// values (proves the layout note is used).
	if xs, err := DecodeXState(vec.XState, nil); err == nil && xs.ZMM(17) == x.ZMM(17) {
		t.Errorf("zmm17 decodes identically with the standard layout: layout note not exercised")
	}
}

type facts struct {
	Processes []struct {
		Pid     int      `json:"pid"`
		Comm    string   `json:"comm"`
		Argv    []string `json:"argv"`
		Threads []struct {
			Tid  int    `json:"tid"`
			Name string `json:"name"`
		} `json:"threads"`
	} `json:"processes"`
	KnownRegisters map[string]any `json:"known_registers"`
	Oracle         struct {
		Files              map[string]struct{ Pid int }            `json:"files"`
		ThreadRegsFromCore map[string]map[string]map[string]string `json:"thread_regs_from_core"`
	} `json:"oracle"`
}

var arm64RegNames = func() []string {
	var n []string
	for i := 0; i <= 30; i++ {
		n = append(n, "x"+strconv.Itoa(i))
	}
	return append(n, "sp", "pc", "cpsr")
}()

func TestARM64Oracles(t *testing.T) {
	for _, fx := range []string{"threads-c", "pipeline", "go-goroutines"} {
		t.Run(fx, func(t *testing.T) {
			dir := filepath.Join(testdata, "arm64", fx)
			b, err := os.ReadFile(filepath.Join(dir, "facts.json"))
			if err != nil {
				t.Fatal(err)
			}
			var f facts
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatal(err)
			}
			if len(f.Oracle.Files) == 0 {
				t.Fatal("facts.json lists no oracle")
			}
			for gz, info := range f.Oracle.Files {
				t.Run(strconv.Itoa(info.Pid), func(t *testing.T) {
					c := openOracle(t, filepath.Join(dir, gz))
					if c.Machine != elf.EM_AARCH64 {
						t.Fatalf("machine %v", c.Machine)
					}
					ts, err := c.ThreadsErr()
					if err != nil {
						t.Fatal(err)
					}
					want := f.Oracle.ThreadRegsFromCore[strconv.Itoa(info.Pid)]
					if len(ts) != len(want) || len(want) == 0 {
						t.Errorf("%d threads, facts %d", len(ts), len(want))
					}
					for _, th := range ts {
						regs, ok := want[strconv.Itoa(int(th.Pid))]
						if !ok {
							t.Errorf("tid %d not in facts", th.Pid)
							continue
						}
						for i, name := range arm64RegNames {
							w, err := strconv.ParseUint(strings.TrimPrefix(regs[name], "0x"), 16, 64)
							if err != nil {
								t.Fatalf("facts %s=%q: %v", name, regs[name], err)
							}
							if th.Regs[i] != w {
								t.Errorf("tid %d %s = %#x, facts %#x", th.Pid, name, th.Regs[i], w)
							}
						}
						fp, err := DecodeARM64FP(th.FPRegs)
						if err != nil {
							t.Fatal(err)
						}
						for name, got := range map[string]uint32{"fpsr": fp.FPSR, "fpcr": fp.FPCR} {
							w, _ := strconv.ParseUint(strings.TrimPrefix(regs[name], "0x"), 16, 32)
							if uint64(got) != w {
								t.Errorf("tid %d %s = %#x, facts %s", th.Pid, name, got, regs[name])
							}
						}
						if len(th.TLS) < 8 || th.XState != nil {
							t.Errorf("tid %d: TLS %d bytes, xstate %d bytes", th.Pid, len(th.TLS), len(th.XState))
						}
						if kr := f.KnownRegisters; kr != nil && fmt.Sprint(kr["thread"]) == strconv.Itoa(int(th.Pid)) {
							for _, v := range []int{0, 1, 31} {
								hx, _ := kr[fmt.Sprintf("v%d_bytes_le", v)].(string)
								wb, err := hex.DecodeString(hx)
								if err != nil || len(wb) != 16 {
									t.Fatalf("facts v%d_bytes_le %q", v, hx)
								}
								if string(fp.V[v][:]) != string(wb) {
									t.Errorf("v%d = %x, facts %x", v, fp.V[v], wb)
								}
								// Cross-check the 128-bit integer form.
								iv, _ := new(big.Int).SetString(strings.TrimPrefix(kr[fmt.Sprintf("v%d", v)].(string), "0x"), 16)
								be := iv.FillBytes(make([]byte, 16))
								for i := range be {
									if be[i] != fp.V[v][15-i] {
										t.Errorf("v%d integer form mismatch", v)
										break
									}
								}
							}
						}
					}
					for _, p := range f.Processes {
						if p.Pid != info.Pid {
							continue
						}
						ps, err := c.PSInfo()
						if err != nil {
							t.Fatal(err)
						}
						if ps.Fname != p.Comm {
							t.Errorf("pr_fname %q, facts comm %q", ps.Fname, p.Comm)
						}
						args := strings.Join(p.Argv, " ") + " "
						if fx == "go-goroutines" {
							args = p.Argv[0] // gdb's gcore writes argv[0] only
						}
						if len(args) > 79 {
							args = args[:79]
						}
						if ps.Psargs != args {
							t.Errorf("pr_psargs %q, want %q", ps.Psargs, args)
						}
					}
					if _, _, err := c.Files(); err != nil {
						t.Error(err)
					}
				})
			}
		})
	}
}

// buildCore writes a small synthetic x86_64 core: two notes, two PT_LOADs.
func buildCore() []byte {
	le := binary.LittleEndian
	note := func(name string, typ uint32, desc []byte) []byte {
		var b []byte
		b = le.AppendUint32(b, uint32(len(name)+1))
		b = le.AppendUint32(b, uint32(len(desc)))
		b = le.AppendUint32(b, typ)
		nb := append([]byte(name), 0)
		for len(nb)%4 != 0 {
			nb = append(nb, 0)
		}
		b = append(b, nb...)
		b = append(b, desc...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	pr := make([]byte, 336)
	le.PutUint32(pr[prstatusPid:], 42)
	le.PutUint64(pr[prstatusReg+8*X86RIP:], 0x401000)
	ps := make([]byte, prpsinfoSize)
	copy(ps[40:], "prog")
	copy(ps[56:], "prog arg")
	nf := le.AppendUint64(nil, 1)
	nf = le.AppendUint64(nf, 4096)
	nf = le.AppendUint64(nf, 0x400000)
	nf = le.AppendUint64(nf, 0x401000)
	nf = le.AppendUint64(nf, 0)
	nf = append(nf, "/bin/prog\x00"...)
	notes := append(note("CORE", NTPrstatus, pr), note("CORE", NTPrpsinfo, ps)...)
	notes = append(notes, note("CORE", NTFile, nf)...)
	const phoff, phnum = 64, 3
	noteOff := uint64(phoff + 56*phnum)
	dataOff := (noteOff + uint64(len(notes)) + 4095) &^ 4095
	out := make([]byte, dataOff+2*4096)
	copy(out, elf.ELFMAG)
	out[elf.EI_CLASS], out[elf.EI_DATA], out[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), 1
	le.PutUint16(out[16:], uint16(elf.ET_CORE))
	le.PutUint16(out[18:], uint16(elf.EM_X86_64))
	le.PutUint64(out[32:], phoff)
	le.PutUint16(out[52:], 64)
	le.PutUint16(out[54:], 56)
	le.PutUint16(out[56:], phnum)
	ph := func(i int, typ elf.ProgType, flags elf.ProgFlag, off, vaddr, filesz, memsz uint64) {
		p := out[phoff+56*i:]
		le.PutUint32(p, uint32(typ))
		le.PutUint32(p[4:], uint32(flags))
		le.PutUint64(p[8:], off)
		le.PutUint64(p[16:], vaddr)
		le.PutUint64(p[32:], filesz)
		le.PutUint64(p[40:], memsz)
	}
	ph(0, elf.PT_NOTE, 0, noteOff, 0, uint64(len(notes)), 0)
	ph(1, elf.PT_LOAD, elf.PF_R|elf.PF_W, dataOff, 0x7000, 0x1000, 0x1000)
	ph(2, elf.PT_LOAD, elf.PF_R, dataOff+0x1000, 0x8000, 0x1000, 0x3000)
	copy(out[noteOff:], notes)
	for i := range 0x2000 {
		out[dataOff+uint64(i)] = byte(i / 0x1000 * 0x11)
	}
	return out
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "core")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSynthetic(t *testing.T) {
	c, err := Open(writeTemp(t, buildCore()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ts := c.Threads()
	if len(ts) != 1 || ts[0].Pid != 42 || ts[0].Regs[X86RIP] != 0x401000 {
		t.Fatalf("threads %+v", ts)
	}
	if _, ok := ts[0].Extra[NTPrpsinfo]; !ok {
		t.Error("NT_PRPSINFO not in first thread's Extra")
	}
	ps, err := c.PSInfo()
	if err != nil || ps.Fname != "prog" || ps.Psargs != "prog arg" {
		t.Errorf("psinfo %+v %v", ps, err)
	}
	fs, pg, err := c.Files()
	if err != nil || pg != 4096 || len(fs) != 1 || fs[0] != (FileEntry{0x400000, 0x401000, 0, "/bin/prog"}) {
		t.Errorf("files %+v %d %v", fs, pg, err)
	}
	// A read spanning both segments.
	b, err := c.ReadAt(0x7ffe, 4)
	if err != nil || string(b) != "\x00\x00\x11\x11" {
		t.Errorf("ReadAt across segments = %x, %v", b, err)
	}
	for _, a := range []uint64{0x6fff, 0x9000, 0xafff, 0xb000} {
		if c.Captured(a) {
			t.Errorf("Captured(%#x)", a)
		}
		if _, err := c.ReadAt(a, 1); err == nil {
			t.Errorf("ReadAt(%#x) succeeded", a)
		}
	}
	if _, err := c.ReadAt(0x8fff, 2); err == nil {
		t.Error("ReadAt past p_filesz succeeded")
	}
	if !c.Captured(0x8fff) || !c.Captured(0x7000) {
		t.Error("Captured false inside p_filesz")
	}
}

// TestCorrupt mutates the synthetic core in many ways: Open and every
// accessor must return errors or values, never panic.
func TestCorrupt(t *testing.T) {
	orig := buildCore()
	dir := t.TempDir()
	try := func(name string, b []byte) {
		p := filepath.Join(dir, "c")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("%s: panic: %v", name, r)
			}
		}()
		c, err := Open(p)
		if err != nil {
			return
		}
		defer c.Close()
		for _, th := range c.Threads() {
			_, _ = DecodeXState(th.XState, th.XSaveLayout)
		}
		_, _ = c.ThreadsErr()
		_, _ = c.PSInfo()
		_, _ = c.Auxv()
		_, _, _ = c.Files()
		for _, l := range c.Loads {
			_, _ = c.ReadAt(l.Vaddr, int(min(l.Memsz, 1<<16)))
		}
	}
	for n := 0; n < 1200; n += 7 {
		try(fmt.Sprintf("truncated to %d", n), orig[:n])
	}
	for i := 0; i < 1200 && i < len(orig); i++ {
		for _, v := range []byte{0xff, 0x80, 0x01, 0x00} {
			b := append([]byte(nil), orig...)
			b[i] ^= v
			if v == 0 {
				b[i] = 0
			}
			try(fmt.Sprintf("byte %d ^ %#x", i, v), b)
		}
	}
	// Short or odd xstate / layout descriptors.
	for _, n := range []int{0, 100, 575, 576, 1000, 2000, 2700} {
		xs := make([]byte, n)
		if n >= 520 {
			binary.LittleEndian.PutUint64(xs[512:], 0x2e7)
		}
		_, _ = DecodeXState(xs, nil)
		_, _ = DecodeXState(xs, []byte{1, 2, 3})
		lay := make([]byte, 16)
		binary.LittleEndian.PutUint32(lay, XFeatureHi16ZMM)
		binary.LittleEndian.PutUint32(lay[4:], 1024)
		binary.LittleEndian.PutUint32(lay[8:], 0xfffffff0)
		if _, err := DecodeXState(xs, lay); err == nil && n >= 520 {
			t.Errorf("xstate of %d bytes with out-of-range component decoded", n)
		}
	}
	if _, _, err := decodeFiles([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("huge NT_FILE count accepted")
	}
}

func TestDecodeXStateStandard(t *testing.T) {
	xs := make([]byte, 2696)
	le := binary.LittleEndian
	le.PutUint64(xs[464:], 0x2e7)
	le.PutUint64(xs[512:], 0x2e6) // x87 in init state
	le.PutUint32(xs[24:], 0x1f80)
	xs[160] = 0x11
	xs[576+16] = 0x22                 // ymm1 high half
	le.PutUint64(xs[1088+8:], 0x5a5a) // k1
	xs[1152+32*2] = 0x33              // zmm2 bits 256..
	xs[1664+64] = 0x44                // zmm17
	le.PutUint32(xs[2688:], 0x55555554)
	x, err := DecodeXState(xs, nil)
	if err != nil {
		t.Fatal(err)
	}
	y1, z2, z17 := x.YMM(1), x.ZMM(2), x.ZMM(17)
	if x.FCW != 0x37f || x.XMM[0][0] != 0x11 || y1[16] != 0x22 || x.Opmask[1] != 0x5a5a ||
		z2[32] != 0x33 || z17[0] != 0x44 || x.PKRU != 0x55555554 || x.XCR0 != 0x2e7 || x.MXCSR != 0x1f80 {
		t.Errorf("decoded %+v", x)
	}
	// Clear AVX from xstate_bv: ymm high halves read as zero.
	le.PutUint64(xs[512:], 0x2e2)
	x, err = DecodeXState(xs, nil)
	if err != nil || x.YMMH[1][0] != 0 || x.Opmask[1] != 0x5a5a {
		t.Errorf("init-state AVX not zero: %v %v", x.YMMH[1], err)
	}
}
