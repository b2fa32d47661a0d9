package criuimg

import (
	"errors"
	"fmt"
	"math/bits"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
)

// loader reads the images of one process in steps, for LoadProcess
// (strict: the first problem ends it) or SalvageProcess (salvage: every
// problem is recorded, and what the images still say is kept). A step
// reads the images the same way in both modes but for the few readers
// that keep what is sound of a damaged image (salvage); it returns the
// problems it found, and settle applies the policy to them.
type loader struct {
	c       *Checkpoint
	pid     uint32
	salvage bool
	err     error   // strict: the problem that ended it, as LoadProcess returns it
	errs    []error // salvage: the problems, as SalvageProcess returns them
	// mmName is mm-<pid>.img, mtype the architecture of the threads'
	// cores once one is read (archSet).
	mmName  string
	mtype   criucore.CoreEntryMarch
	archSet bool
}

// problem is one problem of the images a step found: err says what is
// wrong, part what of the Process it leaves out (tid: the thread
// concerned), lost what else it costs.
type problem struct {
	part Part
	tid  uint32
	err  error
	lost Loss
}

// Loss is what a problem found by SalvageProcess costs beyond its Part.
type Loss int

const (
	// LossNone: nothing beyond the Part, or what the error says.
	LossNone Loss = iota
	// LossIgnored: the bytes after an image's only entry are ignored.
	LossIgnored
	// LossThreads: the architecture is unsupported: no thread is decoded.
	LossThreads
	// LossTaskFacts: core-<pid>.img has no task_core entry: Comm, State
	// and ExitCode are unknown.
	LossTaskFacts
	// LossReadOnce: a thread listed twice by pstree.img is read once.
	LossReadOnce
	// LossMainThread: the main thread, which pstree.img does not list, is
	// left out of Threads.
	LossMainThread
	// LossMapping: a bad mapping is left out of VMAs.
	LossMapping
)

// String says what is lost, as the end of a problem's message.
func (l Loss) String() string {
	switch l {
	case LossIgnored:
		return "ignored"
	case LossThreads:
		return "no thread is decoded"
	case LossTaskFacts:
		return "comm, state and exit code are unknown"
	case LossReadOnce:
		return "it is read once"
	case LossMainThread:
		return "it is left out"
	case LossMapping:
		return "left out of the mappings"
	}
	return ""
}

// step is one step of loading a process: it fills in what it reads of p
// and returns the problems it found, and done when nothing further can
// be read (a zombie, no mm image).
type step func(p *Process) (probs []problem, done bool)

// load reads the process's images, step by step. It returns nil when a
// problem stopped loading (strict mode).
func (l *loader) load() *Process {
	info, _ := l.c.Proc(l.pid)
	p := &Process{ProcInfo: info}
	l.mmName = fmt.Sprintf("mm-%d.img", l.pid)
	for _, s := range []step{l.readTask, l.checkTask, l.readThreads, l.readMM, l.readAuxv, l.readVMAs, l.openMemory} {
		probs, done := s(p)
		if l.settle(probs) {
			p.Close()
			return nil
		}
		if done {
			break
		}
	}
	return p
}

// settle applies the policy to a step's problems: strict, the first one
// is the error and loading stops (it reports true); with salvage each is
// recorded as a *SalvageError.
func (l *loader) settle(probs []problem) (stop bool) {
	if len(probs) == 0 {
		return false
	}
	if !l.salvage {
		l.err = fmt.Errorf("pid %d: %w", l.pid, probs[0].err)
		return true
	}
	for _, pr := range probs {
		l.errs = append(l.errs, &SalvageError{Part: pr.part, Tid: pr.tid, Err: pr.err, Lost: pr.lost})
	}
	return false
}

// setArch sets the process's architecture from a thread's core: the
// task's, or (the task's core unreadable) that of the first thread's
// core read.
func (l *loader) setArch(p *Process, tid uint32, ce *criucore.CoreEntry) []problem {
	l.archSet, l.mtype = true, ce.GetMtype()
	switch l.mtype {
	case criucore.CoreEntry_X86_64:
		p.Arch = ArchX86_64
	case criucore.CoreEntry_AARCH64:
		p.Arch = ArchARM64
	default:
		return []problem{{tid: tid, err: fmt.Errorf("core-%d.img: unsupported architecture %v", tid, l.mtype), lost: LossThreads}}
	}
	return nil
}

// readTask reads core-<pid>.img: the task's facts and architecture. A
// zombie is done: it has no memory and no registers.
func (l *loader) readTask(p *Process) ([]problem, bool) {
	task, trailing, err := readCore(l.c.Src, l.pid)
	if err != nil {
		return []problem{{part: PartTask, tid: l.pid, err: err}}, false
	}
	var probs []problem
	if trailing != nil {
		probs = append(probs, problem{tid: l.pid, err: trailing, lost: LossIgnored})
	}
	p.Task = task
	p.Comm = task.GetTc().GetComm()
	p.State = task.GetTc().GetTaskState()
	p.ExitCode = task.GetTc().GetExitCode()
	probs = append(probs, l.setArch(p, l.pid, task)...)
	return probs, p.Zombie()
}

// checkTask checks that the task's core has its task_core entry, and that
// pstree.img lists threads.
func (l *loader) checkTask(p *Process) ([]problem, bool) {
	var probs []problem
	if p.Task != nil && p.Task.GetTc() == nil {
		probs = append(probs, problem{tid: l.pid, err: fmt.Errorf("core-%d.img: no task_core entry", l.pid), lost: LossTaskFacts})
	}
	if len(p.ProcInfo.Threads) == 0 {
		probs = append(probs, problem{err: errors.New("pstree.img lists no thread")})
	}
	return probs, false
}

// readThreads reads core-<tid>.img of every thread pstree.img lists, the
// main thread first in Threads.
func (l *loader) readThreads(p *Process) ([]problem, bool) {
	var probs []problem
	seen := map[uint32]bool{}
	for _, tid := range p.ProcInfo.Threads {
		if seen[tid] {
			probs = append(probs, problem{tid: tid, err: fmt.Errorf("pstree.img lists thread %d twice", tid), lost: LossReadOnce})
			continue
		}
		seen[tid] = true
		ce, tprobs := l.threadCore(p, tid)
		probs = append(probs, tprobs...)
		if ce == nil {
			continue
		}
		t := Thread{Tid: tid, Core: ce}
		if tid == l.pid {
			p.Threads = append([]Thread{t}, p.Threads...)
		} else {
			p.Threads = append(p.Threads, t)
		}
	}
	p.stackPointers()
	if len(p.ProcInfo.Threads) > 0 && !seen[l.pid] {
		probs = append(probs, problem{tid: l.pid, err: errors.New("pstree.img does not list the main thread"), lost: LossMainThread})
	}
	return probs, false
}

// threadCore returns the core of thread tid (the task's for the main
// thread), nil if it is left out, and the problems it has.
func (l *loader) threadCore(p *Process, tid uint32) (*criucore.CoreEntry, []problem) {
	var probs []problem
	ce := p.Task
	if tid != l.pid {
		var trailing, err error
		if ce, trailing, err = readCore(l.c.Src, tid); err != nil {
			return nil, []problem{{part: PartThread, tid: tid, err: fmt.Errorf("thread %d: %w", tid, err)}}
		}
		if trailing != nil {
			probs = append(probs, problem{tid: tid, err: fmt.Errorf("thread %d: %w", tid, trailing), lost: LossIgnored})
		}
	}
	if ce == nil {
		return nil, nil // core-<pid>.img is unreadable (said by readTask)
	}
	if !l.archSet {
		probs = append(probs, l.setArch(p, tid, ce)...)
	}
	if p.Arch == ArchUnknown {
		return nil, probs // said by setArch
	}
	if ce.GetMtype() != l.mtype {
		return nil, append(probs, problem{part: PartThread, tid: tid, err: fmt.Errorf("core-%d.img: architecture %v differs from the process's %v", tid, ce.GetMtype(), l.mtype)})
	}
	return ce, probs
}

// readMM reads mm-<pid>.img and the executable's path; without it the
// process is done.
func (l *loader) readMM(p *Process) ([]problem, bool) {
	m := &mm.MmEntry{}
	trailing, err := readFirst(l.c.Src, l.mmName, MagicMM, m, mmLimits)
	if err != nil {
		return []problem{{part: PartMM, err: err}}, true
	}
	var probs []problem
	if trailing != nil {
		probs = append(probs, problem{err: trailing, lost: LossIgnored})
	}
	p.MM = m
	if path, ok := l.c.FilePath(m.GetExeFileId()); ok {
		p.ExePath = path
	}
	return probs, false
}

// readAuxv reads the saved auxv and its page size (PageSize 0 if it gives
// none).
func (l *loader) readAuxv(p *Process) ([]problem, bool) {
	auxv := p.MM.GetMmSavedAuxv()
	if len(auxv)%2 != 0 {
		return []problem{{part: PartMemory, err: fmt.Errorf("%s: saved auxv has an odd number (%d) of words", l.mmName, len(auxv))}}, false
	}
	p.Auxv = auxvUpToNull(auxv)
	p.PageSize = auxvValue(p.Auxv, atPagesz)
	if p.PageSize < 4096 || p.PageSize > 1<<20 || bits.OnesCount64(p.PageSize) != 1 {
		err := fmt.Errorf("%s: AT_PAGESZ %d in the saved auxv is not a page size (a power of two from 4 KiB to 1 MiB)", l.mmName, p.PageSize)
		p.PageSize = 0
		return []problem{{part: PartMemory, err: err}}, false
	}
	return nil, false
}

// readVMAs converts mm's mappings into p.VMAs. A mapping that is empty,
// out of order, unaligned to the page size (unchecked without one), or
// whose memfd is unknown is a problem that leaves it out. Without a page
// size the process is done: it has no memory view.
func (l *loader) readVMAs(p *Process) ([]problem, bool) {
	var probs []problem
	p.VMAs = make([]VMA, 0, len(p.MM.GetVmas()))
	for i, v := range p.MM.GetVmas() {
		vma, err := l.vma(p, v)
		if err != nil {
			probs = append(probs, problem{err: fmt.Errorf("%s: vma %d [%#x-%#x): %w", l.mmName, i, v.GetStart(), v.GetEnd(), err), lost: LossMapping})
			continue
		}
		p.VMAs = append(p.VMAs, vma)
	}
	// The decoded entries are a dozen small allocations each; VMAs holds
	// what they say (tens of MiB less for tens of thousands of mappings).
	p.MM.Vmas = nil
	return probs, p.PageSize == 0
}
