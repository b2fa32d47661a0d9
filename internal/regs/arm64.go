package regs

import (
	"encoding/binary"
	"fmt"
)

// Sizes of the arm64 note contents, in bytes.
const (
	ARM64FPSIMDSize         = 528 // struct user_fpsimd_state, NT_PRFPREG on arm64
	ARM64TLSSize            = 16  // NT_ARM_TLS: tpidr_el0, tpidr2_el0
	ARM64HWDebugSize        = 264 // struct user_hwdebug_state, NT_ARM_HW_BREAK / NT_ARM_HW_WATCH
	ARM64HWDebugSlots       = 16  // dbg_regs in struct user_hwdebug_state (ARM_MAX_BRP, ARM_MAX_WRP)
	ARM64SystemCallSize     = 4   // NT_ARM_SYSTEM_CALL: int syscallno
	ARM64TaggedAddrCtrlSize = 8   // NT_ARM_TAGGED_ADDR_CTRL: long
)

// ARM64UserRegs is struct user_pt_regs, the pr_reg of an arm64 NT_PRSTATUS
// note: x0..x30, sp, pc, pstate (272 bytes).
type ARM64UserRegs struct {
	X              [31]uint64
	SP, PC, PState uint64
}

// AppendTo appends the 272-byte user_pt_regs to b.
func (r *ARM64UserRegs) AppendTo(b []byte) []byte {
	for _, x := range r.X {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	b = binary.LittleEndian.AppendUint64(b, r.SP)
	b = binary.LittleEndian.AppendUint64(b, r.PC)
	return binary.LittleEndian.AppendUint64(b, r.PState)
}

// Bytes returns the 272-byte user_pt_regs.
func (r *ARM64UserRegs) Bytes() []byte { return r.AppendTo(make([]byte, 0, ARM64UserRegsSize)) }

// MarshalBinary returns Bytes. It never fails.
func (r *ARM64UserRegs) MarshalBinary() ([]byte, error) { return r.Bytes(), nil }

// ARM64FPSIMD is struct user_fpsimd_state, the content of the arm64
// NT_PRFPREG note: 32 128-bit V registers, fpsr, fpcr and 8 bytes of
// padding (528 bytes).
type ARM64FPSIMD struct {
	// V holds v0..v31, each as {low 64 bits, high 64 bits}; a register
	// is stored little-endian, low half first.
	V          [32][2]uint64
	FPSR, FPCR uint32
}

// AppendTo appends the 528-byte user_fpsimd_state to b.
func (f *ARM64FPSIMD) AppendTo(b []byte) []byte {
	for _, v := range f.V {
		b = binary.LittleEndian.AppendUint64(b, v[0])
		b = binary.LittleEndian.AppendUint64(b, v[1])
	}
	b = binary.LittleEndian.AppendUint32(b, f.FPSR)
	b = binary.LittleEndian.AppendUint32(b, f.FPCR)
	return append(b, make([]byte, 8)...)
}

// Bytes returns the 528-byte user_fpsimd_state.
func (f *ARM64FPSIMD) Bytes() []byte { return f.AppendTo(make([]byte, 0, ARM64FPSIMDSize)) }

// MarshalBinary returns Bytes. It never fails.
func (f *ARM64FPSIMD) MarshalBinary() ([]byte, error) { return f.Bytes(), nil }

// ARM64TLS is the NT_ARM_TLS note content: tpidr_el0, then tpidr2_el0
// (16 bytes; the kernel writes 0 for tpidr2_el0 on CPUs without SME).
type ARM64TLS struct {
	TPIDR, TPIDR2 uint64
}

// AppendTo appends the 16-byte NT_ARM_TLS content to b.
func (t *ARM64TLS) AppendTo(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, t.TPIDR)
	return binary.LittleEndian.AppendUint64(b, t.TPIDR2)
}

// Bytes returns the 16-byte NT_ARM_TLS content.
func (t *ARM64TLS) Bytes() []byte { return t.AppendTo(make([]byte, 0, ARM64TLSSize)) }

// MarshalBinary returns Bytes. It never fails.
func (t *ARM64TLS) MarshalBinary() ([]byte, error) { return t.Bytes(), nil }

// ARM64HWDebugReg is one dbg_regs slot of struct user_hwdebug_state.
type ARM64HWDebugReg struct {
	Addr uint64
	Ctrl uint32
}

// ARM64HWDebug is struct user_hwdebug_state, the content of the
// NT_ARM_HW_BREAK and NT_ARM_HW_WATCH notes (264 bytes):
//
//	u32 dbg_info; u32 pad; struct { u64 addr; u32 ctrl; u32 pad; } dbg_regs[16];
//
// The kernel always writes all 16 slots; those beyond the CPU's number of
// breakpoints (watchpoints) are zero. dbg_info comes from the CPU, not from
// the thread: (debug architecture << 8) | number of breakpoints (for
// NT_ARM_HW_BREAK) or watchpoints (for NT_ARM_HW_WATCH). A thread that set
// no breakpoints has all slots zero; ARM64HWDebug{DbgInfo: arch<<8 | slots} is that state.
type ARM64HWDebug struct {
	DbgInfo uint32
	Regs    [ARM64HWDebugSlots]ARM64HWDebugReg
}

// Debug architecture versions (ID_AA64DFR0_EL1.DebugVer), as the kernel
// puts them in bits 8..15 of dbg_info (ARM_DEBUG_ARCH_* in the kernel's
// arch/arm64/include/asm/debug-monitors.h).
const (
	ARM64DebugArchV8   = 0x6 // ARMv8.0
	ARM64DebugArchV8_1 = 0x7 // ARMv8.1 (VHE)
	ARM64DebugArchV8_2 = 0x8 // ARMv8.2
	ARM64DebugArchV8_4 = 0x9 // ARMv8.4
)

// Breakpoint and watchpoint counts of a Cortex-A72 (and of qemu's
// cortex-a72 model), whose kernel cores carry dbg_info 0x606 in
// NT_ARM_HW_BREAK and 0x604 in NT_ARM_HW_WATCH.
const (
	CortexA72Breakpoints = 6
	CortexA72Watchpoints = 4
)

// MarshalBinary returns the 264-byte struct user_hwdebug_state. It fails if
// dbg_info claims more than 16 slots.
func (h *ARM64HWDebug) MarshalBinary() ([]byte, error) {
	if n := h.DbgInfo & 0xff; n > ARM64HWDebugSlots {
		return nil, fmt.Errorf("regs: hwdebug: dbg_info %#x claims %d slots, at most %d", h.DbgInfo, n, ARM64HWDebugSlots)
	}
	b := make([]byte, 0, ARM64HWDebugSize)
	b = binary.LittleEndian.AppendUint32(b, h.DbgInfo)
	b = binary.LittleEndian.AppendUint32(b, 0)
	for _, r := range h.Regs {
		b = binary.LittleEndian.AppendUint64(b, r.Addr)
		b = binary.LittleEndian.AppendUint32(b, r.Ctrl)
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	return b, nil
}

// ARM64SystemCall is the NT_ARM_SYSTEM_CALL note content: the thread's
// syscallno (4 bytes). In kernel core dumps it is always
// ARM64NoSyscall: every thread is dumped from signal delivery, which
// forgets the system call it interrupted (forget_syscall in do_signal),
// and a thread that was not in a system call has none.
type ARM64SystemCall int32

// ARM64NoSyscall is NO_SYSCALL, the syscallno of a thread outside a system
// call, as found in every thread of the kernel's arm64 cores.
const ARM64NoSyscall ARM64SystemCall = -1

// AppendTo appends the 4-byte NT_ARM_SYSTEM_CALL content to b.
func (s ARM64SystemCall) AppendTo(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, uint32(s))
}

// Bytes returns the 4-byte NT_ARM_SYSTEM_CALL content.
func (s ARM64SystemCall) Bytes() []byte { return s.AppendTo(nil) }

// MarshalBinary returns Bytes. It never fails.
func (s ARM64SystemCall) MarshalBinary() ([]byte, error) { return s.Bytes(), nil }

// ARM64TaggedAddrCtrl is the NT_ARM_TAGGED_ADDR_CTRL note content: the
// thread's tagged address control word as set by prctl(PR_SET_TAGGED_ADDR_CTRL)
// (8 bytes); 0 for a thread that never set it. The kernel writes this note
// on kernels built with CONFIG_ARM64_TAGGED_ADDR_ABI (the default).
type ARM64TaggedAddrCtrl uint64

// AppendTo appends the 8-byte NT_ARM_TAGGED_ADDR_CTRL content to b.
func (t ARM64TaggedAddrCtrl) AppendTo(b []byte) []byte {
	return binary.LittleEndian.AppendUint64(b, uint64(t))
}

// Bytes returns the 8-byte NT_ARM_TAGGED_ADDR_CTRL content.
func (t ARM64TaggedAddrCtrl) Bytes() []byte { return t.AppendTo(nil) }

// MarshalBinary returns Bytes. It never fails.
func (t ARM64TaggedAddrCtrl) MarshalBinary() ([]byte, error) { return t.Bytes(), nil }
