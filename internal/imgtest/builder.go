package imgtest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fown"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/regfile"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"github.com/ckpt2core/ckpt2core/criuimg"
	"google.golang.org/protobuf/proto"
)

// Arch selects the register set the builder writes.
type Arch int

// Architectures.
const (
	X86_64 Arch = iota + 1
	AArch64
)

func (a Arch) String() string {
	switch a {
	case X86_64:
		return "x86_64"
	case AArch64:
		return "aarch64"
	}
	return fmt.Sprintf("Arch(%d)", int(a))
}

// Auxiliary vector tags.
const (
	AtNull   = 0
	AtPagesz = 6
)

// ZombieTid is the thread id CRIU wrote in pstree.img for the zombie of the
// static-c fixture (garbage: a zombie has no thread to dump). SetZombie
// uses it.
const ZombieTid = 2352304368

// CountField selects how a pagemap entry records its page count.
type CountField int

const (
	// CountDefault uses Checkpoint.Count (itself CountNrPages by default).
	CountDefault CountField = iota
	// CountNrPages writes field 5 (nr_pages, uint64) and 0 in field 2,
	// as CRIU >= 4.2 does.
	CountNrPages
	// CountCompat writes the count in field 2 (compat_nr_pages) only, as
	// CRIU <= 4.1 does.
	CountCompat
	// CountBoth writes the count in both fields.
	CountBoth
)

// PageRun is one pagemap entry and, if Flags has PE_PRESENT and NoData
// is false, its bytes in the pages file.
type PageRun struct {
	// Vaddr is the virtual address (private pagemap) or the offset in the
	// shared memory object (shmem pagemap).
	Vaddr uint64
	// NPages is the count written in the entry. 0: len(data) rounded up
	// to whole pages (AddPages), computed when writing.
	NPages uint64
	Flags  uint32 // PE_* flags
	Count  CountField
	// LegacyFlags writes in_parent (field 3) instead of flags (field 4),
	// like images older than the flags field.
	LegacyFlags bool
	// NoData writes the entry but no bytes in the pages file, even with
	// PE_PRESENT (for entries that claim pages the file lacks).
	NoData bool

	data []byte
	fill func(pageIndex int, page []byte)
}

// Thread is one thread of a synthetic process. Core is written to
// core-<Tid>.img; for the main thread the process's Task is added as tc.
type Thread struct {
	Tid  uint32
	Comm string // thread_core.comm; "" for the main thread: the process's Comm
	Core *criucore.CoreEntry
}

// Process is one process of a synthetic checkpoint. Its exported fields
// may be changed until Checkpoint.Write.
type Process struct {
	c                    *Checkpoint
	Pid, PPid, Pgid, Sid uint32
	Comm                 string
	State                uint32 // task_state: criuimg.TaskAlive (default), TaskDead, ...
	ExitCode             uint32
	Threads              []*Thread
	// PstreeThreads, if not nil, is written as the pstree entry's threads
	// instead of the tids of Threads.
	PstreeThreads []uint32
	// Task is the task_core entry of core-<pid>.img; Write sets its comm,
	// task_state and exit_code from Comm, State and ExitCode.
	Task *criucore.TaskCoreEntry
	// MM is written as mm-<pid>.img with Vmas and MmSavedAuxv replaced by
	// VMAs and Auxv.
	MM *mm.MmEntry
	// VMAs, sorted by start when writing unless KeepOrder.
	VMAs []*vma.VmaEntry
	// Auxv holds tag/value pairs; Write appends AT_NULL unless RawAuxv.
	Auxv    []uint64
	RawAuxv bool
	// Pages lists the pagemap entries, sorted by address when writing
	// unless KeepOrder.
	Pages    []*PageRun
	PageSize uint64
	// PagesID is the id of pages-<id>.img (pagemap_head.pages_id); 0:
	// assigned by Write.
	PagesID   uint32
	KeepOrder bool
	// NoMM leaves out mm-<pid>.img, pagemap-<pid>.img and the pages file
	// (as for a zombie).
	NoMM bool
}

// Shmem is a shared memory object: its pages are written to
// pagemap-shmem-<ID>.img and a pages file of their own.
type Shmem struct {
	c        *Checkpoint
	ID       uint64
	Size     uint64
	PageSize uint64
	Pages    []*PageRun
	PagesID  uint32
	// MemfdName is the name stored in memfd.img for mappings made with
	// MapMemfd (default "/dev/zero", what CRIU 4.2 stores for MAP_SHARED
	// anonymous memory).
	MemfdName string
	memfdFile uint32 // files.img id, 0 if not a memfd yet
	memfdNode uint32
}

// Checkpoint is a synthetic CRIU checkpoint under construction.
type Checkpoint struct {
	Arch Arch
	// PageSize is the page size of processes and shmem objects created
	// afterwards (4096 by default).
	PageSize uint64
	// Count is the page-count encoding of entries with CountDefault.
	Count     CountField
	Inventory *inventory.InventoryEntry
	Procs     []*Process
	Shmems    []*Shmem
	// Files lists the entries of files.img (regular files and memfds
	// added by the builder; append your own).
	Files []*fdinfo.FileEntry
	// MemfdInodes lists the entries of memfd.img.
	MemfdInodes []*memfd.MemfdInodeEntry
	fileIDs     map[string]uint32
	nextFile    uint32
	nextInode   uint32
}

// New starts a checkpoint of the given architecture with an inventory
// like CRIU 4.2's (img_version 2).
func New(arch Arch) *Checkpoint {
	return &Checkpoint{
		Arch:     arch,
		PageSize: 4096,
		Count:    CountNrPages,
		Inventory: &inventory.InventoryEntry{
			ImgVersion:  proto.Uint32(2),
			FdinfoPerId: proto.Bool(true),
			RootIds: &criucore.TaskKobjIdsEntry{
				VmId: proto.Uint32(1), FilesId: proto.Uint32(1), FsId: proto.Uint32(1), SighandId: proto.Uint32(1),
			},
			NsPerId: proto.Bool(true),
			Lsmtype: inventory.Lsmtype_NO_LSM.Enum(),
		},
		fileIDs: map[string]uint32{},
	}
}

func (c *Checkpoint) mtype() *criucore.CoreEntryMarch {
	if c.Arch == AArch64 {
		return criucore.CoreEntry_AARCH64.Enum()
	}
	return criucore.CoreEntry_X86_64.Enum()
}

// AddProcess adds a live process with its main thread (tid pid), comm
// "proc-<pid>", pgid and sid pid, and an auxv holding AT_PAGESZ.
func (c *Checkpoint) AddProcess(pid, ppid uint32) *Process {
	p := &Process{
		c: c, Pid: pid, PPid: ppid, Pgid: pid, Sid: pid,
		Comm:     fmt.Sprintf("proc-%d", pid),
		State:    criuimg.TaskAlive,
		PageSize: c.PageSize,
		Task: &criucore.TaskCoreEntry{
			TaskState: proto.Uint32(criuimg.TaskAlive), ExitCode: proto.Uint32(0), Personality: proto.Uint32(0),
			Flags: proto.Uint32(0x400000), BlkSigset: proto.Uint64(0),
		},
		MM: &mm.MmEntry{
			MmStartCode: proto.Uint64(0), MmEndCode: proto.Uint64(0), MmStartData: proto.Uint64(0), MmEndData: proto.Uint64(0),
			MmStartStack: proto.Uint64(0), MmStartBrk: proto.Uint64(0), MmBrk: proto.Uint64(0),
			MmArgStart: proto.Uint64(0), MmArgEnd: proto.Uint64(0), MmEnvStart: proto.Uint64(0), MmEnvEnd: proto.Uint64(0),
			ExeFileId: proto.Uint32(0),
		},
		Auxv: []uint64{AtPagesz, c.PageSize},
	}
	c.Procs = append(c.Procs, p)
	p.AddThread(pid)
	return p
}

// AddThread adds a thread with recognisable registers (see GPR) and
// returns it; its name is "thread-<tid>" (the main thread's is the
// process's comm).
func (p *Process) AddThread(tid uint32) *Thread {
	t := &Thread{Tid: tid, Core: &criucore.CoreEntry{Mtype: p.c.mtype()}}
	if tid != p.Pid {
		t.Comm = fmt.Sprintf("thread-%d", tid)
	}
	if p.c.Arch == AArch64 {
		t.Core.TiAarch64 = ThreadInfoAarch64(tid)
	} else {
		t.Core.ThreadInfo = ThreadInfoX86(tid)
	}
	t.Core.ThreadCore = threadCore(tid, t.Comm)
	p.Threads = append(p.Threads, t)
	return t
}

// SetZombie makes p a zombie as CRIU dumps one: task_state 2 (TASK_DEAD),
// the exit code, no thread core, no mm or pagemap, and a garbage thread
// id (ZombieTid) in pstree.img.
func (p *Process) SetZombie(exitCode uint32) {
	p.State, p.ExitCode = criuimg.TaskDead, exitCode
	p.Threads = nil
	p.PstreeThreads = []uint32{ZombieTid}
	p.NoMM = true
}

// SetPageSize sets the process's page size: AT_PAGESZ in the saved auxv
// and the unit of its pagemap entries. Call it before SetArgs.
func (p *Process) SetPageSize(n uint64) {
	p.PageSize = n
	p.SetAuxv(AtPagesz, n)
}

// SetAuxv sets tag to val in the saved auxv (replacing the first pair with
// that tag, else appending one).
func (p *Process) SetAuxv(tag, val uint64) {
	for i := 0; i+1 < len(p.Auxv); i += 2 {
		if p.Auxv[i] == tag {
			p.Auxv[i+1] = val
			return
		}
	}
	p.Auxv = append(p.Auxv, tag, val)
}

// AddFile returns the files.img id of the regular file path, adding an
// entry the first time.
func (c *Checkpoint) AddFile(path string) uint32 {
	if id, ok := c.fileIDs[path]; ok {
		return id
	}
	c.nextFile++
	id := c.nextFile
	c.fileIDs[path] = id
	c.Files = append(c.Files, &fdinfo.FileEntry{
		Type: fdinfo.FdTypes_REG.Enum(),
		Id:   proto.Uint32(id),
		Reg: &regfile.RegFileEntry{
			Id: proto.Uint32(id), Flags: proto.Uint32(0), Pos: proto.Uint64(0), Fown: newFown(),
			Name: proto.String(path), Mode: proto.Uint32(0o100755),
		},
	})
	return id
}

func newFown() *fown.FownEntry {
	return &fown.FownEntry{Uid: proto.Uint32(0), Euid: proto.Uint32(0), Signum: proto.Uint32(0), PidType: proto.Uint32(0), Pid: proto.Uint32(0)}
}

// SetExe sets mm.exe_file_id to the file path.
func (p *Process) SetExe(path string) {
	p.MM.ExeFileId = proto.Uint32(p.c.AddFile(path))
}

// AddVMA adds the mapping [start, end). With path != "" the mapping is
// backed by that regular file (an entry in files.img; shmid is its id).
// Zero flags become MAP_PRIVATE|MAP_ANONYMOUS (anonymous) or MAP_PRIVATE
// (file); zero status becomes VMA_AREA_REGULAR|VMA_ANON_PRIVATE
// (anonymous) or VMA_AREA_REGULAR; a file mapping's status gets
// VMA_FILE_PRIVATE or VMA_FILE_SHARED (by MAP_SHARED) if it has neither.
// The returned entry may be changed (pgoff, madv, ...).
func (p *Process) AddVMA(start, end uint64, prot, flags, status uint32, path string) *vma.VmaEntry {
	var shmid uint64
	if path == "" {
		if flags == 0 {
			flags = criuimg.MapPrivate | criuimg.MapAnonymous
		}
		if status == 0 {
			status = criuimg.VMAAreaRegular | criuimg.VMAAnonPrivate
		}
	} else {
		if flags == 0 {
			flags = criuimg.MapPrivate
		}
		if status == 0 {
			status = criuimg.VMAAreaRegular
		}
		if status&(criuimg.VMAFilePrivate|criuimg.VMAFileShared) == 0 {
			if flags&criuimg.MapShared != 0 {
				status |= criuimg.VMAFileShared
			} else {
				status |= criuimg.VMAFilePrivate
			}
		}
		shmid = uint64(p.c.AddFile(path))
	}
	v := &vma.VmaEntry{
		Start: proto.Uint64(start), End: proto.Uint64(end), Pgoff: proto.Uint64(0), Shmid: proto.Uint64(shmid),
		Prot: proto.Uint32(prot), Flags: proto.Uint32(flags), Status: proto.Uint32(status), Fd: proto.Int64(-1),
	}
	p.VMAs = append(p.VMAs, v)
	return v
}

// AddAnon adds a private anonymous read-write mapping [start, end).
func (p *Process) AddAnon(start, end uint64) *vma.VmaEntry {
	return p.AddVMA(start, end, criuimg.ProtRead|criuimg.ProtWrite, 0, 0, "")
}

// AddPages adds a pagemap entry at vaddr covering data (rounded up to
// whole pages with zeros) and, with PE_PRESENT in flags, writes data to
// the pages file.
func (p *Process) AddPages(vaddr uint64, data []byte, flags uint32) *PageRun {
	r := &PageRun{Vaddr: vaddr, Flags: flags, data: data}
	p.Pages = append(p.Pages, r)
	return r
}

// AddPagesFunc adds a PE_PRESENT entry of npages pages at vaddr whose
// bytes are produced while writing: fill is called once per page, in
// order, with a zeroed page-sized buffer to fill. Change the returned
// run's Flags to add PE_LAZY.
func (p *Process) AddPagesFunc(vaddr, npages uint64, fill func(pageIndex int, page []byte)) *PageRun {
	r := &PageRun{Vaddr: vaddr, NPages: npages, Flags: criuimg.PEPresent, fill: fill}
	p.Pages = append(p.Pages, r)
	return r
}

// AddPageEntry adds a pagemap entry with no bytes in the pages file (for
// PE_PARENT or lazy entries, or for entries that lie about the file).
func (p *Process) AddPageEntry(vaddr, npages uint64, flags uint32) *PageRun {
	r := &PageRun{Vaddr: vaddr, NPages: npages, Flags: flags, NoData: true}
	p.Pages = append(p.Pages, r)
	return r
}

// StackEnd is the end of the stack mapping SetArgs creates.
func (c *Checkpoint) StackEnd() uint64 {
	if c.Arch == AArch64 {
		return 0xffff_f000_0000
	}
	return 0x7fff_f000_0000
}

// SetArgs puts argv (NUL-terminated strings) near the top of a new stack
// mapping ending at StackEnd, captured, and points mm_arg_start/end at
// it. See SetArgsEnv.
func (p *Process) SetArgs(argv []string) *vma.VmaEntry { return p.SetArgsEnv(argv, nil) }

// SetArgsEnv is SetArgs with an environment after the arguments
// (mm_env_start/end). The stack mapping has 8 pages (more if the strings
// need it), MAP_PRIVATE|MAP_ANONYMOUS|MAP_GROWSDOWN, status
// VMA_AREA_REGULAR|VMA_ANON_PRIVATE as CRIU writes it; the pages from the
// one holding the strings to the end are captured (PE_PRESENT|PE_LAZY).
func (p *Process) SetArgsEnv(argv, env []string) *vma.VmaEntry {
	ps := p.PageSize
	args := strings.Join(argv, "\x00") + "\x00"
	envs := ""
	if len(env) > 0 {
		envs = strings.Join(env, "\x00") + "\x00"
	}
	area := uint64(len(args) + len(envs))
	end := p.c.StackEnd()
	strStart := (end - 16 - area) &^ 15
	npages := max(uint64(8), (end-strStart)/ps+2)
	start := end - npages*ps
	v := p.AddVMA(start, end, criuimg.ProtRead|criuimg.ProtWrite, criuimg.MapPrivate|criuimg.MapAnonymous|criuimg.MapGrowsdown, 0, "")
	firstPage := strStart &^ (ps - 1)
	data := make([]byte, end-firstPage)
	copy(data[strStart-firstPage:], args+envs)
	p.AddPages(firstPage, data, criuimg.PEPresent|criuimg.PELazy)
	p.MM.MmArgStart = proto.Uint64(strStart)
	p.MM.MmArgEnd = proto.Uint64(strStart + uint64(len(args)))
	p.MM.MmEnvStart = proto.Uint64(strStart + uint64(len(args)))
	p.MM.MmEnvEnd = proto.Uint64(strStart + area)
	p.MM.MmStartStack = proto.Uint64((strStart - 256) &^ 15)
	return v
}

// AddShmem adds a shared memory object of size bytes whose pages go to
// pagemap-shmem-<id>.img.
func (c *Checkpoint) AddShmem(id, size uint64) *Shmem {
	s := &Shmem{c: c, ID: id, Size: size, PageSize: c.PageSize, MemfdName: "/dev/zero"}
	c.Shmems = append(c.Shmems, s)
	return s
}

// AddPages adds a pagemap entry at offset off of the object (see
// Process.AddPages).
func (s *Shmem) AddPages(off uint64, data []byte, flags uint32) *PageRun {
	r := &PageRun{Vaddr: off, Flags: flags, data: data}
	s.Pages = append(s.Pages, r)
	return r
}

// AddPagesFunc adds npages generated pages at offset off (see
// Process.AddPagesFunc).
func (s *Shmem) AddPagesFunc(off, npages uint64, fill func(pageIndex int, page []byte)) *PageRun {
	r := &PageRun{Vaddr: off, NPages: npages, Flags: criuimg.PEPresent, fill: fill}
	s.Pages = append(s.Pages, r)
	return r
}

// MapShmem maps s at start from offset pgoff to its end as shared
// anonymous memory: MAP_SHARED|MAP_ANONYMOUS, status
// VMA_AREA_REGULAR|VMA_ANON_SHARED, shmid s.ID (as CRIU < 4.2 dumps it).
func (p *Process) MapShmem(start uint64, s *Shmem, pgoff uint64, prot uint32) *vma.VmaEntry {
	v := p.AddVMA(start, start+s.Size-pgoff, prot, criuimg.MapShared|criuimg.MapAnonymous, criuimg.VMAAreaRegular|criuimg.VMAAnonShared, "")
	v.Shmid = proto.Uint64(s.ID)
	v.Pgoff = proto.Uint64(pgoff)
	return v
}

// MapMemfd maps s at start from offset pgoff as CRIU 4.2 dumps shared
// anonymous memory (and memfds): MAP_SHARED, status
// VMA_AREA_REGULAR|VMA_FILE_SHARED|VMA_AREA_MEMFD, shmid a MEMFD entry of
// files.img whose inode in memfd.img has name s.MemfdName and shmid s.ID.
func (p *Process) MapMemfd(start uint64, s *Shmem, pgoff uint64, prot uint32) *vma.VmaEntry {
	c := p.c
	if s.memfdFile == 0 {
		c.nextFile++
		c.nextInode++
		s.memfdFile, s.memfdNode = c.nextFile, c.nextInode
		c.Files = append(c.Files, &fdinfo.FileEntry{
			Type: fdinfo.FdTypes_MEMFD.Enum(),
			Id:   proto.Uint32(s.memfdFile),
			Memfd: &memfd.MemfdFileEntry{
				Id: proto.Uint32(s.memfdFile), Flags: proto.Uint32(2), Pos: proto.Uint64(0), Fown: newFown(),
				InodeId: proto.Uint32(s.memfdNode),
			},
		})
		c.MemfdInodes = append(c.MemfdInodes, &memfd.MemfdInodeEntry{
			Name: proto.String(s.MemfdName), Uid: proto.Uint32(0), Gid: proto.Uint32(0), Size: proto.Uint64(s.Size),
			Shmid: proto.Uint32(uint32(s.ID)), Seals: proto.Uint32(0), InodeId: proto.Uint64(uint64(s.memfdNode)),
		})
	}
	v := p.AddVMA(start, start+s.Size-pgoff, prot, criuimg.MapShared,
		criuimg.VMAAreaRegular|criuimg.VMAFileShared|criuimg.VMAAreaMemfd, "")
	v.Shmid = proto.Uint64(uint64(s.memfdFile))
	v.Pgoff = proto.Uint64(pgoff)
	v.Fdflags = proto.Uint32(2)
	return v
}

// Write writes the checkpoint into dir (created if needed): inventory.img,
// pstree.img, core-<tid>.img of every thread (core-<pid>.img alone for a
// zombie), mm-<pid>.img, pagemap-<pid>.img, pagemap-shmem-<id>.img,
// pages-<n>.img, files.img and, if a memfd was mapped, memfd.img. Pages
// ids not set are numbered from 1, processes first.
func (c *Checkpoint) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	used := map[uint32]bool{}
	for _, p := range c.Procs {
		used[p.PagesID] = true
	}
	for _, s := range c.Shmems {
		used[s.PagesID] = true
	}
	next := uint32(0)
	newID := func() uint32 {
		for next++; used[next]; next++ {
		}
		return next
	}
	for _, p := range c.Procs {
		if p.PagesID == 0 && !p.NoMM {
			p.PagesID = newID()
		}
	}
	for _, s := range c.Shmems {
		if s.PagesID == 0 {
			s.PagesID = newID()
		}
	}
	path := func(format string, a ...any) string { return filepath.Join(dir, fmt.Sprintf(format, a...)) }

	if err := WriteImage(path("inventory.img"), criuimg.MagicInventory, c.Inventory); err != nil {
		return err
	}
	var ps []proto.Message
	for _, p := range c.Procs {
		e := &pstree.PstreeEntry{Pid: proto.Uint32(p.Pid), Ppid: proto.Uint32(p.PPid), Pgid: proto.Uint32(p.Pgid), Sid: proto.Uint32(p.Sid)}
		if p.PstreeThreads != nil {
			e.Threads = p.PstreeThreads
		} else {
			for _, t := range p.Threads {
				e.Threads = append(e.Threads, t.Tid)
			}
		}
		ps = append(ps, e)
	}
	if err := WriteImage(path("pstree.img"), criuimg.MagicPstree, ps...); err != nil {
		return err
	}
	for _, p := range c.Procs {
		if err := p.write(dir); err != nil {
			return fmt.Errorf("pid %d: %w", p.Pid, err)
		}
	}
	for _, s := range c.Shmems {
		if err := writePagemap(path("pagemap-shmem-%d.img", s.ID), path("pages-%d.img", s.PagesID), s.PagesID, s.PageSize, c.Count, s.Pages, false); err != nil {
			return fmt.Errorf("shmem %d: %w", s.ID, err)
		}
	}
	files := make([]proto.Message, len(c.Files))
	for i, f := range c.Files {
		files[i] = f
	}
	if err := WriteImage(path("files.img"), criuimg.MagicFiles, files...); err != nil {
		return err
	}
	if len(c.MemfdInodes) > 0 {
		ms := make([]proto.Message, len(c.MemfdInodes))
		for i, m := range c.MemfdInodes {
			ms[i] = m
		}
		if err := WriteImage(path("memfd.img"), criuimg.MagicMemfdInode, ms...); err != nil {
			return err
		}
	}
	return nil
}

func (p *Process) write(dir string) error {
	c := p.c
	p.Task.Comm = proto.String(p.Comm)
	p.Task.TaskState = proto.Uint32(p.State)
	p.Task.ExitCode = proto.Uint32(p.ExitCode)
	wroteMain := false
	for _, t := range p.Threads {
		core := t.Core
		if t.Tid == p.Pid {
			core = proto.Clone(t.Core).(*criucore.CoreEntry)
			core.Tc = p.Task
			if core.ThreadCore != nil && t.Comm == "" {
				core.ThreadCore.Comm = proto.String(p.Comm)
			}
			wroteMain = true
		}
		if err := WriteImage(filepath.Join(dir, fmt.Sprintf("core-%d.img", t.Tid)), criuimg.MagicCore, core); err != nil {
			return err
		}
	}
	if !wroteMain {
		core := &criucore.CoreEntry{Mtype: c.mtype(), Tc: p.Task}
		if err := WriteImage(filepath.Join(dir, fmt.Sprintf("core-%d.img", p.Pid)), criuimg.MagicCore, core); err != nil {
			return err
		}
	}
	if p.NoMM {
		return nil
	}
	m := proto.Clone(p.MM).(*mm.MmEntry)
	m.Vmas = append([]*vma.VmaEntry(nil), p.VMAs...)
	if !p.KeepOrder {
		sort.SliceStable(m.Vmas, func(i, j int) bool { return m.Vmas[i].GetStart() < m.Vmas[j].GetStart() })
	}
	m.MmSavedAuxv = append([]uint64(nil), p.Auxv...)
	if !p.RawAuxv {
		m.MmSavedAuxv = append(m.MmSavedAuxv, AtNull, 0)
	}
	if err := WriteImage(filepath.Join(dir, fmt.Sprintf("mm-%d.img", p.Pid)), criuimg.MagicMM, m); err != nil {
		return err
	}
	return writePagemap(filepath.Join(dir, fmt.Sprintf("pagemap-%d.img", p.Pid)), filepath.Join(dir, fmt.Sprintf("pages-%d.img", p.PagesID)),
		p.PagesID, p.PageSize, c.Count, p.Pages, p.KeepOrder)
}

// writePagemap writes a pagemap image and its pages file, streaming the
// page bytes.
func writePagemap(pmPath, pagesPath string, pagesID uint32, ps uint64, def CountField, runs []*PageRun, keepOrder bool) error {
	runs = append([]*PageRun(nil), runs...)
	if !keepOrder {
		sort.SliceStable(runs, func(i, j int) bool { return runs[i].Vaddr < runs[j].Vaddr })
	}
	return replaceFile(pagesPath, func(pw io.Writer) error {
		return replaceFile(pmPath, func(w io.Writer) error {
			if _, err := w.Write(Header(criuimg.MagicPagemap)); err != nil {
				return err
			}
			if err := AppendEntry(w, &pagemap.PagemapHead{PagesId: proto.Uint32(pagesID)}); err != nil {
				return err
			}
			page := make([]byte, ps)
			for _, r := range runs {
				n := r.NPages
				if n == 0 {
					n = (uint64(len(r.data)) + ps - 1) / ps
				}
				e := &pagemap.PagemapEntry{Vaddr: proto.Uint64(r.Vaddr)}
				count := r.Count
				if count == CountDefault {
					count = def
				}
				switch count {
				case CountCompat:
					e.CompatNrPages = proto.Uint32(uint32(n))
				case CountBoth:
					e.CompatNrPages = proto.Uint32(uint32(n))
					e.NrPages = proto.Uint64(n)
				default:
					e.CompatNrPages = proto.Uint32(0)
					e.NrPages = proto.Uint64(n)
				}
				if r.LegacyFlags {
					if r.Flags&criuimg.PEParent != 0 {
						e.InParent = proto.Bool(true)
					}
				} else {
					e.Flags = proto.Uint32(r.Flags)
				}
				if err := AppendEntry(w, e); err != nil {
					return err
				}
				if r.NoData || r.Flags&criuimg.PEPresent == 0 {
					continue
				}
				if r.fill == nil {
					if uint64(len(r.data)) > n*ps {
						return fmt.Errorf("run at %#x: %d bytes of data for %d pages", r.Vaddr, len(r.data), n)
					}
					if _, err := pw.Write(r.data); err != nil {
						return err
					}
					if pad := n*ps - uint64(len(r.data)); pad > 0 {
						if _, err := pw.Write(make([]byte, pad)); err != nil {
							return err
						}
					}
					continue
				}
				for i := uint64(0); i < n; i++ {
					clear(page)
					r.fill(int(i), page)
					if _, err := pw.Write(page); err != nil {
						return err
					}
				}
			}
			return nil
		})
	})
}
