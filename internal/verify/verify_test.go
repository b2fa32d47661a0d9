package verify

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// testdata is the repository's testdata directory, relative to this
// package.
var testdata = imgtest.Testdata()

// prstatus is what the test reads itself from an NT_PRSTATUS note.
type prstatus struct {
	tid    int
	pc, sp uint64
}

// readPrstatus parses the NT_PRSTATUS notes of a 64-bit little-endian
// core without Delve: pr_pid is at offset 32 of the descriptor and pr_reg
// at offset 112; the PC and SP are user_regs_struct's rip/rsp on x86_64
// and pc/sp on aarch64.
func readPrstatus(t *testing.T, corePath string) (elf.Machine, []prstatus) {
	t.Helper()
	f, err := elf.Open(corePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pcIdx, spIdx int
	switch f.Machine {
	case elf.EM_X86_64:
		pcIdx, spIdx = 16, 19
	case elf.EM_AARCH64:
		pcIdx, spIdx = 32, 31
	default:
		t.Fatalf("%s: unexpected machine %v", corePath, f.Machine)
	}
	var out []prstatus
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			t.Fatalf("%s: reading PT_NOTE: %v", corePath, err)
		}
		for len(data) >= 12 {
			namesz := binary.LittleEndian.Uint32(data[0:])
			descsz := binary.LittleEndian.Uint32(data[4:])
			typ := binary.LittleEndian.Uint32(data[8:])
			nameEnd := 12 + align4(int(namesz))
			descEnd := nameEnd + align4(int(descsz))
			if descEnd > len(data) {
				t.Fatalf("%s: note overruns PT_NOTE", corePath)
			}
			name := strings.TrimRight(string(data[12:12+namesz]), "\x00")
			desc := data[nameEnd : nameEnd+int(descsz)]
			data = data[descEnd:]
			if elf.NType(typ) != elf.NT_PRSTATUS || name != "CORE" {
				continue
			}
			reg := func(i int) uint64 { return binary.LittleEndian.Uint64(desc[112+8*i:]) }
			out = append(out, prstatus{
				tid: int(int32(binary.LittleEndian.Uint32(desc[32:]))),
				pc:  reg(pcIdx),
				sp:  reg(spIdx),
			})
		}
	}
	return f.Machine, out
}

func align4(n int) int { return (n + 3) &^ 3 }

// x86Manifest is the part of an x86_64 fixture's manifest.json the test
// uses.
type x86Manifest struct {
	Processes []struct {
		Threads []struct {
			TID int `json:"tid"`
		} `json:"threads"`
	} `json:"processes"`
	Goroutines string `json:"goroutines"`
}

// arm64Facts is the part of an arm64 fixture's facts.json the test uses.
type arm64Facts struct {
	Processes []struct {
		PID     int `json:"pid"`
		Threads []struct {
			TID int `json:"tid"`
		} `json:"threads"`
	} `json:"processes"`
	GoroutineFunctions []string `json:"goroutine_functions"`
	Oracle             struct {
		ThreadRegs map[string]map[string]map[string]string `json:"thread_regs_from_core"`
	} `json:"oracle"`
}

// x86Expect reads the tids and the goroutine functions from
// manifest.json. Its "goroutines" entry reads like "main.main (in
// main.waitOnChannel), main.sleepLong": both functions of an entry "A (in
// B)" are returned.
func x86Expect(t *testing.T, dir string) (tids []int, funcs []string) {
	var m x86Manifest
	imgtest.ReadJSON(t, filepath.Join(dir, "manifest.json"), &m)
	for _, th := range m.Processes[0].Threads {
		tids = append(tids, th.TID)
	}
	if m.Goroutines != "" {
		for _, s := range strings.Split(m.Goroutines, ",") {
			s = strings.TrimSpace(s)
			if a, b, ok := strings.Cut(s, " (in "); ok {
				funcs = append(funcs, a, strings.TrimSuffix(b, ")"))
				continue
			}
			funcs = append(funcs, s)
		}
	}
	return tids, funcs
}

// arm64Expect reads the tids and the goroutine functions from facts.json.
func arm64Expect(t *testing.T, dir string) (tids []int, funcs []string) {
	var f arm64Facts
	imgtest.ReadJSON(t, filepath.Join(dir, "facts.json"), &f)
	for _, th := range f.Processes[0].Threads {
		tids = append(tids, th.TID)
	}
	return tids, f.GoroutineFunctions
}

func TestVerifyOracleCores(t *testing.T) {
	tests := []struct {
		name   string
		dir    string // fixture directory under testdata
		core   string // gzipped core in dir
		exe    string // executable, relative to dir
		arch   string // Delve's architecture name
		expect func(t *testing.T, dir string) (tids []int, funcs []string)
		isGo   bool
		// wantUser are the user functions Delve's goroutines command
		// lists on the oracle (checked with dlv v1.27.2), sorted.
		wantUser []string
	}{
		{
			name: "x86_64/go-goroutines", dir: "x86_64/go-goroutines", core: "core.2219.gz",
			exe: "exe/go-goroutines", arch: "amd64", expect: x86Expect, isGo: true,
			wantUser: goGoroutinesUser,
		},
		{
			name: "arm64/go-goroutines", dir: "arm64/go-goroutines", core: "core.372.gz",
			exe: "exe/go-goroutines", arch: "arm64", expect: arm64Expect, isGo: true,
			wantUser: goGoroutinesUser,
		},
		{
			name: "x86_64/threads-c", dir: "x86_64/threads-c", core: "core.32484.gz",
			exe: "exe/threads-c", arch: "amd64", expect: x86Expect,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(testdata, tc.dir)
			corePath := imgtest.Gunzip(t, filepath.Join(dir, tc.core), t.TempDir())
			exePath := filepath.Join(dir, tc.exe)
			wantTIDs, wantFuncs := tc.expect(t, dir)

			rep, err := Verify(corePath, exePath, nil)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatalf("WriteText: %v", err)
			}
			t.Logf("\n%s", text.String())

			if rep.Arch != tc.arch {
				t.Errorf("Arch = %q, want %q", rep.Arch, tc.arch)
			}

			// Threads: the manifest's tids, in order, with the oracle's
			// NT_PRSTATUS PC and SP.
			var gotTIDs []int
			for _, th := range rep.Threads {
				gotTIDs = append(gotTIDs, th.ID)
			}
			slices.Sort(wantTIDs)
			if !slices.Equal(gotTIDs, wantTIDs) {
				t.Errorf("thread IDs = %v, want %v", gotTIDs, wantTIDs)
			}
			_, notes := readPrstatus(t, corePath)
			if len(notes) != len(rep.Threads) {
				t.Errorf("%d threads, core has %d NT_PRSTATUS notes", len(rep.Threads), len(notes))
			}
			for _, n := range notes {
				i := slices.IndexFunc(rep.Threads, func(th Thread) bool { return th.ID == n.tid })
				if i < 0 {
					t.Errorf("thread %d of NT_PRSTATUS missing from report", n.tid)
					continue
				}
				th := rep.Threads[i]
				if th.PC != n.pc || th.SP != n.sp {
					t.Errorf("thread %d: PC %#x SP %#x, NT_PRSTATUS has PC %#x SP %#x", n.tid, th.PC, th.SP, n.pc, n.sp)
				}
				if tc.isGo && th.Function == "" {
					t.Errorf("thread %d: no function for PC %#x", n.tid, th.PC)
				}
			}

			if !tc.isGo {
				if len(rep.Goroutines) != 0 {
					t.Errorf("non-Go program has %d goroutines", len(rep.Goroutines))
				}
				return
			}

			// Goroutines: sorted, and every expected user function found.
			if !slices.IsSortedFunc(rep.Goroutines, func(a, b Goroutine) int { return int(a.ID - b.ID) }) {
				t.Errorf("goroutines not sorted by ID")
			}
			if len(rep.Warnings) > 0 {
				t.Errorf("warnings: %q", rep.Warnings)
			}
			// The fixture's functions are each the user function or on
			// the stack of some goroutine: Delve's user frame of the
			// goroutines in time.Sleep and sync.Cond.Wait is the runtime's
			// linkname'd time.Sleep and sync.runtime_notifyListWait, one
			// or two frames above main.sleepLong and main.condWaiter.
			found := map[string]bool{}
			var gotUser []string
			for _, g := range rep.Goroutines {
				gotUser = append(gotUser, g.UserFunction)
				found[g.UserFunction] = true
				for _, fn := range g.Stack {
					found[fn] = true
				}
				if g.ID == 1 && (g.UserFunction != "main.waitOnChannel" || !slices.Contains(g.Stack, "main.main")) {
					t.Errorf("goroutine 1: user function %q, stack %q; want main.waitOnChannel called by main.main", g.UserFunction, g.Stack)
				}
				if g.UserFunction != "" && !slices.Contains(g.Stack, g.UserFunction) {
					t.Errorf("goroutine %d: user function %s not on its stack %q", g.ID, g.UserFunction, g.Stack)
				}
				if g.ThreadID != 0 && !slices.Contains(wantTIDs, g.ThreadID) {
					t.Errorf("goroutine %d on unknown thread %d", g.ID, g.ThreadID)
				}
			}
			if len(wantFuncs) == 0 {
				t.Fatal("fixture lists no goroutine functions")
			}
			for _, fn := range wantFuncs {
				if !found[fn] {
					t.Errorf("no goroutine runs %s", fn)
				}
			}
			slices.Sort(gotUser)
			if !slices.Equal(gotUser, tc.wantUser) {
				t.Errorf("user functions = %q, want %q", gotUser, tc.wantUser)
			}
		})
	}
}

// goGoroutinesUser are the user functions of the goroutines of the
// go-goroutines fixture as dlv v1.27.2's goroutines command lists them on
// both oracle cores, sorted.
var goGoroutinesUser = []string{
	"main.lockedOut",
	"main.selectForever",
	"main.waitOnChannel", // goroutine 1, in main.main
	"main.waitOnChannel",
	"runtime.gopark",              // force gc (idle)
	"runtime.gopark",              // GC sweep wait
	"runtime.gopark",              // GC scavenge wait
	"runtime.gopark",              // GOMAXPROCS updater (idle)
	"runtime.gopark",              // finalizer wait
	"sync.runtime_notifyListWait", // in main.condWaiter
	"time.Sleep",                  // in main.sleepLong
}

// TestVerifyArm64FactsRegs cross-checks the test's own NT_PRSTATUS parser
// against the registers gdb read from the arm64 oracle (facts.json).
func TestVerifyArm64FactsRegs(t *testing.T) {
	dir := filepath.Join(testdata, "arm64/go-goroutines")
	var f arm64Facts
	imgtest.ReadJSON(t, filepath.Join(dir, "facts.json"), &f)
	corePath := imgtest.Gunzip(t, filepath.Join(dir, "core.372.gz"), t.TempDir())
	machine, notes := readPrstatus(t, corePath)
	if machine != elf.EM_AARCH64 {
		t.Fatalf("machine %v", machine)
	}
	regs := f.Oracle.ThreadRegs["372"]
	if len(notes) != len(regs) {
		t.Fatalf("%d NT_PRSTATUS notes, facts.json has %d threads", len(notes), len(regs))
	}
	for _, n := range notes {
		r, ok := regs[strconv.Itoa(n.tid)]
		if !ok {
			t.Errorf("thread %d not in facts.json", n.tid)
			continue
		}
		if r["pc"] != fmt.Sprintf("%#x", n.pc) || r["sp"] != fmt.Sprintf("%#x", n.sp) {
			t.Errorf("thread %d: pc %s sp %s in core, facts.json has pc %s sp %s", n.tid, fmt.Sprintf("%#x", n.pc), fmt.Sprintf("%#x", n.sp), r["pc"], r["sp"])
		}
	}
}

// TestVerifyBrokenInput checks that malformed cores give errors, not
// panics.
func TestVerifyBrokenInput(t *testing.T) {
	src := filepath.Join(testdata, "x86_64/go-goroutines")
	exe := filepath.Join(src, "exe/go-goroutines")
	tmp := t.TempDir()
	good := imgtest.Gunzip(t, filepath.Join(src, "core.2219.gz"), tmp)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// A copy of the core whose PT_NOTE is turned into PT_NULL: Delve
	// dereferences the missing note segment.
	noNotes := bytes.Clone(data)
	{
		f, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		phoff := binary.LittleEndian.Uint64(data[0x20:])
		phentsize := uint64(binary.LittleEndian.Uint16(data[0x36:]))
		for i, p := range f.Progs {
			if p.Type == elf.PT_NOTE {
				binary.LittleEndian.PutUint32(noNotes[phoff+uint64(i)*phentsize:], uint32(elf.PT_NULL))
			}
		}
	}
	// A copy whose first NT_PRSTATUS claims a descriptor far beyond the
	// end of the notes.
	var noteOff uint64
	{
		f, _ := elf.NewFile(bytes.NewReader(data))
		for _, p := range f.Progs {
			if p.Type == elf.PT_NOTE {
				noteOff = p.Off
				break
			}
		}
	}
	badNote := bytes.Clone(data)
	binary.LittleEndian.PutUint32(badNote[noteOff+4:], 0x7fffff00)
	// A copy with e_phnum = PN_XNUM and the real count in the sh_info of
	// an appended section header 0, as the kernel writes cores with
	// 65535 or more segments.
	xnum := bytes.Clone(data)
	{
		sh := make([]byte, 64)
		binary.LittleEndian.PutUint32(sh[0x2c:], uint32(binary.LittleEndian.Uint16(data[0x38:])))
		binary.LittleEndian.PutUint64(xnum[0x28:], uint64(len(xnum))) // e_shoff
		binary.LittleEndian.PutUint16(xnum[0x3a:], 64)                // e_shentsize
		binary.LittleEndian.PutUint16(xnum[0x3c:], 1)                 // e_shnum
		binary.LittleEndian.PutUint16(xnum[0x38:], 0xffff)            // e_phnum
		xnum = append(xnum, sh...)
	}

	tests := []struct {
		name string
		core string
		exe  string
		want string // in the error; "delve: " if empty
	}{
		{"truncated in the notes", write("trunc-notes", data[:noteOff+200]), exe, ""},
		{"truncated in the headers", write("trunc-hdr", data[:100]), exe, ""},
		{"truncated to half", write("trunc-half", data[:len(data)/2]), exe, ""},
		{"not ELF", write("not-elf", []byte("this is not an ELF core file\n")), exe, ""},
		{"empty", write("empty", nil), exe, ""},
		{"no PT_NOTE", write("no-notes", noNotes), exe, ""},
		{"huge note size", write("bad-note", badNote), exe, ""},
		{"PN_XNUM", write("xnum", xnum), exe, ""},
		{"exe is not ELF", good, write("not-elf-exe", []byte("#!/bin/sh\n")), ""},
		{"missing core", filepath.Join(tmp, "does-not-exist"), exe, ""},
		// Named in words before Delve (which prints the machines as hex).
		{"core of another arch", good, filepath.Join(testdata, "arm64/go-goroutines/exe/go-goroutines"),
			"the core is for EM_X86_64, the executable " + filepath.Join(testdata, "arm64/go-goroutines/exe/go-goroutines") + " for EM_AARCH64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Verify(tc.core, tc.exe, nil)
			if err == nil {
				var b bytes.Buffer
				rep.WriteText(&b)
				t.Fatalf("Verify succeeded on broken input:\n%s", b.String())
			}
			t.Logf("error: %v", err)
			if tc.want == "" {
				tc.want = "delve: "
			}
			if !strings.Contains(err.Error(), tc.core) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name the core and %q", err, tc.want)
			}
		})
	}
}

// TestVerifyMissingSegment checks what Verify reports when the segment
// holding the goroutines (the Go heap arena) is left out of the core, as
// a core writer that drops it would: no error, but the goroutines are
// unreadable and reported as warnings.
func TestVerifyMissingSegment(t *testing.T) {
	src := filepath.Join(testdata, "x86_64/go-goroutines")
	exe := filepath.Join(src, "exe/go-goroutines")
	tmp := t.TempDir()
	good := imgtest.Gunzip(t, filepath.Join(src, "core.2219.gz"), tmp)
	_, notes := readPrstatus(t, good)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// Thread 2221's stack is a g0 stack in the heap arena, next to the
	// g structs.
	var sp uint64
	for _, n := range notes {
		if n.tid == 2221 {
			sp = n.sp
		}
	}
	phoff := binary.LittleEndian.Uint64(data[0x20:])
	phentsize := uint64(binary.LittleEndian.Uint16(data[0x36:]))
	dropped := false
	for i, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Vaddr <= sp && sp < p.Vaddr+p.Memsz && p.Filesz > 0 {
			binary.LittleEndian.PutUint64(data[phoff+uint64(i)*phentsize+0x20:], 0) // p_filesz
			dropped = true
		}
	}
	if !dropped {
		t.Fatalf("no PT_LOAD with data holds SP %#x", sp)
	}
	p := filepath.Join(tmp, "missing-arena")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(p, exe, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
	if len(rep.Threads) != 4 {
		t.Errorf("%d threads, want 4", len(rep.Threads))
	}
	if len(rep.Goroutines) != 0 || len(rep.Warnings) != 11 {
		t.Errorf("%d goroutines and %d warnings, want 0 and 11 unreadable goroutines", len(rep.Goroutines), len(rep.Warnings))
	}
}

// TestWriteTextError checks that write errors are reported.
func TestWriteTextError(t *testing.T) {
	r := &Report{Core: "c", Exe: "e", Arch: "amd64", Threads: []Thread{{ID: 1}}}
	if err := r.WriteText(failWriter{}); !errors.Is(err, errWrite) {
		t.Fatalf("WriteText error = %v, want %v", err, errWrite)
	}
}

var errWrite = errors.New("write failed")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errWrite }
