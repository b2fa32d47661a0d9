package regs

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// X86UserRegs is the x86_64 struct user_regs_struct, the pr_reg of an
// x86_64 NT_PRSTATUS note: 27 uint64 in the kernel's order.
type X86UserRegs struct {
	R15, R14, R13, R12, Rbp, Rbx, R11, R10, R9, R8 uint64
	Rax, Rcx, Rdx, Rsi, Rdi, OrigRax, Rip, Cs      uint64
	Eflags, Rsp, Ss, FsBase, GsBase, Ds, Es, Fs    uint64
	Gs                                             uint64
}

// AppendTo appends the 216-byte user_regs_struct to b.
func (r *X86UserRegs) AppendTo(b []byte) []byte {
	v := [...]uint64{
		r.R15, r.R14, r.R13, r.R12, r.Rbp, r.Rbx, r.R11, r.R10, r.R9, r.R8,
		r.Rax, r.Rcx, r.Rdx, r.Rsi, r.Rdi, r.OrigRax, r.Rip, r.Cs,
		r.Eflags, r.Rsp, r.Ss, r.FsBase, r.GsBase, r.Ds, r.Es, r.Fs, r.Gs,
	}
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return b
}

// Bytes returns the 216-byte user_regs_struct.
func (r *X86UserRegs) Bytes() []byte { return r.AppendTo(make([]byte, 0, X86UserRegsSize)) }

// MarshalBinary returns Bytes. It never fails.
func (r *X86UserRegs) MarshalBinary() ([]byte, error) { return r.Bytes(), nil }

// Sizes and offsets of the x86 FXSAVE/XSAVE areas.
const (
	X86FXSaveSize       = 512 // legacy FXSAVE area, user_fpregs_struct, NT_PRFPREG on x86_64
	X86XSaveHeaderSize  = 64  // XSAVE header, at offset X86FXSaveSize
	X86XCR0Offset       = 464 // where Linux puts XCR0 in the sw_reserved bytes of the FXSAVE area (ptrace and core dumps)
	X86XSaveLayoutEntry = 16  // size of one struct x86_xfeat_component in NT_X86_XSAVE_LAYOUT
)

// X86FXSave is the 512-byte legacy FXSAVE area (struct user_fpregs_struct,
// the content of the x86_64 NT_PRFPREG note and the first 512 bytes of
// NT_X86_XSTATE):
//
//	off size field
//	  0    8 cwd, swd, twd, fop (uint16 each)
//	  8   16 rip, rdp
//	 24    8 mxcsr, mxcsr_mask
//	 32  128 st0-st7, 16 bytes each (80-bit value, 6 bytes reserved)
//	160  256 xmm0-xmm15
//	416   96 padding (bytes 464..471 hold XCR0 in NT_X86_XSTATE)
type X86FXSave struct {
	Cwd, Swd, Twd, Fop uint16
	Rip, Rdp           uint64
	Mxcsr, MxcsrMask   uint32
	St                 [8][16]byte
	Xmm                [16][16]byte
	// Padding is bytes 416..511. The kernel writes zeros here in
	// NT_PRFPREG and zeros except XCR0 at byte 464 in NT_X86_XSTATE
	// (X86XState.MarshalBinary puts XCR0 there itself).
	Padding [96]byte
}

// AppendTo appends the 512-byte FXSAVE area to b.
func (f *X86FXSave) AppendTo(b []byte) []byte {
	n := len(b)
	b = append(b, make([]byte, X86FXSaveSize)...)
	f.put(b[n:])
	return b
}

// Bytes returns the 512-byte FXSAVE area.
func (f *X86FXSave) Bytes() []byte { return f.AppendTo(make([]byte, 0, X86FXSaveSize)) }

// MarshalBinary returns Bytes. It never fails.
func (f *X86FXSave) MarshalBinary() ([]byte, error) { return f.Bytes(), nil }

func (f *X86FXSave) put(b []byte) {
	le := binary.LittleEndian
	le.PutUint16(b[0:], f.Cwd)
	le.PutUint16(b[2:], f.Swd)
	le.PutUint16(b[4:], f.Twd)
	le.PutUint16(b[6:], f.Fop)
	le.PutUint64(b[8:], f.Rip)
	le.PutUint64(b[16:], f.Rdp)
	le.PutUint32(b[24:], f.Mxcsr)
	le.PutUint32(b[28:], f.MxcsrMask)
	for i := range f.St {
		copy(b[32+16*i:], f.St[i][:])
	}
	for i := range f.Xmm {
		copy(b[160+16*i:], f.Xmm[i][:])
	}
	copy(b[416:], f.Padding[:])
}

// XSAVE state components: bit numbers in XCR0 and XSTATE_BV.
const (
	XFeatureFP       = 0 // x87, in the legacy area
	XFeatureSSE      = 1 // xmm0-15 and MXCSR, in the legacy area
	XFeatureYMM      = 2 // AVX: upper halves of ymm0-15
	XFeatureBNDREGS  = 3 // MPX bnd0-bnd3
	XFeatureBNDCSR   = 4 // MPX BNDCFGU, BNDSTATUS
	XFeatureOpmask   = 5 // AVX-512 k0-k7
	XFeatureZMMHi256 = 6 // AVX-512 upper 256 bits of zmm0-15
	XFeatureHi16ZMM  = 7 // AVX-512 zmm16-31
	XFeaturePKRU     = 9 // protection keys
)

// X86XFeatureMaskSupported is the set of XSAVE components X86XState can
// hold and lay out: x87, SSE, AVX, MPX, AVX-512 and PKRU.
const X86XFeatureMaskSupported = 1<<XFeatureFP | 1<<XFeatureSSE | 1<<XFeatureYMM |
	1<<XFeatureBNDREGS | 1<<XFeatureBNDCSR | 1<<XFeatureOpmask |
	1<<XFeatureZMMHi256 | 1<<XFeatureHi16ZMM | 1<<XFeaturePKRU

// X86XFeatureStandard returns the offset and size of XSAVE component i in
// the standard (non-compacted) layout that Intel CPUs report in CPUID leaf
// 0xD, which gdb and most tools assume. ok is false for components this
// package does not lay out (and for 0 and 1, which live in the legacy area).
func X86XFeatureStandard(i int) (offset, size int, ok bool) {
	switch i {
	case XFeatureYMM:
		return 576, 256, true
	case XFeatureBNDREGS:
		return 960, 64, true
	case XFeatureBNDCSR:
		return 1024, 64, true
	case XFeatureOpmask:
		return 1088, 64, true
	case XFeatureZMMHi256:
		return 1152, 512, true
	case XFeatureHi16ZMM:
		return 1664, 1024, true
	case XFeaturePKRU:
		return 2688, 8, true
	}
	return 0, 0, false
}

// X86XState is the XSAVE state of one thread, by component.
type X86XState struct {
	// FX is the legacy area (x87 and SSE state).
	FX X86FXSave
	// XstateBV is XSTATE_BV of the XSAVE header: the components that are
	// not in their initial state. It must be a subset of XCR0.
	XstateBV uint64
	// XCR0 is the set of enabled components. It decides which components
	// are written and so the size of the area, and it goes at byte 464.
	// Zero means the CPU has no XSAVE: write no NT_X86_XSTATE note then
	// (MarshalBinary fails), only NT_PRFPREG from FX.
	XCR0 uint64

	YMMH     [16][16]byte // component 2 (AVX): upper 128 bits of ymm0-15
	BNDRegs  [4][2]uint64 // component 3 (MPX): bnd0-3, lower then upper bound
	BNDCSR   [2]uint64    // component 4 (MPX): BNDCFGU, BNDSTATUS
	Opmask   [8]uint64    // component 5: k0-k7
	ZMMHi256 [16][32]byte // component 6: upper 256 bits of zmm0-15
	Hi16ZMM  [16][64]byte // component 7: zmm16-31
	PKRU     uint32       // component 9
}

func (x *X86XState) check() error {
	if x.XCR0 == 0 {
		return fmt.Errorf("regs: xstate: XCR0 is 0 (no XSAVE)")
	}
	if x.XCR0&3 != 3 {
		return fmt.Errorf("regs: xstate: XCR0 %#x lacks x87 or SSE", x.XCR0)
	}
	if u := x.XCR0 &^ X86XFeatureMaskSupported; u != 0 {
		return fmt.Errorf("regs: xstate: XCR0 %#x has components %#x that this package cannot lay out", x.XCR0, u)
	}
	if u := x.XstateBV &^ x.XCR0; u != 0 {
		return fmt.Errorf("regs: xstate: XSTATE_BV %#x has components %#x not enabled in XCR0 %#x", x.XstateBV, u, x.XCR0)
	}
	return nil
}

// extended returns the enabled components >= 2, in increasing order.
func (x *X86XState) extended() []int {
	var out []int
	for m := x.XCR0 &^ 3; m != 0; m &= m - 1 {
		out = append(out, bits.TrailingZeros64(m))
	}
	return out
}

// Size returns the size of the standard XSAVE area for XCR0: the end of the
// highest enabled component (576 with only x87 and SSE), or 0 if XCR0 is
// invalid (see MarshalBinary).
func (x *X86XState) Size() int {
	if x.check() != nil {
		return 0
	}
	size := X86FXSaveSize + X86XSaveHeaderSize
	for _, i := range x.extended() {
		off, sz, _ := X86XFeatureStandard(i)
		size = max(size, off+sz)
	}
	return size
}

// MarshalBinary returns the NT_X86_XSTATE note content in the STANDARD
// (Intel, non-compacted) XSAVE layout, whatever CPU the state came from:
// the FXSAVE area with XCR0 at byte 464, the XSAVE header at 512
// (XSTATE_BV, XCOMP_BV = 0, reserved zeros), then each component enabled in
// XCR0 at its standard offset (see X86XFeatureStandard); gaps are zero. The
// size is the end of the highest enabled component (2688 for XCR0 0xe7, 2696
// with PKRU). It fails if XCR0 is 0, lacks x87/SSE or has components other
// than those of X86XFeatureMaskSupported, or if XstateBV is not a subset of
// XCR0.
//
// Bytes 416..511 of the legacy area are FX.Padding except XCR0 at 464..471;
// the kernel writes zeros around XCR0, which is what a zero Padding (as
// fromcriu returns) gives. As in the kernel, a component that is enabled but
// not in XstateBV is written with the values held here, which for state
// captured by ptrace are its initial values (zeros).
func (x *X86XState) MarshalBinary() ([]byte, error) {
	if err := x.check(); err != nil {
		return nil, err
	}
	b := make([]byte, x.Size())
	le := binary.LittleEndian
	x.FX.put(b)
	le.PutUint64(b[X86XCR0Offset:], x.XCR0)
	le.PutUint64(b[X86FXSaveSize:], x.XstateBV)
	// XCOMP_BV (b[520:528]) and the reserved words stay zero.
	for _, i := range x.extended() {
		off, _, _ := X86XFeatureStandard(i)
		c := b[off:]
		switch i {
		case XFeatureYMM:
			for r := range x.YMMH {
				copy(c[16*r:], x.YMMH[r][:])
			}
		case XFeatureBNDREGS:
			for r := range x.BNDRegs {
				le.PutUint64(c[16*r:], x.BNDRegs[r][0])
				le.PutUint64(c[16*r+8:], x.BNDRegs[r][1])
			}
		case XFeatureBNDCSR:
			le.PutUint64(c[0:], x.BNDCSR[0])
			le.PutUint64(c[8:], x.BNDCSR[1])
		case XFeatureOpmask:
			for r, k := range x.Opmask {
				le.PutUint64(c[8*r:], k)
			}
		case XFeatureZMMHi256:
			for r := range x.ZMMHi256 {
				copy(c[32*r:], x.ZMMHi256[r][:])
			}
		case XFeatureHi16ZMM:
			for r := range x.Hi16ZMM {
				copy(c[64*r:], x.Hi16ZMM[r][:])
			}
		case XFeaturePKRU:
			le.PutUint32(c, x.PKRU)
		}
	}
	return b, nil
}

// LayoutNote returns the NT_X86_XSAVE_LAYOUT note content describing the
// layout MarshalBinary writes: one struct x86_xfeat_component { u32 type;
// u32 size; u32 offset; u32 flags; } per component >= 2 enabled in XCR0, in
// increasing component order, flags 0 — as Linux >= 6.12 writes it
// (dump_xsave_layout_desc in arch/x86/kernel/fpu/xstate.c). The kernel
// writes this note once per core file, after the notes of all threads.
// It returns nil if XCR0 is invalid (see MarshalBinary); with only x87 and
// SSE enabled it returns an empty, non-nil slice.
func (x *X86XState) LayoutNote() []byte {
	if x.check() != nil {
		return nil
	}
	comps := x.extended()
	b := make([]byte, 0, X86XSaveLayoutEntry*len(comps))
	for _, i := range comps {
		off, sz, _ := X86XFeatureStandard(i)
		b = binary.LittleEndian.AppendUint32(b, uint32(i))
		b = binary.LittleEndian.AppendUint32(b, uint32(sz))
		b = binary.LittleEndian.AppendUint32(b, uint32(off))
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	return b
}
