package regs

import (
	"encoding/binary"
	"fmt"
)

// Sizes of the structures of this file and of pr_reg, in bytes, for the
// 64-bit kernels of x86_64 and arm64.
const (
	SigInfoSize          = 12  // struct elf_siginfo
	PRStatusSizeX86_64   = 336 // struct elf_prstatus on x86_64
	PRStatusSizeARM64    = 392 // struct elf_prstatus on arm64
	PRPSInfoSize         = 136 // struct elf_prpsinfo (both arches)
	X86UserRegsSize      = 216 // struct user_regs_struct (x86_64)
	ARM64UserRegsSize    = 272 // struct user_pt_regs (arm64)
	prstatusRegOffset    = 112 // offset of pr_reg in struct elf_prstatus
	prstatusFixedSize    = prstatusRegOffset + 8
	prpsinfoFnameOffset  = 40
	prpsinfoPsargsOffset = 56
)

// SigInfo is struct elf_siginfo, the pr_info field of struct elf_prstatus.
type SigInfo struct {
	Signo, Code, Errno int32
}

// Timeval is the kernel's 64-bit struct __kernel_old_timeval, as used for
// the times of struct elf_prstatus.
type Timeval struct {
	Sec, Usec int64
}

// PRStatus is the 64-bit Linux struct elf_prstatus (the NT_PRSTATUS note),
// little-endian, as on x86_64 and arm64:
//
//	off  size field
//	  0    12 pr_info (SigInfo)
//	 12     2 pr_cursig, then 2 bytes of padding
//	 16     8 pr_sigpend
//	 24     8 pr_sighold
//	 32    16 pr_pid, pr_ppid, pr_pgrp, pr_sid (int32 each)
//	 48    64 pr_utime, pr_stime, pr_cutime, pr_cstime (Timeval each)
//	112   len pr_reg (216 bytes on x86_64, 272 on arm64)
//	112+len 4 pr_fpvalid, then 4 bytes of padding
type PRStatus struct {
	Info             SigInfo
	Cursig           int16
	Sigpend, Sighold uint64
	Pid, Ppid        int32
	Pgrp, Sid        int32

	Utime, Stime, Cutime, Cstime Timeval

	// Regs is pr_reg, already marshalled: X86UserRegs (216 bytes) or
	// ARM64UserRegs (272 bytes).
	Regs []byte

	// FPValid is pr_fpvalid; the kernel sets it to 1 when it writes an
	// NT_PRFPREG note for the thread (always, on x86_64 and arm64).
	FPValid int32
}

// MarshalBinary returns the struct elf_prstatus: 336 bytes with an x86_64
// pr_reg, 392 bytes with an arm64 pr_reg. It fails if len(Regs) is neither
// X86UserRegsSize nor ARM64UserRegsSize.
func (p *PRStatus) MarshalBinary() ([]byte, error) {
	if len(p.Regs) != X86UserRegsSize && len(p.Regs) != ARM64UserRegsSize {
		return nil, fmt.Errorf("regs: prstatus: pr_reg is %d bytes, want %d (x86_64) or %d (arm64)",
			len(p.Regs), X86UserRegsSize, ARM64UserRegsSize)
	}
	b := make([]byte, prstatusFixedSize+len(p.Regs))
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(p.Info.Signo))
	le.PutUint32(b[4:], uint32(p.Info.Code))
	le.PutUint32(b[8:], uint32(p.Info.Errno))
	le.PutUint16(b[12:], uint16(p.Cursig))
	le.PutUint64(b[16:], p.Sigpend)
	le.PutUint64(b[24:], p.Sighold)
	le.PutUint32(b[32:], uint32(p.Pid))
	le.PutUint32(b[36:], uint32(p.Ppid))
	le.PutUint32(b[40:], uint32(p.Pgrp))
	le.PutUint32(b[44:], uint32(p.Sid))
	for i, t := range [...]Timeval{p.Utime, p.Stime, p.Cutime, p.Cstime} {
		le.PutUint64(b[48+16*i:], uint64(t.Sec))
		le.PutUint64(b[56+16*i:], uint64(t.Usec))
	}
	copy(b[prstatusRegOffset:], p.Regs)
	le.PutUint32(b[prstatusRegOffset+len(p.Regs):], uint32(p.FPValid))
	return b, nil
}

// PRPSInfo is the 64-bit Linux struct elf_prpsinfo (the NT_PRPSINFO note),
// 136 bytes on x86_64 and arm64:
//
//	off size field
//	  0    4 pr_state, pr_sname, pr_zomb, pr_nice (one byte each), then 4 bytes of padding
//	  8    8 pr_flag
//	 16    8 pr_uid, pr_gid (uint32 each)
//	 24   16 pr_pid, pr_ppid, pr_pgrp, pr_sid (int32 each)
//	 40   16 pr_fname
//	 56   80 pr_psargs
type PRPSInfo struct {
	State, Sname, Zomb byte
	Nice               int8
	Flag               uint64
	UID, GID           uint32
	Pid, Ppid          int32
	Pgrp, Sid          int32
	Fname              [16]byte
	Psargs             [80]byte
}

// MarshalBinary returns the 136-byte struct elf_prpsinfo. It never fails.
func (p *PRPSInfo) MarshalBinary() ([]byte, error) {
	b := make([]byte, PRPSInfoSize)
	le := binary.LittleEndian
	b[0], b[1], b[2], b[3] = p.State, p.Sname, p.Zomb, byte(p.Nice)
	le.PutUint64(b[8:], p.Flag)
	le.PutUint32(b[16:], p.UID)
	le.PutUint32(b[20:], p.GID)
	le.PutUint32(b[24:], uint32(p.Pid))
	le.PutUint32(b[28:], uint32(p.Ppid))
	le.PutUint32(b[32:], uint32(p.Pgrp))
	le.PutUint32(b[36:], uint32(p.Sid))
	copy(b[prpsinfoFnameOffset:], p.Fname[:])
	copy(b[prpsinfoPsargsOffset:], p.Psargs[:])
	return b, nil
}
