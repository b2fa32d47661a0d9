package regs

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"strings"
	"testing"
)

func mustMarshal(t *testing.T, m encoding.BinaryMarshaler) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fullXState() *X86XState {
	return &X86XState{XCR0: 0x2ff, XstateBV: 0x2ff}
}

func TestSizes(t *testing.T) {
	x86Regs := make([]byte, X86UserRegsSize)
	armRegs := make([]byte, ARM64UserRegsSize)
	hw := ARM64HWDebug{DbgInfo: uint32(ARM64DebugArchV8)<<8 | uint32(CortexA72Breakpoints)}
	tests := []struct {
		name string
		m    encoding.BinaryMarshaler
		want int
	}{
		{"PRStatus x86_64", &PRStatus{Regs: x86Regs}, 336},
		{"PRStatus arm64", &PRStatus{Regs: armRegs}, 392},
		{"PRPSInfo", &PRPSInfo{}, 136},
		{"X86UserRegs", &X86UserRegs{}, 216},
		{"X86FXSave", &X86FXSave{}, 512},
		{"X86XState x87+SSE", &X86XState{XCR0: 0x3}, 576},
		{"X86XState AVX", &X86XState{XCR0: 0x7}, 832},
		{"X86XState MPX", &X86XState{XCR0: 0x1f}, 1088},
		{"X86XState AVX-512", &X86XState{XCR0: 0xe7}, 2688},
		{"X86XState AVX-512+PKRU", &X86XState{XCR0: 0x2e7}, 2696},
		{"X86XState all", fullXState(), 2696},
		{"ARM64UserRegs", &ARM64UserRegs{}, 272},
		{"ARM64FPSIMD", &ARM64FPSIMD{}, 528},
		{"ARM64TLS", &ARM64TLS{}, 16},
		{"ARM64HWDebug", &hw, 264},
		{"ARM64SystemCall", ARM64NoSyscall, 4},
		{"ARM64TaggedAddrCtrl", ARM64TaggedAddrCtrl(0), 8},
	}
	for _, tc := range tests {
		if got := len(mustMarshal(t, tc.m)); got != tc.want {
			t.Errorf("%s: %d bytes, want %d", tc.name, got, tc.want)
		}
	}
}

func TestNoteTypes(t *testing.T) {
	// Values of include/uapi/linux/elf.h.
	tests := []struct {
		name      string
		got, want uint32
	}{
		{"NT_PRSTATUS", NT_PRSTATUS, 1},
		{"NT_PRFPREG", NT_PRFPREG, 2},
		{"NT_PRPSINFO", NT_PRPSINFO, 3},
		{"NT_AUXV", NT_AUXV, 6},
		{"NT_SIGINFO", NT_SIGINFO, 0x53494749},
		{"NT_FILE", NT_FILE, 0x46494c45},
		{"NT_X86_XSTATE", NT_X86_XSTATE, 0x202},
		{"NT_X86_XSAVE_LAYOUT", NT_X86_XSAVE_LAYOUT, 0x205},
		{"NT_ARM_TLS", NT_ARM_TLS, 0x401},
		{"NT_ARM_HW_BREAK", NT_ARM_HW_BREAK, 0x402},
		{"NT_ARM_HW_WATCH", NT_ARM_HW_WATCH, 0x403},
		{"NT_ARM_SYSTEM_CALL", NT_ARM_SYSTEM_CALL, 0x404},
		{"NT_ARM_SVE", NT_ARM_SVE, 0x405},
		{"NT_ARM_PAC_MASK", NT_ARM_PAC_MASK, 0x406},
		{"NT_ARM_TAGGED_ADDR_CTRL", NT_ARM_TAGGED_ADDR_CTRL, 0x409},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

func u64at(b []byte, off int) uint64 { return binary.LittleEndian.Uint64(b[off:]) }
func u32at(b []byte, off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
func u16at(b []byte, off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }

func TestPRStatusOffsets(t *testing.T) {
	regs := bytes.Repeat([]byte{0xee}, X86UserRegsSize)
	p := PRStatus{
		Info:    SigInfo{Signo: 11, Code: -6, Errno: 3},
		Cursig:  11,
		Sigpend: 0x1111, Sighold: 0x2222,
		Pid: 100, Ppid: 101, Pgrp: 102, Sid: 103,
		Utime: Timeval{1, 2}, Stime: Timeval{3, 4}, Cutime: Timeval{5, 6}, Cstime: Timeval{7, 8},
		Regs:    regs,
		FPValid: 1,
	}
	b := mustMarshal(t, &p)
	tests := []struct {
		name string
		got  uint64
		want uint64
	}{
		{"si_signo@0", uint64(u32at(b, 0)), 11},
		{"si_code@4", uint64(u32at(b, 4)), 0xfffffffa},
		{"si_errno@8", uint64(u32at(b, 8)), 3},
		{"pr_cursig@12", uint64(u16at(b, 12)), 11},
		{"pad@14", uint64(u16at(b, 14)), 0},
		{"pr_sigpend@16", u64at(b, 16), 0x1111},
		{"pr_sighold@24", u64at(b, 24), 0x2222},
		{"pr_pid@32", uint64(u32at(b, 32)), 100},
		{"pr_ppid@36", uint64(u32at(b, 36)), 101},
		{"pr_pgrp@40", uint64(u32at(b, 40)), 102},
		{"pr_sid@44", uint64(u32at(b, 44)), 103},
		{"pr_utime@48", u64at(b, 48), 1},
		{"pr_utime.usec@56", u64at(b, 56), 2},
		{"pr_stime@64", u64at(b, 64), 3},
		{"pr_cutime@80", u64at(b, 80), 5},
		{"pr_cstime.usec@104", u64at(b, 104), 8},
		{"pr_reg@112", u64at(b, 112), 0xeeeeeeeeeeeeeeee},
		{"pr_reg end@320", u64at(b, 320), 0xeeeeeeeeeeeeeeee},
		{"pr_fpvalid@328", uint64(u32at(b, 328)), 1},
		{"pad@332", uint64(u32at(b, 332)), 0},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
	p.Regs = make([]byte, ARM64UserRegsSize)
	b = mustMarshal(t, &p)
	if u32at(b, 384) != 1 {
		t.Errorf("arm64 pr_fpvalid@384 = %d", u32at(b, 384))
	}
}

func TestPRStatusErrors(t *testing.T) {
	for _, n := range []int{0, 215, 217, 271, 273, 336} {
		p := PRStatus{Regs: make([]byte, n)}
		if _, err := p.MarshalBinary(); err == nil || !strings.Contains(err.Error(), "216") {
			t.Errorf("len(Regs)=%d: err = %v, want an error naming the sizes", n, err)
		}
	}
}

func TestPRPSInfoOffsets(t *testing.T) {
	p := PRPSInfo{State: 1, Sname: 'S', Zomb: 0, Nice: -5, Flag: 0x400600,
		UID: 1000, GID: 1001, Pid: 10, Ppid: 11, Pgrp: 12, Sid: 13}
	copy(p.Fname[:], "threads-c")
	copy(p.Psargs[:], "a b c")
	p.Psargs[79] = 'z'
	b := mustMarshal(t, &p)
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"pr_state@0", uint64(b[0]), 1},
		{"pr_sname@1", uint64(b[1]), 'S'},
		{"pr_nice@3", uint64(b[3]), 0xfb},
		{"pad@4", uint64(u32at(b, 4)), 0},
		{"pr_flag@8", u64at(b, 8), 0x400600},
		{"pr_uid@16", uint64(u32at(b, 16)), 1000},
		{"pr_gid@20", uint64(u32at(b, 20)), 1001},
		{"pr_pid@24", uint64(u32at(b, 24)), 10},
		{"pr_ppid@28", uint64(u32at(b, 28)), 11},
		{"pr_pgrp@32", uint64(u32at(b, 32)), 12},
		{"pr_sid@36", uint64(u32at(b, 36)), 13},
		{"pr_psargs[79]@135", uint64(b[135]), 'z'},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
	if string(b[40:49]) != "threads-c" || string(b[56:61]) != "a b c" {
		t.Errorf("pr_fname/pr_psargs: %q %q", b[40:56], b[56:136])
	}
}

func TestX86UserRegsOrder(t *testing.T) {
	r := X86UserRegs{R15: 1, R14: 2, R13: 3, R12: 4, Rbp: 5, Rbx: 6, R11: 7, R10: 8, R9: 9, R8: 10,
		Rax: 11, Rcx: 12, Rdx: 13, Rsi: 14, Rdi: 15, OrigRax: 16, Rip: 17, Cs: 18, Eflags: 19,
		Rsp: 20, Ss: 21, FsBase: 22, GsBase: 23, Ds: 24, Es: 25, Fs: 26, Gs: 27}
	b := mustMarshal(t, &r)
	for i := 0; i < 27; i++ {
		if got := u64at(b, 8*i); got != uint64(i+1) {
			t.Errorf("word %d = %d, want %d", i, got, i+1)
		}
	}
}

func TestX86FXSaveOffsets(t *testing.T) {
	f := X86FXSave{Cwd: 0x37f, Swd: 0x1234, Twd: 0xff, Fop: 0x55, Rip: 0xaaaa, Rdp: 0xbbbb,
		Mxcsr: 0x1f80, MxcsrMask: 0x2ffff}
	f.St[7][9] = 0x77
	f.Xmm[0][0] = 0x10
	f.Xmm[15][15] = 0xf0
	f.Padding[48] = 0x99
	b := mustMarshal(t, &f)
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"cwd@0", uint64(u16at(b, 0)), 0x37f},
		{"swd@2", uint64(u16at(b, 2)), 0x1234},
		{"twd@4", uint64(u16at(b, 4)), 0xff},
		{"fop@6", uint64(u16at(b, 6)), 0x55},
		{"rip@8", u64at(b, 8), 0xaaaa},
		{"rdp@16", u64at(b, 16), 0xbbbb},
		{"mxcsr@24", uint64(u32at(b, 24)), 0x1f80},
		{"mxcsr_mask@28", uint64(u32at(b, 28)), 0x2ffff},
		{"st7[9]@153", uint64(b[32+7*16+9]), 0x77},
		{"xmm0@160", uint64(b[160]), 0x10},
		{"xmm15[15]@415", uint64(b[415]), 0xf0},
		{"padding[48]@464", uint64(b[464]), 0x99},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
}

func TestX86XStateStandardOffsets(t *testing.T) {
	x := fullXState()
	x.XstateBV = 0xe6
	x.FX.Padding[48] = 0x99 // overwritten by XCR0
	x.FX.Xmm[3][0] = 0x33
	x.YMMH[0][0], x.YMMH[15][15] = 0xa0, 0xaf
	x.BNDRegs[0][0], x.BNDRegs[3][1] = 0xb0, 0xb3
	x.BNDCSR = [2]uint64{0xc0, 0xc1}
	x.Opmask[0], x.Opmask[7] = 0xd0, 0xd7
	x.ZMMHi256[0][0], x.ZMMHi256[15][31] = 0xe0, 0xef
	x.Hi16ZMM[0][0], x.Hi16ZMM[15][63] = 0x10, 0x1f
	x.PKRU = 0x55555554
	b := mustMarshal(t, x)
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"XCR0@464", u64at(b, 464), 0x2ff},
		{"sw_reserved@472", u64at(b, 472), 0},
		{"xmm3@208", uint64(b[160+3*16]), 0x33},
		{"XSTATE_BV@512", u64at(b, 512), 0xe6},
		{"XCOMP_BV@520", u64at(b, 520), 0},
		{"ymmh0@576", uint64(b[576]), 0xa0},
		{"ymmh15[15]@831", uint64(b[831]), 0xaf},
		{"bnd0.lb@960", u64at(b, 960), 0xb0},
		{"bnd3.ub@1016", u64at(b, 1016), 0xb3},
		{"bndcfgu@1024", u64at(b, 1024), 0xc0},
		{"bndstatus@1032", u64at(b, 1032), 0xc1},
		{"k0@1088", u64at(b, 1088), 0xd0},
		{"k7@1144", u64at(b, 1144), 0xd7},
		{"zmm0_hi256@1152", uint64(b[1152]), 0xe0},
		{"zmm15_hi256[31]@1663", uint64(b[1663]), 0xef},
		{"zmm16@1664", uint64(b[1664]), 0x10},
		{"zmm31[63]@2687", uint64(b[2687]), 0x1f},
		{"pkru@2688", uint64(u32at(b, 2688)), 0x55555554},
		{"pkru pad@2692", uint64(u32at(b, 2692)), 0},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}
	// Without MPX, bytes 832..1087 stay zero even if BNDRegs is set, and
	// the area still ends at 2696 with PKRU.
	x.XCR0, x.XstateBV = 0x2e7, 0xe6
	b = mustMarshal(t, x)
	if len(b) != 2696 || !bytes.Equal(b[832:1088], make([]byte, 256)) || u64at(b, 1088) != 0xd0 {
		t.Errorf("XCR0 0x2e7: %d bytes, gap %x", len(b), b[832:1088])
	}
	// A disabled component is not written.
	x.XCR0, x.XstateBV = 0x7, 0x6
	if b = mustMarshal(t, x); len(b) != 832 {
		t.Errorf("XCR0 0x7: %d bytes", len(b))
	}
}

func TestX86LayoutNote(t *testing.T) {
	type comp struct{ typ, size, off uint32 }
	tests := []struct {
		xcr0 uint64
		want []comp
	}{
		{0x3, nil},
		{0x7, []comp{{2, 256, 576}}},
		{0xe7, []comp{{2, 256, 576}, {5, 64, 1088}, {6, 512, 1152}, {7, 1024, 1664}}},
		{0x2ff, []comp{{2, 256, 576}, {3, 64, 960}, {4, 64, 1024}, {5, 64, 1088}, {6, 512, 1152}, {7, 1024, 1664}, {9, 8, 2688}}},
		{0x207, []comp{{2, 256, 576}, {9, 8, 2688}}},
	}
	for _, tc := range tests {
		x := X86XState{XCR0: tc.xcr0}
		b := x.LayoutNote()
		if b == nil || len(b) != 16*len(tc.want) {
			t.Errorf("XCR0 %#x: %d bytes (nil %v), want %d", tc.xcr0, len(b), b == nil, 16*len(tc.want))
			continue
		}
		for i, c := range tc.want {
			e := b[16*i:]
			got := comp{u32at(e, 0), u32at(e, 4), u32at(e, 8)}
			if got != c || u32at(e, 12) != 0 {
				t.Errorf("XCR0 %#x entry %d = %v flags %d, want %v flags 0", tc.xcr0, i, got, u32at(e, 12), c)
			}
		}
		// The layout note describes exactly the area MarshalBinary writes.
		area := mustMarshal(t, &x)
		end := 576
		for i := range tc.want {
			end = max(end, int(tc.want[i].off+tc.want[i].size))
		}
		if len(area) != end {
			t.Errorf("XCR0 %#x: area of %d bytes, layout ends at %d", tc.xcr0, len(area), end)
		}
	}
}

func TestX86XStateErrors(t *testing.T) {
	tests := []struct {
		name          string
		xcr0, bv      uint64
		wantSubstring string
	}{
		{"no XSAVE", 0, 0, "XCR0 is 0"},
		{"no SSE", 0x5, 0, "x87 or SSE"},
		{"AMX", 0x60007, 0, "cannot lay out"},
		{"PT bit", 0x107, 0, "cannot lay out"},
		{"bv not in XCR0", 0x7, 0xe6, "not enabled in XCR0"},
	}
	for _, tc := range tests {
		x := X86XState{XCR0: tc.xcr0, XstateBV: tc.bv}
		_, err := x.MarshalBinary()
		if err == nil || !strings.Contains(err.Error(), tc.wantSubstring) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantSubstring)
		}
		if x.LayoutNote() != nil || x.Size() != 0 {
			t.Errorf("%s: LayoutNote/Size on invalid XCR0", tc.name)
		}
	}
}

func TestARM64(t *testing.T) {
	var r ARM64UserRegs
	for i := range r.X {
		r.X[i] = uint64(i + 1)
	}
	r.SP, r.PC, r.PState = 32, 33, 34
	b := mustMarshal(t, &r)
	for i := 0; i < 34; i++ {
		if got := u64at(b, 8*i); got != uint64(i+1) {
			t.Errorf("user_pt_regs word %d = %d", i, got)
		}
	}

	var f ARM64FPSIMD
	f.V[0] = [2]uint64{0x8899aabbccddeeff, 0x0011223344556677}
	f.V[31] = [2]uint64{1, 2}
	f.FPSR, f.FPCR = 0x08000001, 0x00c00000
	b = mustMarshal(t, &f)
	tests := []struct {
		name      string
		got, want uint64
	}{
		{"v0.lo@0", u64at(b, 0), 0x8899aabbccddeeff},
		{"v0.hi@8", u64at(b, 8), 0x0011223344556677},
		{"v31.lo@496", u64at(b, 496), 1},
		{"v31.hi@504", u64at(b, 504), 2},
		{"fpsr@512", uint64(u32at(b, 512)), 0x08000001},
		{"fpcr@516", uint64(u32at(b, 516)), 0x00c00000},
		{"reserved@520", u64at(b, 520), 0},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %#x, want %#x", tc.name, tc.got, tc.want)
		}
	}

	tls := ARM64TLS{TPIDR: 0xffffa1eff8e0, TPIDR2: 7}
	b = mustMarshal(t, &tls)
	if u64at(b, 0) != 0xffffa1eff8e0 || u64at(b, 8) != 7 {
		t.Errorf("NT_ARM_TLS = %x", b)
	}

	if b = mustMarshal(t, ARM64NoSyscall); !bytes.Equal(b, []byte{0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("NT_ARM_SYSTEM_CALL = %x", b)
	}
	if b = mustMarshal(t, ARM64TaggedAddrCtrl(1)); !bytes.Equal(b, []byte{1, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("NT_ARM_TAGGED_ADDR_CTRL = %x", b)
	}
}

func TestARM64HWDebug(t *testing.T) {
	// What the kernel wrote on the qemu cortex-a72 guest of the fixtures.
	brk := ARM64HWDebug{DbgInfo: uint32(ARM64DebugArchV8)<<8 | uint32(CortexA72Breakpoints)}
	b := mustMarshal(t, &brk)
	if want := append([]byte{6, 6, 0, 0}, make([]byte, 260)...); !bytes.Equal(b, want) {
		t.Errorf("NT_ARM_HW_BREAK = %x", b)
	}
	wp := ARM64HWDebug{DbgInfo: uint32(ARM64DebugArchV8)<<8 | uint32(CortexA72Watchpoints)}
	if b = mustMarshal(t, &wp); u32at(b, 0) != 0x604 {
		t.Errorf("NT_ARM_HW_WATCH dbg_info = %#x", u32at(b, 0))
	}
	brk.Regs[0] = ARM64HWDebugReg{Addr: 0x400000, Ctrl: 0x1e5}
	brk.Regs[15] = ARM64HWDebugReg{Addr: 0x500000, Ctrl: 1}
	b = mustMarshal(t, &brk)
	if u64at(b, 8) != 0x400000 || u32at(b, 16) != 0x1e5 || u32at(b, 20) != 0 ||
		u64at(b, 8+15*16) != 0x500000 || u32at(b, 16+15*16) != 1 {
		t.Errorf("dbg_regs = %x", b)
	}
	bad := ARM64HWDebug{DbgInfo: 0x611}
	if _, err := bad.MarshalBinary(); err == nil {
		t.Errorf("17 slots: no error")
	}
}
