package inspect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// damagedCopy copies the images of the x86_64 fixture name into a new
// directory and truncates file there to size bytes.
func damagedCopy(t *testing.T, name, file string, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := imgtest.CopyImages(dir, filepath.Join(testdata, "x86_64", name, "images")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	if size >= st.Size() {
		t.Fatalf("%s has %d bytes: truncating to %d damages nothing", file, st.Size(), size)
	}
	if err := os.Truncate(filepath.Join(dir, file), size); err != nil {
		t.Fatal(err)
	}
	return dir
}

// allWarnings is every warning of rep, the report's and the processes'.
func allWarnings(rep *Report) []string {
	ws := slices.Clone(rep.Warnings)
	for _, p := range rep.Processes {
		ws = append(ws, p.Warnings...)
	}
	return ws
}

// warningWith returns the first warning containing every one of subs.
func warningWith(ws []string, subs ...string) (string, bool) {
	for _, w := range ws {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(w, s)
		}
		if ok {
			return w, true
		}
	}
	return "", false
}

// TestDamagedImages: one truncated image of threads-c costs only what it
// holds. The intact parts are reported as from the sound images (names,
// tids and command line checked against manifest.json, the rest against
// the sound report), and a warning names the damaged file, the entry and
// what is wrong.
func TestDamagedImages(t *testing.T) {
	dir, m, sound := inspectX86(t, "threads-c", Options{Env: true})
	mp := m.Processes[0]
	good := findProc(t, sound, mp.Pid)
	if len(good.Warnings) > 0 || len(good.Threads) != 4 || good.Memory == nil || good.Memory.UnreadableBytes != 0 {
		t.Fatalf("sound report: warnings %q, %d threads, memory %+v", good.Warnings, len(good.Threads), good.Memory)
	}
	type part int
	const (
		comm      part = 1 << iota // comm and state (core-<pid>.img)
		mainTh                     // the main thread (core-<pid>.img)
		mappings                   // exe, mappings (mm-<pid>.img)
		argv                       // command line, environment (mm + pages)
		allMemory                  // every captured byte readable
	)
	for _, tc := range []struct {
		file    string
		size    int64
		intact  part
		warning []string // substrings of the warning about the damage
	}{
		// The user's case: the pages of the highest mappings (the stack,
		// with the argument area) are gone.
		{"pages-1.img", 100000, comm | mainTh | mappings,
			[]string{"pagemap-32484.img", "entries 10-14", "ends at byte 147456 of pages-1.img, which has 100000", "47456 bytes of captured memory are unreadable"}},
		{"core-32484.img", 1000, mappings | argv | allMemory,
			[]string{"core-32484.img", "entry 0", "exceeds the 988 bytes left", "comm, state and the main thread"}},
		{"mm-32484.img", 600, comm | mainTh,
			[]string{"mm-32484.img", "entry 0", "exceeds the 588 bytes left", "mappings, memory, command line"}},
		{"pagemap-32484.img", 150, comm | mainTh | mappings,
			[]string{"pagemap-32484.img", "entry 8 at offset 140", "exceeds the 6 bytes left", "from address 0x7f39700cb000 on is lost"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep := inspectDir(t, damagedCopy(t, "threads-c", tc.file, tc.size), Options{Env: true})
			if rep.Arch != "x86_64" {
				t.Errorf("arch %q, want x86_64 (from any thread's core)", rep.Arch)
			}
			p := findProc(t, rep, mp.Pid)
			ws := allWarnings(rep)
			if _, ok := warningWith(ws, tc.warning...); !ok {
				t.Errorf("no warning with %q in %q", tc.warning, ws)
			}
			if p.PPid != mp.PPid || p.ThreadCount != len(mp.Threads) {
				t.Errorf("ppid %d, %d threads; want %d, %d", p.PPid, p.ThreadCount, mp.PPid, len(mp.Threads))
			}

			// Threads: every one whose core is intact, as in the sound report.
			var want []Thread
			for i, mt := range mp.Threads {
				if i == 0 && tc.intact&mainTh == 0 {
					continue
				}
				th := good.Threads[i]
				if th.Tid != mt.Tid || th.Name != mt.Comm {
					t.Fatalf("sound report: thread %d %q, manifest %d %q", th.Tid, th.Name, mt.Tid, mt.Comm)
				}
				want = append(want, th)
			}
			if len(p.Threads) != len(want) {
				t.Fatalf("threads %+v, want %d", p.Threads, len(want))
			}
			for i, th := range p.Threads {
				w := want[i]
				if th.Tid != w.Tid || th.Name != w.Name || th.PC != w.PC || th.SP != w.SP {
					t.Errorf("thread %d %q pc %s sp %s, want %d %q pc %s sp %s", th.Tid, th.Name, th.PC, th.SP, w.Tid, w.Name, w.PC, w.SP)
				}
				if th.Syscall == nil || th.Syscall.Name != w.Syscall.Name || th.Syscall.State != w.Syscall.State {
					t.Errorf("thread %d: syscall %+v, want %+v", th.Tid, th.Syscall, w.Syscall)
				}
				switch {
				case tc.intact&mappings == 0:
					// No mappings: no code can be looked for.
					if th.Code != CodeUnreadable || th.Instruction != "" {
						t.Errorf("thread %d: code %q %q, want unreadable", th.Tid, th.Code, th.Instruction)
					}
				case th.Code != w.Code || th.Instruction != w.Instruction:
					// Every thread's code page is intact (or never was
					// captured) in these cases.
					t.Errorf("thread %d: code %q %q, want %q %q", th.Tid, th.Code, th.Instruction, w.Code, w.Instruction)
				}
			}

			if tc.intact&comm != 0 {
				if p.Comm != mp.Comm || p.State != "alive" {
					t.Errorf("comm %q state %q, want %q alive", p.Comm, p.State, mp.Comm)
				}
			} else if p.Comm != "" || p.State != "unknown" {
				t.Errorf("comm %q state %q from a damaged core", p.Comm, p.State)
			}

			if tc.intact&mappings != 0 {
				if p.Exe != good.Exe || p.Memory == nil || p.Memory.VMAs != good.Memory.VMAs || p.Memory.MappedBytes != good.Memory.MappedBytes {
					t.Errorf("exe %q memory %+v, want %q %+v", p.Exe, p.Memory, good.Exe, good.Memory)
				}
				if tc.intact&allMemory != 0 {
					if p.Memory.CapturedBytes != good.Memory.CapturedBytes || p.Memory.UnreadableBytes != 0 {
						t.Errorf("memory %+v, want %+v", p.Memory, good.Memory)
					}
				} else {
					// What is lost is counted, never as captured.
					if p.Memory.UnreadableBytes == 0 || p.Memory.CapturedBytes >= good.Memory.CapturedBytes {
						t.Errorf("memory %+v: want fewer captured bytes than %d and some unreadable", p.Memory, good.Memory.CapturedBytes)
					}
				}
			} else if p.Exe != "" || p.Memory != nil {
				t.Errorf("exe %q memory %+v without mm", p.Exe, p.Memory)
			}

			if tc.intact&argv != 0 {
				wantArgv := strings.Fields(m.Argv)
				if len(p.Argv) != len(wantArgv) {
					t.Fatalf("argv %q, want like %q", p.Argv, wantArgv)
				}
				for i, a := range wantArgv {
					if a != "<ready-file>" && p.Argv[i] != a {
						t.Errorf("argv[%d] = %q, want %q", i, p.Argv[i], a)
					}
				}
				if !slices.Equal(p.Env, good.Env) {
					t.Errorf("env %q, want %q", p.Env, good.Env)
				}
			} else {
				if len(p.Argv) != 0 || len(p.Env) != 0 {
					t.Errorf("argv %q env %q read from damaged images", p.Argv, p.Env)
				}
				if tc.intact&mappings != 0 {
					// The argument pages are gone: said, with the cause.
					if w, ok := warningWith(p.Warnings, "command line", "unreadable"); !ok || !strings.Contains(w, tc.warning[0]) {
						t.Errorf("no warning on the command line naming %s in %q", tc.warning[0], p.Warnings)
					}
				}
			}

			// fs-*.img, fdinfo-*.img and files.img are intact.
			if p.Cwd != good.Cwd || p.Root != good.Root || len(p.Files) != len(good.Files) || len(p.Files) == 0 {
				t.Errorf("cwd %q root %q %d files, want %q %q %d", p.Cwd, p.Root, len(p.Files), good.Cwd, good.Root, len(good.Files))
			}
			if rep.DumpStats == nil {
				t.Error("no dump statistics")
			}
			var sb strings.Builder
			if err := WriteText(&sb, rep); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sb.String(), "warning: "+clean(p.Warnings[0])) {
				t.Errorf("text report lacks the warning %q", p.Warnings[0])
			}
			checkStableKeys(t, rep)
		})
	}
	_ = dir
}

// TestDamagedImagesNamed truncates, one at a time, every image a process
// report reads (core, mm, pagemap, pages, fs, ids, fdinfo, files) of fixtures
// with threads, shared memory and a zombie, at several sizes: Inspect
// still reports every process, and a warning names the damaged file.
func TestDamagedImagesNamed(t *testing.T) {
	for _, name := range []string{"threads-c", "static-c", "counter"} {
		images := filepath.Join(testdata, "x86_64", name, "images")
		ents, err := os.ReadDir(images)
		if err != nil {
			t.Fatal(err)
		}
		nprocs := len(inspectDir(t, images, Options{}).Processes)
		for _, e := range ents {
			if !slices.ContainsFunc([]string{"core-", "mm-", "pagemap-", "pages-", "fs-", "ids-", "fdinfo-", "files.img"}, func(p string) bool { return strings.HasPrefix(e.Name(), p) }) {
				continue
			}
			st, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			for _, size := range []int64{0, st.Size() / 2, st.Size() - 1} {
				dir := damagedCopy(t, name, e.Name(), size)
				src, err := criuimg.NewDirSource(dir)
				if err != nil {
					t.Fatal(err)
				}
				ck, err := criuimg.SalvageOpen(src)
				if err != nil {
					t.Errorf("%s: %s cut to %d bytes: %v", name, e.Name(), size, err)
					continue
				}
				rep, err := Inspect(ck, Options{Env: true})
				if err != nil {
					t.Errorf("%s: %s cut to %d bytes: %v", name, e.Name(), size, err)
					continue
				}
				if len(rep.Processes) != nprocs {
					t.Errorf("%s: %s cut to %d bytes: %d processes, want %d", name, e.Name(), size, len(rep.Processes), nprocs)
				}
				if _, ok := warningWith(allWarnings(rep), e.Name()); !ok {
					t.Errorf("%s: %s cut to %d bytes: no warning names it: %q", name, e.Name(), size, allWarnings(rep))
				}
				if _, err := json.Marshal(rep); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestDamagedFilesImg: criuimg.Open refuses a damaged files.img; Open
// opens the checkpoint without it, and Inspect reports every process
// (comm, command line, threads, mappings), the paths of the files whose
// entries could be read, and says which entry of files.img is damaged and
// what lacks a path because of it.
func TestDamagedFilesImg(t *testing.T) {
	_, m, sound := inspectX86(t, "counter", Options{})
	dir := damagedCopy(t, "counter", "files.img", 1300)
	src, err := criuimg.NewDirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := criuimg.Open(src); err == nil {
		t.Fatal("criuimg.Open accepts the damaged files.img: the test damages nothing")
	}
	ck, err := criuimg.SalvageOpen(src)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Inspect(ck, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkStableKeys(t, rep)
	if _, ok := warningWith(rep.Warnings, "files.img", "entry 15", "only its first 15 entries are read"); !ok {
		t.Errorf("no warning names files.img entry 15: %q", rep.Warnings)
	}
	if len(rep.Processes) != len(m.Processes) {
		t.Fatalf("%d processes, manifest has %d", len(rep.Processes), len(m.Processes))
	}
	unnamed := 0
	for _, mp := range m.Processes {
		p, good := findProc(t, rep, mp.Pid), findProc(t, sound, mp.Pid)
		if p.Comm != mp.Comm || p.PPid != mp.PPid || p.State != "alive" || len(p.Threads) != len(mp.Threads) {
			t.Errorf("pid %d: %q ppid %d %s %d threads; want %q ppid %d alive %d", mp.Pid, p.Comm, p.PPid, p.State, len(p.Threads), mp.Comm, mp.PPid, len(mp.Threads))
		}
		if !slices.Equal(p.Argv, good.Argv) || p.Memory == nil || p.Memory.VMAs != good.Memory.VMAs || p.Memory.CapturedBytes != good.Memory.CapturedBytes {
			t.Errorf("pid %d: argv %q memory %+v; want %q %+v", mp.Pid, p.Argv, p.Memory, good.Argv, good.Memory)
		}
		if p.Cwd != good.Cwd {
			if _, ok := warningWith(p.Warnings, "cwd", "files.img"); p.Cwd != "" || !ok {
				t.Errorf("pid %d: cwd %q (want %q, or \"\" and a warning): %q", mp.Pid, p.Cwd, good.Cwd, p.Warnings)
			}
		}
		if _, ok := warningWith(p.Warnings, "is not in files.img"); ok {
			unnamed++
		}
	}
	if want := shellSplit(m.Argv); !slices.Equal(rep.Processes[0].Argv, want) {
		t.Errorf("bash argv %q, want %q", rep.Processes[0].Argv, want)
	}
	if bash := rep.Processes[0]; bash.Exe != "/usr/bin/bash" || bash.Cwd == "" {
		t.Errorf("bash (files in the intact entries): exe %q cwd %q", bash.Exe, bash.Cwd)
	}
	if unnamed == 0 {
		t.Error("no mapping is said to lack its file's path")
	}
}

// TestIncompleteMemoryWarnings: memory the images do not hold (pages in a
// parent checkpoint that is not here, pages left to lazy migration) is
// worded for inspect, which makes no core: no "left out of the core".
func TestIncompleteMemoryWarnings(t *testing.T) {
	rep, err := Inspect(imgtest.OpenDir(t, imgtest.IncompleteMemory().WriteTemp(t)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"12288 bytes of memory are in a parent checkpoint (incremental dump) that is not here: they are not read",
		"4096 bytes of memory were left to lazy migration and are not in the images",
	}
	// (The synthetic images have no fs-3.img or ids-3.img: two more
	// warnings follow.)
	if got := allWarnings(rep); len(got) < 2 || !slices.Equal(got[:2], want) {
		t.Errorf("warnings %q, want %q first", got, want)
	}
}
