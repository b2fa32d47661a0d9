package elfcore

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/siginfo"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/regs"
)

// Note owner names.
const (
	noteCore  = regs.NoteNameCore
	noteLinux = regs.NoteNameLinux
)

// prArgSize is ELF_PRARGSZ: the size of pr_psargs.
const prArgSize = 80

// archNotes produces the architecture-dependent parts of a core.
type archNotes interface {
	machine() elf.Machine
	// thread returns pr_reg for NT_PRSTATUS and the thread's other
	// register notes, in the kernel's regset order.
	thread(t *criuimg.Thread) (prReg []byte, notes []Note, err error)
	// extra returns the notes written after all threads
	// (elf_coredump_extra_notes_write).
	extra() []Note
}

func newArchNotes(a criuimg.Arch) (archNotes, error) {
	switch a {
	case criuimg.ArchX86_64:
		return &x86Notes{}, nil
	case criuimg.ArchARM64:
		return &arm64Notes{}, nil
	}
	return nil, fmt.Errorf("unsupported architecture %v", a)
}

// MappedFiles supplies the files behind file-backed mappings, so that the
// clean pages CRIU did not capture can be written into the core.
type MappedFiles interface {
	// OpenMapped returns the file mapped by v and its size, or an error
	// saying why it cannot be used (missing, or its size or build-id does
	// not fit what the checkpoint recorded). It must be safe for
	// concurrent use; the caller does not close what it returns.
	OpenMapped(v *criuimg.VMA) (io.ReaderAt, int64, error)
}

// Options adjust BuildWith.
type Options struct {
	// Files, if set, supplies the clean pages of file-backed private
	// mappings: such mappings are then written whole, like a kernel core
	// with coredump_filter 0x3f. A file it refuses is left to the
	// debugger, with a warning.
	Files MappedFiles
	// NoMemory plans without reading the process's memory: pr_psargs
	// is left empty (the notes keep their size). For a provisional plan
	// whose segments are written while the pages stream (WriteData),
	// before the notes can be.
	NoMemory bool
}

// BuildWith plans the core of one process: notes in the kernel's order
// (fs/binfmt_elf.c write_note_info) and one or more PT_LOADs per mapping.
func BuildWith(p *criuimg.Process, opts Options) (*Plan, error) {
	an, err := newArchNotes(p.Arch)
	if err != nil {
		return nil, err
	}
	if len(p.Threads) == 0 {
		return nil, fmt.Errorf("pid %d: no threads (a zombie has no core)", p.Pid)
	}
	plan := &Plan{Machine: an.machine(), PageSize: p.PageSize}
	procNotes, err := processNotes(p, plan, opts.NoMemory)
	if err != nil {
		return nil, err
	}
	// The kernel writes the dumping thread first and the others after it
	// (most recently created first); here the main thread plays the dumper.
	order := make([]criuimg.Thread, 0, len(p.Threads))
	order = append(order, p.Threads[0])
	for i := len(p.Threads) - 1; i >= 1; i-- {
		order = append(order, p.Threads[i])
	}
	for i := range order {
		t := &order[i]
		prReg, notes, err := an.thread(t)
		if err != nil {
			return nil, fmt.Errorf("thread %d: core-%d.img: %w", t.Tid, t.Tid, err)
		}
		st, err := prstatus(p, t, prReg)
		if err != nil {
			return nil, fmt.Errorf("thread %d: %w", t.Tid, err)
		}
		plan.Notes = append(plan.Notes, Note{noteCore, regs.NT_PRSTATUS, st})
		if i == 0 {
			plan.Notes = append(plan.Notes, procNotes...)
		}
		plan.Notes = append(plan.Notes, notes...)
	}
	plan.Notes = append(plan.Notes, an.extra()...)
	if err := addSegments(plan, p, opts.Files); err != nil {
		return nil, err
	}
	if err := plan.Layout(); err != nil {
		return nil, err
	}
	return plan, nil
}

// processNotes returns NT_PRPSINFO, NT_AUXV and NT_FILE. A checkpoint was
// not made by a signal, so like gdb's gcore of a stopped process there is
// no NT_SIGINFO and pr_cursig is 0.
func processNotes(p *criuimg.Process, plan *Plan, noMemory bool) ([]Note, error) {
	ps, err := prpsinfo(p, plan, noMemory)
	if err != nil {
		return nil, err
	}
	notes := []Note{{noteCore, regs.NT_PRPSINFO, ps}}
	auxv := make([]byte, 0, 8*len(p.Auxv))
	for _, w := range p.Auxv {
		auxv = binary.LittleEndian.AppendUint64(auxv, w)
	}
	notes = append(notes, Note{noteCore, regs.NT_AUXV, auxv})
	if files := ntFile(p); files != nil {
		notes = append(notes, Note{noteCore, regs.NT_FILE, files})
	}
	return notes, nil
}

// prstatus builds NT_PRSTATUS of one thread.
func prstatus(p *criuimg.Process, t *criuimg.Thread, prReg []byte) ([]byte, error) {
	st := regs.PRStatus{
		Sigpend: pendingMask(t.Core.GetThreadCore().GetSignalsP()),
		Sighold: blockedMask(t.Core),
		Pid:     int32(t.Tid),
		Ppid:    int32(p.PPid),
		Pgrp:    int32(p.Pgid),
		Sid:     int32(p.Sid),
		Regs:    prReg,
		FPValid: 1,
	}
	return st.MarshalBinary()
}

// blockedMask is the thread's blocked signal set: thread_core.blk_sigset,
// else the task's.
func blockedMask(c *criucore.CoreEntry) uint64 {
	if tc := c.GetThreadCore(); tc != nil && tc.BlkSigset != nil {
		return tc.GetBlkSigset()
	}
	return c.GetTc().GetBlkSigset()
}

// pendingMask is the set of signals queued for the thread (pr_sigpend
// holds the first 64 signals).
func pendingMask(q *siginfo.SignalQueueEntry) uint64 {
	var m uint64
	for _, s := range q.GetSignals() {
		b := s.GetSiginfo()
		if len(b) < 4 {
			continue
		}
		if signo := binary.LittleEndian.Uint32(b); signo >= 1 && signo <= 64 {
			m |= 1 << (signo - 1)
		}
	}
	return m
}

// prpsinfo builds NT_PRPSINFO. pr_psargs follows the kernel: the
// argument area read from the process's own pages, at most 79 bytes, NULs
// turned into spaces; bytes the checkpoint lacks (pages in a parent
// checkpoint, say) end it early, with a warning, as the kernel ignores a
// failed read there. The state is gcore's for a stopped process ('t');
// pr_flag is the task's flags as CRIU recorded them.
func prpsinfo(p *criuimg.Process, plan *Plan, noMemory bool) ([]byte, error) {
	tc := p.Task.GetTc()
	ps := regs.PRPSInfo{
		Sname: 't',
		Nice:  int8(p.Task.GetThreadCore().GetSchedNice()),
		Pid:   int32(p.Pid),
		Ppid:  int32(p.PPid),
		Pgrp:  int32(p.Pgid),
		Sid:   int32(p.Sid),
	}
	ps.Flag = uint64(tc.GetFlags())
	if cr := p.Task.GetThreadCore().GetCreds(); cr != nil {
		ps.UID, ps.GID = cr.GetUid(), cr.GetGid()
	}
	copy(ps.Fname[:len(ps.Fname)-1], p.Comm)
	if !noMemory {
		args, err := Psargs(p)
		if err != nil {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("pr_psargs: %v", err))
		}
		copy(ps.Psargs[:], args)
	}
	return ps.MarshalBinary()
}

// Psargs returns pr_psargs as the kernel computes it from the argument
// area [mm_arg_start, mm_arg_end): at most 79 bytes, NULs as spaces. If
// part of the area is not in the checkpoint, it returns the bytes before
// it and an error.
func Psargs(p *criuimg.Process) ([]byte, error) {
	start, end := p.MM.GetMmArgStart(), p.MM.GetMmArgEnd()
	if end <= start {
		return nil, nil
	}
	n := min(end-start, prArgSize-1)
	b := make([]byte, n)
	k, err := p.Mem.ReadAt(b, int64(start))
	b = b[:k]
	if err != nil {
		err = fmt.Errorf("reading the argument area at %#x: %w", start, err)
	}
	for i := range b {
		if b[i] == 0 {
			b[i] = ' '
		}
	}
	return b, err
}

// ntFile builds NT_FILE: every file-backed mapping with its page offset and
// path, in address order (fs/binfmt_elf.c fill_files_note).
func ntFile(p *criuimg.Process) []byte {
	var vmas []*criuimg.VMA
	for i := range p.VMAs {
		if p.VMAs[i].FileBacked() {
			vmas = append(vmas, &p.VMAs[i])
		}
	}
	if len(vmas) == 0 {
		return nil
	}
	le := binary.LittleEndian
	b := le.AppendUint64(nil, uint64(len(vmas)))
	b = le.AppendUint64(b, p.PageSize)
	for _, v := range vmas {
		b = le.AppendUint64(b, v.Start)
		b = le.AppendUint64(b, v.End)
		b = le.AppendUint64(b, v.Pgoff/p.PageSize)
	}
	for _, v := range vmas {
		b = append(b, v.Path...)
		b = append(b, 0)
	}
	return b
}

// progFlags maps PROT_* bits to PF_* flags.
func progFlags(prot uint32) elf.ProgFlag {
	var f elf.ProgFlag
	if prot&criuimg.ProtRead != 0 {
		f |= elf.PF_R
	}
	if prot&criuimg.ProtWrite != 0 {
		f |= elf.PF_W
	}
	if prot&criuimg.ProtExec != 0 {
		f |= elf.PF_X
	}
	return f
}

// segKind classifies the bytes of an extent for the core.
type segKind int

const (
	segData segKind = iota // bytes in the file (captured, or zeros as holes)
	segZero                // p_filesz 0: the bytes are zero (never touched)
	segNone                // no PT_LOAD: the bytes are unknown to the checkpoint
)

// addSegments adds the PT_LOADs of every mapping:
//   - anonymous and shared memory with captured pages is written whole,
//     untouched pages as holes of the sparse file;
//   - a mapping whose bytes are known to be zero and of which no page was
//     captured (PROT_NONE reservations, untouched memory) gets p_filesz 0;
//   - in file-backed private mappings only the captured runs carry bytes,
//     in PT_LOADs of their own;
//   - bytes the checkpoint does not hold get no PT_LOAD at all: clean pages
//     of file mappings (NT_FILE names their files, from which gdb and Delve
//     read them), pages kept in a parent checkpoint or left to lazy
//     migration, and the kernel's vvar and vsyscall pages. A p_filesz 0
//     PT_LOAD would make gdb read such ranges as zeros whenever the file is
//     not at its recorded path, and zeros there are wrong bytes: gdb 13 then
//     rejects a PIE's relocation because the program headers at AT_PHDR
//     read as zeros, and no frame of the executable is symbolized.
func addSegments(plan *Plan, p *criuimg.Process, files MappedFiles) error {
	var exts []criuimg.Extent
	refused := map[string]bool{}
	for i := range p.VMAs {
		v := &p.VMAs[i]
		flags := progFlags(v.Prot)
		var file io.ReaderAt
		var fileSize int64
		if files != nil && v.FileBacked() && !v.HasShmem && !v.Special() {
			f, size, err := files.OpenMapped(v)
			if err != nil {
				if !refused[v.Path] { // once per file, not per mapping
					refused[v.Path] = true
					plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s: clean pages left to the debugger: %v", v.Path, err))
				}
			} else {
				file, fileSize = f, size
			}
		}
		exts = exts[:0]
		captured := false
		err := p.Mem.VMAExtents(v, func(e criuimg.Extent) error {
			captured = captured || e.Kind == criuimg.Captured
			exts = append(exts, e)
			return nil
		})
		if err != nil {
			return err
		}
		zeroIsData := !v.FileBacked() || v.HasShmem
		var cur *Segment
		curKind := segNone
		for _, e := range exts {
			kind := segNone
			if file != nil && e.Kind == criuimg.Absent && !e.Parent && !e.Lazy {
				// A clean page of a file mapping: its bytes come from the
				// file; bytes past the end of the file read as zero.
				e.Kind = criuimg.Captured
				e.Src = nil
				e.Off = int64(v.Pgoff + (e.Start - v.Start))
			}
			switch {
			case e.Kind == criuimg.Captured:
				kind = segData
			case e.Kind == criuimg.Zero && captured && zeroIsData:
				kind = segData
			case e.Kind == criuimg.Zero:
				kind = segZero
			}
			if kind == segNone {
				cur, curKind = nil, segNone
				continue
			}
			if cur == nil || curKind != kind || cur.Vaddr+cur.Memsz != e.Start {
				plan.Segments = append(plan.Segments, Segment{Vaddr: e.Start, Flags: flags})
				cur, curKind = &plan.Segments[len(plan.Segments)-1], kind
			}
			size := e.End - e.Start
			switch {
			case e.Kind == criuimg.Captured && e.Src != nil:
				cur.Pieces = append(cur.Pieces, Piece{Off: cur.Memsz, Len: size, Src: e.Src, SrcOff: e.Off})
			case e.Kind == criuimg.Captured && e.Off < fileSize:
				n := min(size, uint64(fileSize-e.Off))
				cur.Pieces = append(cur.Pieces, Piece{Off: cur.Memsz, Len: n, Src: file, SrcOff: e.Off})
			}
			cur.Memsz += size
			if kind == segData {
				cur.Filesz = cur.Memsz
			}
		}
	}
	return nil
}
