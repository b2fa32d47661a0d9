package criuimg_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/coredump"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// The real servers of testdata/x86_64/servers (scripts/servers/run.sh,
// trimmed by scripts/trimcheckpoint): each checks against what /proc
// showed of the live processes just before the dump (info/), not against
// criuimg's own output.

// procMap is one line of /proc/PID/maps.
type procMap struct {
	start, end uint64
	perms      string
	inode      string
	path       string
}

var procMapsLine = regexp.MustCompile(`^([0-9a-f]+)-([0-9a-f]+) ([-r][-w][-x][ps]) [0-9a-f]+ [0-9a-f]+:[0-9a-f]+ (\d+)\s*(.*)$`)

func readProcMaps(t *testing.T, path string) []procMap {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []procMap
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := procMapsLine.FindStringSubmatch(l)
		if f == nil {
			t.Fatalf("%s: unexpected line %q", path, l)
		}
		s, _ := strconv.ParseUint(f[1], 16, 64)
		e, _ := strconv.ParseUint(f[2], 16, 64)
		pm := procMap{start: s, end: e, perms: f[3], inode: f[4], path: strings.TrimSpace(f[5])}
		// Kernel 6.18 shows the vDSO's data pages as [vvar] and
		// [vvar_vclock]; CRIU records them as one vvar VMA.
		if n := len(out); n > 0 && pm.path == "[vvar_vclock]" && out[n-1].path == "[vvar]" && out[n-1].end == pm.start {
			out[n-1].end = pm.end
			continue
		}
		out = append(out, pm)
	}
	return out
}

// perms renders a VMA's protection and sharing as /proc/PID/maps does.
func perms(v *criuimg.VMA) string {
	b := []byte("---p")
	if v.Prot&criuimg.ProtRead != 0 {
		b[0] = 'r'
	}
	if v.Prot&criuimg.ProtWrite != 0 {
		b[1] = 'w'
	}
	if v.Prot&criuimg.ProtExec != 0 {
		b[2] = 'x'
	}
	if v.Flags&0x01 != 0 { // MAP_SHARED
		b[3] = 's'
	}
	return string(b)
}

func TestServers(t *testing.T) {
	for _, name := range imgtest.Servers(t) {
		t.Run(name, func(t *testing.T) {
			base := filepath.Join(imgtest.ServersDir(), name)
			m := imgtest.Server(t, name)
			if m.Program != name || len(m.Processes) == 0 {
				t.Fatalf("manifest: program %q with %d processes", m.Program, len(m.Processes))
			}
			ck := imgtest.OpenDir(t, filepath.Join(base, "images"))
			var want []uint32
			for _, mp := range m.Processes {
				want = append(want, mp.Pid)
			}
			if got := ck.Pids(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("pids %v, /proc showed %v", got, want)
			}
			if ck.Procs[0].Pid != m.RootPid {
				t.Errorf("root pid %d, want %d", ck.Procs[0].Pid, m.RootPid)
			}
			jit := 0
			for _, mp := range m.Processes {
				p := imgtest.LoadFrom(t, ck, mp.Pid) // strict
				maps := readProcMaps(t, filepath.Join(base, mp.Maps))
				checkServerProcess(t, base, p, mp.Comm, mp.Threads, maps)
				checkManifestMappings(t, p, maps, mp.AnonExec, mp.SysV)
				jit += len(mp.AnonExec)
			}
			// A JIT runtime has its code cache; the others have no
			// anonymous executable memory at all.
			if (m.JIT != "") != (jit > 0) {
				t.Errorf("jit_code_cache %q, %d anonymous executable mappings", m.JIT, jit)
			}
		})
	}
}

// checkServerProcess compares one loaded process with /proc: comm, thread
// count, every mapping, and the command line in its captured stack.
func checkServerProcess(t *testing.T, base string, p *criuimg.Process, comm string, threads int, maps []procMap) {
	t.Helper()
	if p.Comm != comm || len(p.Threads) != threads {
		t.Errorf("pid %d: comm %q with %d threads, /proc showed %q with %d", p.Pid, p.Comm, len(p.Threads), comm, threads)
	}
	// Every line of /proc/PID/maps is a VMA with the same bounds and
	// protection (CRIU reads smaps itself; [vsyscall] is outside
	// the process's mm for CRIU's pagemap but listed by both).
	vmas := map[[2]uint64]*criuimg.VMA{}
	for i := range p.VMAs {
		vmas[[2]uint64{p.VMAs[i].Start, p.VMAs[i].End}] = &p.VMAs[i]
	}
	for _, pm := range maps {
		v, ok := vmas[[2]uint64{pm.start, pm.end}]
		if !ok {
			t.Errorf("pid %d: no VMA %x-%x %s %s", p.Pid, pm.start, pm.end, pm.perms, pm.path)
			continue
		}
		if got := perms(v); got != pm.perms {
			t.Errorf("pid %d: VMA %x-%x is %s, /proc showed %s", p.Pid, pm.start, pm.end, got, pm.perms)
		}
		if pm.inode != "0" && !strings.HasPrefix(pm.path, "/SYSV") && v.Path != pm.path {
			t.Errorf("pid %d: VMA %x-%x maps %q, /proc showed %q", p.Pid, pm.start, pm.end, v.Path, pm.path)
		}
	}
	if len(maps) != len(p.VMAs) {
		t.Errorf("pid %d: %d VMAs, /proc showed %d mappings", p.Pid, len(p.VMAs), len(maps))
	}
	// argv lives in the stack, which the trimming keeps: the argument
	// area reads as /proc/PID/cmdline did (saved with NULs as newlines).
	want, err := os.ReadFile(filepath.Join(base, "info", fmt.Sprintf("cmdline-%d.txt", p.Pid)))
	if err != nil {
		t.Fatal(err)
	}
	start, end := p.MM.GetMmArgStart(), p.MM.GetMmArgEnd()
	if end <= start || end-start > 1<<20 {
		t.Fatalf("pid %d: argument area %#x-%#x", p.Pid, start, end)
	}
	arg := make([]byte, end-start)
	if _, err := p.Mem.ReadAt(arg, int64(start)); err != nil {
		t.Fatalf("pid %d: argument area: %v", p.Pid, err)
	}
	if arg[len(arg)-1] != 0 {
		// The kernel's rule for a title written past the arguments
		// (setproctitle): up to the first NUL, into the environment
		// area, at most a page.
		envStart, envEnd := p.MM.GetMmEnvStart(), p.MM.GetMmEnvEnd()
		if envStart != end || envEnd < envStart {
			envEnd = end
		}
		arg = make([]byte, min(envEnd-start, 4096))
		if _, err := p.Mem.ReadAt(arg, int64(start)); err != nil {
			t.Fatalf("pid %d: process title: %v", p.Pid, err)
		}
		if i := bytes.IndexByte(arg, 0); i >= 0 {
			arg = arg[:i+1]
		}
	}
	if got := bytes.ReplaceAll(arg, []byte{0}, []byte{'\n'}); !bytes.Equal(got, want) {
		t.Errorf("pid %d: argument area %q, /proc cmdline %q", p.Pid, got, want)
	}
}

// checkManifestMappings checks the manifest's JIT (anonymous executable)
// and SysV mappings against /proc and the checkpoint: each is a line of
// /proc/PID/maps and a VMA with its protection; a JIT code cache keeps
// its captured pages; and the checkpoint has no anonymous executable VMA
// that the manifest does not list.
func checkManifestMappings(t *testing.T, p *criuimg.Process, maps []procMap, anonExec, sysv []imgtest.ServerMapping) {
	t.Helper()
	listed := map[uint64]bool{}
	for _, mm := range append(append([]imgtest.ServerMapping(nil), anonExec...), sysv...) {
		start, err1 := strconv.ParseUint(mm.Start, 0, 64)
		end, err2 := strconv.ParseUint(mm.End, 0, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("pid %d: manifest mapping %+v", p.Pid, mm)
		}
		found := false
		for _, pm := range maps {
			found = found || (pm.start == start && pm.end == end && pm.perms == mm.Perms && pm.path == mm.Path)
		}
		if !found {
			t.Errorf("pid %d: manifest mapping %+v is not in /proc/%d/maps", p.Pid, mm, p.Pid)
		}
		v, ok := p.FindVMA(start)
		if !ok || v.Start != start || v.End != end || perms(v) != mm.Perms {
			t.Errorf("pid %d: manifest mapping %+v: VMA %+v", p.Pid, mm, v)
			continue
		}
		listed[start] = true
	}
	for _, mm := range anonExec {
		start, _ := strconv.ParseUint(mm.Start, 0, 64)
		v, _ := p.FindVMA(start)
		if !v.Anon() {
			t.Errorf("pid %d: JIT mapping %+v is not anonymous in the checkpoint: %+v", p.Pid, mm, v)
		}
		captured := uint64(0)
		err := p.Mem.VMAExtents(v, func(e criuimg.Extent) error {
			if e.Kind == criuimg.Captured {
				captured += e.End - e.Start
			}
			return nil
		})
		if err != nil || captured == 0 {
			t.Errorf("pid %d: JIT mapping %+v: %d captured bytes (%v)", p.Pid, mm, captured, err)
		}
	}
	for _, mm := range sysv {
		start, _ := strconv.ParseUint(mm.Start, 0, 64)
		if v, _ := p.FindVMA(start); v.Status&criuimg.VMAAreaSysVIPC == 0 {
			t.Errorf("pid %d: SysV mapping %+v: VMA status %#x", p.Pid, mm, v.Status)
		}
	}
	for i := range p.VMAs {
		v := &p.VMAs[i]
		if v.Anon() && v.Prot&criuimg.ProtExec != 0 && v.Status&(criuimg.VMAAreaVDSO|criuimg.VMAAreaVsyscall) == 0 && !listed[v.Start] {
			t.Errorf("pid %d: anonymous executable VMA %x-%x not in the manifest", p.Pid, v.Start, v.End)
		}
	}
}

// TestServerJVMCodeHeaps: the JVM's anonymous rwx VMAs are its code heaps
// at the bounds jcmd Compiler.codecache printed before the dump (committed
// part [low, high) of each), with captured code in each.
func TestServerJVMCodeHeaps(t *testing.T) {
	base := filepath.Join(imgtest.ServersDir(), "jvm")
	b, err := os.ReadFile(filepath.Join(base, "info", "codecache.txt"))
	if err != nil {
		t.Fatal(err)
	}
	bounds := regexp.MustCompile(`bounds \[0x([0-9a-f]+), 0x([0-9a-f]+), 0x([0-9a-f]+)\]`).FindAllStringSubmatch(string(b), -1)
	if len(bounds) != 3 {
		t.Fatalf("codecache.txt: %d code heaps, want 3", len(bounds))
	}
	m := imgtest.Server(t, "jvm")
	p := imgtest.LoadProcess(t, filepath.Join(base, "images"), m.RootPid)
	for _, bd := range bounds {
		low, _ := strconv.ParseUint(bd[1], 16, 64)
		high, _ := strconv.ParseUint(bd[2], 16, 64)
		v, ok := p.FindVMA(low)
		if !ok || v.Start != low || v.End != high || perms(v) != "rwxp" || !v.Anon() {
			t.Errorf("code heap [%#x, %#x): VMA %+v", low, high, v)
		}
	}
}

// TestServerPostgresOracle compares the postgres checkpointer with the
// kernel's core of the same frozen process (core.<pid>.gz: SIGABRT, which
// postgres does not catch, after the dump): every byte the trimmed
// checkpoint holds, private and shared (the SysV segment included), equals
// the oracle's, but the thread's struct rseq (the kernel rewrites its cpu
// fields when the thread resumes).
func TestServerPostgresOracle(t *testing.T) {
	base := filepath.Join(imgtest.ServersDir(), "postgres")
	m := imgtest.Server(t, "postgres")
	if len(m.Oracles) != 1 {
		t.Fatalf("manifest: %d oracles, want 1", len(m.Oracles))
	}
	o := m.Oracles[0]
	path := imgtest.Gunzip(t, filepath.Join(base, o.File), t.TempDir())
	oracle, err := coredump.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer oracle.Close()

	p := imgtest.LoadProcess(t, filepath.Join(base, "images"), o.Pid)
	r := p.Threads[0].Core.GetThreadCore().GetRseqEntry()
	rseqStart := r.GetRseqAbiPointer()
	rseqEnd := rseqStart + uint64(r.GetRseqAbiSize())
	var compared, sysv uint64
	for i := range p.VMAs {
		v := &p.VMAs[i]
		err := p.Mem.VMAExtents(v, func(e criuimg.Extent) error {
			if e.Kind != criuimg.Captured {
				return nil
			}
			got := make([]byte, e.End-e.Start)
			if _, err := p.Mem.ReadAt(got, int64(e.Start)); err != nil {
				return err
			}
			want, err := oracle.ReadAt(e.Start, len(got))
			if err != nil {
				return fmt.Errorf("oracle: %w", err)
			}
			for a := max(e.Start, rseqStart); a < min(e.End, rseqEnd); a++ {
				got[a-e.Start], want[a-e.Start] = 0, 0
			}
			if j := firstDiff(got, want); j >= 0 {
				return fmt.Errorf("byte %#x: %#x, oracle %#x", e.Start+uint64(j), got[j], want[j])
			}
			compared += e.End - e.Start
			if v.Status&criuimg.VMAAreaSysVIPC != 0 {
				sysv += e.End - e.Start
			}
			return nil
		})
		if err != nil {
			t.Errorf("VMA %x-%x %s: %v", v.Start, v.End, v.Path, err)
		}
	}
	// The SysV segment: criuimg's memory view does not read SysV shared
	// memory yet, so its pages are read from the shmem pagemap of the
	// segment's shmid (from ipcs -m, by the key of /SYSV<key>).
	ipcs, err := os.ReadFile(filepath.Join(base, "info", "ipcs-m.txt"))
	if err != nil {
		t.Fatal(err)
	}
	src := imgtest.DirSource(t, filepath.Join(base, "images"))
	for _, mp := range m.Processes {
		if mp.Pid != o.Pid {
			continue
		}
		if len(mp.SysV) != 1 {
			t.Fatalf("pid %d: %d SysV mappings in the manifest, want 1", mp.Pid, len(mp.SysV))
		}
		sm := mp.SysV[0]
		start, _ := strconv.ParseUint(sm.Start, 0, 64)
		if v, ok := p.FindVMA(start); !ok || v.Status&criuimg.VMAAreaSysVIPC == 0 {
			t.Fatalf("SysV mapping %+v: VMA %+v", sm, v)
		}
		key, ok := strings.CutPrefix(strings.TrimSuffix(sm.Path, " (deleted)"), "/SYSV")
		if !ok {
			t.Fatalf("SysV mapping %+v: no key", sm)
		}
		shmid := ""
		for _, l := range strings.Split(string(ipcs), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[0] == "0x"+key {
				shmid = f[1]
			}
		}
		idx, err := criuimg.ReadPageIndex(src, "pagemap-shmem-"+shmid+".img", p.PageSize)
		if err != nil {
			t.Fatalf("SysV key 0x%s shmid %q: %v", key, shmid, err)
		}
		defer idx.Close()
		for _, r := range idx.Runs {
			got := make([]byte, r.Len)
			if _, err := idx.Pages.ReadAt(got, r.Offset); err != nil {
				t.Fatal(err)
			}
			want, err := oracle.ReadAt(start+r.Addr, len(got))
			if err != nil {
				t.Fatalf("oracle: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("SysV segment at %#x differs from the oracle", start+r.Addr)
			}
			if bytes.Count(got, []byte{0}) == len(got) {
				t.Errorf("SysV segment at %#x is all zeros", start+r.Addr)
			}
			sysv += r.Len
		}
	}
	if compared < 256<<10 || sysv == 0 {
		t.Errorf("compared %d captured bytes, %d of them SysV shared memory", compared, sysv)
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
