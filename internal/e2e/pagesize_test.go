package e2e

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/coredump"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"google.golang.org/protobuf/proto"
)

// pageSizeCase is a synthetic aarch64 checkpoint of one process on a kernel
// with the given page size, and what its core must hold.
type pageSizeCase struct {
	ps                  uint64
	exe                 string
	text, data          uint64 // exe r-x at text (2 pages, clean), rw- at data (1 page, dirty, file page 2)
	heap                uint64 // 4 pages, pages 1 and 3 captured
	resv                uint64 // 16 pages PROT_NONE, nothing captured
	stackStart, stackTo uint64
	heapWord, dataWord  uint64 // values at heap+ps+0x18 and data+8
	heapStr             string // at heap+3*ps
	argv                []string
}

func (c *pageSizeCase) build(t *testing.T, dir string) {
	t.Helper()
	ck := imgtest.New(imgtest.AArch64)
	ck.PageSize = c.ps
	p := ck.AddProcess(4242, 0)
	p.Comm = "pgsz"
	ps := c.ps
	c.exe = "/opt/pgsz/bin/pgsz"
	p.SetExe(c.exe)
	rx, rw := uint32(criuimg.ProtRead|criuimg.ProtExec), uint32(criuimg.ProtRead|criuimg.ProtWrite)
	p.AddVMA(c.text, c.text+2*ps, rx, 0, 0, c.exe)
	d := p.AddVMA(c.data, c.data+ps, rw, 0, 0, c.exe)
	d.Pgoff = proto.Uint64(2 * ps)
	page := make([]byte, ps)
	binary.LittleEndian.PutUint64(page[8:], c.dataWord)
	p.AddPages(c.data, page, criuimg.PEPresent)
	p.AddAnon(c.heap, c.heap+4*ps)
	page = make([]byte, ps)
	binary.LittleEndian.PutUint64(page[0x18:], c.heapWord)
	p.AddPages(c.heap+ps, page, criuimg.PEPresent)
	p.AddPages(c.heap+3*ps, []byte(c.heapStr+"\x00"), criuimg.PEPresent)
	p.AddVMA(c.resv, c.resv+16*ps, 0, 0, 0, "")
	st := p.SetArgs(c.argv)
	c.stackStart, c.stackTo = st.GetStart(), st.GetEnd()
	if err := ck.Write(dir); err != nil {
		t.Fatal(err)
	}
}

// TestPageSizes converts synthetic aarch64 checkpoints of 4, 16 and 64 KiB
// page kernels: the core takes its page size from AT_PAGESZ (never the
// host's) for p_align, the start of segment data, NT_FILE's page size and
// page offsets and the segments' extents, and gdb-multiarch loads it and
// reads the captured values.
func TestPageSizes(t *testing.T) {
	for _, ps := range []uint64{4 << 10, 16 << 10, 64 << 10} {
		t.Run(fmt.Sprintf("%dK", ps>>10), func(t *testing.T) {
			t.Parallel()
			c := &pageSizeCase{
				ps:   ps,
				text: 0xaaaa_0000_0000, data: 0xaaaa_0000_0000 + 4*ps,
				heap: 0xaaaa_1000_0000, resv: 0xffff_a000_0000,
				heapWord: 0x1122_3344_5566_7788, dataWord: 0x0bad_cafe_0000_0000 | ps,
				heapStr: fmt.Sprintf("heap string of a %d-byte page", ps),
				argv:    []string{"/opt/pgsz/bin/pgsz", "--page-size", strconv.FormatUint(ps, 10)},
			}
			images := filepath.Join(t.TempDir(), "images")
			c.build(t, images)
			res := runCLI(t, images)
			if res.exit != 0 {
				t.Fatalf("ckpt2core exited %d\nstdout:\n%s\nstderr:\n%s", res.exit, res.stdout, res.stderr)
			}
			core := filepath.Join(res.out, "core.4242")
			c.checkLayout(t, core)
			c.checkGDB(t, core)
		})
	}
}

func (c *pageSizeCase) checkLayout(t *testing.T, path string) {
	ps := c.ps
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.Type != elf.ET_CORE {
		t.Errorf("machine %v type %v", f.Machine, f.Type)
	}
	var got []seg
	var noteEnd uint64
	firstData := uint64(0)
	for _, ph := range f.Progs {
		switch ph.Type {
		case elf.PT_NOTE:
			noteEnd = ph.Off + ph.Filesz
		case elf.PT_LOAD:
			got = append(got, seg{ph.Vaddr, ph.Memsz, ph.Filesz, ph.Flags})
			if ph.Align != ps {
				t.Errorf("PT_LOAD %#x: p_align %#x, want the page size %#x", ph.Vaddr, ph.Align, ps)
			}
			if ph.Off%ps != 0 {
				t.Errorf("PT_LOAD %#x: p_offset %#x not aligned to %#x", ph.Vaddr, ph.Off, ps)
			}
			if ph.Filesz > 0 && firstData == 0 {
				firstData = ph.Off
			}
		}
	}
	// The kernel starts segment data at the first page boundary after the
	// notes (fs/binfmt_elf.c: dataoff = roundup(offset, ELF_EXEC_PAGESIZE)).
	if want := (noteEnd + ps - 1) &^ (ps - 1); firstData != want {
		t.Errorf("segment data starts at %#x, want %#x (notes end at %#x, page size %#x)", firstData, want, noteEnd, ps)
	}
	R, W := elf.PF_R, elf.PF_W
	want := []seg{
		{c.data, ps, ps, R | W},         // the dirty page of the exe; its clean text has none
		{c.heap, 4 * ps, 4 * ps, R | W}, // captured anonymous memory, whole
		{c.resv, 16 * ps, 0, 0},         // PROT_NONE, known zero
		{c.stackStart, c.stackTo - c.stackStart, c.stackTo - c.stackStart, R | W},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PT_LOADs:\n got %s\nwant %s", fmtSegs(got), fmtSegs(want))
	}

	cd, err := coredump.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cd.Close()
	if v, ok := cd.AuxvValue(6); !ok || v != ps {
		t.Errorf("NT_AUXV AT_PAGESZ %d (%v), want %d", v, ok, ps)
	}
	files, fps, err := cd.Files()
	if err != nil {
		t.Fatal(err)
	}
	if fps != ps {
		t.Errorf("NT_FILE page size %d, want %d", fps, ps)
	}
	wantFiles := []coredump.FileEntry{
		{Start: c.text, End: c.text + 2*ps, PageOffset: 0, Name: c.exe},
		{Start: c.data, End: c.data + ps, PageOffset: 2, Name: c.exe},
	}
	if !reflect.DeepEqual(files, wantFiles) {
		t.Errorf("NT_FILE:\n got %+v\nwant %+v", files, wantFiles)
	}
	ps2, err := cd.PSInfo()
	if err != nil {
		t.Fatal(err)
	}
	// The kernel rule: the whole argument area, its final NUL too, NULs
	// as spaces.
	if want := strings.Join(c.argv, " ") + " "; ps2.Psargs != want {
		t.Errorf("pr_psargs %q, want %q", ps2.Psargs, want)
	}
	b, err := cd.ReadAt(c.heap+ps+0x18, 8)
	if err != nil || binary.LittleEndian.Uint64(b) != c.heapWord {
		t.Errorf("heap word: %x, %v", b, err)
	}
	b, err = cd.ReadAt(c.heap+2*ps, int(ps))
	if err != nil || strings.Trim(string(b), "\x00") != "" {
		t.Errorf("untouched heap page: %v, nonzero bytes", err)
	}
}

type seg struct {
	vaddr, memsz, filesz uint64
	flags                elf.ProgFlag
}

func fmtSegs(s []seg) string {
	var b strings.Builder
	for _, x := range s {
		fmt.Fprintf(&b, "\n  %#x memsz %#x filesz %#x %v", x.vaddr, x.memsz, x.filesz, x.flags)
	}
	return b.String()
}

var gdbValueRe = regexp.MustCompile(`(?m)^0x[0-9a-f]+:\s+(0x[0-9a-f]+|"[^"]*")\s*$`)

func (c *pageSizeCase) checkGDB(t *testing.T, core string) {
	gdb, err := exec.LookPath("gdb-multiarch")
	if err != nil {
		t.Skip("gdb-multiarch not installed: gdb check skipped")
	}
	ps := c.ps
	args := []string{"-batch", "-nx", "-iex", "set sysroot /nonexistent", "-c", core,
		"-ex", fmt.Sprintf("x/gx %#x", c.heap+ps+0x18),
		"-ex", fmt.Sprintf("x/gx %#x", c.data+8),
		"-ex", fmt.Sprintf("x/s %#x", c.heap+3*ps),
		"-ex", "p/x $pc",
		"-ex", "info proc mappings"}
	cmd := exec.Command(gdb, args...)
	cmd.Env = append(cmd.Environ(), "HOME="+t.TempDir(), "LC_ALL=C", "DEBUGINFOD_URLS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gdb: %v\n%s", err, out)
	}
	s := string(out)
	vals := gdbValueRe.FindAllStringSubmatch(s, -1)
	want := []string{fmt.Sprintf("0x%016x", c.heapWord), fmt.Sprintf("0x%016x", c.dataWord), strconv.Quote(c.heapStr)}
	var got []string
	for _, v := range vals {
		got = append(got, v[1])
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("gdb read %q, want %q:\n%s", got, want, s)
	}
	if pc := fmt.Sprintf("$1 = %#x", imgtest.GPR(4242, 32)); !strings.Contains(s, pc) {
		t.Errorf("gdb's $pc: want %q:\n%s", pc, s)
	}
	// info proc mappings shows NT_FILE: the data mapping at file offset
	// 2 pages of this page size.
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^\s*%#x\s+%#x\s+%#x\s+%#x\s+%s\s*$`, c.data, c.data+ps, ps, 2*ps, regexp.QuoteMeta(c.exe)))
	if !re.MatchString(s) {
		t.Errorf("gdb's info proc mappings lacks %#x-%#x at offset %#x of %s:\n%s", c.data, c.data+ps, 2*ps, c.exe, s)
	}
}
