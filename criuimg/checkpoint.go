// Package criuimg reads CRIU checkpoint images safely and as a stream:
// the framing of image files, typed decoders for the images a core dump
// needs (inventory, pstree, core, mm, files, pagemaps), and a memory view
// of each process over its captured pages.
//
// Every image is untrusted input: sizes and counts are checked against the
// file they come from before they are used to allocate, seek or loop, and
// errors name the file, the entry and what is wrong.
package criuimg

import (
	"encoding/binary"
	"fmt"
	"sort"
	"sync"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
)

// MaxProcesses and MaxThreads bound what pstree.img may claim.
const (
	MaxProcesses = 1 << 20
	MaxThreads   = 1 << 20
)

// ProcInfo is one process of the tree as pstree.img records it. Pid,
// PPid, Pgid and Sid are in the checkpoint's own pid namespace.
type ProcInfo struct {
	Pid, PPid, Pgid, Sid uint32
	// Threads lists the thread ids, the main thread first. For a zombie
	// CRIU writes a meaningless thread id here.
	Threads []uint32
}

// Checkpoint is an opened CRIU image set: its inventory, its process tree
// and the paths of its regular files. Processes are loaded one at a time
// with LoadProcess.
type Checkpoint struct {
	Src       Source
	Inventory *inventory.InventoryEntry
	Procs     []ProcInfo
	byPid     map[uint32]int               // index in Procs
	files     map[uint32]*fdinfo.FileEntry // files.img by id
	inodes    map[uint32]memfdInode
	inodesErr error
	inodesOK  bool
	shmem     map[shmemKey]shmemRuns
	sysv      map[uint32]SysVSegment // SysVSegments
	sysvErr   error
	sysvOK    bool
	mu        sync.Mutex // guards the memfd inode and shmem caches
	filesErr  error      // SalvageOpen: what cut files.img short
}

type memfdInode struct {
	name  string
	shmid uint32
}

// Open reads inventory.img, pstree.img and files.img of src.
func Open(src Source) (*Checkpoint, error) { return open(src, false) }

// SalvageOpen opens src as Open does, except that a damaged files.img does
// not fail it: the files of its entries before the damaged one are kept,
// and FilesError returns the problem. The files of the other entries are
// unknown: mappings of them are unnamed, and memfd mappings of them cannot
// be loaded (SalvageProcess leaves them out). A damaged inventory.img or
// pstree.img is an error, as with Open.
func SalvageOpen(src Source) (*Checkpoint, error) { return open(src, true) }

// FilesError returns what cut files.img short, for a Checkpoint that
// SalvageOpen opened with a damaged files.img; nil otherwise. The error is
// the one Open returns.
func (c *Checkpoint) FilesError() error { return c.filesErr }

// OpenWithTree opens src as Open does, but with the process tree given
// instead of read from pstree.img: for a reader of an archive stream whose
// pstree.img comes after the pages (Podman's writer sorts the names), which
// needs processes before it has the tree. It checks nothing of procs
// against the images; the caller compares them with pstree.img once it
// has it (Open of the same source).
func OpenWithTree(src Source, procs []ProcInfo) (*Checkpoint, error) {
	c := &Checkpoint{Src: src, files: map[uint32]*fdinfo.FileEntry{}, byPid: map[uint32]int{}}
	if err := c.readInventory(); err != nil {
		return nil, err
	}
	for _, p := range procs {
		if _, dup := c.byPid[p.Pid]; dup {
			return nil, fmt.Errorf("%s: pid %d given twice", src, p.Pid)
		}
		c.byPid[p.Pid] = len(c.Procs)
		c.Procs = append(c.Procs, p)
	}
	if err := c.readFiles(false); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Checkpoint) readInventory() error {
	inv := &inventory.InventoryEntry{}
	if err := readOne(c.Src, "inventory.img", MagicInventory, inv, nil); err != nil {
		return fmt.Errorf("%s: %w", c.Src, err)
	}
	c.Inventory = inv
	return nil
}

func open(src Source, salvage bool) (*Checkpoint, error) {
	c := &Checkpoint{Src: src, files: map[uint32]*fdinfo.FileEntry{}}
	if err := c.readInventory(); err != nil {
		return nil, err
	}
	seen := map[uint32]int{}
	var offs []int64 // byte offset of each pstree entry, for errors
	err := readAll(src, "pstree.img", MagicPstree, pstreeLimits, func() *pstree.PstreeEntry { return &pstree.PstreeEntry{} },
		func(i int, off int64, e *pstree.PstreeEntry) error {
			if len(c.Procs) >= MaxProcesses {
				return &FormatError{File: "pstree.img", Entry: i, Offset: off, Msg: "too many processes"}
			}
			p := ProcInfo{Pid: e.GetPid(), PPid: e.GetPpid(), Pgid: e.GetPgid(), Sid: e.GetSid(), Threads: e.GetThreads()}
			if p.Pid == 0 {
				return &FormatError{File: "pstree.img", Entry: i, Offset: off, Msg: "pid 0"}
			}
			if j, dup := seen[p.Pid]; dup {
				return &FormatError{File: "pstree.img", Entry: i, Offset: off, Msg: fmt.Sprintf("pid %d already listed by entry %d", p.Pid, j)}
			}
			if len(p.Threads) > MaxThreads {
				return &FormatError{File: "pstree.img", Entry: i, Offset: off, Msg: fmt.Sprintf("%d threads", len(p.Threads))}
			}
			seen[p.Pid] = i
			c.Procs = append(c.Procs, p)
			offs = append(offs, off)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if len(c.Procs) == 0 {
		return nil, fmt.Errorf("%s: %w", src, &FormatError{File: "pstree.img", Entry: 0, Offset: 8, Msg: "no process"})
	}
	c.byPid = seen
	if err := c.checkTree(offs); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if err := c.readFiles(salvage); err != nil {
		return nil, err
	}
	return c, nil
}

// readFiles reads files.img (optional for our purpose: without it,
// mappings have no path), the one decoding of it.
func (c *Checkpoint) readFiles(salvage bool) error {
	src := c.Src
	err := readAll(src, "files.img", MagicFiles, nil, func() *fdinfo.FileEntry { return &fdinfo.FileEntry{} },
		func(_ int, _ int64, e *fdinfo.FileEntry) error {
			c.files[e.GetId()] = e
			return nil
		})
	if err != nil && !IsNotExist(err) {
		if !salvage {
			return fmt.Errorf("%s: %w", src, err)
		}
		c.filesErr = fmt.Errorf("%s: %w", src, err)
	}
	return nil
}

// checkTree verifies that every parent is listed (or 0, the root's parent
// outside the dump) and that parent links have no cycle.
func (c *Checkpoint) checkTree(offs []int64) error {
	parent := make(map[uint32]uint32, len(c.Procs))
	for _, p := range c.Procs {
		parent[p.Pid] = p.PPid
	}
	for i, p := range c.Procs {
		if i == 0 {
			continue // the root's parent lies outside the checkpoint
		}
		if _, ok := parent[p.PPid]; !ok {
			return &FormatError{File: "pstree.img", Entry: i, Offset: offs[i], Msg: fmt.Sprintf("pid %d: parent %d is not in the tree", p.Pid, p.PPid)}
		}
	}
	// Walk each chain of parents until it leaves the tree, reaches a pid
	// an earlier walk went through (whose chain is known to leave the
	// tree), or comes back to a pid of this walk: linear in the tree.
	index := make(map[uint32]int, len(c.Procs))
	walkedBy := make(map[uint32]int, len(c.Procs))
	for i, p := range c.Procs {
		index[p.Pid] = i
	}
	for i, p := range c.Procs {
		for q := p.Pid; ; {
			next, ok := parent[q]
			if !ok {
				break
			}
			if w, seen := walkedBy[q]; seen {
				if w == i {
					return &FormatError{File: "pstree.img", Entry: index[q], Offset: offs[index[q]], Msg: fmt.Sprintf("pid %d: parent links form a cycle", q)}
				}
				break
			}
			walkedBy[q] = i
			q = next
		}
	}
	return nil
}

// Proc returns the pstree record of pid.
func (c *Checkpoint) Proc(pid uint32) (ProcInfo, bool) {
	i, ok := c.byPid[pid]
	if !ok {
		return ProcInfo{}, false
	}
	return c.Procs[i], true
}

// RegFile is a regular file as files.img records it.
type RegFile struct {
	Path    string
	Size    uint64 // size at dump time, when HasSize
	HasSize bool
	Mode    uint32
	// BuildID is the ELF build-id CRIU read from the file (CRIU >= 3.16
	// stores it as 32-bit little-endian words), or nil.
	BuildID []byte
}

// FilePath returns the path of the regular file with the given id in
// files.img.
func (c *Checkpoint) FilePath(id uint32) (string, bool) {
	if r := c.files[id].GetReg(); r != nil {
		return r.GetName(), true
	}
	return "", false
}

// RegFile returns what files.img records of the regular file with the
// given id.
func (c *Checkpoint) RegFile(id uint32) (RegFile, bool) {
	r := c.files[id].GetReg()
	if r == nil {
		return RegFile{}, false
	}
	rf := RegFile{Path: r.GetName(), Size: r.GetSize(), HasSize: r.Size != nil, Mode: r.GetMode()}
	for _, w := range r.GetBuildId() {
		rf.BuildID = binary.LittleEndian.AppendUint32(rf.BuildID, w)
	}
	return rf, true
}

// FileEntry returns the entry of files.img with the given id, of any kind
// (regular file, pipe, FIFO, socket, memfd, tty...), as decoded. With
// SalvageOpen and a damaged files.img, only the entries before the
// damaged one are known.
func (c *Checkpoint) FileEntry(id uint32) (*fdinfo.FileEntry, bool) {
	e, ok := c.files[id]
	return e, ok
}

// FileCount returns the number of files files.img holds (of those read,
// with SalvageOpen and a damaged files.img).
func (c *Checkpoint) FileCount() int { return len(c.files) }

// Pids returns the pids of the tree, sorted.
func (c *Checkpoint) Pids() []uint32 {
	pids := make([]uint32, 0, len(c.Procs))
	for _, p := range c.Procs {
		pids = append(pids, p.Pid)
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	return pids
}

// readCore decodes core-<tid>.img. trailing is the problem of bytes after
// its entry, which is decoded (see readFirst).
func readCore(src Source, tid uint32) (ce *criucore.CoreEntry, trailing, err error) {
	ce = &criucore.CoreEntry{}
	if trailing, err = readFirst(src, fmt.Sprintf("core-%d.img", tid), MagicCore, ce, coreLimits); err != nil {
		return nil, nil, err
	}
	return ce, trailing, nil
}
