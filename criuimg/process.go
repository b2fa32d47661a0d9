package criuimg

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strings"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
)

// VMA status bits of vma_entry.status (criu/include/image.h).
const (
	VMAAreaRegular  = 1 << 0
	VMAAreaStack    = 1 << 1
	VMAAreaVsyscall = 1 << 2
	VMAAreaVDSO     = 1 << 3
	VMAAreaHeap     = 1 << 5
	VMAFilePrivate  = 1 << 6
	VMAFileShared   = 1 << 7
	VMAAnonShared   = 1 << 8
	VMAAnonPrivate  = 1 << 9
	VMAAreaSysVIPC  = 1 << 10
	VMAAreaSocket   = 1 << 11
	VMAAreaVVAR     = 1 << 12
	VMAAreaAIORing  = 1 << 13
	VMAAreaMemfd    = 1 << 14
	VMAAreaShstk    = 1 << 15
	VMAUnsupp       = 1 << 31
)

// Protection bits of vma_entry.prot (PROT_*).
const (
	ProtRead  = 1
	ProtWrite = 2
	ProtExec  = 4
)

// MAP_SHARED in vma_entry.flags.
const mapShared = 0x01

// Task states of task_core_entry.task_state (compel's task-state.h).
const (
	TaskAlive   = 1
	TaskDead    = 2
	TaskStopped = 3
	TaskZombie  = 6
)

// Arch is the architecture a checkpoint was taken on, from core_entry.mtype.
type Arch int

// The architectures ckpt2core converts.
const (
	ArchUnknown Arch = iota
	ArchX86_64
	ArchARM64
)

func (a Arch) String() string {
	switch a {
	case ArchX86_64:
		return "x86_64"
	case ArchARM64:
		return "aarch64"
	}
	return "unknown"
}

// VMA is one mapping of a process.
type VMA struct {
	Start, End uint64 // [Start, End)
	Pgoff      uint64 // offset in the mapped file, in bytes
	Prot       uint32 // PROT_* bits
	Flags      uint32 // MAP_* bits
	Status     uint32 // CRIU's VMA_* status bits
	// Path is the mapped file's path for file-backed mappings ("" for
	// anonymous memory); for shared anonymous memory it is the name the
	// kernel shows ("/dev/zero (deleted)" or "/memfd:NAME (deleted)").
	Path string
	// Shmem is the id of the shared memory object (pagemap-shmem-<id>.img)
	// for shared anonymous and memfd mappings, else 0.
	Shmem uint64
	// FileID is the id of the mapped regular file in files.img (0 if none).
	FileID uint32
}

// FileBacked reports whether the mapping has a file behind it (including
// shared anonymous memory, which the kernel backs by a shmem file).
func (v *VMA) FileBacked() bool { return v.Path != "" }

// Anon reports whether the mapping is private anonymous memory (heap,
// stack, anonymous mmap, vDSO), whose uncaptured pages are zero.
func (v *VMA) Anon() bool { return v.Path == "" && v.Shmem == 0 }

// Special reports whether the mapping is one whose pages CRIU never
// captures and whose bytes are unknown: the kernel's vvar and vsyscall
// pages, and packet socket rings.
func (v *VMA) Special() bool {
	return v.Status&(VMAAreaVVAR|VMAAreaVsyscall|VMAAreaSocket) != 0
}

// Thread is one thread of a process with its core-<tid>.img.
type Thread struct {
	Tid  uint32
	Core *criucore.CoreEntry
}

// Comm is the thread's name (thread_core.comm, else the task's comm).
func (t *Thread) Comm() string {
	if c := t.Core.GetThreadCore().GetComm(); c != "" {
		return c
	}
	return t.Core.GetTc().GetComm()
}

// Process is everything about one process that its core needs: threads
// with their registers, mappings, saved auxv and the memory view. Memory
// use grows with the number of VMAs, pagemap entries and threads only.
type Process struct {
	ProcInfo
	Arch     Arch
	Comm     string
	State    uint32 // task_core.task_state
	ExitCode uint32
	// Threads holds the live threads, main thread first. A zombie has none.
	Threads  []Thread
	Task     *criucore.CoreEntry // core-<pid>.img (task-wide facts)
	MM       *mm.MmEntry         // without its Vmas: they are in VMAs
	VMAs     []VMA               // sorted, non-overlapping
	Auxv     []uint64
	PageSize uint64
	ExePath  string
	Mem      *Memory
	// Warnings lists facts a user should know that do not stop conversion
	// (pages kept in a parent checkpoint, lazy pages, unknown mappings).
	Warnings []string
}

// Zombie reports whether the process had exited and not been reaped.
func (p *Process) Zombie() bool { return p.State == TaskDead || p.State == TaskZombie }

// Close releases the files the memory view holds open.
func (p *Process) Close() error {
	if p.Mem != nil {
		return p.Mem.Close()
	}
	return nil
}

// ErrZombie is returned by LoadProcess for a zombie, which, as with the
// kernel, gets no core: it has no memory and no registers.
var ErrZombie = errors.New("zombie process (exited, not reaped): no memory or registers to dump")

// atPagesz is AT_PAGESZ in the auxiliary vector.
const atPagesz = 6

// LoadProcess reads the images of pid: core-<tid>.img of every thread,
// mm-<pid>.img, and the pagemaps, and builds the memory view. For a zombie
// it returns the Process (with task facts) and an error wrapping ErrZombie.
func (c *Checkpoint) LoadProcess(pid uint32) (*Process, error) {
	info, ok := c.Proc(pid)
	if !ok {
		return nil, fmt.Errorf("pid %d is not in pstree.img", pid)
	}
	p := &Process{ProcInfo: info}
	task, err := readCore(c.Src, pid)
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	p.Task = task
	p.Comm = task.GetTc().GetComm()
	p.State = task.GetTc().GetTaskState()
	p.ExitCode = task.GetTc().GetExitCode()
	switch task.GetMtype() {
	case criucore.CoreEntry_X86_64:
		p.Arch = ArchX86_64
	case criucore.CoreEntry_AARCH64:
		p.Arch = ArchARM64
	default:
		return nil, fmt.Errorf("pid %d: core-%d.img: unsupported architecture %v", pid, pid, task.GetMtype())
	}
	if p.Zombie() {
		return p, fmt.Errorf("pid %d: %w", pid, ErrZombie)
	}
	if task.GetTc() == nil {
		return nil, fmt.Errorf("pid %d: core-%d.img: no task_core entry", pid, pid)
	}
	if len(info.Threads) == 0 {
		return nil, fmt.Errorf("pid %d: pstree.img lists no thread", pid)
	}
	seen := map[uint32]bool{}
	for _, tid := range info.Threads {
		if seen[tid] {
			return nil, fmt.Errorf("pid %d: pstree.img lists thread %d twice", pid, tid)
		}
		seen[tid] = true
		ce := task
		if tid != pid {
			if ce, err = readCore(c.Src, tid); err != nil {
				return nil, fmt.Errorf("pid %d: thread %d: %w", pid, tid, err)
			}
		}
		if ce.GetMtype() != task.GetMtype() {
			return nil, fmt.Errorf("pid %d: core-%d.img: architecture %v differs from the process's %v", pid, tid, ce.GetMtype(), task.GetMtype())
		}
		t := Thread{Tid: tid, Core: ce}
		if tid == pid {
			p.Threads = append([]Thread{t}, p.Threads...)
		} else {
			p.Threads = append(p.Threads, t)
		}
	}
	if p.Threads[0].Tid != pid {
		return nil, fmt.Errorf("pid %d: pstree.img does not list the main thread", pid)
	}

	m := &mm.MmEntry{}
	if err := readOne(c.Src, fmt.Sprintf("mm-%d.img", pid), MagicMM, m, mmLimits); err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	p.MM = m
	mmName := fmt.Sprintf("mm-%d.img", pid)
	if len(m.GetMmSavedAuxv())%2 != 0 {
		return nil, fmt.Errorf("pid %d: %s: saved auxv has an odd number (%d) of words", pid, mmName, len(m.GetMmSavedAuxv()))
	}
	p.Auxv = auxvUpToNull(m.GetMmSavedAuxv())
	p.PageSize = auxvValue(p.Auxv, atPagesz)
	if p.PageSize < 4096 || p.PageSize > 1<<20 || bits.OnesCount64(p.PageSize) != 1 {
		return nil, fmt.Errorf("pid %d: %s: AT_PAGESZ %d in the saved auxv is not a page size (a power of two from 4 KiB to 1 MiB)", pid, mmName, p.PageSize)
	}
	if path, ok := c.FilePath(m.GetExeFileId()); ok {
		p.ExePath = path
	}
	if err := c.loadVMAs(p, mmName); err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	mem, err := c.openMemory(p)
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	p.Mem = mem
	return p, nil
}

// auxvUpToNull cuts the saved auxv after its AT_NULL pair; CRIU does not
// always save the AT_NULL pair, which the kernel's NT_AUXV ends with: it is
// added then.
func auxvUpToNull(a []uint64) []uint64 {
	for i := 0; i+1 < len(a); i += 2 {
		if a[i] == 0 {
			return a[:i+2]
		}
	}
	return append(a[:len(a):len(a)], 0, 0)
}

func auxvValue(a []uint64, tag uint64) uint64 {
	for i := 0; i+1 < len(a); i += 2 {
		if a[i] == tag {
			return a[i+1]
		}
	}
	return 0
}

// AuxvValue returns the value of tag in the saved auxv (0 if absent).
func (p *Process) AuxvValue(tag uint64) uint64 { return auxvValue(p.Auxv, tag) }

func (c *Checkpoint) loadVMAs(p *Process, mmName string) error {
	ps := p.PageSize
	p.VMAs = make([]VMA, 0, len(p.MM.GetVmas()))
	for i, v := range p.MM.GetVmas() {
		vma := VMA{Start: v.GetStart(), End: v.GetEnd(), Pgoff: v.GetPgoff(), Prot: v.GetProt(), Flags: v.GetFlags(), Status: v.GetStatus()}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%s: vma %d [%#x-%#x): %s", mmName, i, vma.Start, vma.End, fmt.Sprintf(format, a...))
		}
		if vma.Start >= vma.End {
			return bad("start is not below end")
		}
		if vma.Start%ps != 0 || vma.End%ps != 0 {
			return bad("not aligned to the page size %d", ps)
		}
		if i > 0 && vma.Start < p.VMAs[i-1].End {
			return bad("overlaps or is out of order with the previous mapping ending at %#x", p.VMAs[i-1].End)
		}
		if vma.Pgoff > math.MaxInt64-(vma.End-vma.Start) {
			return bad("offset %#x: the mapping's end overflows its object", vma.Pgoff)
		}
		if vma.Pgoff%ps != 0 {
			return bad("offset %#x is not aligned to the page size %d", vma.Pgoff, ps)
		}
		st := vma.Status
		switch {
		case st&VMAAreaMemfd != 0:
			name, shmid, err := c.memfdInfo(uint32(v.GetShmid()))
			if err != nil {
				return bad("%v", err)
			}
			vma.Path, vma.Shmem = name, uint64(shmid)
		case st&VMAAnonShared != 0:
			vma.Path, vma.Shmem = "/dev/zero (deleted)", v.GetShmid()
		case st&(VMAFilePrivate|VMAFileShared) != 0:
			path, ok := c.FilePath(uint32(v.GetShmid()))
			if !ok {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s: vma [%#x-%#x): file id %d is not in files.img; mapped as unnamed", mmName, vma.Start, vma.End, v.GetShmid()))
				path = fmt.Sprintf("[unknown file %d]", v.GetShmid())
			}
			vma.Path, vma.FileID = path, uint32(v.GetShmid())
		}
		p.VMAs = append(p.VMAs, vma)
	}
	// The decoded entries are a dozen small allocations each; VMAs holds
	// what they say (tens of MiB less for tens of thousands of mappings).
	p.MM.Vmas = nil
	return nil
}

// memfdInfo maps a memfd file id (files.img) to the name the kernel shows
// for its mappings and the shmem id of its pages (memfd.img, read once).
func (c *Checkpoint) memfdInfo(fileID uint32) (string, uint32, error) {
	inode, ok := c.memfds[fileID]
	if !ok {
		return "", 0, fmt.Errorf("memfd file %d is not in files.img", fileID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.inodesOK {
		c.inodesOK = true
		c.inodes = map[uint32]memfdInode{}
		c.inodesErr = readAll(c.Src, "memfd.img", MagicMemfdInode, nil, func() *memfd.MemfdInodeEntry { return &memfd.MemfdInodeEntry{} },
			func(_ int, _ int64, e *memfd.MemfdInodeEntry) error {
				c.inodes[uint32(e.GetInodeId())] = memfdInode{name: e.GetName(), shmid: e.GetShmid()}
				return nil
			})
	}
	if c.inodesErr != nil {
		return "", 0, c.inodesErr
	}
	in, ok := c.inodes[inode]
	if !ok {
		return "", 0, fmt.Errorf("memfd inode %d is not in memfd.img", inode)
	}
	return memfdPath(in.name), in.shmid, nil
}

// memfdPath is the name the kernel shows for a mapping of a memfd inode,
// from the name memfd.img records: CRIU strips the "memfd:" of a real
// memfd's "/memfd:NAME" and keeps a shared anonymous mapping's
// "/dev/zero" as is.
func memfdPath(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/memfd:" + strings.TrimPrefix(name, "memfd:")
	}
	return name + " (deleted)"
}

// FindVMA returns the mapping containing addr.
func (p *Process) FindVMA(addr uint64) (*VMA, bool) {
	i := sort.Search(len(p.VMAs), func(i int) bool { return p.VMAs[i].End > addr })
	if i < len(p.VMAs) && p.VMAs[i].Start <= addr {
		return &p.VMAs[i], true
	}
	return nil, false
}
