package inspect

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/rootfs"
)

var testdata = imgtest.Testdata()

// inspectDir opens a fixture's image directory and inspects it.
func inspectDir(t *testing.T, dir string, opts Options) *Report {
	t.Helper()
	return inspectWithRoot(t, dir, "", opts)
}

// inspectWithRoot is inspectDir with the root filesystem root (none if
// "") supplying mapped files, as 'inspect --root' opens it.
func inspectWithRoot(t *testing.T, dir, root string, opts Options) *Report {
	t.Helper()
	ck := imgtest.OpenDir(t, dir)
	if opts.Meta == nil {
		_, opts.Meta = openArchive(t, dir) // the statistics beside the images
	}
	if root != "" {
		opts.Files = openRoot(t, root, ck)
	}
	rep, err := Inspect(ck, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Every report must survive the JSON round trip the command makes.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("JSON round trip: %v", err)
	}
	checkStableKeys(t, rep)
	return rep
}

// inspectX86 reads the manifest of the x86_64 fixture name and inspects
// its images with opts; it returns the fixture's directory too.
func inspectX86(t *testing.T, name string, opts Options) (string, manifest, *Report) {
	t.Helper()
	dir := filepath.Join(testdata, "x86_64", name)
	var m manifest
	imgtest.ReadJSON(t, filepath.Join(dir, "manifest.json"), &m)
	return dir, m, inspectDir(t, filepath.Join(dir, "images"), opts)
}

// manifest is the part of an x86_64 fixture's manifest.json the tests use.
type manifest struct {
	Processes []struct {
		Pid     uint32 `json:"pid"`
		PPid    uint32 `json:"ppid"`
		Comm    string `json:"comm"`
		State   string `json:"state"`
		Threads []struct {
			Tid  uint32 `json:"tid"`
			Comm string `json:"comm"`
		} `json:"threads"`
	} `json:"processes"`
	Argv string `json:"argv"`
	Env  string `json:"env"`
}

func findProc(t *testing.T, rep *Report, pid uint32) *Process {
	t.Helper()
	for i := range rep.Processes {
		if rep.Processes[i].Pid == pid {
			return &rep.Processes[i]
		}
	}
	t.Fatalf("pid %d not in the report", pid)
	return nil
}

// shellSplit splits a command line written with single quotes, as the
// manifests write argv.
func shellSplit(s string) []string {
	var out []string
	var cur strings.Builder
	in, quoted := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				out = append(out, cur.String())
				cur.Reset()
			}
			in = false
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

func TestThreadsCX86(t *testing.T) {
	dir, m, rep := inspectX86(t, "threads-c", Options{Env: true})
	if rep.Arch != "x86_64" {
		t.Errorf("arch %q", rep.Arch)
	}
	mp := m.Processes[0]
	p := findProc(t, rep, mp.Pid)

	// The full argv from the argument pages; <ready-file> varies.
	want := strings.Fields(m.Argv)
	if len(p.Argv) != len(want) {
		t.Fatalf("argv %q, want %d arguments like %q", p.Argv, len(want), want)
	}
	for i, w := range want {
		if w != "<ready-file>" && p.Argv[i] != w {
			t.Errorf("argv[%d] = %q, want %q", i, p.Argv[i], w)
		}
	}
	if n := len(strings.Join(p.Argv, " ")); n <= 80 {
		t.Errorf("command line of %d bytes; the fixture's is longer than 80 (no psargs cut)", n)
	}
	for _, e := range strings.Fields(m.Env) {
		if !slices.Contains(p.Env, e) {
			t.Errorf("env %q lacks %q", p.Env, e)
		}
	}
	if !slices.Contains(p.Env, "THREADS_ENV_TOKEN=env_token_0d5f") {
		t.Errorf("env %q lacks THREADS_ENV_TOKEN", p.Env)
	}

	// The syscall each thread waits in (README: pthread_join, a raw
	// futex wait, clock_nanosleep, read).
	calls := map[string]struct{ name, state string }{
		"threads-c": {"futex", SyscallRestart},
		"vec-1":     {"futex", SyscallRestart},
		"sleeper":   {"clock_nanosleep", SyscallInterrupted},
		"reader":    {"read", SyscallRestart},
	}
	if len(p.Threads) != len(mp.Threads) || p.ThreadCount != len(mp.Threads) {
		t.Fatalf("%d threads (count %d), manifest has %d", len(p.Threads), p.ThreadCount, len(mp.Threads))
	}
	for i, mt := range mp.Threads {
		th := p.Threads[i]
		t.Run(mt.Comm, func(t *testing.T) {
			if th.Tid != mt.Tid || th.Name != mt.Comm {
				t.Errorf("thread %d %q, want %d %q", th.Tid, th.Name, mt.Tid, mt.Comm)
			}
			w := calls[mt.Comm]
			if th.Syscall == nil {
				t.Fatalf("no syscall, want %s", w.name)
			}
			if th.Syscall.Name != w.name || th.Syscall.State != w.state {
				t.Errorf("syscall %s (%s), want %s (%s)", th.Syscall.Name, th.Syscall.State, w.name, w.state)
			}
			if w.state == SyscallRestart && !strings.Contains(th.Syscall.Note, "CRIU rewound the call; it will be restarted on restore") {
				t.Errorf("note %q", th.Syscall.Note)
			}
		})
	}
	// vec-1 runs in the executable's text, whose page CRIU captured: the
	// instruction at its PC is the syscall itself.
	if th := p.Threads[1]; th.Code != CodeCaptured || th.Instruction != "syscall" {
		t.Errorf("vec-1: code %q, instruction %q; want the captured syscall", th.Code, th.Instruction)
	}
	if th := p.Threads[0]; th.Code != CodeNotCaptured || th.Instruction != "" {
		t.Errorf("main thread in libc: code %q, instruction %q; want code not captured", th.Code, th.Instruction)
	}
	if p.Exe != "/opt/fixture/bin/threads-c" {
		t.Errorf("exe %q", p.Exe)
	}
	if rep.DumpStats == nil {
		t.Error("no dump statistics")
	}

	// Without --env, no environment.
	rep = inspectDir(t, filepath.Join(dir, "images"), Options{})
	if env := rep.Processes[0].Env; env != nil {
		t.Errorf("env without Options.Env: %q", env)
	}
}

func TestStaticC(t *testing.T) {
	_, m, rep := inspectX86(t, "static-c", Options{})
	if len(rep.Processes) != len(m.Processes) {
		t.Fatalf("%d processes, manifest has %d", len(rep.Processes), len(m.Processes))
	}
	alive := 0
	for _, mp := range m.Processes {
		p := findProc(t, rep, mp.Pid)
		if p.PPid != mp.PPid || p.Comm != mp.Comm {
			t.Errorf("pid %d: ppid %d comm %q, want %d %q", mp.Pid, p.PPid, p.Comm, mp.PPid, mp.Comm)
		}
		switch {
		case strings.HasPrefix(mp.State, "zombie"):
			if p.State != "zombie" {
				t.Errorf("pid %d: state %q, want zombie", mp.Pid, p.State)
			}
			// src/static.c: the child that becomes the zombie calls _exit(7).
			if p.ExitCode == nil || *p.ExitCode != 7 {
				t.Errorf("zombie %d: exit code %v, want 7", mp.Pid, p.ExitCode)
			}
			if len(p.Threads) != 0 || p.Memory != nil {
				t.Errorf("zombie %d has threads or memory", mp.Pid)
			}
		case mp.State == "Alive":
			alive++
			if p.State != "alive" {
				t.Errorf("pid %d: state %q, want alive", mp.Pid, p.State)
			}
			if want := strings.Fields(m.Argv); len(p.Argv) != len(want) || p.Argv[2] != want[2] {
				t.Errorf("pid %d: argv %q, want like %q", mp.Pid, p.Argv, want)
			}
			// The 64 KiB MAP_SHARED anonymous mapping.
			if p.Memory == nil || p.Memory.SharedBytes < 64<<10 {
				t.Errorf("pid %d: memory %+v, want 64 KiB shared", mp.Pid, p.Memory)
			}
		}
	}
	if alive != 2 {
		t.Errorf("%d live processes in the manifest, want 2", alive)
	}
}

func TestCounter(t *testing.T) {
	_, m, rep := inspectX86(t, "counter", Options{})
	bash := findProc(t, rep, m.Processes[0].Pid)
	if want := shellSplit(m.Argv); !slices.Equal(bash.Argv, want) {
		t.Errorf("bash argv %q, want %q", bash.Argv, want)
	}
	if got := ShellQuote(bash.Argv); got != m.Argv {
		t.Errorf("quoted command line %q, want %q", got, m.Argv)
	}
	s := rep.DumpStats
	if s == nil || (s.FrozenTimeUS == 0 && s.PagesWritten == 0) {
		t.Fatalf("dump stats %+v: want frozen time or pages written", s)
	}
	if s.PagesWritten > s.PagesScanned {
		t.Errorf("pages written %d > scanned %d", s.PagesWritten, s.PagesScanned)
	}
	for _, mp := range m.Processes {
		p := findProc(t, rep, mp.Pid)
		if p.Comm != mp.Comm || p.PPid != mp.PPid || p.State != "alive" {
			t.Errorf("pid %d: %q ppid %d %s; want %q ppid %d", mp.Pid, p.Comm, p.PPid, p.State, mp.Comm, mp.PPid)
		}
	}
	// counter.py listens on 127.0.0.1:8088 (src/counter.py).
	py := findProc(t, rep, m.Processes[1].Pid)
	found := false
	for _, f := range py.Files {
		if s := f.Socket; s != nil && s.Family == "inet" && s.Protocol == "tcp" && s.Local == "127.0.0.1:8088" && s.State == "LISTEN" {
			found = true
		}
	}
	if !found {
		t.Errorf("python3: no listening socket 127.0.0.1:8088 in %+v", py.Files)
	}
}

// facts is the part of an arm64 fixture's facts.json the tests use.
type facts struct {
	Processes []struct {
		Pid       uint32   `json:"pid"`
		Argv      []string `json:"argv"`
		CmdlineLn int      `json:"cmdline_len"`
		Threads   []struct {
			Tid     uint32 `json:"tid"`
			Name    string `json:"name"`
			Syscall struct {
				Nr int64  `json:"nr"`
				PC string `json:"pc"`
			} `json:"proc_syscall_before_dump"`
		} `json:"threads"`
	} `json:"processes"`
}

func TestThreadsCARM64(t *testing.T) {
	dir := filepath.Join(testdata, "arm64/threads-c")
	var f facts
	imgtest.ReadJSON(t, filepath.Join(dir, "facts.json"), &f)
	fp := f.Processes[0]
	// facts.json description: main in pthread_join (futex), vec-1 in a raw
	// futex wait, sleeper in clock_nanosleep, reader in read.
	names := map[string]string{"threads-c": "futex", "vec-1": "futex", "sleeper": "clock_nanosleep", "reader": "read"}
	for _, tc := range []struct {
		name     string
		sysroot  string
		verified int // threads whose svc is seen (code in libc from the sysroot)
	}{
		{"images only", "", 0},
		{"with sysroot", filepath.Join(dir, "sysroot"), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := inspectWithRoot(t, filepath.Join(dir, "images"), tc.sysroot, Options{})
			if rep.Arch != "aarch64" {
				t.Errorf("arch %q", rep.Arch)
			}
			p := findProc(t, rep, fp.Pid)
			if !slices.Equal(p.Argv, fp.Argv) {
				t.Errorf("argv %q, want %q", p.Argv, fp.Argv)
			}
			if n := len(strings.Join(p.Argv, "\x00")) + 1; n != fp.CmdlineLn {
				t.Errorf("argument area of %d bytes, want %d", n, fp.CmdlineLn)
			}
			if len(p.Threads) != len(fp.Threads) {
				t.Fatalf("%d threads, want %d", len(p.Threads), len(fp.Threads))
			}
			verified := 0
			for i, ft := range fp.Threads {
				th := p.Threads[i]
				if th.Tid != ft.Tid || th.Name != ft.Name {
					t.Errorf("thread %d %q, want %d %q", th.Tid, th.Name, ft.Tid, ft.Name)
				}
				s := th.Syscall
				if s == nil {
					t.Errorf("%s: no syscall, want %s", ft.Name, names[ft.Name])
					continue
				}
				if s.Nr != ft.Syscall.Nr || s.Name != names[ft.Name] {
					t.Errorf("%s: syscall %d %s, want %d %s", ft.Name, s.Nr, s.Name, ft.Syscall.Nr, names[ft.Name])
				}
				// /proc showed pc after the svc; the kernel rewound it by 4.
				var hex Hex
				if err := hex.UnmarshalJSON([]byte(`"` + ft.Syscall.PC + `"`)); err != nil {
					t.Fatal(err)
				}
				if th.PC != hex-4 {
					t.Errorf("%s: pc %s, want %s - 4", ft.Name, th.PC, hex)
				}
				if th.Code == CodeSysroot {
					verified++
					if th.Instruction != "svc #0x0" || !strings.HasPrefix(s.Evidence, "svc #0 at pc") {
						t.Errorf("%s: instruction %q evidence %q", ft.Name, th.Instruction, s.Evidence)
					}
				} else if !strings.Contains(s.Evidence, "not verified") {
					t.Errorf("%s: evidence %q should say the svc is not verified", ft.Name, s.Evidence)
				}
			}
			if verified != tc.verified {
				t.Errorf("%d threads with code from the sysroot, want %d", verified, tc.verified)
			}
		})
	}
}

// TestEveryFixture inspects every directory fixture: dump statistics,
// a name for every thread's syscall, and a text report.
func TestEveryFixture(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(testdata, "*/*/images"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(filepath.Dir(dir)), func(t *testing.T) {
			rep := inspectDir(t, dir, Options{Env: true})
			if rep.DumpStats == nil || rep.DumpStats.PagesWritten == 0 {
				t.Errorf("dump stats %+v", rep.DumpStats)
			}
			for _, p := range rep.Processes {
				if p.State != "alive" {
					continue
				}
				if len(p.Argv) == 0 || p.Memory == nil || p.Memory.CapturedBytes == 0 || p.Cwd == "" || len(p.Files) == 0 {
					t.Errorf("pid %d: argv %q memory %+v cwd %q files %d", p.Pid, p.Argv, p.Memory, p.Cwd, len(p.Files))
				}
				for _, th := range p.Threads {
					if th.Syscall != nil && th.Syscall.Name == "" {
						t.Errorf("pid %d thread %d: syscall %d has no name", p.Pid, th.Tid, th.Syscall.Nr)
					}
				}
				if len(p.Warnings) > 0 {
					t.Logf("pid %d: warnings %q", p.Pid, p.Warnings)
				}
			}
			var sb strings.Builder
			if err := WriteText(&sb, rep); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sb.String(), "Process tree") {
				t.Errorf("text report lacks the process tree")
			}
		})
	}
}

// podmanManifest is testdata/x86_64/podman-counter/manifest.json.
type podmanManifest struct {
	Files     map[string]string `json:"files"`
	Container struct {
		Name     string `json:"name"`
		Hostname string `json:"hostname"`
		Image    string `json:"image"`
	} `json:"container"`
	Processes []struct {
		Pid  uint32   `json:"pid"`
		PPid uint32   `json:"ppid"`
		Comm string   `json:"comm"`
		Argv []string `json:"argv"`
	} `json:"processes"`
	RootfsDiff []string `json:"rootfs_diff"`
}

// extractGzipArchive extracts a gzip Podman archive into a new directory
// with the standard library (the zstd one needs the archive package).
func extractGzipArchive(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return imgtest.Untar(t, tar.NewReader(zr))
}

func checkPodman(t *testing.T, m podmanManifest, rep *Report) {
	t.Helper()
	c := rep.Container
	if c == nil {
		t.Fatal("no container metadata")
	}
	if c.Name != m.Container.Name || c.Image != m.Container.Image || c.Hostname != m.Container.Hostname || c.Engine != "Podman" {
		t.Errorf("container %+v, want name %q image %q hostname %q (Podman)", c, m.Container.Name, m.Container.Image, m.Container.Hostname)
	}
	if c.Created == "" || c.ID == "" || c.Runtime == "" {
		t.Errorf("container %+v lacks created, id or runtime", c)
	}
	if len(c.IPs) != 0 {
		t.Errorf("network none, but IPs %q", c.IPs)
	}
	for _, mp := range m.Processes {
		p := findProc(t, rep, mp.Pid)
		if p.Comm != mp.Comm || p.PPid != mp.PPid || !slices.Equal(p.Argv, mp.Argv) {
			t.Errorf("pid %d: %q ppid %d argv %q; want %q ppid %d argv %q", mp.Pid, p.Comm, p.PPid, p.Argv, mp.Comm, mp.PPid, mp.Argv)
		}
	}
	if rep.DumpStats == nil || rep.DumpStats.PagesWritten == 0 {
		t.Errorf("dump stats %+v", rep.DumpStats)
	}
	if len(rep.Mounts) == 0 {
		t.Error("no mounts (the archive has mountpoints-*.img)")
	}
	var diff []string
	for _, d := range rep.RootfsDiff {
		diff = append(diff, d.Path)
	}
	for _, want := range m.RootfsDiff {
		ok := false
		for _, d := range diff {
			if m, _ := filepath.Match(want, d); m {
				ok = true
			}
		}
		if !ok {
			t.Errorf("rootfs diff %q lacks %q", diff, want)
		}
	}
}

// TestPodmanExtracted inspects the gzip Podman archive extracted to a
// directory: images from checkpoint/, metadata from the files around it.
func TestPodmanExtracted(t *testing.T) {
	dir := filepath.Join(testdata, "x86_64/podman-counter")
	var m podmanManifest
	imgtest.ReadJSON(t, filepath.Join(dir, "manifest.json"), &m)
	root := extractGzipArchive(t, filepath.Join(dir, "checkpoint-counters_default-counter-gzip.tar.gz"))
	rep := inspectDir(t, filepath.Join(root, "checkpoint"), Options{Meta: os.DirFS(root)})
	checkPodman(t, m, rep)
	if rep.Container.CheckpointedFrom != "mtime of stats-dump" {
		t.Errorf("checkpointed %q from %q", rep.Container.Checkpointed, rep.Container.CheckpointedFrom)
	}
}

// TestPodmanArchive inspects both Podman archives (gzip and zstd) as
// files, through package archive.
func TestPodmanArchive(t *testing.T) {
	dir := filepath.Join(testdata, "x86_64/podman-counter")
	var m podmanManifest
	imgtest.ReadJSON(t, filepath.Join(dir, "manifest.json"), &m)
	for name := range m.Files {
		t.Run(name, func(t *testing.T) {
			src, meta := openArchive(t, filepath.Join(dir, name))
			ck, err := criuimg.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Inspect(ck, Options{Meta: meta})
			if err != nil {
				t.Fatal(err)
			}
			checkPodman(t, m, rep)
		})
	}
}

// openRoot opens root for ck as a MappedFiles, closed when the test ends.
func openRoot(t *testing.T, root string, ck *criuimg.Checkpoint) MappedFiles {
	t.Helper()
	r, err := rootfs.Open(root, ck)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestMemoryKind: every kind of criuimg's classification is counted under
// one of the summary's kinds, the kernel's special ones together.
func TestMemoryKind(t *testing.T) {
	want := map[criuimg.VMAKind]string{
		criuimg.KindAnon: KindAnon, criuimg.KindFile: KindFile, criuimg.KindStack: KindStack, criuimg.KindHeap: KindHeap,
		criuimg.KindShared: KindShared, criuimg.KindSysV: KindSysV, criuimg.KindVDSO: KindSpecial, criuimg.KindVVAR: KindSpecial,
		criuimg.KindVsyscall: KindSpecial, criuimg.KindAIO: KindSpecial, criuimg.KindSocket: KindSpecial,
	}
	for k := criuimg.KindAnon; k <= criuimg.KindSocket; k++ {
		if got := MemoryKind(k); got != want[k] {
			t.Errorf("MemoryKind(%v) = %q, want %q", k, got, want[k])
		}
	}
}
