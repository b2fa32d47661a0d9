package elfcore

import (
	"debug/elf"
	"fmt"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/regs"
	"github.com/ckpt2core/ckpt2core/internal/regs/fromcriu"
)

// arm64Notes writes aarch64 register notes in the kernel's regset order
// (arch/arm64/kernel/ptrace.c aarch64_regsets): pr_reg as user_pt_regs,
// then NT_PRFPREG (user_fpsimd_state), NT_ARM_TLS, NT_ARM_HW_BREAK,
// NT_ARM_HW_WATCH, NT_ARM_SYSTEM_CALL and NT_ARM_TAGGED_ADDR_CTRL.
//
//   - NT_ARM_TLS: tpidr_el0 from CRIU; tpidr2_el0 (SME) is not recorded by
//     CRIU 3.17 and is written as 0.
//   - NT_ARM_HW_BREAK/HW_WATCH: a checkpointed thread has no debug register
//     in use, so every slot is zero, as in the kernel's cores. dbg_info (the
//     CPU's debug architecture and slot count) describes the CPU, which the
//     images do not record: it is written as 0 rather than guessed (the
//     kernel's cores of the arm64 fixtures, on a cortex-a72, say 0x606 for
//     breakpoints and 0x604 for watchpoints; gdb and Delve do not read it
//     from a core). This word is the only byte in which our regset notes
//     differ from the kernel's.
//   - NT_ARM_SYSTEM_CALL: -1, no system call in progress: CRIU rewinds a
//     thread interrupted in a call to re-execute it (pc at the svc, x0 =
//     orig_x0), and the kernel's cores say -1 for the same state.
//   - NT_ARM_TAGGED_ADDR_CTRL: 0, the default; CRIU does not record
//     prctl(PR_SET_TAGGED_ADDR_CTRL).
//   - SVE, SME, PAC and MTE notes are left out: CRIU 3.17 records no SVE/SME
//     state, PAC keys are not an aid to debugging, and no fixture CPU has
//     them.
type arm64Notes struct{}

func (a *arm64Notes) machine() elf.Machine { return elf.EM_AARCH64 }

func (a *arm64Notes) thread(t *criuimg.Thread) ([]byte, []Note, error) {
	ti := t.Core.GetTiAarch64()
	if ti == nil {
		return nil, nil, fmt.Errorf("no aarch64 thread_info")
	}
	gp, fp, tls, err := fromcriu.ARM64(ti)
	if err != nil {
		return nil, nil, err
	}
	prReg := gp.Bytes()
	fpb := fp.Bytes()
	tlsb := tls.Bytes()
	var hw regs.ARM64HWDebug
	hwb, err := hw.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	sysc := regs.ARM64NoSyscall.Bytes()
	tag := regs.ARM64TaggedAddrCtrl(0).Bytes()
	return prReg, []Note{
		{noteCore, regs.NT_PRFPREG, fpb},
		{noteLinux, regs.NT_ARM_TLS, tlsb},
		{noteLinux, regs.NT_ARM_HW_BREAK, hwb},
		{noteLinux, regs.NT_ARM_HW_WATCH, hwb},
		{noteLinux, regs.NT_ARM_SYSTEM_CALL, sysc},
		{noteLinux, regs.NT_ARM_TAGGED_ADDR_CTRL, tag},
	}, nil
}

func (a *arm64Notes) extra() []Note { return nil }
