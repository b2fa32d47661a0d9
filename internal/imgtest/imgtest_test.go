package imgtest_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"google.golang.org/protobuf/proto"
)

func TestBuilderRoundTrip(t *testing.T) {
	for _, arch := range []imgtest.Arch{imgtest.X86_64, imgtest.AArch64} {
		t.Run(arch.String(), func(t *testing.T) {
			c := imgtest.New(arch)
			p := c.AddProcess(100, 0)
			p.Comm = "main-proc"
			p.AddThread(101)
			p.SetExe("/bin/prog")
			p.AddVMA(0x400000, 0x402000, criuimg.ProtRead|criuimg.ProtExec, 0, 0, "/bin/prog")
			p.AddAnon(0x600000, 0x610000)
			p.AddPages(0x601000, []byte("hello"), criuimg.PEPresent)
			p.AddPagesFunc(0x604000, 3, func(i int, pg []byte) { pg[0] = byte('a' + i) })
			p.SetArgs([]string{"/bin/prog", "arg1"})
			s := c.AddShmem(77, 0x4000)
			s.AddPages(0x1000, []byte("SHARED"), criuimg.PEPresent)
			p.MapShmem(0x700000, s, 0, criuimg.ProtRead|criuimg.ProtWrite)
			m := c.AddShmem(78, 0x2000)
			m.AddPages(0, []byte("MEMFD"), criuimg.PEPresent)
			p.MapMemfd(0x800000, m, 0, criuimg.ProtRead)
			z := c.AddProcess(102, 100)
			z.SetZombie(9 << 8)
			ck := imgtest.OpenDir(t, c.WriteTemp(t))
			pr := imgtest.LoadFrom(t, ck, 100)
			if pr.Comm != "main-proc" || len(pr.Threads) != 2 || pr.Threads[1].Comm() != "thread-101" || pr.PageSize != 4096 || pr.ExePath != "/bin/prog" {
				t.Fatalf("comm %q threads %d page size %d exe %q", pr.Comm, len(pr.Threads), pr.PageSize, pr.ExePath)
			}
			wantArch := map[imgtest.Arch]criuimg.Arch{imgtest.X86_64: criuimg.ArchX86_64, imgtest.AArch64: criuimg.ArchARM64}[arch]
			if pr.Arch != wantArch {
				t.Fatalf("arch %v", pr.Arch)
			}
			for _, th := range pr.Threads {
				var pc uint64
				if arch == imgtest.X86_64 {
					pc = th.Core.GetThreadInfo().GetGpregs().GetIp()
					if n := len(th.Core.GetThreadInfo().GetFpregs().GetXsave().GetHi16Zmm()); n != 128 {
						t.Errorf("hi16_zmm: %d", n)
					}
				} else {
					pc = th.Core.GetTiAarch64().GetGpregs().GetPc()
					if n := len(th.Core.GetTiAarch64().GetFpsimd().GetVregs()); n != 64 {
						t.Errorf("vregs: %d", n)
					}
				}
				want := imgtest.GPR(th.Tid, 17)
				if arch == imgtest.AArch64 {
					want = imgtest.GPR(th.Tid, 32)
				}
				if pc != want {
					t.Errorf("tid %d: pc %#x, want %#x", th.Tid, pc, want)
				}
			}
			read := func(addr uint64, n int) []byte {
				b := make([]byte, n)
				if _, err := pr.Mem.ReadAt(b, int64(addr)); err != nil {
					t.Fatalf("read %#x: %v", addr, err)
				}
				return b
			}
			if got := read(0x601000, 5); string(got) != "hello" {
				t.Errorf("got %q", got)
			}
			if got := read(0x605000, 2); !bytes.Equal(got, []byte{'b', 0}) {
				t.Errorf("got %q", got)
			}
			if got := read(0x701000, 6); string(got) != "SHARED" {
				t.Errorf("got %q", got)
			}
			if got := read(0x800000, 5); string(got) != "MEMFD" {
				t.Errorf("got %q", got)
			}
			args := read(pr.MM.GetMmArgStart(), int(pr.MM.GetMmArgEnd()-pr.MM.GetMmArgStart()))
			if string(args) != "/bin/prog\x00arg1\x00" {
				t.Errorf("args %q", args)
			}
			if _, err := ck.LoadProcess(102); err == nil {
				t.Error("zombie loaded")
			}
		})
	}
}

func TestCountFields(t *testing.T) {
	for _, cf := range []imgtest.CountField{imgtest.CountNrPages, imgtest.CountCompat, imgtest.CountBoth} {
		c := imgtest.New(imgtest.X86_64)
		c.Count = cf
		p := c.AddProcess(1, 0)
		p.AddAnon(0x10000, 0x20000)
		p.AddPages(0x10000, make([]byte, 3*4096), criuimg.PEPresent)
		dir := c.WriteTemp(t)
		e, err := imgtest.ReadEntry[*pagemap.PagemapEntry](filepath.Join(dir, "pagemap-1.img"), 1)
		if err != nil {
			t.Fatal(err)
		}
		switch cf {
		case imgtest.CountNrPages:
			if e.CompatNrPages == nil || e.GetCompatNrPages() != 0 || e.NrPages == nil || e.GetNrPages() != 3 {
				t.Errorf("%v: %v", cf, e)
			}
		case imgtest.CountCompat:
			if e.GetCompatNrPages() != 3 || e.NrPages != nil {
				t.Errorf("%v: %v", cf, e)
			}
		case imgtest.CountBoth:
			if e.GetCompatNrPages() != 3 || e.GetNrPages() != 3 {
				t.Errorf("%v: %v", cf, e)
			}
		}
		st, err := os.Stat(filepath.Join(dir, "pages-1.img"))
		if err != nil || st.Size() != 3*4096 {
			t.Fatalf("pages-1.img: %v %v", st, err)
		}
	}
}

func TestEditHelpers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mm-1.img")
	m := &mm.MmEntry{MmStartCode: proto.Uint64(1)}
	if err := imgtest.WriteImage(path, criuimg.MagicMM, m, m); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if binary.LittleEndian.Uint32(b) != criuimg.MagicImgCommon || binary.LittleEndian.Uint32(b[4:]) != criuimg.MagicMM {
		t.Fatalf("header % x", b[:8])
	}
	if err := imgtest.RewriteEntry(path, 1, func(m *mm.MmEntry) { m.MmStartCode = proto.Uint64(42) }); err != nil {
		t.Fatal(err)
	}
	got, err := imgtest.ReadEntry[*mm.MmEntry](path, 1)
	if err != nil || got.GetMmStartCode() != 42 {
		t.Fatalf("%v %v", got, err)
	}
	off, err := imgtest.EntryOffset(path, 1)
	if err != nil || off != 8+4+int64(len(imgtest.Marshal(m))) {
		t.Fatalf("offset %d %v", off, err)
	}
	if err := imgtest.DeleteEntry(path, 0); err != nil {
		t.Fatal(err)
	}
	if _, ents, err := imgtest.ReadEntries(path); err != nil || len(ents) != 1 {
		t.Fatalf("%d entries, %v", len(ents), err)
	}
}

// BenchmarkWriteLarge writes a checkpoint of 60,000 VMAs, 512 threads and
// 256 MiB of generated pages, then loads it.
func BenchmarkWriteLarge(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := imgtest.New(imgtest.X86_64)
		p := c.AddProcess(1, 0)
		for tid := uint32(2); tid <= 512; tid++ {
			p.AddThread(tid)
		}
		for v := uint64(0); v < 60000; v++ {
			start := 0x1000_0000 + v*0x2000
			p.AddAnon(start, start+0x1000)
		}
		p.AddAnon(0x10_0000_0000, 0x10_1000_0000)
		p.AddPagesFunc(0x10_0000_0000, 65536, func(i int, pg []byte) {
			binary.LittleEndian.PutUint64(pg, uint64(i))
		})
		// Not LoadFrom: each iteration closes its process.
		pr, err := imgtest.OpenDir(b, c.WriteTemp(b)).LoadProcess(1)
		if err != nil {
			b.Fatal(err)
		}
		if len(pr.VMAs) != 60001 || len(pr.Threads) != 512 {
			b.Fatalf("%d vmas %d threads", len(pr.VMAs), len(pr.Threads))
		}
		pr.Close()
	}
}

// TestTestdata: the fixtures are found from the package's directory and
// from deeper ones, by the repository's go.mod; the intrusion manifest
// reads with its typed indicators (the 13 of the fixture's README).
func TestTestdata(t *testing.T) {
	want := imgtest.Testdata("x86_64", "intrusion", "manifest.json")
	if !filepath.IsAbs(want) {
		t.Fatalf("Testdata %q: not found by go.mod", want)
	}
	if _, err := os.Stat(want); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(filepath.Dir(filepath.Dir(want)), "go-goroutines", "src"))
	if got := imgtest.Testdata("x86_64", "intrusion", "manifest.json"); got != want {
		t.Errorf("from a deeper directory: %q, want %q", got, want)
	}
	m := imgtest.Intrusion(t)
	if len(m.Indicators) != 13 || m.Indicators[0].ID != "I01" || m.Indicators[0].PidOr(0) == 0 || m.Indicators[12].Pid != nil {
		t.Errorf("indicators: %d, first %+v", len(m.Indicators), m.Indicators[0])
	}
	if m.Container.Name == "" || len(m.BeforeVsAfter.Files.GhostImagesAfter) == 0 || len(m.Delivered) == 0 {
		t.Errorf("manifest read incompletely: %+v", m.Container)
	}
	// The six server fixtures of servers/README.md; postgres has the
	// kernel's core as its oracle.
	if got := strings.Join(imgtest.Servers(t), " "); got != "jvm nginx node postgres python redis" {
		t.Errorf("servers %q", got)
	}
	if pg := imgtest.Server(t, "postgres"); len(pg.Oracles) != 1 || pg.RootPid == 0 || len(pg.Processes) == 0 {
		t.Errorf("postgres manifest %+v", pg)
	}
}
