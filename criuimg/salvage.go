package criuimg

import "fmt"

// SalvageProcess reads what is sound of the images of pid, for a report on
// damaged checkpoints; a conversion must use LoadProcess, which refuses
// any damage. It reads the images as LoadProcess does, with the same
// readers, limits and checks, but a problem costs only what it concerns:
//
//   - core-<pid>.img unreadable: Task is nil and Comm, State and ExitCode
//     unknown (the architecture is then the first thread core's);
//   - core-<tid>.img unreadable, or of another architecture: that thread
//     is left out of Threads;
//   - mm-<pid>.img unreadable: MM, VMAs, Auxv, ExePath and Mem are unset;
//   - no page size in the saved auxv: PageSize is 0 and Mem nil (the
//     mappings are kept, unchecked against a page size);
//   - a bad mapping: it is left out of VMAs;
//   - a bad pagemap entry: the entries before it are kept, and what the
//     pagemap would say beyond the last of them is unreadable;
//   - a pagemap that cannot be read at all, a pages file that cannot be
//     opened or that ends before the data of some entries: those bytes are
//     unreadable.
//
// Unreadable bytes are never presented as zeros or other bytes: the
// memory view has Unreadable extents for them, and its ReadAt fails there
// with an error wrapping ErrUnreadable. Bytes after the only entry of a
// core or mm image are ignored. A zombie gets its task facts, as from
// LoadProcess, but no error wrapping ErrZombie.
//
// It returns one *SalvageError per problem, none if the images are sound:
// the Process is then the one LoadProcess returns. The Process is nil only
// if pid is not in pstree.img (the one error says so). Close it when done.
func (c *Checkpoint) SalvageProcess(pid uint32) (*Process, []error) {
	if _, ok := c.Proc(pid); !ok {
		return nil, []error{fmt.Errorf("pid %d is not in pstree.img", pid)}
	}
	l := &loader{c: c, pid: pid, salvage: true}
	return l.load(), l.errs
}

// Part is the part of a Process that a problem found by SalvageProcess
// leaves out whole.
type Part int

const (
	// PartNone: the problem costs what its Lost says (a mapping left out,
	// bytes of an image ignored, a thread read once...), or, for pagemaps
	// and pages files, what its error says (bytes of memory unreadable).
	PartNone Part = iota
	// PartTask: core-<pid>.img cannot be read: Task is nil, Comm, State
	// and ExitCode are unknown, and the main thread is missing.
	PartTask
	// PartThread: the thread Tid is left out of Threads (its core cannot
	// be read or is of another architecture).
	PartThread
	// PartMM: mm-<pid>.img cannot be read: MM, VMAs, Auxv, ExePath and
	// Mem are unset.
	PartMM
	// PartMemory: the saved auxv gives no page size: PageSize is 0 and
	// Mem is nil.
	PartMemory
)

// SalvageError is one problem SalvageProcess found in the images of a
// process.
type SalvageError struct {
	// Part is what of the Process it leaves out.
	Part Part
	// Tid is the thread concerned, if any (PartThread: the thread left
	// out).
	Tid uint32
	// Err names the file, the entry and what is wrong (it wraps the
	// *FormatError, or the error of opening the image); for the problems
	// of pagemaps and pages files it also says which bytes are
	// unreadable.
	Err error
	// Lost is what else the problem costs.
	Lost Loss
}

// Error is Err's text followed by what is lost.
func (e *SalvageError) Error() string {
	if e.Lost == LossNone {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Lost.String()
}

// Unwrap returns Err.
func (e *SalvageError) Unwrap() error { return e.Err }
