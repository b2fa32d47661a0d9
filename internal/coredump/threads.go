package coredump

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
)

// Thread is one thread of the core: an NT_PRSTATUS note and the notes that
// follow it up to the next NT_PRSTATUS.
type Thread struct {
	Pid, Ppid, Pgrp, Sid int32  // pr_pid (the tid), pr_ppid, pr_pgrp, pr_sid
	Cursig               uint16 // pr_cursig
	Sigpend              uint64 // pr_sigpend
	Sighold              uint64 // pr_sighold: the thread's blocked signal mask
	// Regs is pr_reg: 27 words on x86_64 (user_regs_struct order, see
	// X86RegNames), 34 on arm64 (x0..x30, sp, pc, pstate).
	Regs []uint64
	// FPRegs is the NT_FPREGSET (NT_PRFPREG) descriptor, raw.
	FPRegs []byte
	// XState is the NT_X86_XSTATE descriptor, raw (x86_64 only).
	XState []byte
	// XSaveLayout is the NT_X86_XSAVE_LAYOUT descriptor that applies to
	// XState: the thread's own, else the process-wide one (the kernel writes
	// a single one after the last thread), else nil.
	XSaveLayout []byte
	// TLS is the NT_ARM_TLS descriptor (arm64 only).
	TLS []byte
	// Extra holds every other note of the thread, by type (process-wide
	// notes of the first thread such as NT_PRPSINFO, NT_AUXV, NT_FILE and
	// NT_SIGINFO included). If a type repeats, the first one is kept.
	Extra map[uint32][]byte
}

// Threads returns one Thread per NT_PRSTATUS note, in file order. Notes that
// precede the first NT_PRSTATUS belong to no thread. A malformed NT_PRSTATUS
// (too short for the machine's pr_reg) yields a Thread with nil Regs; use
// ThreadsErr to get an error instead.
func (c *Core) Threads() []Thread {
	ts, _ := c.threads(false)
	return ts
}

// ThreadsErr is Threads but fails on a malformed NT_PRSTATUS note.
func (c *Core) ThreadsErr() ([]Thread, error) { return c.threads(true) }

func (c *Core) nregs() int {
	if c.Machine == elf.EM_AARCH64 {
		return RegsARM64
	}
	return RegsX86_64
}

func (c *Core) threads(strict bool) ([]Thread, error) {
	le := binary.LittleEndian
	var (
		ts       []Thread
		global   []byte
		ownsLay  []bool
		firstErr error
	)
	for _, n := range c.Notes {
		if n.Type == NTPrstatus && n.Name == "CORE" {
			t := Thread{Extra: map[uint32][]byte{}}
			d := n.Desc
			need := prstatusReg + 8*c.nregs()
			if len(d) < need {
				if firstErr == nil {
					firstErr = fmt.Errorf("coredump: NT_PRSTATUS #%d has %d bytes, need at least %d", len(ts), len(d), need)
				}
			} else {
				t.Cursig = le.Uint16(d[prstatusCursig:])
				t.Sigpend = le.Uint64(d[prstatusSigpend:])
				t.Sighold = le.Uint64(d[prstatusSighold:])
				t.Pid = int32(le.Uint32(d[prstatusPid:]))
				t.Ppid = int32(le.Uint32(d[prstatusPpid:]))
				t.Pgrp = int32(le.Uint32(d[prstatusPgrp:]))
				t.Sid = int32(le.Uint32(d[prstatusSid:]))
				t.Regs = make([]uint64, c.nregs())
				for i := range t.Regs {
					t.Regs[i] = le.Uint64(d[prstatusReg+8*i:])
				}
			}
			ts = append(ts, t)
			ownsLay = append(ownsLay, false)
			continue
		}
		if n.Type == NTX86XSaveLayout && global == nil {
			global = n.Desc
		}
		if len(ts) == 0 {
			continue
		}
		t := &ts[len(ts)-1]
		switch {
		case n.Type == NTFPRegset && n.Name == "CORE" && t.FPRegs == nil:
			t.FPRegs = n.Desc
		case n.Type == NTX86XState && c.Machine == elf.EM_X86_64 && t.XState == nil:
			t.XState = n.Desc
		case n.Type == NTX86XSaveLayout && c.Machine == elf.EM_X86_64 && !ownsLay[len(ts)-1]:
			t.XSaveLayout = n.Desc
			ownsLay[len(ts)-1] = true
		case n.Type == NTARMTLS && c.Machine == elf.EM_AARCH64 && t.TLS == nil:
			t.TLS = n.Desc
		default:
			if _, dup := t.Extra[n.Type]; !dup {
				t.Extra[n.Type] = n.Desc
			}
		}
	}
	for i := range ts {
		if !ownsLay[i] && c.Machine == elf.EM_X86_64 {
			ts[i].XSaveLayout = global
		}
	}
	if strict && firstErr != nil {
		return nil, firstErr
	}
	return ts, nil
}

// Note returns the descriptor of the first note of type typ (any owner).
func (c *Core) Note(typ uint32) ([]byte, bool) {
	for _, n := range c.Notes {
		if n.Type == typ {
			return n.Desc, true
		}
	}
	return nil, false
}

// PSInfo is the decoded NT_PRPSINFO (struct elf_prpsinfo, 136 bytes).
type PSInfo struct {
	State  int8   // pr_state: numeric process state
	Sname  byte   // pr_sname: state letter ('R', 'S', 'T', ...)
	Zomb   int8   // pr_zomb
	Nice   int8   // pr_nice
	Flag   uint64 // pr_flag: task flags
	UID    uint32 // pr_uid
	GID    uint32 // pr_gid
	Pid    int32  // pr_pid
	Ppid   int32  // pr_ppid
	Pgrp   int32  // pr_pgrp
	Sid    int32  // pr_sid
	Fname  string // pr_fname up to the first NUL (comm)
	Psargs string // pr_psargs up to the first NUL
	// RawFname and RawPsargs are the fields' full bytes.
	RawFname  [16]byte
	RawPsargs [80]byte
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// PSInfo decodes the first NT_PRPSINFO note.
func (c *Core) PSInfo() (*PSInfo, error) {
	d, ok := c.Note(NTPrpsinfo)
	if !ok {
		return nil, errors.New("coredump: no NT_PRPSINFO note")
	}
	if len(d) < prpsinfoSize {
		return nil, fmt.Errorf("coredump: NT_PRPSINFO has %d bytes, want %d", len(d), prpsinfoSize)
	}
	le := binary.LittleEndian
	p := &PSInfo{
		State: int8(d[0]), Sname: d[1], Zomb: int8(d[2]), Nice: int8(d[3]),
		Flag: le.Uint64(d[8:]),
		UID:  le.Uint32(d[16:]), GID: le.Uint32(d[20:]),
		Pid: int32(le.Uint32(d[24:])), Ppid: int32(le.Uint32(d[28:])),
		Pgrp: int32(le.Uint32(d[32:])), Sid: int32(le.Uint32(d[36:])),
	}
	copy(p.RawFname[:], d[40:56])
	copy(p.RawPsargs[:], d[56:136])
	p.Fname = cstr(p.RawFname[:])
	p.Psargs = cstr(p.RawPsargs[:])
	return p, nil
}

// Auxv decodes the first NT_AUXV note into (type, value) pairs, up to and
// including AT_NULL. A vector without AT_NULL is returned whole with an error.
func (c *Core) Auxv() ([][2]uint64, error) {
	d, ok := c.Note(NTAuxv)
	if !ok {
		return nil, errors.New("coredump: no NT_AUXV note")
	}
	if len(d)%16 != 0 {
		return nil, fmt.Errorf("coredump: NT_AUXV size %d is not a multiple of 16", len(d))
	}
	le := binary.LittleEndian
	var out [][2]uint64
	for i := 0; i+16 <= len(d); i += 16 {
		e := [2]uint64{le.Uint64(d[i:]), le.Uint64(d[i+8:])}
		out = append(out, e)
		if e[0] == 0 {
			return out, nil
		}
	}
	return out, errors.New("coredump: NT_AUXV has no AT_NULL")
}

// AuxvValue returns the value of the first auxv entry with the given tag
// (AT_ENTRY = 9, AT_PAGESZ = 6, ...).
func (c *Core) AuxvValue(tag uint64) (uint64, bool) {
	av, _ := c.Auxv()
	for _, e := range av {
		if e[0] == tag {
			return e[1], true
		}
		if e[0] == 0 {
			break
		}
	}
	return 0, false
}

// FileEntry is one mapping of NT_FILE.
type FileEntry struct {
	Start, End uint64 // mapping's address range [Start, End)
	PageOffset uint64 // file offset in units of the note's page size
	Name       string // path of the mapped file
}

// Files decodes the first NT_FILE note: its entries in order and its page
// size.
func (c *Core) Files() ([]FileEntry, uint64, error) {
	d, ok := c.Note(NTFile)
	if !ok {
		return nil, 0, errors.New("coredump: no NT_FILE note")
	}
	return decodeFiles(d)
}

func decodeFiles(d []byte) ([]FileEntry, uint64, error) {
	le := binary.LittleEndian
	if len(d) < 16 {
		return nil, 0, fmt.Errorf("coredump: NT_FILE has %d bytes, need 16", len(d))
	}
	count := le.Uint64(d[0:])
	pageSize := le.Uint64(d[8:])
	if count > uint64(len(d)-16)/24 {
		return nil, 0, fmt.Errorf("coredump: NT_FILE count %d does not fit in %d bytes", count, len(d))
	}
	ents := make([]FileEntry, count)
	for i := range ents {
		o := 16 + 24*i
		ents[i] = FileEntry{Start: le.Uint64(d[o:]), End: le.Uint64(d[o+8:]), PageOffset: le.Uint64(d[o+16:])}
	}
	names := d[16+24*count:]
	for i := range ents {
		j := bytes.IndexByte(names, 0)
		if j < 0 {
			return nil, 0, fmt.Errorf("coredump: NT_FILE name %d of %d is not NUL-terminated", i, count)
		}
		ents[i].Name = string(names[:j])
		names = names[j+1:]
	}
	return ents, pageSize, nil
}
