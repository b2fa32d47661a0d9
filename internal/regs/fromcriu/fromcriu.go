// Package fromcriu converts the register state of CRIU's core-<tid>.img
// (go-criu's protobuf messages) into the kernel structures of package regs.
// It does no I/O. The input is untrusted: a repeated field of the wrong
// length or a value out of range is an error, never a panic.
package fromcriu

import (
	"encoding/binary"
	"errors"
	"fmt"

	core_aarch64 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-aarch64"
	core_x86 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"

	"github.com/ckpt2core/ckpt2core/internal/regs"
)

// ErrMissing is wrapped by the errors for required messages that are absent.
var ErrMissing = errors.New("missing")

// ErrCompat is returned (wrapped) for the registers of a 32-bit (compat)
// x86 task, which this package does not convert.
var ErrCompat = errors.New("32-bit (compat) x86 task")

// Lengths of CRIU's repeated fields, in elements, as CRIU writes them
// (criu/arch/x86/crtools.c, compel's fpu.h; criu/arch/aarch64/crtools.c).
const (
	nStSpace   = 32  // st_space, uint32: 8 x 16 bytes
	nXmmSpace  = 64  // xmm_space, uint32: 16 x 16 bytes
	nYmmhSpace = 64  // ymmh_space, uint32: 16 x 16 bytes (struct ymmh_struct)
	nBndreg    = 8   // bndreg_state, uint64: 4 x 16 bytes (struct mpx_bndreg_state)
	nBndcsr    = 8   // bndcsr_state, uint64: 64 bytes (struct mpx_bndcsr_state, padded)
	nOpmask    = 8   // opmask_reg, uint64: k0-k7
	nZmmUpper  = 64  // zmm_upper, uint64: 16 x 32 bytes
	nHi16Zmm   = 128 // hi16_zmm, uint64: 16 x 64 bytes
	nPkru      = 2   // pkru, uint32: struct pkru_state { u32 pkru; u32 pad; }
	nARM64Regs = 31  // regs, uint64: x0..x30
	nVregs     = 64  // vregs, uint64: 32 x (low, high)
)

func checkLen(field string, got, want int) error {
	if got != want {
		return fmt.Errorf("fromcriu: %s has %d elements, want %d", field, got, want)
	}
	return nil
}

func u16(field string, v uint32) (uint16, error) {
	if v > 0xffff {
		return 0, fmt.Errorf("fromcriu: %s = %#x does not fit in 16 bits", field, v)
	}
	return uint16(v), nil
}

// putU32s writes vs little-endian into dst, which must be 4*len(vs) long.
func putU32s(dst []byte, vs []uint32) {
	for i, v := range vs {
		binary.LittleEndian.PutUint32(dst[4*i:], v)
	}
}

// putU64s writes vs little-endian into dst, which must be 8*len(vs) long.
func putU64s(dst []byte, vs []uint64) {
	for i, v := range vs {
		binary.LittleEndian.PutUint64(dst[8*i:], v)
	}
}

// X86 converts CRIU's thread_info_x86 into the thread's user_regs_struct and
// XSAVE state. The returned *X86XState is nil if CRIU saved no FPU state at
// all (fpregs absent: a CPU without FPU); its XCR0 is 0 if CRIU saved only
// the legacy FXSAVE state (no xsave: a CPU without OSXSAVE, where the
// kernel writes NT_PRFPREG but no NT_X86_XSTATE).
//
// XCR0 rule. CRIU stores neither XCR0 nor bytes 464.. of the FXSAVE area
// (its "padding" field is never written), so XCR0 is derived:
//
//	XCR0 = x87 | SSE
//	     | each component whose repeated field CRIU wrote
//	       (ymmh_space: AVX, bndreg_state/bndcsr_state: MPX,
//	        opmask_reg/zmm_upper/hi16_zmm: AVX-512, pkru: PKRU)
//	     | the bits of xstate_bv (a component cannot be in use unless enabled)
//
// CRIU allocates and fills a component's field exactly when the component
// is in its xfeatures mask, which it computes like the kernel computes the
// enabled user features (CPUID leaf 0xD, filtered by CPU feature flags);
// that mask is logged in dump.log ("fpu: xfeatures_mask"). x87 and SSE are
// always enabled on x86_64 (CRIU's logged mask even lacks the SSE bit).
// Checked on the fixtures: CRIU wrote ymmh_space, opmask_reg, zmm_upper and
// hi16_zmm, and the kernel's cores of the same processes hold XCR0 0xe7 at
// byte 464 with layout-note components 2, 5, 6, 7. Components this package
// cannot hold (such as AMX, which CRIU does not save either) are dropped
// from xstate_bv. The CET state (a supervisor component) is ignored.
func X86(ti *core_x86.ThreadInfoX86) (regs.X86UserRegs, *regs.X86XState, error) {
	var r regs.X86UserRegs
	if ti == nil {
		return r, nil, fmt.Errorf("fromcriu: thread_info_x86: %w", ErrMissing)
	}
	g := ti.GetGpregs()
	if g == nil {
		return r, nil, fmt.Errorf("fromcriu: thread_info_x86.gpregs: %w", ErrMissing)
	}
	if g.GetMode() != core_x86.UserX86RegsMode_NATIVE {
		return r, nil, fmt.Errorf("fromcriu: gpregs.mode %v: %w", g.GetMode(), ErrCompat)
	}
	r = regs.X86UserRegs{
		R15: g.GetR15(), R14: g.GetR14(), R13: g.GetR13(), R12: g.GetR12(),
		Rbp: g.GetBp(), Rbx: g.GetBx(), R11: g.GetR11(), R10: g.GetR10(),
		R9: g.GetR9(), R8: g.GetR8(), Rax: g.GetAx(), Rcx: g.GetCx(),
		Rdx: g.GetDx(), Rsi: g.GetSi(), Rdi: g.GetDi(), OrigRax: g.GetOrigAx(),
		Rip: g.GetIp(), Cs: g.GetCs(), Eflags: g.GetFlags(), Rsp: g.GetSp(),
		Ss: g.GetSs(), FsBase: g.GetFsBase(), GsBase: g.GetGsBase(),
		Ds: g.GetDs(), Es: g.GetEs(), Fs: g.GetFs(), Gs: g.GetGs(),
	}
	fp := ti.GetFpregs()
	if fp == nil {
		return r, nil, nil
	}
	x, err := x86XState(fp)
	if err != nil {
		return r, nil, err
	}
	return r, x, nil
}

func x86XState(fp *core_x86.UserX86FpregsEntry) (*regs.X86XState, error) {
	x := new(regs.X86XState)
	f := &x.FX
	var err error
	if f.Cwd, err = u16("fpregs.cwd", fp.GetCwd()); err != nil {
		return nil, err
	}
	if f.Swd, err = u16("fpregs.swd", fp.GetSwd()); err != nil {
		return nil, err
	}
	if f.Twd, err = u16("fpregs.twd", fp.GetTwd()); err != nil {
		return nil, err
	}
	if f.Fop, err = u16("fpregs.fop", fp.GetFop()); err != nil {
		return nil, err
	}
	f.Rip, f.Rdp = fp.GetRip(), fp.GetRdp()
	f.Mxcsr, f.MxcsrMask = fp.GetMxcsr(), fp.GetMxcsrMask()
	if err := checkLen("fpregs.st_space", len(fp.GetStSpace()), nStSpace); err != nil {
		return nil, err
	}
	if err := checkLen("fpregs.xmm_space", len(fp.GetXmmSpace()), nXmmSpace); err != nil {
		return nil, err
	}
	for i := range f.St {
		putU32s(f.St[i][:], fp.GetStSpace()[4*i:4*i+4])
	}
	for i := range f.Xmm {
		putU32s(f.Xmm[i][:], fp.GetXmmSpace()[4*i:4*i+4])
	}
	xs := fp.GetXsave()
	if xs == nil {
		return x, nil // XCR0 0: no XSAVE
	}

	xcr0 := uint64(1<<regs.XFeatureFP | 1<<regs.XFeatureSSE)
	type comp struct {
		bit   int
		field string
		n     int // elements present
		want  int
		fill  func()
	}
	comps := []comp{
		{regs.XFeatureYMM, "xsave.ymmh_space", len(xs.GetYmmhSpace()), nYmmhSpace, func() {
			for i := range x.YMMH {
				putU32s(x.YMMH[i][:], xs.GetYmmhSpace()[4*i:4*i+4])
			}
		}},
		{regs.XFeatureBNDREGS, "xsave.bndreg_state", len(xs.GetBndregState()), nBndreg, func() {
			for i := range x.BNDRegs {
				x.BNDRegs[i] = [2]uint64{xs.GetBndregState()[2*i], xs.GetBndregState()[2*i+1]}
			}
		}},
		{regs.XFeatureBNDCSR, "xsave.bndcsr_state", len(xs.GetBndcsrState()), nBndcsr, func() {
			x.BNDCSR = [2]uint64{xs.GetBndcsrState()[0], xs.GetBndcsrState()[1]}
		}},
		{regs.XFeatureOpmask, "xsave.opmask_reg", len(xs.GetOpmaskReg()), nOpmask, func() {
			copy(x.Opmask[:], xs.GetOpmaskReg())
		}},
		{regs.XFeatureZMMHi256, "xsave.zmm_upper", len(xs.GetZmmUpper()), nZmmUpper, func() {
			for i := range x.ZMMHi256 {
				putU64s(x.ZMMHi256[i][:], xs.GetZmmUpper()[4*i:4*i+4])
			}
		}},
		{regs.XFeatureHi16ZMM, "xsave.hi16_zmm", len(xs.GetHi16Zmm()), nHi16Zmm, func() {
			for i := range x.Hi16ZMM {
				putU64s(x.Hi16ZMM[i][:], xs.GetHi16Zmm()[8*i:8*i+8])
			}
		}},
		{regs.XFeaturePKRU, "xsave.pkru", len(xs.GetPkru()), nPkru, func() {
			x.PKRU = xs.GetPkru()[0]
		}},
	}
	bv := xs.GetXstateBv() & regs.X86XFeatureMaskSupported
	for _, c := range comps {
		if c.n == 0 {
			if bv&(1<<c.bit) != 0 {
				return nil, fmt.Errorf("fromcriu: xsave.xstate_bv %#x has component %d but %s is empty: %w",
					xs.GetXstateBv(), c.bit, c.field, ErrMissing)
			}
			continue
		}
		if err := checkLen(c.field, c.n, c.want); err != nil {
			return nil, err
		}
		c.fill()
		xcr0 |= 1 << c.bit
	}
	x.XCR0 = xcr0 | bv
	x.XstateBV = bv
	return x, nil
}

// ARM64 converts CRIU's thread_info_aarch64 into the thread's user_pt_regs
// (pr_reg), user_fpsimd_state (NT_PRFPREG) and NT_ARM_TLS content. CRIU's
// fpsimd.vregs holds each 128-bit register as two uint64, low half first;
// CRIU does not save tpidr2_el0, so TPIDR2 is 0 (as the kernel writes it on
// CPUs without SME). CRIU's pointer-authentication keys are not part of any
// of these notes and are ignored.
func ARM64(ti *core_aarch64.ThreadInfoAarch64) (regs.ARM64UserRegs, regs.ARM64FPSIMD, regs.ARM64TLS, error) {
	var (
		r   regs.ARM64UserRegs
		f   regs.ARM64FPSIMD
		tls regs.ARM64TLS
	)
	if ti == nil {
		return r, f, tls, fmt.Errorf("fromcriu: thread_info_aarch64: %w", ErrMissing)
	}
	g := ti.GetGpregs()
	if g == nil {
		return r, f, tls, fmt.Errorf("fromcriu: thread_info_aarch64.gpregs: %w", ErrMissing)
	}
	if err := checkLen("gpregs.regs", len(g.GetRegs()), nARM64Regs); err != nil {
		return r, f, tls, err
	}
	fp := ti.GetFpsimd()
	if fp == nil {
		return r, f, tls, fmt.Errorf("fromcriu: thread_info_aarch64.fpsimd: %w", ErrMissing)
	}
	if err := checkLen("fpsimd.vregs", len(fp.GetVregs()), nVregs); err != nil {
		return r, f, tls, err
	}
	copy(r.X[:], g.GetRegs())
	r.SP, r.PC, r.PState = g.GetSp(), g.GetPc(), g.GetPstate()
	for i := range f.V {
		f.V[i] = [2]uint64{fp.GetVregs()[2*i], fp.GetVregs()[2*i+1]}
	}
	f.FPSR, f.FPCR = fp.GetFpsr(), fp.GetFpcr()
	tls.TPIDR = ti.GetTls()
	return r, f, tls, nil
}
