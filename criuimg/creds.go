package criuimg

import (
	"fmt"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
)

// Seccomp modes of thread_core.seccomp_mode (SECCOMP_MODE_*).
const (
	SeccompDisabled = 0
	SeccompStrict   = 1
	SeccompFilter   = 2
)

// Creds are a thread's credentials as its core-<tid>.img records them
// (thread_core.creds, seccomp_mode).
type Creds struct {
	UID, GID, EUID, EGID, SUID, SGID, FSUID, FSGID uint32
	// Capability sets, bit n for capability n (CAP_CHOWN is bit 0).
	Inheritable, Permitted, Effective, Bounding, Ambient uint64
	Secbits                                              uint32
	NoNewPrivs                                           bool
	LSMProfile                                           string
	// Seccomp is SeccompDisabled, SeccompStrict or SeccompFilter;
	// SeccompFilterID the id of the thread's last filter in seccomp.img.
	Seccomp         uint32
	SeccompFilterID uint32
}

// ThreadCreds returns the credentials of thread t. An image without
// thread_core.creds, or with a capability set of more than the two 32-bit
// words 64 capabilities take, is an error naming core-<tid>.img.
func ThreadCreds(t *Thread) (Creds, error) {
	name := fmt.Sprintf("core-%d.img", t.Tid)
	th := t.Core.GetThreadCore()
	c := th.GetCreds()
	if c == nil {
		return Creds{}, fmt.Errorf("%s: no thread_core.creds", name)
	}
	cr := Creds{UID: c.GetUid(), GID: c.GetGid(), EUID: c.GetEuid(), EGID: c.GetEgid(), SUID: c.GetSuid(), SGID: c.GetSgid(),
		FSUID: c.GetFsuid(), FSGID: c.GetFsgid(), Secbits: c.GetSecbits(), NoNewPrivs: c.GetNoNewPrivs() != 0,
		LSMProfile: c.GetLsmProfile(), Seccomp: uint32(th.GetSeccompMode()), SeccompFilterID: th.GetSeccompFilter()}
	sets := []struct {
		name  string
		words []uint32
		dst   *uint64
	}{
		{"cap_inh", c.GetCapInh(), &cr.Inheritable}, {"cap_prm", c.GetCapPrm(), &cr.Permitted},
		{"cap_eff", c.GetCapEff(), &cr.Effective}, {"cap_bnd", c.GetCapBnd(), &cr.Bounding},
		{"cap_amb", c.GetCapAmb(), &cr.Ambient},
	}
	for _, s := range sets {
		v, err := capWords(s.words)
		if err != nil {
			return Creds{}, fmt.Errorf("%s: creds.%s: %w", name, s.name, err)
		}
		*s.dst = v
	}
	if cr.Seccomp > SeccompFilter {
		return Creds{}, fmt.Errorf("%s: seccomp_mode %d is not a seccomp mode", name, cr.Seccomp)
	}
	return cr, nil
}

func capWords(w []uint32) (uint64, error) {
	if len(w) > 2 {
		return 0, fmt.Errorf("%d words (a capability set has 2)", len(w))
	}
	var v uint64
	for i, x := range w {
		v |= uint64(x) << (32 * i)
	}
	return v, nil
}

// SIG_DFL and SIG_IGN, the handlers that are not code addresses.
const (
	SigDfl = 0
	SigIgn = 1
)

// SigAction is the disposition of one signal (task_core.sigactions).
type SigAction struct {
	Signal   int    // 1..64
	Handler  uint64 // SigDfl, SigIgn or the handler's address
	Flags    uint64 // SA_* bits
	Restorer uint64
	Mask     uint64
}

// Installed reports whether the signal has a handler of its own (not
// SIG_DFL or SIG_IGN).
func (s SigAction) Installed() bool { return s.Handler != SigDfl && s.Handler != SigIgn }

// sigmax is _KNSIG on x86_64 and arm64. CRIU writes one sa_entry per
// signal 1..sigmax but SIGKILL (9) and SIGSTOP (19), in order
// (parasite_dump_sigacts_seized).
const sigmax = 64

// SigActions returns the signal dispositions of the task core ce (of
// core-<pid>.img), for the signals CRIU records. An image with more
// entries than signals, or a compat (32-bit) entry, is an error; an
// image without sigactions gives none.
func SigActions(pid uint32, ce *criucore.CoreEntry) ([]SigAction, error) {
	sas := ce.GetTc().GetSigactions()
	if len(sas) == 0 {
		return nil, nil
	}
	if len(sas) > sigmax-2 {
		return nil, fmt.Errorf("core-%d.img: %d sigactions, more than the %d signals CRIU records", pid, len(sas), sigmax-2)
	}
	out := make([]SigAction, 0, len(sas))
	sig := 0
	for i, sa := range sas {
		sig++
		if sig == 9 || sig == 19 {
			sig++
		}
		if sa.GetCompatSigaction() {
			return nil, fmt.Errorf("core-%d.img: sigaction %d (signal %d) is a compat (32-bit) one", pid, i, sig)
		}
		out = append(out, SigAction{Signal: sig, Handler: sa.GetSigaction(), Flags: sa.GetFlags(), Restorer: sa.GetRestorer(), Mask: sa.GetMask()})
	}
	return out, nil
}
