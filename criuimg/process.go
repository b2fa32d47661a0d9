package criuimg

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	vmaimg "github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
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

// MAP_* bits of vma_entry.flags.
const (
	MapShared    = 0x01
	MapPrivate   = 0x02
	MapAnonymous = 0x20
	MapGrowsdown = 0x100
)

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

// AnonSharedPath is the path the kernel shows for shared anonymous memory
// (its shmem file), VMA.Path of such a mapping.
const AnonSharedPath = "/dev/zero (deleted)"

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
	// for shared anonymous, memfd and SysV shm mappings (HasShmem), else 0.
	// 0 is a valid id too (the first SysV segment of a namespace).
	Shmem uint64
	// HasShmem says that the mapping's pages are those of shared memory
	// object Shmem.
	HasShmem bool
	// FileID is the id of the mapped regular file in files.img (0 if none).
	FileID uint32
}

// FileBacked reports whether the mapping has a file behind it (including
// shared anonymous memory, which the kernel backs by a shmem file).
func (v *VMA) FileBacked() bool { return v.Path != "" }

// Shared reports whether the mapping is shared (MAP_SHARED, or shared
// anonymous memory and memfds).
func (v *VMA) Shared() bool { return v.Flags&MapShared != 0 || v.HasShmem }

// Anon reports whether the mapping is private anonymous memory (heap,
// stack, anonymous mmap, vDSO), whose uncaptured pages are zero.
func (v *VMA) Anon() bool { return v.Path == "" && !v.HasShmem }

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
//
// A Process from SalvageProcess may lack parts (see SalvageError): those
// noted "salvage" below.
type Process struct {
	ProcInfo
	Arch     Arch
	Comm     string
	State    uint32 // task_core.task_state
	ExitCode uint32 // task_core.exit_code: a zombie's wait status (see WaitStatus)
	// Threads holds the live threads, main thread first. A zombie has none.
	// Salvage: only those whose core-<tid>.img was read (the main thread
	// may be missing).
	Threads []Thread
	Task    *criucore.CoreEntry // core-<pid>.img (task-wide facts); salvage: nil if unreadable
	MM      *mm.MmEntry         // without its Vmas: they are in VMAs; salvage: nil if unreadable
	VMAs    []VMA               // sorted, non-overlapping; salvage: without the bad ones
	Auxv    []uint64
	// PageSize is AT_PAGESZ; salvage: 0 if the saved auxv gives none.
	PageSize uint64
	ExePath  string
	// Mem is the memory view; salvage: nil without MM or PageSize, and
	// with Unreadable extents where pagemaps or pages files are damaged.
	Mem *Memory
	// Notes lists facts a user should know that do not stop conversion
	// (pages kept in a parent checkpoint, lazy pages, unnamed mappings).
	Notes []Note
	// sps are the threads' stack pointers, sorted (VMAKind).
	sps []uint64
}

// NoteKind says what a Note is about.
type NoteKind int

const (
	// NoteParentPages: Bytes of memory are in a parent checkpoint
	// (incremental dump) that is not at hand; the memory view has them as
	// Absent extents.
	NoteParentPages NoteKind = iota + 1
	// NoteLazyPages: Bytes of memory were left to lazy migration and are
	// not in the images.
	NoteLazyPages
	// NoteMapping: a mapping's name is unknown; Err names the image and
	// the mapping, says what is wrong and how the mapping is named.
	NoteMapping
)

// Note is a fact about the images of a process that does not stop a load.
type Note struct {
	Kind  NoteKind
	Bytes uint64 // NoteParentPages, NoteLazyPages: how many bytes of memory
	Err   error  // NoteMapping: what is wrong
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
var ErrZombie = errors.New("zombie process (exited, not reaped): no memory or registers")

// atPagesz is AT_PAGESZ in the auxiliary vector.
const atPagesz = 6

// LoadProcess reads the images of pid: core-<tid>.img of every thread,
// mm-<pid>.img, and the pagemaps, and builds the memory view. For a zombie
// it returns the Process (with task facts) and an error wrapping ErrZombie.
// Any other problem of the images fails it (SalvageProcess keeps what is
// sound).
func (c *Checkpoint) LoadProcess(pid uint32) (*Process, error) {
	if _, ok := c.Proc(pid); !ok {
		return nil, fmt.Errorf("pid %d is not in pstree.img", pid)
	}
	l := &loader{c: c, pid: pid}
	p := l.load()
	if p != nil && p.Zombie() {
		return p, fmt.Errorf("pid %d: %w", pid, ErrZombie)
	}
	return p, l.err
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

// vma converts one mapping of mm, which follows p.VMAs.
func (l *loader) vma(p *Process, v *vmaimg.VmaEntry) (VMA, error) {
	mmName := l.mmName
	ps := p.PageSize
	vma := VMA{Start: v.GetStart(), End: v.GetEnd(), Pgoff: v.GetPgoff(), Prot: v.GetProt(), Flags: v.GetFlags(), Status: v.GetStatus()}
	switch n := len(p.VMAs); {
	case vma.Start >= vma.End:
		return vma, errors.New("start is not below end")
	case ps != 0 && (vma.Start%ps != 0 || vma.End%ps != 0):
		return vma, fmt.Errorf("not aligned to the page size %d", ps)
	case n > 0 && vma.Start < p.VMAs[n-1].End:
		return vma, fmt.Errorf("overlaps or is out of order with the previous mapping ending at %#x", p.VMAs[n-1].End)
	case vma.Pgoff > math.MaxInt64-(vma.End-vma.Start):
		return vma, fmt.Errorf("offset %#x: the mapping's end overflows its object", vma.Pgoff)
	case ps != 0 && vma.Pgoff%ps != 0:
		return vma, fmt.Errorf("offset %#x is not aligned to the page size %d", vma.Pgoff, ps)
	}
	st := vma.Status
	switch {
	case st&VMAAreaMemfd != 0:
		name, shmid, err := l.c.memfdInfo(uint32(v.GetShmid()), l.salvage)
		if err != nil {
			return vma, err
		}
		vma.Path, vma.Shmem, vma.HasShmem = name, uint64(shmid), true
	case st&VMAAreaSysVIPC != 0:
		// A SysV shared memory attachment: CRIU records the segment id
		// (the inode of its shm file) as shmid, the pages in the shmem
		// pagemap of that id; the kernel names it by the segment's key.
		segs, err := l.c.SysVSegments()
		seg, ok := segs[uint32(v.GetShmid())]
		switch {
		case ok:
			vma.Path = SysVPath(seg.Key)
		case err != nil:
			p.Notes = append(p.Notes, Note{Kind: NoteMapping, Err: fmt.Errorf("%s: vma [%#x-%#x): SysV segment %d: %w; its key is unknown", mmName, vma.Start, vma.End, v.GetShmid(), err)})
			vma.Path = SysVPath(0)
		default:
			p.Notes = append(p.Notes, Note{Kind: NoteMapping, Err: fmt.Errorf("%s: vma [%#x-%#x): SysV segment %d is not in any ipcns-shm image; its key is unknown", mmName, vma.Start, vma.End, v.GetShmid())})
			vma.Path = SysVPath(0)
		}
		vma.Shmem, vma.HasShmem = v.GetShmid(), true
	case st&VMAAnonShared != 0:
		vma.Path, vma.Shmem, vma.HasShmem = AnonSharedPath, v.GetShmid(), true
	case st&(VMAFilePrivate|VMAFileShared) != 0:
		path, ok := l.c.FilePath(uint32(v.GetShmid()))
		if !ok {
			p.Notes = append(p.Notes, Note{Kind: NoteMapping, Err: fmt.Errorf("%s: vma [%#x-%#x): file id %d is not in files.img; mapped as unnamed", mmName, vma.Start, vma.End, v.GetShmid())})
			path = fmt.Sprintf("[unknown file %d]", v.GetShmid())
		}
		vma.Path, vma.FileID = path, uint32(v.GetShmid())
	}
	return vma, nil
}

// memfdInfo maps a memfd file id (files.img) to the name the kernel shows
// for its mappings and the shmem id of its pages (memfd.img, read once).
// A damaged memfd.img fails every memfd, but with salvage those of the
// entries read before the damaged one.
func (c *Checkpoint) memfdInfo(fileID uint32, salvage bool) (string, uint32, error) {
	inode, ok := c.MemfdInodeOf(fileID)
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
	in, ok := c.inodes[inode]
	if c.inodesErr != nil && !(salvage && ok) {
		return "", 0, c.inodesErr
	}
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

// WaitStatus is a wait(2) status, as CRIU records a zombie's exit code
// (task_core.exit_code): WaitStatus(p.ExitCode).
type WaitStatus uint32

// Signaled reports whether the process was killed by a signal.
func (w WaitStatus) Signaled() bool { return w&0x7f != 0 }

// Signal is the signal that killed the process (0 if it exited).
func (w WaitStatus) Signal() uint32 { return uint32(w & 0x7f) }

// ExitStatus is the status the process exited with (when not Signaled).
func (w WaitStatus) ExitStatus() uint32 { return uint32(w>>8) & 0xff }
