package ckptdiff

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/creds"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/synth"
)

// shape describes one synthetic checkpoint of a process; edits change it.
type shape struct {
	pid        uint32
	exe        string
	argv, env  []string
	heapEnd    uint64
	heapProt   uint32
	heapPage   []byte // content of the heap's first page
	extraPages bool   // a second captured heap page
	setuid     bool   // euid 0 (else 1000, as all the other ids)
	thread     bool   // a second thread, tid pid+1
}

const heapStart = 0x10000000

func base() shape {
	page := bytes.Repeat([]byte{0}, 4096)
	copy(page[0x100:], "HEAP_BASELINE_TEXT")
	return shape{
		pid: 10, exe: "/bin/server", argv: []string{"server", "--port", "80"},
		env:     []string{"PATH=/bin", "MODE=prod"},
		heapEnd: heapStart + 4*4096, heapProt: criuimg.ProtRead | criuimg.ProtWrite, heapPage: page,
	}
}

// build writes s as an image directory and decodes it as ckpt2core diff
// does (inspect.Inspect with environments).
func build(t *testing.T, s shape) *Checkpoint {
	t.Helper()
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(s.pid, 0)
	p.Comm = "server"
	p.SetExe(s.exe)
	p.AddVMA(heapStart, s.heapEnd, s.heapProt, 0, criuimg.VMAAreaRegular|criuimg.VMAAnonPrivate|criuimg.VMAAreaHeap, "")
	p.AddPages(heapStart, s.heapPage, criuimg.PEPresent)
	if s.extraPages {
		p.AddPages(heapStart+4096, []byte("NEWLY_CAPTURED_SECRET_42"), criuimg.PEPresent)
	}
	p.SetArgsEnv(s.argv, s.env)
	if s.thread {
		p.AddThread(s.pid + 1)
	}
	euid := uint32(1000)
	if s.setuid {
		euid = 0
	}
	p.Threads[0].Core.ThreadCore.Creds = &creds.CredsEntry{
		Uid: proto.Uint32(1000), Gid: proto.Uint32(1000), Euid: proto.Uint32(euid), Egid: proto.Uint32(1000),
		Suid: proto.Uint32(1000), Sgid: proto.Uint32(1000), Fsuid: proto.Uint32(1000), Fsgid: proto.Uint32(1000),
		CapInh: []uint32{0, 0}, CapPrm: []uint32{0, 0}, CapEff: []uint32{0, 0}, CapBnd: []uint32{0xffffffff, 0x1ff}, Secbits: proto.Uint32(0),
	}
	dir := c.WriteTemp(t)
	ck, err := criuimg.SalvageOpen(imgtest.DirSource(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.Inspect(ck, inspect.Options{Env: true, Name: dir})
	if err != nil {
		t.Fatal(err)
	}
	return &Checkpoint{Report: rep, Images: ck}
}

func TestDiffEdgeCases(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*shape)
		check func(t *testing.T, d ProcessDiff)
	}{
		{name: "one byte of a page", edit: func(s *shape) {
			s.heapPage = bytes.Clone(s.heapPage)
			copy(s.heapPage[0x100:], "HEAP_BASELINE_TEXX")
		}, check: func(t *testing.T, d ProcessDiff) {
			m := d.Memory
			if m.PagesChanged != 1 || m.BytesChanged != 1 || m.PagesNewlyCaptured != 0 {
				t.Errorf("pages changed %d, bytes %d, new %d; want 1, 1, 0", m.PagesChanged, m.BytesChanged, m.PagesNewlyCaptured)
			}
			if len(m.NewStrings) != 1 || m.NewStrings[0].Text != "HEAP_BASELINE_TEXX" || m.NewStrings[0].Addr != heapStart+0x100 {
				t.Errorf("new strings %+v, want HEAP_BASELINE_TEXX at %#x", m.NewStrings, heapStart+0x100)
			}
			want := []MappingChange{{Change: Changed, Start: heapStart, End: heapStart + 4*4096, Prot: "rw-", Kind: inspect.KindHeap, PagesChanged: 1, BytesChanged: 1}}
			if !slices.Equal(m.Mappings, want) {
				t.Errorf("mappings %+v, want %+v", m.Mappings, want)
			}
		}},
		{name: "mapping grown, page newly captured", edit: func(s *shape) {
			s.heapEnd += 8 * 4096
			s.extraPages = true
		}, check: func(t *testing.T, d ProcessDiff) {
			m := d.Memory
			want := []MappingChange{{Change: Grown, Start: heapStart, End: heapStart + 12*4096, StartBefore: heapStart, EndBefore: heapStart + 4*4096, Prot: "rw-", Kind: inspect.KindHeap, PagesNewlyCaptured: 1}}
			if !slices.Equal(m.Mappings, want) {
				t.Errorf("mappings %+v, want %+v", m.Mappings, want)
			}
			if m.PagesChanged != 0 || m.PagesNewlyCaptured != 1 {
				t.Errorf("pages changed %d, newly captured %d; want 0, 1", m.PagesChanged, m.PagesNewlyCaptured)
			}
			if len(m.NewStrings) != 1 || m.NewStrings[0].Text != "NEWLY_CAPTURED_SECRET_42" {
				t.Errorf("new strings %+v", m.NewStrings)
			}
		}},
		{name: "protection", edit: func(s *shape) { s.heapProt |= criuimg.ProtExec }, check: func(t *testing.T, d ProcessDiff) {
			want := []MappingChange{{Change: Protection, Start: heapStart, End: heapStart + 4*4096, Prot: "rwx", ProtBefore: "rw-", Kind: inspect.KindHeap}}
			if !slices.Equal(d.Memory.Mappings, want) {
				t.Errorf("mappings %+v, want %+v", d.Memory.Mappings, want)
			}
			if d.Memory.PagesChanged != 0 {
				t.Errorf("%d pages changed, want 0", d.Memory.PagesChanged)
			}
		}},
		{name: "environment", edit: func(s *shape) { s.env = []string{"PATH=/bin", "MODE=debug", "API_TOKEN=t0k3n"} }, check: func(t *testing.T, d ProcessDiff) {
			want := []EnvChange{{Change: Changed, Name: "MODE", Before: "prod", After: "debug"}, {Change: Added, Name: "API_TOKEN", After: "t0k3n"}}
			if !slices.Equal(d.Env, want) {
				t.Errorf("env %+v, want %+v", d.Env, want)
			}
		}},
		{name: "thread added", edit: func(s *shape) { s.thread = true }, check: func(t *testing.T, d ProcessDiff) {
			if len(d.Threads) != 1 || d.Threads[0].Change != Added || d.Threads[0].Tid != 11 {
				t.Errorf("threads %+v, want thread 11 added", d.Threads)
			}
			if !slices.Contains(d.Fields, Field{Name: "thread_count", Before: "1", After: "2"}) {
				t.Errorf("fields %+v lack thread_count 1 -> 2", d.Fields)
			}
		}},
		{name: "credentials", edit: func(s *shape) { s.setuid = true }, check: func(t *testing.T, d ProcessDiff) {
			want := []Field{{Name: "euid", Before: "1000", After: "0"}}
			if !slices.Equal(d.Fields, want) {
				t.Errorf("fields %+v, want %+v", d.Fields, want)
			}
		}},
		{name: "same pid, another exe", edit: func(s *shape) {
			s.exe, s.argv = "/tmp/implant", []string{"implant"}
		}, check: func(t *testing.T, d ProcessDiff) {
			if d.MatchedBy != "pid" {
				t.Errorf("matched by %q", d.MatchedBy)
			}
			var names []string
			for _, f := range d.Fields {
				names = append(names, f.Name)
				if f.Name == "exe" && (f.Before != "/bin/server" || f.After != "/tmp/implant") {
					t.Errorf("exe %q -> %q", f.Before, f.After)
				}
			}
			if !slices.Contains(names, "exe") || !slices.Contains(names, "argv") {
				t.Errorf("fields %v lack exe and argv", names)
			}
			if d.Memory == nil || d.Memory.NotCompared == "" {
				t.Errorf("memory of another program compared: %+v", d.Memory)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sa := base()
			sb := base()
			tt.edit(&sb)
			res, err := Diff(build(t, sa), build(t, sb), Options{Strings: 10})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Differs() || len(res.Processes) != 1 || res.Processes[0].Change != Changed {
				t.Fatalf("want one changed process, got %+v", res.Processes)
			}
			tt.check(t, res.Processes[0])
		})
	}
}

func TestDiffSame(t *testing.T) {
	s := base()
	res, err := Diff(build(t, s), build(t, s), Options{Strings: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Differs() || len(res.Processes) != 0 {
		t.Fatalf("identical checkpoints differ: %+v", res)
	}
	res, err = Diff(build(t, s), build(t, s), Options{ShowUnchanged: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Differs() || len(res.Processes) != 1 || res.Processes[0].Change != Unchanged || res.Processes[0].Memory.PagesCompared == 0 {
		t.Fatalf("--show-unchanged: %+v", res.Processes)
	}
}

func TestDiffPidMatching(t *testing.T) {
	sa, sb := base(), base()
	sb.pid = 20 // restarted under another pid, same program and command line
	other := base()
	other.pid, other.exe, other.argv = 30, "/bin/other", []string{"other"}
	res, err := Diff(build(t, sa), build(t, sb), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Processes) != 1 {
		t.Fatalf("processes %+v", res.Processes)
	}
	if d := res.Processes[0]; d.MatchedBy != "exe+argv" || d.Pid != 20 || d.PidBefore != 10 {
		t.Errorf("want pid 20 matched to 10 by exe+argv, got %+v", d)
	}
	res, err = Diff(build(t, sa), build(t, other), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, d := range res.Processes {
		changes = append(changes, d.Change)
	}
	if !slices.Equal(changes, []string{Removed, Added}) {
		t.Errorf("another program under another pid: %v, want removed, added", changes)
	}
	if _, err := Diff(build(t, sa), build(t, sb), Options{Pids: []uint32{99}}); err == nil {
		t.Error("unknown --pid accepted")
	}
}

func TestTopStrings(t *testing.T) {
	top := &topStrings{n: 2}
	page := []byte("\x00short\x00a_longer_string\x00the_longest_string_of_all\x00a_longer_string\x00")
	if n := top.scan(0x1000, page, nil, 6, "[anon]"); n != 3 {
		t.Errorf("found %d strings, want 3 (\"short\" is too short)", n)
	}
	got := top.sorted()
	if len(got) != 2 || got[0].Text != "a_longer_string" || got[0].Count != 2 || got[1].Text != "the_longest_string_of_all" {
		t.Errorf("kept %+v", got)
	}
	old := []byte("the_longest_string_of_all")
	top = &topStrings{n: 5}
	if n := top.scan(0, page, old, 6, ""); n != 2 {
		t.Errorf("found %d new strings, want 2 (one was in the old page)", n)
	}
}

// TestDiffSynthetic: synth's Large against LargeChanged: exactly the
// marked pages changed, and their marker strings are new.
func TestDiffSynthetic(t *testing.T) {
	const size, every = 64 * synth.PageSize, 5
	load := func(s *synth.Shape) *Checkpoint {
		dir := s.WriteTemp(t)
		ck, err := criuimg.SalvageOpen(imgtest.DirSource(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := inspect.Inspect(ck, inspect.Options{Env: true})
		if err != nil {
			t.Fatal(err)
		}
		return &Checkpoint{Report: rep, Images: ck}
	}
	a, b := load(synth.Large(size)), load(synth.LargeChanged(size, every))
	var marked uint64
	p := imgtest.LoadProcess(t, synth.LargeChanged(size, every).WriteTemp(t), synth.Pid)
	for i := range p.VMAs {
		if err := p.Mem.VMAExtents(&p.VMAs[i], func(e criuimg.Extent) error {
			for addr := e.Start; e.Kind == criuimg.Captured && addr < e.End; addr += synth.PageSize {
				if addr/synth.PageSize%every == 0 {
					marked++
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Diff(a, b, Options{Strings: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Processes) != 1 || res.Processes[0].Memory == nil {
		t.Fatalf("processes %+v", res.Processes)
	}
	m := res.Processes[0].Memory
	if marked == 0 || m.PagesChanged != marked || m.PagesNewlyCaptured != 0 || int(marked) != m.NewStringsTotal {
		t.Errorf("%d marked pages; diff: %d changed, %d newly captured, %d new strings", marked, m.PagesChanged, m.PagesNewlyCaptured, m.NewStringsTotal)
	}
	for _, s := range m.NewStrings {
		if s.Text != fmt.Sprintf("CHANGED_PAGE_%x", uint64(s.Addr)-65) {
			t.Errorf("new string %q at %s", s.Text, s.Addr)
		}
	}
}

// TestDiffDamaged: B's pages file cut short: the diff still compares
// what it can, and says what it could not read (no panic, no error).
func TestDiffDamaged(t *testing.T) {
	a := build(t, base())
	c := imgtest.New(imgtest.X86_64)
	s := base()
	p := c.AddProcess(s.pid, 0)
	p.Comm = "server"
	p.SetExe(s.exe)
	p.AddVMA(heapStart, s.heapEnd, s.heapProt, 0, criuimg.VMAAreaRegular|criuimg.VMAAnonPrivate|criuimg.VMAAreaHeap, "")
	p.AddPages(heapStart, s.heapPage, criuimg.PEPresent)
	p.SetArgsEnv(s.argv, s.env)
	dir := c.WriteTemp(t)
	names, _ := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	if len(names) != 1 {
		t.Fatalf("pages files %v", names)
	}
	if err := os.Truncate(names[0], 100); err != nil {
		t.Fatal(err)
	}
	ck, err := criuimg.SalvageOpen(imgtest.DirSource(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.Inspect(ck, inspect.Options{Env: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Diff(a, &Checkpoint{Report: rep, Images: ck}, Options{Strings: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Processes) != 1 || len(res.Processes[0].Warnings) == 0 {
		t.Fatalf("want one process with warnings naming the damage, got %+v", res.Processes)
	}
	t.Logf("warnings: %q", res.Processes[0].Warnings)
	if !strings.Contains(strings.Join(res.Processes[0].Warnings, "\n"), "pages-") {
		t.Errorf("warnings do not name the pages file: %q", res.Processes[0].Warnings)
	}
}

// TestDiffSameDamaged: a damaged checkpoint against itself differs in
// nothing, though its memory cannot all be compared.
func TestDiffSameDamaged(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	s := base()
	p := c.AddProcess(s.pid, 0)
	p.SetExe(s.exe)
	p.AddVMA(heapStart, s.heapEnd, s.heapProt, 0, criuimg.VMAAreaRegular|criuimg.VMAAnonPrivate|criuimg.VMAAreaHeap, "")
	p.AddPages(heapStart, s.heapPage, criuimg.PEPresent)
	p.SetArgsEnv(s.argv, s.env)
	p.Auxv = nil // no AT_PAGESZ: no memory view
	dir := c.WriteTemp(t)
	load := func() *Checkpoint {
		ck, err := criuimg.SalvageOpen(imgtest.DirSource(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := inspect.Inspect(ck, inspect.Options{Env: true})
		if err != nil {
			t.Fatal(err)
		}
		return &Checkpoint{Report: rep, Images: ck}
	}
	res, err := Diff(load(), load(), Options{ShowUnchanged: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Differs() || len(res.Processes) != 1 || res.Processes[0].Change != Unchanged {
		t.Fatalf("damaged checkpoint against itself: %+v", res.Processes)
	}
	if m := res.Processes[0].Memory; m == nil || m.NotCompared == "" {
		t.Errorf("memory %+v: want the reason it was not compared", m)
	}
}
