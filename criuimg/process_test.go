package criuimg_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"google.golang.org/protobuf/proto"
)

// TestLoadProcessFixtures loads every process of every fixture and checks
// comm, state, threads (main first, names) against the manifests.
func TestLoadProcessFixtures(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.Arch+"/"+f.Name, func(t *testing.T) {
			c := imgtest.OpenDir(t, f.Dir)
			wantArch := map[string]criuimg.Arch{"x86_64": criuimg.ArchX86_64, "arm64": criuimg.ArchARM64}[f.Arch]
			for i, fp := range f.Procs {
				info, ok := c.Proc(fp.Pid)
				wantPPid := fp.PPid
				if i == 0 {
					wantPPid = 0 // CRIU records 0 for the root's parent (the arm64 facts show the real one)
				}
				if !ok || info.PPid != wantPPid {
					t.Errorf("pid %d: pstree %+v, want ppid %d", fp.Pid, info, wantPPid)
				}
				p, err := c.LoadProcess(fp.Pid)
				if fp.Zombie {
					if !errors.Is(err, criuimg.ErrZombie) || p == nil || p.Comm != fp.Comm || !p.Zombie() {
						t.Errorf("zombie %d: %v, %+v", fp.Pid, err, p)
					}
					continue
				}
				if err != nil {
					t.Errorf("pid %d: %v", fp.Pid, err)
					continue
				}
				if p.Comm != fp.Comm || p.Arch != wantArch || p.PageSize != 4096 || len(p.Threads) != len(fp.Tids) {
					t.Errorf("pid %d: comm %q arch %v page size %d, %d threads; manifest %q, %d threads", fp.Pid, p.Comm, p.Arch, p.PageSize, len(p.Threads), fp.Comm, len(fp.Tids))
				}
				if p.Threads[0].Tid != fp.Pid {
					t.Errorf("pid %d: first thread %d", fp.Pid, p.Threads[0].Tid)
				}
				names := map[uint64]string{}
				for i, tid := range fp.Tids {
					names[tid] = fp.Names[i]
				}
				for _, th := range p.Threads {
					want, ok := names[uint64(th.Tid)]
					if !ok || (want != "" && th.Comm() != want) {
						t.Errorf("pid %d: thread %d %q, manifest %q (listed %v)", fp.Pid, th.Tid, th.Comm(), want, ok)
					}
				}
				p.Close()
			}
		})
	}
}

func TestZombieStaticC(t *testing.T) {
	f := fixtureByName(t, "x86_64", "static-c")
	c := imgtest.OpenDir(t, f.Dir)
	p, err := c.LoadProcess(1538)
	if !errors.Is(err, criuimg.ErrZombie) || !strings.Contains(err.Error(), "1538") {
		t.Fatalf("error %v", err)
	}
	// src/static.c: the zombie is a child that called _exit(7).
	if p == nil || p.Comm != "static-c" || p.ExitCode != 7<<8 || p.State != criuimg.TaskDead || len(p.Threads) != 0 || p.Mem != nil {
		t.Fatalf("%+v", p)
	}
}

// build writes a synthetic checkpoint after edit and opens it.
func build(t *testing.T, arch imgtest.Arch, setup func(c *imgtest.Checkpoint), after func(dir string)) (*criuimg.Checkpoint, error) {
	t.Helper()
	c := imgtest.New(arch)
	setup(c)
	dir := c.WriteTemp(t)
	if after != nil {
		after(dir)
	}
	return openDir(t, dir)
}

func TestThreadOrderMainFirst(t *testing.T) {
	ck, err := build(t, imgtest.X86_64, func(c *imgtest.Checkpoint) {
		p := c.AddProcess(100, 0)
		p.AddThread(101)
		p.AddThread(99)
		p.AddAnon(0x10000, 0x20000)
		p.PstreeThreads = []uint32{101, 99, 100}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := imgtest.LoadFrom(t, ck, 100)
	var tids []uint32
	for _, th := range p.Threads {
		tids = append(tids, th.Tid)
		if got := th.Core.GetThreadInfo().GetGpregs().GetIp(); got != imgtest.GPR(th.Tid, 17) {
			t.Errorf("thread %d has the registers of another (ip %#x)", th.Tid, got)
		}
	}
	if fmt.Sprint(tids) != "[100 101 99]" {
		t.Errorf("threads %v", tids)
	}
}

func TestPageSizes(t *testing.T) {
	for _, c := range []struct {
		arch imgtest.Arch
		ps   uint64
		err  string
	}{
		{imgtest.X86_64, 4096, ""},
		{imgtest.AArch64, 16 << 10, ""},
		{imgtest.AArch64, 64 << 10, ""},
		{imgtest.AArch64, 0, "AT_PAGESZ 0"},
		{imgtest.AArch64, 3, "AT_PAGESZ 3"},
		{imgtest.AArch64, 1 << 40, "AT_PAGESZ 1099511627776"},
		{imgtest.AArch64, 4096 + 1024, "AT_PAGESZ 5120"},
		{imgtest.AArch64, 2 << 20, "AT_PAGESZ 2097152"},
	} {
		t.Run(fmt.Sprint(c.arch, c.ps), func(t *testing.T) {
			ps := c.ps
			if c.err != "" {
				ps = 4096 // the layout; AT_PAGESZ is set to c.ps below
			}
			ck, err := build(t, c.arch, func(ck *imgtest.Checkpoint) {
				p := ck.AddProcess(7, 0)
				p.SetPageSize(ps)
				p.AddAnon(0x40_0000, 0x40_0000+4*ps)
				b := make([]byte, ps+8)
				copy(b[ps:], "PAGE2")
				p.AddPages(0x40_0000+ps, b, criuimg.PEPresent)
				p.AddPages(0x40_0000+3*ps, []byte("LAST"), criuimg.PEPresent)
				if c.err != "" {
					p.SetAuxv(imgtest.AtPagesz, c.ps)
				}
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ck.LoadProcess(7)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), "mm-7.img") || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want mm-7.img ... %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.PageSize != c.ps {
				t.Errorf("page size %d", p.PageSize)
			}
			// The second run has 2 pages (ps+8 bytes rounded up): its
			// second page starts with PAGE2, and the last run follows it
			// in the pages file.
			for addr, want := range map[uint64]string{0x40_0000 + 2*ps: "PAGE2", 0x40_0000 + 3*ps: "LAST", 0x40_0000: "\x00\x00\x00\x00"} {
				b := make([]byte, len(want))
				if _, err := p.Mem.ReadAt(b, int64(addr)); err != nil || string(b) != want {
					t.Errorf("%#x: %q %v, want %q", addr, b, err, want)
				}
			}
		})
	}
	// No AT_PAGESZ at all.
	ck, err := build(t, imgtest.X86_64, func(c *imgtest.Checkpoint) {
		p := c.AddProcess(7, 0)
		p.Auxv = []uint64{25, 0x1234}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ck.LoadProcess(7); err == nil || !strings.Contains(err.Error(), "mm-7.img: AT_PAGESZ 0") {
		t.Errorf("no AT_PAGESZ: %v", err)
	}
}

func TestBadVMAs(t *testing.T) {
	for _, c := range []struct {
		name  string
		vmas  [][2]uint64
		index int
		msg   string
	}{
		{"start equals end", [][2]uint64{{0x10000, 0x20000}, {0x30000, 0x30000}}, 1, "start is not below end"},
		{"start above end", [][2]uint64{{0x20000, 0x10000}}, 0, "start is not below end"},
		{"unaligned start", [][2]uint64{{0x10000, 0x20000}, {0x30010, 0x40000}}, 1, "not aligned to the page size 4096"},
		{"unaligned end", [][2]uint64{{0x10000, 0x20008}}, 0, "not aligned"},
		{"overlapping", [][2]uint64{{0x10000, 0x20000}, {0x1f000, 0x30000}}, 1, "overlaps"},
		{"out of order", [][2]uint64{{0x30000, 0x40000}, {0x10000, 0x20000}}, 1, "overlaps or is out of order"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ck, err := build(t, imgtest.X86_64, func(ck *imgtest.Checkpoint) {
				p := ck.AddProcess(5, 0)
				p.KeepOrder = true
				for _, v := range c.vmas {
					p.AddAnon(v[0], v[1])
				}
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ck.LoadProcess(5)
			v := c.vmas[c.index]
			want := fmt.Sprintf("mm-5.img: vma %d [%#x-%#x): ", c.index, v[0], v[1])
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %v, want %q...%q", err, want, c.msg)
			}
		})
	}
}

func TestPstreeErrors(t *testing.T) {
	ent := func(pid, ppid uint32) *pstree.PstreeEntry {
		return &pstree.PstreeEntry{Pid: proto.Uint32(pid), Ppid: proto.Uint32(ppid), Pgid: proto.Uint32(pid), Sid: proto.Uint32(pid), Threads: []uint32{pid}}
	}
	for _, c := range []struct {
		name string
		ents []*pstree.PstreeEntry
		want string // regexp
	}{
		{"duplicate pid", []*pstree.PstreeEntry{ent(1, 0), ent(2, 1), ent(2, 1)}, `pstree\.img: entry 2 at offset \d+: pid 2 already listed by entry 1`},
		{"unknown parent", []*pstree.PstreeEntry{ent(1, 0), ent(2, 1), ent(3, 9)}, `pstree\.img: entry 2 at offset \d+: pid 3: parent 9 is not in the tree`},
		{"two-process cycle", []*pstree.PstreeEntry{ent(1, 0), ent(2, 3), ent(3, 2)}, `pstree\.img: entry 1 at offset \d+: pid 2: parent links form a cycle`},
		{"own parent", []*pstree.PstreeEntry{ent(1, 0), ent(2, 2)}, `pstree\.img: entry 1 at offset \d+: pid 2: parent links form a cycle`},
		{"root in a cycle", []*pstree.PstreeEntry{ent(1, 2), ent(2, 1)}, `pstree\.img: entry 0 at offset \d+: pid 1: parent links form a cycle`},
		{"pid 0", []*pstree.PstreeEntry{ent(1, 0), ent(0, 1)}, `pstree\.img: entry 1 at offset \d+: pid 0`},
		{"empty", nil, `pstree\.img: entry 0 at offset \d+: no process`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := build(t, imgtest.X86_64, func(ck *imgtest.Checkpoint) { ck.AddProcess(1, 0) }, func(dir string) {
				msgs := make([]proto.Message, len(c.ents))
				for i, e := range c.ents {
					msgs[i] = e
				}
				if err := imgtest.WriteImage(filepath.Join(dir, "pstree.img"), criuimg.MagicPstree, msgs...); err != nil {
					t.Fatal(err)
				}
			})
			if err == nil || !regexp.MustCompile(c.want).MatchString(err.Error()) || !errors.Is(err, criuimg.ErrFormat) {
				t.Errorf("error %v, want %s", err, c.want)
			}
		})
	}
	// A deep chain is not a cycle.
	_, err := build(t, imgtest.X86_64, func(ck *imgtest.Checkpoint) {
		for pid := uint32(1); pid <= 50; pid++ {
			ck.AddProcess(pid, pid-1)
		}
	}, nil)
	if err != nil {
		t.Errorf("chain of 50: %v", err)
	}
}

// TestPstreeErrorOffsets: errors about a pstree entry give the offset of
// that entry, like framing errors do.
func TestPstreeErrorOffsets(t *testing.T) {
	var dir string
	_, err := build(t, imgtest.X86_64, func(ck *imgtest.Checkpoint) {
		ck.AddProcess(1, 0)
		ck.AddProcess(2, 1)
		ck.AddProcess(2, 1)
	}, func(d string) { dir = d })
	off, oerr := imgtest.EntryOffset(filepath.Join(dir, "pstree.img"), 2)
	if oerr != nil {
		t.Fatal(oerr)
	}
	want := fmt.Sprintf("pstree.img: entry 2 at offset %d: ", off)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestMissingThreadCore(t *testing.T) {
	ck, err := build(t, imgtest.AArch64, func(c *imgtest.Checkpoint) {
		p := c.AddProcess(40, 0)
		p.AddThread(41)
		p.AddThread(42)
	}, func(dir string) {
		if err := os.Remove(filepath.Join(dir, "core-42.img")); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ck.LoadProcess(40)
	if err == nil || !strings.Contains(err.Error(), "core-42.img") || !criuimg.IsNotExist(err) {
		t.Errorf("error %v", err)
	}
	// A truncated core names the file too.
	ck, err = build(t, imgtest.X86_64, func(c *imgtest.Checkpoint) {
		p := c.AddProcess(40, 0)
		p.AddThread(41)
	}, func(dir string) {
		if err := imgtest.Truncate(filepath.Join(dir, "core-41.img"), 100); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = ck.LoadProcess(40); err == nil || !strings.HasPrefix(err.Error(), "pid 40: thread 41: core-41.img: entry 0 at offset 8: entry size") {
		t.Errorf("error %v", err)
	}
}

func TestParentAndLazyWarnings(t *testing.T) {
	ck, err := build(t, imgtest.X86_64, func(c *imgtest.Checkpoint) {
		p := c.AddProcess(3, 0)
		p.AddAnon(0x10000, 0x40000)
		p.AddPages(0x10000, []byte("X"), criuimg.PEPresent)
		p.AddPageEntry(0x20000, 3, criuimg.PEParent)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := imgtest.LoadFrom(t, ck, 3)
	runs := p.Mem.Private().Runs
	if len(runs) != 2 || runs[1].Offset != -1 || runs[1].InFile() || runs[1].Len != 3*4096 {
		t.Fatalf("runs %+v", runs)
	}
	if want := []criuimg.Note{{Kind: criuimg.NoteParentPages, Bytes: 12288}}; !slices.Equal(p.Notes, want) {
		t.Errorf("notes %v, want %v", p.Notes, want)
	}
}
