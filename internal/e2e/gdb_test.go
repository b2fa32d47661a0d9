package e2e

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// gdbPath returns gdb (gdb-multiarch for a foreign architecture) or skips.
func gdbPath(t *testing.T, arch string) string {
	t.Helper()
	names := []string{"gdb-multiarch"}
	if (arch == "x86_64" && runtime.GOARCH == "amd64") || (arch == "arm64" && runtime.GOARCH == "arm64") {
		names = []string{"gdb", "gdb-multiarch"}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skipf("%s not installed: gdb checks skipped", strings.Join(names, " or "))
	return ""
}

// counterExes maps counter's comms to the Debian files they ran.
var counterExes = map[string]string{
	"bash":    "/bin/bash",
	"python3": "/usr/bin/python3.11",
	"tee":     "/usr/bin/tee",
}

// executable returns the binary gdb needs for the process, or skips.
func (p *pair) executable(t *testing.T) string {
	t.Helper()
	if p.fx.name != "counter" {
		exe := filepath.Join(p.fx.dir(), "exe", p.fx.name)
		if p.fx.exe != "" {
			exe = filepath.Join(p.fx.dir(), p.fx.exe)
		}
		if p.fx.arch == "arm64" && p.fx.name == "pipeline" {
			exe = filepath.Join(p.fx.dir(), "exe", p.proc.comm)
		}
		if _, err := os.Stat(exe); err != nil {
			t.Fatalf("fixture executable: %v", err)
		}
		return exe
	}
	exe := counterExes[p.proc.comm]
	var want string
	for _, kv := range p.info.ids {
		if f := strings.Fields(kv); len(f) == 2 && f[0] == exe {
			want = f[1]
		}
	}
	if want == "" {
		t.Fatalf("manifest has no build-id for %s", exe)
	}
	// The backtraces go through libc and ld.so too: all must be Debian's.
	for _, kv := range p.info.ids {
		f := strings.Fields(kv)
		if len(f) != 2 {
			continue
		}
		got, err := buildID(f[0])
		if err != nil {
			t.Skipf("host lacks %s (manifest build-id %s): %v", f[0], f[1], err)
		}
		if got != f[1] {
			t.Skipf("host %s has build-id %s, the fixture ran %s: backtraces would not be comparable", f[0], got, f[1])
		}
	}
	return exe
}

// buildID reads the GNU build-id note of an ELF file.
func buildID(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	for _, s := range f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		d, err := s.Data()
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", path, s.Name, err)
		}
		for len(d) >= 12 {
			nsz, dsz, typ := f.ByteOrder.Uint32(d), f.ByteOrder.Uint32(d[4:]), f.ByteOrder.Uint32(d[8:])
			no := 12 + (uint64(nsz)+3)&^3
			end := no + (uint64(dsz)+3)&^3
			if no+uint64(dsz) > uint64(len(d)) {
				break
			}
			if typ == 3 && nsz == 4 && string(d[12:15]) == "GNU" {
				return hex.EncodeToString(d[no : no+uint64(dsz)]), nil
			}
			if end > uint64(len(d)) {
				break
			}
			d = d[end:]
		}
	}
	return "", fmt.Errorf("%s: no GNU build-id", path)
}

// runGDB runs gdb in batch mode on exe and core with the given commands.
func (p *pair) runGDB(t *testing.T, gdb, exe, core string, cmds ...string) string {
	t.Helper()
	args := []string{"-batch", "-nx"}
	if p.fx.arch == "arm64" {
		// -iex: in force before the core is loaded, so that gdb finds the
		// guest's libraries on its first look.
		if sr := sysroot(t, p.fx); sr != "" {
			args = append(args, "-iex", "set sysroot "+sr)
		}
	}
	for _, c := range cmds {
		args = append(args, "-ex", c)
	}
	args = append(args, exe, core)
	cmd := exec.Command(gdb, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "LC_ALL=C", "DEBUGINFOD_URLS=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("gdb %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

var (
	threadHdr = regexp.MustCompile(`^Thread \d+ \((?:Thread 0x[0-9a-f]+ )?\(?LWP (\d+)\)?`)
	frameRe   = regexp.MustCompile(`^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(`)
)

// backtraces parses `thread apply all bt`: function names per LWP.
func backtraces(out string) map[int64][]string {
	bt := map[int64][]string{}
	var cur int64 = -1
	for _, l := range strings.Split(out, "\n") {
		if m := threadHdr.FindStringSubmatch(l); m != nil {
			cur, _ = strconv.ParseInt(m[1], 10, 64)
			bt[cur] = []string{}
			continue
		}
		if m := frameRe.FindStringSubmatch(l); m != nil && cur >= 0 {
			bt[cur] = append(bt[cur], m[1])
		}
	}
	return bt
}

// testGDB (e): gdb shows the same backtraces on both cores, and on
// threads-c the vec-1 vector registers of the manifest from our core.
func (p *pair) testGDB(t *testing.T) {
	gdb := gdbPath(t, p.fx.arch)
	exe := p.executable(t)
	const bt = "thread apply all bt"
	ours := backtraces(p.runGDB(t, gdb, exe, p.oursPath, bt))
	orc := backtraces(p.runGDB(t, gdb, exe, p.oraclePath, bt))
	if len(orc) != len(p.proc.tids) {
		t.Fatalf("gdb found %d threads in the oracle, manifest %d: %v", len(orc), len(p.proc.tids), orc)
	}
	for tid, w := range orc {
		o, ok := ours[tid]
		switch {
		case !ok:
			t.Errorf("gdb shows no LWP %d in our core", tid)
		case len(w) == 0:
			t.Errorf("gdb shows no frame for LWP %d in the oracle", tid)
		case !reflect.DeepEqual(o, w):
			t.Errorf("LWP %d backtrace:\nours   %v\noracle %v", tid, o, w)
		}
	}
	if p.info.vec1 != "" && !p.selfCheck {
		p.checkGDBVectors(t, gdb, exe)
	}
	if p.info.arm64Vec != nil {
		// On arm64 gdb reads the FP/SIMD state of both cores: the
		// oracle too must show the facts' values.
		p.checkGDBVectorsARM64(t, gdb, exe)
	}
}

var (
	infoThreadRe = regexp.MustCompile(`(?m)^\*?\s+(\d+)\s+(?:Thread 0x[0-9a-f]+ \()?LWP (\d+)`)
	valueRe      = regexp.MustCompile(`0x[0-9a-f]+`)
)

// gdbThread returns the thread id of the thread named name and its number
// in gdb's info threads on our core, or fails t.
func (p *pair) gdbThread(t *testing.T, gdb, exe, name string) (int64, string) {
	t.Helper()
	var tid int64 = -1
	for id, n := range p.proc.threadName {
		if n == name {
			tid = id
		}
	}
	if tid < 0 {
		t.Fatalf("no thread named %q", name)
	}
	out := p.runGDB(t, gdb, exe, p.oursPath, "info threads")
	num := ""
	for _, m := range infoThreadRe.FindAllStringSubmatch(out, -1) {
		if m[2] == strconv.FormatInt(tid, 10) {
			num = m[1]
		}
	}
	if num == "" {
		t.Fatalf("gdb's info threads shows no LWP %d:\n%s", tid, out)
	}
	return tid, num
}

// gdbPrint evaluates exprs (print commands) in gdb's thread num of our
// core and returns what follows "$N = " of each value, by N (the i-th
// expression's is N = i+1), and gdb's output.
func (p *pair) gdbPrint(t *testing.T, gdb, exe, num string, exprs []string) (map[int]string, string) {
	t.Helper()
	out := p.runGDB(t, gdb, exe, p.oursPath, append([]string{"thread " + num}, exprs...)...)
	vals := map[int]string{}
	for _, l := range strings.Split(out, "\n") {
		var n int
		var rest string
		if k, _ := fmt.Sscanf(l, "$%d = ", &n); k == 1 {
			if i := strings.Index(l, "= "); i >= 0 {
				rest = l[i+2:]
			}
			vals[n] = rest
		}
	}
	return vals, out
}

// checkGDBVectors prints the vec-1 thread's xmm0, ymm1, zmm2, zmm17 and k1
// from our core with gdb and compares them with the manifest. (gdb 13 cannot
// show them on the oracle, whose XSAVE layout is AMD's.)
func (p *pair) checkGDBVectors(t *testing.T, gdb, exe string) {
	t.Helper()
	tid, num := p.gdbThread(t, gdb, exe, "vec-1")
	regs := []struct{ name, expr string }{
		{"xmm0", "p/x $xmm0.v2_int64"},
		{"ymm1", "p/x $ymm1.v4_int64"},
		{"zmm2", "p/x $zmm2.v8_int64"},
		{"zmm17", "p/x $zmm17.v8_int64"},
		{"k1", "p/x $k1"},
	}
	var exprs []string
	for _, r := range regs {
		exprs = append(exprs, r.expr)
	}
	vals, out := p.gdbPrint(t, gdb, exe, num, exprs)
	for i, r := range regs {
		got := valueRe.FindAllString(vals[i+1], -1)
		var want []uint64
		if r.name == "k1" {
			want = []uint64{k1Value(t, p.info.vec1)}
		} else {
			want = vecLanes(t, p.info.vec1, r.name)
		}
		var g []uint64
		for _, s := range got {
			v, _ := strconv.ParseUint(s[2:], 16, 64)
			g = append(g, v)
		}
		if !reflect.DeepEqual(g, want) {
			t.Errorf("gdb %q on vec-1 (LWP %d) of our core: %q, manifest %#x\n%s", r.expr, tid, vals[i+1], want, out)
		}
	}
}

// vecLanes parses "name {a,b,...}" of the manifest's vec-1 registers;
// "first,...,last" stands for 8 lanes in arithmetic progression.
func vecLanes(t *testing.T, spec, name string) []uint64 {
	t.Helper()
	m := regexp.MustCompile(`\b` + name + ` \{([^}]*)\}`).FindStringSubmatch(spec)
	if m == nil {
		t.Fatalf("manifest has no %s in %q", name, spec)
	}
	parts := strings.Split(m[1], ",")
	if len(parts) == 3 && parts[1] == "..." {
		first, err1 := strconv.ParseUint(strings.TrimPrefix(parts[0], "0x"), 16, 64)
		last, err2 := strconv.ParseUint(strings.TrimPrefix(parts[2], "0x"), 16, 64)
		step := (last - first) / 7
		if err1 != nil || err2 != nil || step*7 != last-first {
			t.Fatalf("manifest %s %q: no 8-lane progression", name, m[1])
		}
		lanes := make([]uint64, 8)
		for i := range lanes {
			lanes[i] = first + uint64(i)*step
		}
		return lanes
	}
	var lanes []uint64
	for _, s := range parts {
		v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		if err != nil {
			t.Fatalf("manifest %s lane %q: %v", name, s, err)
		}
		lanes = append(lanes, v)
	}
	return lanes
}

func k1Value(t *testing.T, spec string) uint64 {
	t.Helper()
	m := regexp.MustCompile(`\bk1 0x([0-9a-f]+)`).FindStringSubmatch(spec)
	if m == nil {
		t.Fatalf("manifest has no k1 in %q", spec)
	}
	v, _ := strconv.ParseUint(m[1], 16, 64)
	return v
}
