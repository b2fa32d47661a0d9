package imgtest

import (
	core_aarch64 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-aarch64"
	core_x86 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Register values. Every thread gets values derived from its tid, so that
// a test can tell which thread's registers ended up where.
//
// x86_64 (thread_info_x86):
//   - gpregs: the field with proto number k (r15 = 1 ... gs = 27) holds
//     GPR(tid, k), except cs = 0x33, flags = 0x246, ss = 0x2b,
//     gs_base = ds = es = fs = gs = 0; mode NATIVE.
//   - clear_tid_addr = GPR(tid, 100).
//   - fpregs: cwd 0x37f, swd 0, twd 0, fop 0, rip 0, rdp 0, mxcsr 0x1f80,
//     mxcsr_mask 0x2ffff; st_space[i] = Val32(tid, 9, i) (32 words),
//     xmm_space[i] = Val32(tid, 10, i) (64 words), no padding.
//   - fpregs.xsave: xstate_bv XstateBVX86 (x87, SSE, AVX, opmask,
//     ZMM_Hi256, Hi16_ZMM); ymmh_space[i] = Val32(tid, 2, i) (64 words),
//     opmask_reg[i] = Val64(tid, 5, i) (8), zmm_upper[i] = Val64(tid, 6, i)
//     (64), hi16_zmm[i] = Val64(tid, 7, i) (128); no bndreg, bndcsr, pkru
//     or cet (as on the AMD CPU of the x86_64 fixtures, which has no PKU).
//   - three TLS entries 12, 13, 14, empty (as CRIU writes for a 64-bit
//     task).
//
// aarch64 (thread_info_aarch64):
//   - gpregs.regs[i] = GPR(tid, i) for x0..x30 (31 words), sp = GPR(tid,
//     31), pc = GPR(tid, 32), pstate = 0x60001000.
//   - tls = GPR(tid, 33), clear_tid_addr = GPR(tid, 100).
//   - fpsimd.vregs[i] = Val64(tid, 1, i) (64 words: v0 low, v0 high, ...),
//     fpsr = Val32(tid, 2, 0), fpcr = Val32(tid, 3, 0).
//
// Thread.Core is an ordinary go-criu message: change any of it before
// Checkpoint.Write.

// XstateBVX86 is the xstate_bv the builder writes: x87 | SSE | AVX |
// opmask | ZMM_Hi256 | Hi16_ZMM.
const XstateBVX86 = 1<<0 | 1<<1 | 1<<2 | 1<<5 | 1<<6 | 1<<7

// GPR is the value of general register k of thread tid.
func GPR(tid uint32, k int) uint64 {
	return 0x6700_0000_0000_0000 | uint64(tid)<<16 | uint64(k)
}

// Val32 is element i of 32-bit repeated field number field of thread tid.
func Val32(tid uint32, field, i int) uint32 {
	return (tid&0xffff)<<16 | uint32(field&0xff)<<8 | uint32(i&0xff)
}

// Val64 is element i of 64-bit repeated field number field of thread tid.
func Val64(tid uint32, field, i int) uint64 {
	return 0xf600_0000_0000_0000 | uint64(tid)<<24 | uint64(field&0xff)<<16 | uint64(i&0xffff)
}

func vals32(tid uint32, field, n int) []uint32 {
	v := make([]uint32, n)
	for i := range v {
		v[i] = Val32(tid, field, i)
	}
	return v
}

func vals64(tid uint32, field, n int) []uint64 {
	v := make([]uint64, n)
	for i := range v {
		v[i] = Val64(tid, field, i)
	}
	return v
}

// ThreadInfoX86 returns the thread_info_x86 the builder writes for tid.
func ThreadInfoX86(tid uint32) *core_x86.ThreadInfoX86 {
	g := &core_x86.UserX86RegsEntry{}
	r := g.ProtoReflect()
	fields := r.Descriptor().Fields()
	for k := 1; k <= 27; k++ {
		r.Set(fields.ByNumber(protoreflect.FieldNumber(k)), protoreflect.ValueOfUint64(GPR(tid, k)))
	}
	g.Cs, g.Flags, g.Ss = proto.Uint64(0x33), proto.Uint64(0x246), proto.Uint64(0x2b)
	g.GsBase, g.Ds, g.Es, g.Fs, g.Gs = proto.Uint64(0), proto.Uint64(0), proto.Uint64(0), proto.Uint64(0), proto.Uint64(0)
	g.Mode = core_x86.UserX86RegsMode_NATIVE.Enum()
	fp := &core_x86.UserX86FpregsEntry{
		Cwd: proto.Uint32(0x37f), Swd: proto.Uint32(0), Twd: proto.Uint32(0), Fop: proto.Uint32(0),
		Rip: proto.Uint64(0), Rdp: proto.Uint64(0),
		Mxcsr: proto.Uint32(0x1f80), MxcsrMask: proto.Uint32(0x2ffff),
		StSpace:  vals32(tid, 9, 32),
		XmmSpace: vals32(tid, 10, 64),
		Xsave: &core_x86.UserX86XsaveEntry{
			XstateBv:  proto.Uint64(XstateBVX86),
			YmmhSpace: vals32(tid, 2, 64),
			OpmaskReg: vals64(tid, 5, 8),
			ZmmUpper:  vals64(tid, 6, 64),
			Hi16Zmm:   vals64(tid, 7, 128),
		},
	}
	ti := &core_x86.ThreadInfoX86{ClearTidAddr: proto.Uint64(GPR(tid, 100)), Gpregs: g, Fpregs: fp}
	for n := uint32(12); n <= 14; n++ {
		ti.Tls = append(ti.Tls, &core_x86.UserDescT{
			EntryNumber: proto.Uint32(n), BaseAddr: proto.Uint32(0), Limit: proto.Uint32(0),
			Seg_32Bit: proto.Bool(false), ContentsH: proto.Bool(false), ContentsL: proto.Bool(false),
			ReadExecOnly: proto.Bool(true), LimitInPages: proto.Bool(false), SegNotPresent: proto.Bool(true),
			Usable: proto.Bool(false),
		})
	}
	return ti
}

// ThreadInfoAarch64 returns the thread_info_aarch64 the builder writes for
// tid.
func ThreadInfoAarch64(tid uint32) *core_aarch64.ThreadInfoAarch64 {
	regs := make([]uint64, 31)
	for i := range regs {
		regs[i] = GPR(tid, i)
	}
	return &core_aarch64.ThreadInfoAarch64{
		ClearTidAddr: proto.Uint64(GPR(tid, 100)),
		Tls:          proto.Uint64(GPR(tid, 33)),
		Gpregs: &core_aarch64.UserAarch64RegsEntry{
			Regs: regs, Sp: proto.Uint64(GPR(tid, 31)), Pc: proto.Uint64(GPR(tid, 32)), Pstate: proto.Uint64(0x60001000),
		},
		Fpsimd: &core_aarch64.UserAarch64FpsimdContextEntry{
			Vregs: vals64(tid, 1, 64), Fpsr: proto.Uint32(Val32(tid, 2, 0)), Fpcr: proto.Uint32(Val32(tid, 3, 0)),
		},
	}
}

// threadCore returns the thread_core entry of a thread named comm.
func threadCore(tid uint32, comm string) *criucore.ThreadCoreEntry {
	return &criucore.ThreadCoreEntry{
		FutexRla:    proto.Uint64(GPR(tid, 101)),
		FutexRlaLen: proto.Uint32(24),
		SchedNice:   proto.Int32(0),
		SchedPolicy: proto.Uint32(0),
		BlkSigset:   proto.Uint64(0),
		Comm:        proto.String(comm),
	}
}
