package elfcore

import (
	"debug/elf"
	"fmt"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/regs"
	"github.com/ckpt2core/ckpt2core/internal/regs/fromcriu"
)

// x86Notes writes x86_64 register notes: pr_reg as user_regs_struct,
// NT_PRFPREG (the fxsave area), NT_X86_XSTATE in the standard layout and,
// once after all threads, NT_X86_XSAVE_LAYOUT describing that layout.
type x86Notes struct {
	layout []byte
}

func (x *x86Notes) machine() elf.Machine { return elf.EM_X86_64 }

func (x *x86Notes) thread(t *criuimg.Thread) ([]byte, []Note, error) {
	ti := t.Core.GetThreadInfo()
	if ti == nil {
		return nil, nil, fmt.Errorf("no x86 thread_info")
	}
	gp, xs, err := fromcriu.X86(ti)
	if err != nil {
		return nil, nil, err
	}
	prReg := gp.Bytes()
	if xs == nil {
		// CRIU saved no FPU state: like the kernel for a thread that never
		// used the FPU, no FP notes.
		return prReg, nil, nil
	}
	fx := xs.FX.Bytes()
	notes := []Note{{noteCore, regs.NT_PRFPREG, fx}}
	if xs.XCR0 == 0 {
		// Only the legacy FXSAVE state (no XSAVE on the CPU): no
		// NT_X86_XSTATE, as with the kernel.
		return prReg, notes, nil
	}
	xb, err := xs.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	if x.layout == nil {
		x.layout = xs.LayoutNote()
	}
	return prReg, append(notes, Note{noteLinux, regs.NT_X86_XSTATE, xb}), nil
}

func (x *x86Notes) extra() []Note {
	if len(x.layout) == 0 {
		return nil
	}
	return []Note{{noteLinux, regs.NT_X86_XSAVE_LAYOUT, x.layout}}
}
