package elfcore

import (
	"debug/elf"
	"fmt"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/regs"
	"github.com/ckpt2core/ckpt2core/regs/fromcriu"
)

// arm64Notes writes aarch64 register notes: pr_reg as user_pt_regs,
// NT_PRFPREG (user_fpsimd_state) and NT_ARM_TLS.
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
	prReg, err := gp.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	fpb, err := fp.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	tlsb, err := tls.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	return prReg, []Note{{noteCore, regs.NT_PRFPREG, fpb}, {noteLinux, regs.NT_ARM_TLS, tlsb}}, nil
}

func (a *arm64Notes) extra() []Note { return nil }
