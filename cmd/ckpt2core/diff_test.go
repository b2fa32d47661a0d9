package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/ckptdiff"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

func runDiffJSON(t *testing.T, a, b string, extra ...string) (int, ckptdiff.Result) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"diff", "--json", a, b}, extra...), &out, &errOut)
	var res ckptdiff.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("diff %s %s: exit %d, %v\nstdout: %s\nstderr: %s", a, b, code, err, out.String(), errOut.String())
	}
	return code, res
}

// TestDiffIntrusion holds diff of the intrusion pair to the fixture's
// manifest (computed with crit from the archives): every process, socket,
// special file, memfd and rw-layer file new in AFTER is in the diff, and
// what BEFORE had is neither removed nor reported as another.
func TestDiffIntrusion(t *testing.T) {
	m := imgtest.Intrusion(t)
	bva := m.BeforeVsAfter
	before, after := filepath.Join(intrusionDir, "before.tar"), filepath.Join(intrusionDir, "after.tar.zst")
	code, res := runDiffJSON(t, before, after)
	if code != diffDiffer {
		t.Fatalf("exit %d, want %d", code, diffDiffer)
	}
	if res.Container == nil || !res.Container.Same || res.Container.CheckpointedA == "" || res.Container.CheckpointedA >= res.Container.CheckpointedB {
		t.Errorf("container %+v: want the same container, checkpointed before then after", res.Container)
	}
	procs := map[uint32]ckptdiff.ProcessDiff{}
	for _, d := range res.Processes {
		procs[d.Pid] = d
	}
	if len(bva.Processes.AfterOnly) == 0 || len(bva.Sockets.AfterOnly) == 0 {
		t.Fatal("manifest lists nothing new")
	}
	for _, want := range bva.Processes.AfterOnly {
		d, ok := procs[want.Pid]
		if !ok || d.Change != ckptdiff.Added {
			t.Errorf("pid %d (%s): not added in the diff (%+v)", want.Pid, want.Comm, d)
			continue
		}
		argv := d.Argv
		for len(argv) > 0 && argv[len(argv)-1] == "" {
			argv = argv[:len(argv)-1] // the implant zeroed the rest of its argument area
		}
		if d.PPid != want.PPid || d.Comm != want.Comm || !slices.Equal(argv, want.Argv) {
			t.Errorf("pid %d: ppid %d comm %q argv %q; manifest: ppid %d comm %q argv %q", want.Pid, d.PPid, d.Comm, argv, want.PPid, want.Comm, want.Argv)
		}
		if !strings.HasPrefix(want.Exe, "memfd:") && d.Exe != want.Exe {
			t.Errorf("pid %d: exe %q, manifest %q", want.Pid, d.Exe, want.Exe)
		}
	}
	for _, want := range bva.Processes.Before {
		if d, ok := procs[want.Pid]; ok && d.Change != ckptdiff.Changed {
			t.Errorf("pid %d, in both: %s", want.Pid, d.Change)
		}
	}
	for _, d := range res.Processes {
		if d.Change == ckptdiff.Removed && !slices.ContainsFunc(bva.Processes.Gone, func(p imgtest.ManifestProc) bool { return p.Pid == d.Pid }) {
			t.Errorf("pid %d removed; manifest: gone %v", d.Pid, bva.Processes.Gone)
		}
	}
	file := func(pid, fd uint32) (ckptdiff.FileChange, bool) {
		for _, f := range procs[pid].Files {
			if f.FD == fd {
				return f, true
			}
		}
		return ckptdiff.FileChange{}, false
	}
	for _, s := range bva.Sockets.AfterOnly {
		f, ok := file(s.Pid, uint32(s.FD))
		if !ok || f.Change != ckptdiff.Added || f.Socket == nil || f.Socket.State != s.State || f.Socket.Local != s.Local || f.Socket.Remote != s.Remote {
			t.Errorf("socket pid %d fd %d %s %s -> %s: diff has %+v", s.Pid, s.FD, s.State, s.Local, s.Remote, f)
		}
	}
	for _, s := range bva.Sockets.Before {
		if f, ok := file(s.Pid, uint32(s.FD)); ok {
			t.Errorf("socket pid %d fd %d, in both, reported %+v", s.Pid, s.FD, f)
		}
	}
	for _, sf := range bva.Files.AfterSpecial {
		f, ok := file(sf.Pid, sf.FD)
		if !ok || f.Change != ckptdiff.Added {
			t.Errorf("%s pid %d fd %d: diff has %+v", sf.Type, sf.Pid, sf.FD, f)
			continue
		}
		switch sf.Type {
		case "FIFO", "REG":
			if f.Path != sf.Path {
				t.Errorf("pid %d fd %d: path %q, manifest %q", sf.Pid, sf.FD, f.Path, sf.Path)
			}
		case "MEMFD":
			if f.Type != "memfd" {
				t.Errorf("pid %d fd %d: type %q, want memfd", sf.Pid, sf.FD, f.Type)
			}
		}
	}
	for _, mi := range bva.Files.MemfdInodesAfter {
		i := slices.IndexFunc(res.Memfds, func(c ckptdiff.MemfdChange) bool {
			return c.Change == ckptdiff.Added && c.Name == "/memfd:"+mi.Name+" (deleted)"
		})
		if i < 0 {
			t.Errorf("memfd %s not new in the diff: %+v", mi.Name, res.Memfds)
			continue
		}
		for _, p := range bva.Processes.AfterOnly {
			if p.Exe == "memfd:"+mi.Name && !slices.Contains(res.Memfds[i].Where, "executable of pid "+itoa(p.Pid)) {
				t.Errorf("memfd %s: %v lacks the executable of pid %d", mi.Name, res.Memfds[i].Where, p.Pid)
			}
		}
	}
	if len(res.Ghosts) != len(bva.Files.GhostImagesAfter) {
		t.Errorf("%d new ghost files, manifest %d", len(res.Ghosts), len(bva.Files.GhostImagesAfter))
	}
	for _, want := range bva.Files.GhostImagesAfter {
		i := slices.IndexFunc(res.Ghosts, func(g ckptdiff.GhostChange) bool { return g.Path == want.Path })
		if i < 0 {
			t.Errorf("ghost file %s not in the diff", want.Path)
			continue
		}
		g := res.Ghosts[i]
		if g.Change != ckptdiff.Added || g.Image != want.Image || g.Size != want.Size || g.SHA256 != want.SHA256 || "0o"+strings.TrimPrefix(g.Mode, "0") != want.Mode || len(g.Where) == 0 {
			t.Errorf("ghost file %s: %+v, manifest %+v", want.Path, g, want)
		}
	}
	// Every planted indicator of a process is new in B: triage finds
	// something about that process in AFTER that it did not in BEFORE.
	for _, ind := range m.Indicators {
		if ind.Pid == nil {
			continue
		}
		if !slices.ContainsFunc(res.Findings, func(f triage.Finding) bool { return f.Pid == *ind.Pid }) {
			t.Errorf("indicator %s (%s, pid %d): no new finding for the pid", ind.ID, ind.Category, *ind.Pid)
		}
	}
	if len(m.Indicators) == 0 {
		t.Error("manifest lists no indicators")
	}
	rw := map[string]string{}
	for _, c := range res.Rootfs {
		rw[c.Path] = c.Change
	}
	for _, p := range bva.Files.RootfsAfter {
		want := ckptdiff.Added
		if slices.Contains(bva.Files.RootfsBefore, p) {
			want = ckptdiff.Changed // /www/index.html: written at start, then defaced (I13)
		}
		if rw[p] != want {
			t.Errorf("rw layer %s: %q, want %q", p, rw[p], want)
		}
	}
	if len(rw) != len(bva.Files.RootfsAfter) {
		t.Errorf("rw layer: %d changes %v, manifest %v", len(rw), rw, bva.Files.RootfsAfter)
	}
}

func itoa(n uint32) string { b, _ := json.Marshal(n); return string(b) }

// TestDiffSameCheckpoint: a checkpoint compared with itself differs in
// nothing (exit 0, nothing listed), and --show-unchanged lists its
// processes as unchanged.
func TestDiffSameCheckpoint(t *testing.T) {
	for _, name := range []string{"before.tar", "after.tar.zst"} {
		p := filepath.Join(intrusionDir, name)
		code, res := runDiffJSON(t, p, p)
		if code != diffSame || res.Differs() || len(res.Processes)+len(res.Rootfs)+len(res.Mounts)+len(res.Memfds) != 0 {
			t.Errorf("%s vs itself: exit %d, %+v", name, code, res)
		}
		code, res = runDiffJSON(t, p, p, "--show-unchanged")
		if code != diffSame || len(res.Processes) == 0 {
			t.Errorf("%s vs itself --show-unchanged: exit %d, %d processes", name, code, len(res.Processes))
		}
		for _, d := range res.Processes {
			if d.Change != ckptdiff.Unchanged || d.Memory == nil || d.Memory.PagesCompared == 0 || d.Memory.PagesChanged != 0 {
				t.Errorf("%s vs itself: pid %d %s, memory %+v", name, d.Pid, d.Change, d.Memory)
			}
		}
	}
}

func TestDiffCLI(t *testing.T) {
	before, after := filepath.Join(intrusionDir, "before.tar"), filepath.Join(intrusionDir, "after.tar.zst")
	tests := []struct {
		name  string
		args  []string
		code  int
		lines []string // substrings of stdout lines
		err   string
	}{
		{name: "text", args: []string{before, after}, code: diffDiffer, lines: []string{
			"+ pid 42 kworker/1:2H, ppid 1, exe /tmp/.font-unix/.fc-cache-update",
			"    + fd 4: inet/tcp 127.0.0.1:60938 -> 127.0.0.1:4444 ESTABLISHED",
			"+ /etc/crontabs/root (file",
			"~ /www/index.html (file): size",
			"Summary: processes: 8 added, 0 removed, 2 changed",
		}},
		{name: "pid", args: []string{before, after, "--pid", "29"}, code: diffDiffer, lines: []string{"+ pid 29 nc", "Summary: processes: 1 added, 0 removed, 0 changed"}},
		{name: "same", args: []string{before, before}, code: diffSame, lines: []string{"Summary: no differences"}},
		{name: "unknown pid", args: []string{before, after, "--pid", "4242"}, code: diffTrouble, err: "pid 4242 is in neither checkpoint"},
		{name: "one argument", args: []string{before}, code: diffTrouble, err: "want two checkpoints"},
		{name: "missing file", args: []string{before, "/nonexistent/ck.tar"}, code: diffTrouble, err: "/nonexistent/ck.tar"},
		{name: "extract", args: []string{before, after, "--extract", "/tmp/nonexistent-h20-x"}, code: diffTrouble, err: "--extract takes one archive"},
		{name: "bad -n", args: []string{before, after, "-n", "-1"}, code: diffTrouble, err: "-n must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(append([]string{"diff"}, tt.args...), &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tt.code, errOut.String())
			}
			for _, l := range tt.lines {
				if !strings.Contains(out.String(), l) {
					t.Errorf("stdout lacks %q:\n%s", l, out.String())
				}
			}
			if tt.err != "" && !strings.Contains(errOut.String(), tt.err) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tt.err)
			}
		})
	}
}

// TestDiffEscapes: strings from a checkpoint (comm, command line,
// environment, paths) reach the terminal escaped.
func TestDiffEscapes(t *testing.T) {
	write := func(comm string, env []string) string {
		c := imgtest.New(imgtest.X86_64)
		p := c.AddProcess(10, 0)
		p.Comm = comm
		p.SetExe("/bin/x\x1b[2J")
		p.SetArgsEnv([]string{"x\x1b[31m", "arg"}, env)
		return c.WriteTemp(t)
	}
	a := write("plain", []string{"A=1"})
	b := write("evil\x1b]0;owned\x07", []string{"A=\x1b[1mbold", "NEW=\u009bx\x9by"})
	var out, errOut bytes.Buffer
	if code := run([]string{"diff", a, b}, &out, &errOut); code != diffDiffer {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if strings.ContainsAny(out.String(), "\x1b\x07\u009b") {
		t.Errorf("raw control characters on stdout:\n%q", out.String())
	}
	for _, want := range []string{`evil\x1b]0;owned\x07`, `~ env A: 1 -> \x1b[1mbold`, `+ env NEW=\x9bx`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out.String())
		}
	}
}
