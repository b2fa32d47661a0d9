package fromcriu_test

import (
	"bytes"
	"debug/elf"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	criu_core "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/regs"
	"github.com/ckpt2core/ckpt2core/internal/regs/fromcriu"
)

// testdata is the repository's fixture directory, relative to this package.
const testdata = "../../../testdata"

const (
	imgCommon  = 0x54564319 // IMG_COMMON magic
	imgService = 0x55105940 // IMG_SERVICE magic
	coreMagic  = 0x55053847 // CORE image magic
)

// readCoreImg decodes a CRIU core-<tid>.img: two 4-byte magics, then one
// entry (u32 little-endian size, protobuf core_entry).
func readCoreImg(t *testing.T, path string) *criu_core.CoreEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 12 {
		t.Fatalf("%s: short image (%d bytes)", path, len(b))
	}
	le := binary.LittleEndian
	if m := le.Uint32(b); m != imgCommon && m != imgService {
		t.Fatalf("%s: first magic %#x", path, m)
	}
	if m := le.Uint32(b[4:]); m != coreMagic {
		t.Fatalf("%s: image magic %#x, want CORE %#x", path, m, coreMagic)
	}
	n := le.Uint32(b[8:])
	if uint64(n) > uint64(len(b)-12) {
		t.Fatalf("%s: entry of %d bytes, only %d left", path, n, len(b)-12)
	}
	var ce criu_core.CoreEntry
	if err := proto.Unmarshal(b[12:12+n], &ce); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &ce
}

type note struct {
	name string
	typ  uint32
	desc []byte
}

// oracle is the notes of one or more oracle cores of a fixture.
type oracle struct {
	threads map[int32][]note // per tid: its NT_PRSTATUS and the notes that follow it
	layout  map[int32][]byte // per tid: the NT_X86_XSAVE_LAYOUT of its core (nil if none)
	gcore   map[int32]bool   // per tid: its core was written by gdb's gcore, not the kernel
}

func parseNotes(t *testing.T, path string) []note {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Type != elf.ET_CORE {
		t.Fatalf("%s: ELF type %v", path, f.Type)
	}
	var out []note
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b, err := io.ReadAll(p.Open())
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for len(b) > 0 {
			if len(b) < 12 {
				t.Fatalf("%s: truncated note header", path)
			}
			nsz := int(binary.LittleEndian.Uint32(b))
			dsz := int(binary.LittleEndian.Uint32(b[4:]))
			typ := binary.LittleEndian.Uint32(b[8:])
			off := 12
			nameEnd := off + nsz
			descOff := off + (nsz+3)&^3
			descEnd := descOff + dsz
			if descEnd > len(b) {
				t.Fatalf("%s: truncated note", path)
			}
			out = append(out, note{
				name: string(bytes.TrimRight(b[off:nameEnd], "\x00")),
				typ:  typ,
				desc: b[descOff:descEnd],
			})
			b = b[min(len(b), descOff+(dsz+3)&^3):]
		}
	}
	return out
}

func loadOracle(t *testing.T, fixture string) *oracle {
	t.Helper()
	gzs, err := filepath.Glob(filepath.Join(fixture, "core.*.gz"))
	if err != nil || len(gzs) == 0 {
		t.Fatalf("%s: no oracle cores (%v)", fixture, err)
	}
	o := &oracle{threads: map[int32][]note{}, layout: map[int32][]byte{}, gcore: map[int32]bool{}}
	dir := t.TempDir()
	for _, gz := range gzs {
		notes := parseNotes(t, imgtest.Gunzip(t, gz, dir))
		var layout []byte
		var tids []int32
		gcore := false
		cur := int32(-1)
		for _, n := range notes {
			if n.typ == regs.NT_X86_XSAVE_LAYOUT && n.name == regs.NoteNameLinux {
				layout = n.desc
				continue
			}
			if n.name == "GDB" {
				gcore = true // gdb's target description note
			}
			if n.typ == regs.NT_PRSTATUS && n.name == regs.NoteNameCore {
				cur = int32(binary.LittleEndian.Uint32(n.desc[32:]))
				if _, dup := o.threads[cur]; dup {
					t.Fatalf("%s: tid %d twice", gz, cur)
				}
				tids = append(tids, cur)
			}
			if cur >= 0 {
				o.threads[cur] = append(o.threads[cur], n)
			}
		}
		for _, tid := range tids {
			o.layout[tid] = layout
			o.gcore[tid] = gcore
		}
	}
	return o
}

func (o *oracle) note(t *testing.T, tid int32, typ uint32) []byte {
	t.Helper()
	for _, n := range o.threads[tid] {
		if n.typ == typ {
			return n.desc
		}
	}
	return nil
}

// coreImages returns the tids and decoded core images of a fixture.
func coreImages(t *testing.T, fixture string) (tids []int32, cores map[int32]*criu_core.CoreEntry) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixture, "images", "core-*.img"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("%s: no core images (%v)", fixture, err)
	}
	cores = map[int32]*criu_core.CoreEntry{}
	for _, p := range paths {
		s := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "core-"), ".img")
		tid, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		cores[int32(tid)] = readCoreImg(t, p)
		tids = append(tids, int32(tid))
	}
	sort.Slice(tids, func(i, j int) bool { return tids[i] < tids[j] })
	return tids, cores
}

// skipZombie reports whether a core image is that of a zombie, for which
// CRIU saves no registers (and the kernel writes no core).
func skipZombie(t *testing.T, tid int32, ce *criu_core.CoreEntry) bool {
	const taskDead = 2 // TASK_DEAD in criu-core.proto's task_state
	if ce.GetTc().GetTaskState() == taskDead {
		t.Logf("tid %d: zombie (task_state %d), no registers", tid, taskDead)
		return true
	}
	return false
}

var x86Fixtures = []string{"threads-c", "threads-c-criu411", "static-c", "go-goroutines", "counter"}

// xsaveComponent is one entry of a layout note.
type xsaveComponent struct{ typ, size, offset, flags uint32 }

func parseLayout(t *testing.T, b []byte) []xsaveComponent {
	t.Helper()
	if len(b)%16 != 0 {
		t.Fatalf("layout note of %d bytes", len(b))
	}
	var out []xsaveComponent
	for ; len(b) > 0; b = b[16:] {
		le := binary.LittleEndian
		out = append(out, xsaveComponent{le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:])})
	}
	return out
}

// standardLayout is the layout of an XSAVE area in the standard format for xcr0.
func standardLayout(xcr0 uint64) []xsaveComponent {
	var out []xsaveComponent
	for i := 2; i < 64; i++ {
		if xcr0&(1<<i) == 0 {
			continue
		}
		off, size, ok := regs.X86XFeatureStandard(i)
		if !ok {
			panic(fmt.Sprintf("component %d", i))
		}
		out = append(out, xsaveComponent{uint32(i), uint32(size), uint32(off), 0})
	}
	return out
}

// checkAgainstOracle runs check on every thread of each fixture of arch
// (a directory of testdata) whose core has registers (hasRegs), after
// skipZombie for the others, and checks that every thread of the oracles
// was checked.
func checkAgainstOracle(t *testing.T, arch string, fixtures []string, hasRegs func(*criu_core.CoreEntry) bool,
	check func(t *testing.T, o *oracle, tid int32, ce *criu_core.CoreEntry)) {
	for _, fx := range fixtures {
		t.Run(fx, func(t *testing.T) {
			dir := filepath.Join(testdata, arch, fx)
			o := loadOracle(t, dir)
			tids, cores := coreImages(t, dir)
			checked := 0
			for _, tid := range tids {
				ce := cores[tid]
				if !hasRegs(ce) && skipZombie(t, tid, ce) {
					continue
				}
				t.Run(strconv.Itoa(int(tid)), func(t *testing.T) {
					check(t, o, tid, ce)
				})
				checked++
			}
			// Every thread of the oracles was checked.
			if checked != len(o.threads) {
				t.Errorf("checked %d threads, the oracles have %d", checked, len(o.threads))
			}
		})
	}
}

func TestX86AgainstOracle(t *testing.T) {
	checkAgainstOracle(t, "x86_64", x86Fixtures, func(ce *criu_core.CoreEntry) bool { return ce.GetThreadInfo() != nil }, checkX86Thread)
}

func checkX86Thread(t *testing.T, o *oracle, tid int32, ce *criu_core.CoreEntry) {
	gp, xs, err := fromcriu.X86(ce.GetThreadInfo())
	if err != nil {
		t.Fatal(err)
	}
	if xs == nil || xs.XCR0 == 0 {
		t.Fatalf("no XSAVE state")
	}
	prs := o.note(t, tid, regs.NT_PRSTATUS)
	if prs == nil {
		t.Fatalf("no NT_PRSTATUS for tid %d in the oracle", tid)
	}
	if len(prs) != regs.PRStatusSizeX86_64 {
		t.Fatalf("oracle NT_PRSTATUS is %d bytes", len(prs))
	}

	// pr_reg: identical bytes.
	checkPRStatus(t, o, tid, &gp, prs, 328)

	// NT_PRFPREG: identical bytes.
	fpreg := o.note(t, tid, regs.NT_PRFPREG)
	fb, err := xs.FX.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if o.gcore[tid] {
		fpreg = gdbMxcsrMask(t, fb, fpreg)
	}
	if !bytes.Equal(fb, fpreg) {
		t.Errorf("NT_PRFPREG differs:\nours   %x\noracle %x", fb, fpreg)
	}

	// NT_X86_XSTATE: equal by value, per component, the oracle decoded
	// with its own layout note (the standard layout if it has none).
	ox := o.note(t, tid, regs.NT_X86_XSTATE)
	if ox == nil {
		t.Fatalf("no NT_X86_XSTATE in the oracle")
	}
	ours, err := xs.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(ours) != xs.Size() {
		t.Errorf("MarshalBinary gave %d bytes, Size() %d", len(ours), xs.Size())
	}
	oXCR0 := binary.LittleEndian.Uint64(ox[regs.X86XCR0Offset:])
	if o.gcore[tid] {
		ox = gdbMxcsrMask(t, ours, ox)
		ox = gdbXstateBV(t, ours, ox)
	}
	if oXCR0 != xs.XCR0 {
		t.Errorf("XCR0: ours %#x, oracle %#x", xs.XCR0, oXCR0)
	}
	var oLayout []xsaveComponent
	if l := o.layout[tid]; l != nil {
		oLayout = parseLayout(t, l)
	} else {
		oLayout = standardLayout(oXCR0)
		t.Logf("oracle has no NT_X86_XSAVE_LAYOUT: decoding it with the standard layout for XCR0 %#x (%d bytes)", oXCR0, len(ox))
	}
	ourLayout := parseLayout(t, xs.LayoutNote())
	if !equalLayoutTypes(ourLayout, oLayout) {
		t.Errorf("components: ours %v, oracle %v", ourLayout, oLayout)
	}
	if !equalLayout(ourLayout, standardLayout(xs.XCR0)) {
		t.Errorf("our layout note %v is not the standard layout", ourLayout)
	}
	// Legacy area and header, bytes 0..576: the same in both layouts.
	if !bytes.Equal(ours[:576], ox[:576]) {
		t.Errorf("legacy area/header differ:\nours   %x\noracle %x", ours[:576], ox[:576])
	}
	// The legacy area of NT_X86_XSTATE is NT_PRFPREG except bytes 464..471 (XCR0).
	if !bytes.Equal(ours[:464], fb[:464]) || !bytes.Equal(ours[472:512], fb[472:512]) {
		t.Errorf("xstate legacy area is not NT_PRFPREG plus XCR0")
	}
	for _, oc := range oLayout {
		_, size, _ := regs.X86XFeatureStandard(int(oc.typ))
		if int(oc.size) != size {
			t.Errorf("component %d: oracle size %d, standard %d", oc.typ, oc.size, size)
			continue
		}
		var uc *xsaveComponent
		for i := range ourLayout {
			if ourLayout[i].typ == oc.typ {
				uc = &ourLayout[i]
			}
		}
		if uc == nil {
			continue // reported above
		}
		if int(oc.offset+oc.size) > len(ox) {
			t.Errorf("component %d beyond the oracle's %d bytes", oc.typ, len(ox))
			continue
		}
		a := ours[uc.offset : uc.offset+uc.size]
		b := ox[oc.offset : oc.offset+oc.size]
		if !bytes.Equal(a, b) {
			t.Errorf("component %d differs:\nours   %x\noracle %x", oc.typ, a, b)
		}
	}
}

// checkPRStatus builds our NT_PRSTATUS of tid around the registers gp
// and checks it against the oracle's, prs: pr_reg (bytes 112 to end)
// identical, then pr_pid and pr_fpvalid (checkPidFPValid).
func checkPRStatus(t *testing.T, o *oracle, tid int32, gp encoding.BinaryMarshaler, prs []byte, end int) {
	t.Helper()
	rb, err := gp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ps := regs.PRStatus{Pid: tid, Regs: rb, FPValid: 1}
	pb, err := ps.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pb[112:end], prs[112:end]) {
		t.Errorf("pr_reg differs:\nours   %x\noracle %x", pb[112:end], prs[112:end])
	}
	checkPidFPValid(t, o.gcore[tid], pb, prs)
}

// checkPidFPValid compares pr_pid and pr_fpvalid (with its padding) of
// our NT_PRSTATUS (pr_fpvalid 1) with the oracle's. The kernel sets
// pr_fpvalid to 1 as it writes NT_PRFPREG; gdb's gcore leaves it 0.
func checkPidFPValid(t *testing.T, gcore bool, ours, oracle []byte) {
	t.Helper()
	if !bytes.Equal(ours[32:36], oracle[32:36]) {
		t.Errorf("pr_pid: ours %x, oracle %x", ours[32:36], oracle[32:36])
	}
	n := len(ours)
	want := ours[n-8:]
	if gcore {
		want = make([]byte, 8)
	}
	if !bytes.Equal(want, oracle[n-8:]) {
		t.Errorf("pr_fpvalid: want %x, oracle %x (gcore %v)", want, oracle[n-8:], gcore)
	}
}

// gdbMxcsrMask accounts for gdb's gcore, which writes mxcsr_mask (bytes
// 28..31 of the FXSAVE area) as 0: it checks that and returns a copy of the
// oracle with our mxcsr_mask.
func gdbMxcsrMask(t *testing.T, ours, oracle []byte) []byte {
	t.Helper()
	if m := binary.LittleEndian.Uint32(oracle[28:]); m != 0 {
		t.Errorf("gcore oracle's mxcsr_mask is %#x, expected gdb's 0", m)
	}
	c := bytes.Clone(oracle)
	copy(c[28:32], ours[28:32])
	return c
}

// gdbXstateBV accounts for gdb's gcore, which writes XSTATE_BV as XCR0 (all
// enabled components, their registers written out even when in the initial
// state): it checks that, and that our XSTATE_BV (the kernel's, saved by
// CRIU) is a subset, and returns a copy of the oracle with our XSTATE_BV.
func gdbXstateBV(t *testing.T, ours, oracle []byte) []byte {
	t.Helper()
	le := binary.LittleEndian
	obv, xcr0, bv := le.Uint64(oracle[512:]), le.Uint64(oracle[regs.X86XCR0Offset:]), le.Uint64(ours[512:])
	if obv != xcr0 || bv&^obv != 0 {
		t.Errorf("gcore oracle's XSTATE_BV %#x, XCR0 %#x, ours %#x", obv, xcr0, bv)
	}
	c := bytes.Clone(oracle)
	le.PutUint64(c[512:], bv)
	return c
}

func equalLayoutTypes(a, b []xsaveComponent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].typ != b[i].typ || a[i].size != b[i].size || a[i].flags != b[i].flags {
			return false
		}
	}
	return true
}

func equalLayout(a, b []xsaveComponent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tidByName finds the tid of the thread named name in a manifest/facts
// process list.
func tidByName(t *testing.T, path, name string) int32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Processes []struct {
			Threads []struct {
				Tid  int32  `json:"tid"`
				Comm string `json:"comm"`
				Name string `json:"name"`
			} `json:"threads"`
		} `json:"processes"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, p := range m.Processes {
		for _, th := range p.Threads {
			if th.Comm == name || th.Name == name {
				return th.Tid
			}
		}
	}
	t.Fatalf("%s: no thread %q", path, name)
	return 0
}

func lanes(b []byte) []uint64 {
	var out []uint64
	for ; len(b) >= 8; b = b[8:] {
		out = append(out, binary.LittleEndian.Uint64(b))
	}
	return out
}

// TestX86KnownValues checks the vec-1 registers of the manifests (xmm0,
// ymm1, zmm2, zmm17, k1; 64-bit lanes, lowest first) in the converted state
// and at their standard offsets in the marshalled NT_X86_XSTATE.
func TestX86KnownValues(t *testing.T) {
	for _, fx := range []string{"threads-c", "threads-c-criu411"} {
		t.Run(fx, func(t *testing.T) {
			dir := filepath.Join(testdata, "x86_64", fx)
			b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("xmm0 {0x0011223344556677,0x8899aabbccddeeff}")) ||
				!bytes.Contains(b, []byte("k1 0x5a5a")) {
				t.Fatalf("manifest's vec-1 registers are not the expected ones")
			}
			tid := tidByName(t, filepath.Join(dir, "manifest.json"), "vec-1")
			ce := readCoreImg(t, filepath.Join(dir, "images", fmt.Sprintf("core-%d.img", tid)))
			_, xs, err := fromcriu.X86(ce.GetThreadInfo())
			if err != nil {
				t.Fatal(err)
			}
			area, err := xs.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			ymm := func(r int) []uint64 { return lanes(append(append([]byte{}, xs.FX.Xmm[r][:]...), xs.YMMH[r][:]...)) }
			zmm := func(r int) []uint64 { return append(ymm(r), lanes(xs.ZMMHi256[r][:])...) }
			// The same registers read back from the standard layout.
			ymmA := func(r int) []uint64 {
				return lanes(append(append([]byte{}, area[160+16*r:176+16*r]...), area[576+16*r:592+16*r]...))
			}
			zmmA := func(r int) []uint64 { return append(ymmA(r), lanes(area[1152+32*r:1184+32*r])...) }
			zmm2 := []uint64{0xa0a0a0a0a0a0a0a0, 0xa1a1a1a1a1a1a1a1, 0xa2a2a2a2a2a2a2a2, 0xa3a3a3a3a3a3a3a3,
				0xa4a4a4a4a4a4a4a4, 0xa5a5a5a5a5a5a5a5, 0xa6a6a6a6a6a6a6a6, 0xa7a7a7a7a7a7a7a7}
			var zmm17 []uint64
			for i := uint64(1); i <= 8; i++ {
				zmm17 = append(zmm17, 0x1700000000000000|i)
			}
			tests := []struct {
				name      string
				got, want []uint64
			}{
				{"xmm0", lanes(xs.FX.Xmm[0][:]), []uint64{0x0011223344556677, 0x8899aabbccddeeff}},
				{"ymm1", ymm(1), []uint64{0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444}},
				{"zmm2", zmm(2), zmm2},
				{"zmm17", lanes(xs.Hi16ZMM[1][:]), zmm17},
				{"k1", xs.Opmask[1:2], []uint64{0x5a5a}},
				{"xmm0@160", lanes(area[160:176]), []uint64{0x0011223344556677, 0x8899aabbccddeeff}},
				{"ymm1@576", ymmA(1), []uint64{0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444}},
				{"zmm2@1152", zmmA(2), zmm2},
				{"zmm17@1664", lanes(area[1664+64 : 1664+128]), zmm17},
				{"k1@1088", lanes(area[1088+8 : 1088+16]), []uint64{0x5a5a}},
			}
			for _, tc := range tests {
				if fmt.Sprintf("%#x", tc.got) != fmt.Sprintf("%#x", tc.want) {
					t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
				}
			}
		})
	}
}

var arm64Fixtures = []string{"threads-c", "pipeline", "go-goroutines"}

func TestARM64AgainstOracle(t *testing.T) {
	checkAgainstOracle(t, "arm64", arm64Fixtures, func(ce *criu_core.CoreEntry) bool { return ce.GetTiAarch64() != nil }, checkARM64Thread)
}

func checkARM64Thread(t *testing.T, o *oracle, tid int32, ce *criu_core.CoreEntry) {
	gp, fp, tls, err := fromcriu.ARM64(ce.GetTiAarch64())
	if err != nil {
		t.Fatal(err)
	}
	prs := o.note(t, tid, regs.NT_PRSTATUS)
	if len(prs) != regs.PRStatusSizeARM64 {
		t.Fatalf("oracle NT_PRSTATUS for tid %d: %d bytes", tid, len(prs))
	}
	checkPRStatus(t, o, tid, &gp, prs, 384)

	fb, err := fp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if ofp := o.note(t, tid, regs.NT_PRFPREG); !bytes.Equal(fb, ofp) {
		t.Errorf("NT_PRFPREG differs:\nours   %x\noracle %x", fb, ofp)
	}

	tb, err := tls.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	otls := o.note(t, tid, regs.NT_ARM_TLS)
	if len(otls) != regs.ARM64TLSSize {
		t.Fatalf("oracle NT_ARM_TLS: %d bytes", len(otls))
	}
	if !bytes.Equal(tb[:8], otls[:8]) {
		t.Errorf("tpidr_el0: ours %x, oracle %x", tb[:8], otls[:8])
	}
	if !bytes.Equal(tb, otls) {
		t.Errorf("NT_ARM_TLS: ours %x, oracle %x", tb, otls)
	}

	// The notes the kernel derives from the CPU and the dump itself
	// (absent from gdb's gcore oracles).
	hwb := regs.ARM64HWDebug{DbgInfo: uint32(regs.ARM64DebugArchV8)<<8 | uint32(regs.CortexA72Breakpoints)}
	hww := regs.ARM64HWDebug{DbgInfo: uint32(regs.ARM64DebugArchV8)<<8 | uint32(regs.CortexA72Watchpoints)}
	extra := []struct {
		name string
		typ  uint32
		m    interface{ MarshalBinary() ([]byte, error) }
	}{
		{"NT_ARM_HW_BREAK", regs.NT_ARM_HW_BREAK, &hwb},
		{"NT_ARM_HW_WATCH", regs.NT_ARM_HW_WATCH, &hww},
		{"NT_ARM_SYSTEM_CALL", regs.NT_ARM_SYSTEM_CALL, regs.ARM64NoSyscall},
		{"NT_ARM_TAGGED_ADDR_CTRL", regs.NT_ARM_TAGGED_ADDR_CTRL, regs.ARM64TaggedAddrCtrl(0)},
	}
	for _, e := range extra {
		on := o.note(t, tid, e.typ)
		if on == nil {
			continue
		}
		b, err := e.m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, on) {
			t.Errorf("%s: ours %x, oracle %x", e.name, b, on)
		}
	}
}

func hexU64(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.Fields(s)[0], 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestARM64KnownValues checks the vec-1 registers of facts.json.
func TestARM64KnownValues(t *testing.T) {
	dir := filepath.Join(testdata, "arm64", "threads-c")
	b, err := os.ReadFile(filepath.Join(dir, "facts.json"))
	if err != nil {
		t.Fatal(err)
	}
	var facts struct {
		Known map[string]any `json:"known_registers"`
	}
	if err := json.Unmarshal(b, &facts); err != nil {
		t.Fatal(err)
	}
	k := facts.Known
	tid := int32(k["thread"].(float64))
	if n := tidByName(t, filepath.Join(dir, "facts.json"), k["thread_name"].(string)); n != tid {
		t.Fatalf("facts: thread %d, but %s is %d", tid, k["thread_name"], n)
	}
	ce := readCoreImg(t, filepath.Join(dir, "images", fmt.Sprintf("core-%d.img", tid)))
	gp, fp, _, err := fromcriu.ARM64(ce.GetTiAarch64())
	if err != nil {
		t.Fatal(err)
	}
	fb, err := fp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{0, 1, 31} {
		want, err := hex.DecodeString(k[fmt.Sprintf("v%d_bytes_le", v)].(string))
		if err != nil {
			t.Fatal(err)
		}
		if got := fb[16*v : 16*v+16]; !bytes.Equal(got, want) {
			t.Errorf("v%d bytes %x, want %x", v, got, want)
		}
		// facts' vN is the 128-bit value: high half, then low half.
		q := strings.TrimPrefix(k[fmt.Sprintf("v%d", v)].(string), "0x")
		if got := fmt.Sprintf("%016x%016x", fp.V[v][1], fp.V[v][0]); got != q {
			t.Errorf("v%d = %s, want %s", v, got, q)
		}
	}
	for _, x := range []int{19, 20, 21} {
		if want := hexU64(t, k[fmt.Sprintf("x%d", x)].(string)); gp.X[x] != want {
			t.Errorf("x%d = %#x, want %#x", x, gp.X[x], want)
		}
	}
	if want := hexU64(t, k["x8"].(string)); gp.X[8] != want {
		t.Errorf("x8 = %d, want %d", gp.X[8], want)
	}
	if want := uint32(hexU64(t, k["fpsr"].(string))); fp.FPSR != want {
		t.Errorf("fpsr = %#x, want %#x", fp.FPSR, want)
	}
	if want := uint32(hexU64(t, k["fpcr"].(string))); fp.FPCR != want {
		t.Errorf("fpcr = %#x, want %#x", fp.FPCR, want)
	}
	if got := binary.LittleEndian.Uint32(fb[512:]); got != fp.FPSR {
		t.Errorf("fpsr at 512 = %#x", got)
	}
	if got := binary.LittleEndian.Uint32(fb[516:]); got != fp.FPCR {
		t.Errorf("fpcr at 516 = %#x", got)
	}
}
