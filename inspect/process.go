package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strings"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// proc is what inspect could read of one process: everything
// criuimg.LoadProcess gives, or, when that fails on a damaged image, what
// loadDamaged could read image by image. Each part may be missing on its
// own: the report keeps the others.
type proc struct {
	pid     uint32
	arch    criuimg.Arch
	task    *criucore.CoreEntry // core-<pid>.img; nil if unreadable
	threads []criuimg.Thread    // those whose core-<tid>.img was read, main first
	mm      *mm.MmEntry         // mm-<pid>.img (without its vmas); nil if unreadable
	vmas    []criuimg.VMA       // sorted, non-overlapping
	exe     string
	mem     memView // nil if no memory can be read (mm unreadable, bad page size)
	// warnings are facts about the images (criuimg's: pages in a parent
	// checkpoint, lazy pages) and, for damaged images, what could not be
	// read and what is missing from the report because of it.
	warnings []string
	closers  []io.Closer
}

func (p *proc) Close() error {
	var errs []error
	for _, c := range p.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// findVMA returns the mapping containing addr.
func (p *proc) findVMA(addr uint64) (*criuimg.VMA, bool) {
	i := sort.Search(len(p.vmas), func(i int) bool { return p.vmas[i].End > addr })
	if i < len(p.vmas) && p.vmas[i].Start <= addr {
		return &p.vmas[i], true
	}
	return nil, false
}

// memView is a process's address space as captured.
type memView interface {
	// ReadAt reads like criuimg.Memory.ReadAt: captured bytes, zeros for
	// untouched anonymous memory; bytes not captured end the read with
	// an error wrapping criuimg.ErrNotCaptured, bytes that damaged images
	// hide with one wrapping errUnreadable.
	ReadAt(b []byte, addr int64) (int, error)
	// vmaBytes returns how many bytes of v the checkpoint holds and can
	// be read, and how many it holds (or may hold) that cannot be.
	vmaBytes(v *criuimg.VMA) (captured, unreadable uint64, err error)
}

// errUnreadable is wrapped by memView errors about bytes that damaged
// images hide.
var errUnreadable = errors.New("unreadable (damaged images)")

// criuMem is the memView of sound images.
type criuMem struct{ m *criuimg.Memory }

func (c criuMem) ReadAt(b []byte, addr int64) (int, error) { return c.m.ReadAt(b, addr) }

func (c criuMem) vmaBytes(v *criuimg.VMA) (captured, unreadable uint64, err error) {
	err = c.m.VMAExtents(v, func(e criuimg.Extent) error {
		if e.Kind == criuimg.Captured {
			captured += e.End - e.Start
		}
		return nil
	})
	return captured, 0, err
}

// loadedProc is the proc of a process criuimg.LoadProcess read whole.
func loadedProc(p *criuimg.Process) *proc {
	return &proc{pid: p.Pid, arch: p.Arch, task: p.Task, threads: p.Threads, mm: p.MM, vmas: p.VMAs,
		exe: p.ExePath, mem: criuMem{p.Mem}, warnings: p.Warnings, closers: []io.Closer{p}}
}

// Bounds of the entries loadDamaged decodes (criuimg's own, which it does
// not export): decoding allocates several times an entry's bytes.
const (
	maxCoreEntry = 4 << 20 // registers, signal actions, groups
	maxVMAs      = criuimg.MaxVMAs
	maxAuxvWords = criuimg.MaxAuxvWords
)

// atPagesz is AT_PAGESZ in the auxiliary vector.
const atPagesz = 6

// loadDamaged reads what it can of a live process whose images
// criuimg.LoadProcess refused, image by image: core-<pid>.img (comm,
// state, arch, the main thread), every other core-<tid>.img (threads,
// registers), mm-<pid>.img (mappings, argument area, executable) and the
// pagemaps with their pages files (memory). Each image that cannot be
// read becomes a warning naming it, what is wrong and what the report
// lacks because of it; the other parts are kept. A damaged pagemap or
// pages file costs only the pages it no longer describes or holds.
func loadDamaged(ck *criuimg.Checkpoint, info criuimg.ProcInfo, files fileTable) *proc {
	pid := info.Pid
	p := &proc{pid: pid}
	warn := func(format string, a ...any) { p.warnings = append(p.warnings, fmt.Sprintf(format, a...)) }

	task := &criucore.CoreEntry{}
	if err := readEntry(ck.Src, fmt.Sprintf("core-%d.img", pid), criuimg.MagicCore, task, maxCoreEntry, nil, warn); err != nil {
		warn("%v: comm, state and the main thread (name, registers, system call) are unknown", err)
	} else {
		p.task = task
		p.arch = archOf(task)
		if p.arch == criuimg.ArchUnknown {
			warn("core-%d.img: unsupported architecture %v: no thread is decoded", pid, task.GetMtype())
		}
		if task.GetTc() == nil && !zombie(task) {
			warn("core-%d.img: no task_core entry: comm and state are unknown", pid)
		}
	}
	if p.task != nil && zombie(p.task) {
		return p // a zombie has no threads, mappings or memory
	}

	seen := map[uint32]bool{}
	for _, tid := range info.Threads {
		if seen[tid] {
			warn("pid %d: pstree.img lists thread %d twice: reported once", pid, tid)
			continue
		}
		seen[tid] = true
		ce := p.task
		if tid != pid {
			ce = &criucore.CoreEntry{}
			if err := readEntry(ck.Src, fmt.Sprintf("core-%d.img", tid), criuimg.MagicCore, ce, maxCoreEntry, nil, warn); err != nil {
				warn("thread %d: %v: its name, registers and system call are unknown (and its stack counts as anonymous memory)", tid, err)
				continue
			}
			if p.task == nil && p.arch == criuimg.ArchUnknown {
				p.arch = archOf(ce) // the main thread's core is unreadable
			}
		} else if ce == nil {
			continue // warned above
		}
		if p.arch == criuimg.ArchUnknown {
			continue
		}
		if a := archOf(ce); a != p.arch {
			warn("thread %d: core-%d.img: architecture %v differs from the process's %v: thread left out", tid, tid, ce.GetMtype(), p.arch)
			continue
		}
		t := criuimg.Thread{Tid: tid, Core: ce}
		if tid == pid {
			p.threads = append([]criuimg.Thread{t}, p.threads...)
		} else {
			p.threads = append(p.threads, t)
		}
	}
	switch {
	case len(info.Threads) == 0:
		warn("pid %d: pstree.img lists no thread", pid)
	case !seen[pid]:
		warn("pid %d: pstree.img does not list the main thread among the threads %v", pid, info.Threads)
	}

	mmName := fmt.Sprintf("mm-%d.img", pid)
	m := &mm.MmEntry{}
	if err := readEntry(ck.Src, mmName, criuimg.MagicMM, m, criuimg.MaxEntrySize, mmLimits, warn); err != nil {
		warn("%v: mappings, memory, command line, environment and executable are unknown, and no instruction can be read", err)
		return p
	}
	p.mm = m
	p.exe, _ = filePath(ck, files, m.GetExeFileId())
	var pageSize uint64
	if auxv := m.GetMmSavedAuxv(); len(auxv)%2 != 0 {
		warn("%s: saved auxv has an odd number (%d) of words: no page size, so memory, command line, environment and instructions cannot be read", mmName, len(auxv))
	} else {
		for i := 0; i+1 < len(auxv); i += 2 {
			if auxv[i] == atPagesz {
				pageSize = auxv[i+1]
				break
			}
		}
		if pageSize < 4096 || pageSize > 1<<20 || bits.OnesCount64(pageSize) != 1 {
			warn("%s: AT_PAGESZ %d in the saved auxv is not a page size (a power of two from 4 KiB to 1 MiB): memory, command line, environment and instructions cannot be read", mmName, pageSize)
			pageSize = 0
		}
	}
	p.vmas = damagedVMAs(ck, files, m, pageSize, mmName, warn)
	m.Vmas = nil
	if pageSize != 0 {
		mem := openDamagedMemory(ck.Src, pid, p.vmas, pageSize, warn)
		p.mem = mem
		p.closers = append(p.closers, mem)
	}
	return p
}

func archOf(ce *criucore.CoreEntry) criuimg.Arch {
	switch ce.GetMtype() {
	case criucore.CoreEntry_X86_64:
		return criuimg.ArchX86_64
	case criucore.CoreEntry_AARCH64:
		return criuimg.ArchARM64
	}
	return criuimg.ArchUnknown
}

func zombie(task *criucore.CoreEntry) bool {
	s := task.GetTc().GetTaskState()
	return s == criuimg.TaskDead || s == criuimg.TaskZombie
}

// entryLimit bounds the elements of one repeated field of an entry.
type entryLimit struct {
	num  protowire.Number
	name string
	max  int
}

// Field numbers of mm_entry that criuimg bounds before decoding.
var mmLimits = []entryLimit{{14, "vmas", maxVMAs}, {13, "mm_saved_auxv", maxAuxvWords}}

// readEntry decodes the only entry of image name into m, as criuimg
// reads core and mm images: the magics checked, the entry at most
// maxSize bytes, the repeated fields of limits counted before decoding.
// Bytes after the entry are ignored with a warning (criuimg refuses
// them; here they cost nothing that was read). Errors are
// *criuimg.FormatError naming the file, the entry and the offset, or the
// error of opening the file.
func readEntry(src criuimg.Source, name string, magic uint32, m proto.Message, maxSize int64, limits []entryLimit, warn func(string, ...any)) error {
	f, err := src.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := criuimg.NewReader(f, magic); err != nil {
		return err
	}
	const off = 8 // after the two magics
	size := f.Size()
	bad := func(format string, a ...any) error {
		e := &criuimg.FormatError{File: name, Entry: 0, Offset: off, Msg: fmt.Sprintf(format, a...)}
		for _, x := range a {
			if err, ok := x.(error); ok {
				e.Err = err
			}
		}
		return e
	}
	switch {
	case size == off:
		return bad("no entry")
	case size-off < 4:
		return bad("truncated size field (%d bytes left)", size-off)
	}
	var sz [4]byte
	if _, err := f.ReadAt(sz[:], off); err != nil {
		return bad("reading size: %v", err)
	}
	n := int64(binary.LittleEndian.Uint32(sz[:]))
	if left := size - off - 4; n > left {
		return bad("entry size %d exceeds the %d bytes left in the file (truncated image)", n, left)
	}
	if n > maxSize {
		return bad("entry size %d exceeds the limit of %d", n, maxSize)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off+4); err != nil {
		return bad("reading %d bytes: %v", n, err)
	}
	for _, l := range limits {
		c, err := countField(b, l.num)
		if err != nil {
			return bad("decoding %T: %v", m, err)
		}
		if c > l.max {
			return bad("%d elements in %s, more than the limit of %d", c, l.name, l.max)
		}
	}
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, m); err != nil {
		return bad("decoding %T: %v", m, err)
	}
	if left := size - off - 4 - n; left != 0 {
		warn("%v: ignored", &criuimg.FormatError{File: name, Entry: 1, Offset: off + 4 + n, Msg: fmt.Sprintf("%d bytes after the image's only entry", left)})
	}
	return nil
}

// countField counts the elements of field num in the message bytes b: one
// per occurrence, or, for a packed field, per varint or fixed64 in it.
func countField(b []byte, num protowire.Number) (int, error) {
	c := 0
	for len(b) > 0 {
		n, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return 0, protowire.ParseError(k)
		}
		b = b[k:]
		k = protowire.ConsumeFieldValue(n, typ, b)
		if k < 0 {
			return 0, protowire.ParseError(k)
		}
		if n == num {
			if typ == protowire.BytesType && num == 13 {
				v, _ := protowire.ConsumeBytes(b[:k])
				for _, x := range v { // packed varints: one last byte each
					if x < 0x80 {
						c++
					}
				}
			} else {
				c++
			}
		}
		b = b[k:]
	}
	return c, nil
}

// damagedVMAs converts mm's mappings as criuimg does, leaving out (with a
// warning) each one criuimg would refuse instead of failing them all.
// pageSize 0 skips the alignment checks.
func damagedVMAs(ck *criuimg.Checkpoint, files fileTable, m *mm.MmEntry, pageSize uint64, mmName string, warn func(string, ...any)) []criuimg.VMA {
	var out []criuimg.VMA
	var inodes map[uint64]*memfd.MemfdInodeEntry
	var inodesErr error
	for i, v := range m.GetVmas() {
		vma := criuimg.VMA{Start: v.GetStart(), End: v.GetEnd(), Pgoff: v.GetPgoff(), Prot: v.GetProt(), Flags: v.GetFlags(), Status: v.GetStatus()}
		bad := func(format string, a ...any) {
			warn("%s: vma %d [%#x-%#x): %s: left out of the mappings", mmName, i, vma.Start, vma.End, fmt.Sprintf(format, a...))
		}
		switch {
		case vma.Start >= vma.End:
			bad("start is not below end")
			continue
		case pageSize != 0 && (vma.Start%pageSize != 0 || vma.End%pageSize != 0):
			bad("not aligned to the page size %d", pageSize)
			continue
		case len(out) > 0 && vma.Start < out[len(out)-1].End:
			bad("overlaps or is out of order with the previous mapping ending at %#x", out[len(out)-1].End)
			continue
		case vma.Pgoff > math.MaxInt64-(vma.End-vma.Start):
			bad("offset %#x: the mapping's end overflows its object", vma.Pgoff)
			continue
		case pageSize != 0 && vma.Pgoff%pageSize != 0:
			bad("offset %#x is not aligned to the page size %d", vma.Pgoff, pageSize)
			continue
		}
		st := vma.Status
		switch {
		case st&criuimg.VMAAreaMemfd != 0:
			f := files[uint32(v.GetShmid())]
			if f.GetMemfd() == nil {
				bad("memfd file %d is not in files.img", v.GetShmid())
				continue
			}
			if inodes == nil && inodesErr == nil {
				inodes = map[uint64]*memfd.MemfdInodeEntry{}
				inodesErr = eachEntry(ck.Src, "memfd.img", criuimg.MagicMemfdInode, func() *memfd.MemfdInodeEntry { return &memfd.MemfdInodeEntry{} },
					func(e *memfd.MemfdInodeEntry) error {
						inodes[e.GetInodeId()] = e
						return nil
					})
			}
			in := inodes[uint64(f.GetMemfd().GetInodeId())]
			if in == nil {
				if inodesErr != nil {
					bad("%v", inodesErr)
				} else {
					bad("memfd inode %d is not in memfd.img", f.GetMemfd().GetInodeId())
				}
				continue
			}
			vma.Path, vma.Shmem = memfdPath(in.GetName()), uint64(in.GetShmid())
		case st&criuimg.VMAAnonShared != 0:
			vma.Path, vma.Shmem = "/dev/zero (deleted)", v.GetShmid()
		case st&(criuimg.VMAFilePrivate|criuimg.VMAFileShared) != 0:
			path, ok := filePath(ck, files, uint32(v.GetShmid()))
			if !ok {
				warn("%s: vma [%#x-%#x): file id %d is not in files.img; mapped as unnamed", mmName, vma.Start, vma.End, v.GetShmid())
				path = fmt.Sprintf("[unknown file %d]", v.GetShmid())
			}
			vma.Path, vma.FileID = path, uint32(v.GetShmid())
		}
		out = append(out, vma)
	}
	return out
}

// memfdPath is the name the kernel shows for a mapping of a memfd inode
// (as criuimg names it).
func memfdPath(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/memfd:" + strings.TrimPrefix(name, "memfd:")
	}
	return name + " (deleted)"
}

// run is one pagemap entry of a damaged process's memory.
type run struct {
	addr, len uint64 // key (address, or offset in a shmem object) and bytes
	flags     uint32
	off       int64 // offset of its data in the pages file; -1 if not in it
	entry     int   // index in the pagemap image
}

// runIndex is a pagemap read as far as it can be. Keys at and above known
// are unknown: the pagemap could not be read beyond them.
type runIndex struct {
	name      string // pagemap image
	pagesName string
	pages     criuimg.File // nil if the pages file could not be opened
	pagesSize int64
	runs      []run
	known     uint64
	lost      string // why keys from known on are unknown
}

// readRunIndex reads the pagemap image name as far as it is sound: the
// entries before the first bad one, with their pages file (whatever its
// size: data beyond its end is unreadable, not an error). what names the
// keys in messages ("address", "offset"). Problems go to warn.
func readRunIndex(src criuimg.Source, name string, pageSize uint64, what string, warn func(string, ...any)) *runIndex {
	idx := &runIndex{name: name, known: math.MaxUint64}
	fail := func(err error) *runIndex {
		idx.known, idx.lost = 0, err.Error()
		warn("%v: every page it describes is unreadable", err)
		return idx
	}
	f, err := src.Open(name)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	r, err := criuimg.NewReader(f, criuimg.MagicPagemap)
	if err != nil {
		return fail(err)
	}
	head := &pagemap.PagemapHead{}
	if err := r.Next(head); err != nil {
		if errors.Is(err, io.EOF) {
			err = &criuimg.FormatError{File: name, Entry: 0, Offset: r.Offset(), Msg: "no pagemap_head"}
		}
		return fail(err)
	}
	idx.pagesName = fmt.Sprintf("pages-%d.img", head.GetPagesId())
	if pages, err := src.Open(idx.pagesName); err != nil {
		warn("%s: pages file of pagemap_head: %v: the pages it holds are unreadable", name, err)
	} else {
		idx.pages, idx.pagesSize = pages, pages.Size()
	}
	var fileOff uint64
	for {
		i, off := r.Entry(), r.Offset()
		e := &pagemap.PagemapEntry{}
		err := r.Next(e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			err = checkEntry(e, idx, pageSize, fileOff)
			if err != nil {
				err = &criuimg.FormatError{File: name, Entry: i, Offset: off, Msg: err.Error()}
			}
		}
		if err != nil {
			idx.known = 0
			if n := len(idx.runs); n > 0 {
				idx.known = idx.runs[n-1].addr + idx.runs[n-1].len
			}
			idx.lost = fmt.Sprintf("%v (the pagemap is unreadable from there on)", err)
			warn("%v: the pagemap is read up to there: what it says from %s %#x on is lost", err, what, idx.known)
			break
		}
		n := uint64(e.GetCompatNrPages())
		if e.NrPages != nil {
			n = e.GetNrPages()
		}
		flags := e.GetFlags()
		if e.Flags == nil {
			flags = criuimg.PEPresent
			if e.GetInParent() {
				flags = criuimg.PEParent
			}
		}
		rn := run{addr: e.GetVaddr(), len: n * pageSize, flags: flags, off: -1, entry: i}
		if flags&criuimg.PEPresent != 0 {
			rn.off = int64(fileOff)
			fileOff += rn.len
		}
		idx.runs = append(idx.runs, rn)
	}
	// Entries whose data the pages file does not hold (it is truncated).
	first, last := -1, -1
	var lostBytes, dataEnd uint64
	for _, rn := range idx.runs {
		if rn.off < 0 || idx.pages == nil || rn.off+int64(rn.len) <= idx.pagesSize {
			continue
		}
		if first < 0 {
			first = rn.entry
		}
		last = rn.entry
		lostBytes += rn.len - uint64(max(0, min(int64(rn.len), idx.pagesSize-rn.off)))
		dataEnd = uint64(rn.off) + rn.len
	}
	if first >= 0 {
		entries := fmt.Sprintf("entry %d", first)
		if last != first {
			entries = fmt.Sprintf("entries %d-%d", first, last)
		}
		warn("%s: the data of %s ends at byte %d of %s, which has %d (truncated?): %d bytes of captured memory are unreadable",
			name, entries, dataEnd, idx.pagesName, idx.pagesSize, lostBytes)
	}
	return idx
}

// checkEntry validates a pagemap entry as criuimg.ReadPageIndex does
// (except that its data may lie beyond the pages file).
func checkEntry(e *pagemap.PagemapEntry, idx *runIndex, pageSize, fileOff uint64) error {
	n := uint64(e.GetCompatNrPages())
	if e.NrPages != nil {
		n = e.GetNrPages()
	}
	addr := e.GetVaddr()
	switch {
	case n == 0:
		return fmt.Errorf("zero pages at %#x", addr)
	case addr%pageSize != 0:
		return fmt.Errorf("address %#x is not page-aligned", addr)
	case n > math.MaxUint64/pageSize || addr > math.MaxUint64-n*pageSize:
		return fmt.Errorf("%d pages at %#x overflow the address space", n, addr)
	case n*pageSize > math.MaxInt64-fileOff:
		return fmt.Errorf("%d pages at %#x: the pages file offset overflows", n, addr)
	}
	if k := len(idx.runs); k > 0 {
		prev := idx.runs[k-1]
		if addr < prev.addr+prev.len {
			return fmt.Errorf("entry at %#x overlaps or precedes the previous one [%#x-%#x)", addr, prev.addr, prev.addr+prev.len)
		}
	}
	return nil
}

// find returns the index of the first run that ends after key.
func (x *runIndex) find(key uint64) int {
	return sort.Search(len(x.runs), func(i int) bool { return x.runs[i].addr+x.runs[i].len > key })
}

// damagedMemory is the memView of a process whose pagemaps or pages files
// are damaged: what they still describe and hold is read as criuimg
// would; the rest is unreadable.
type damagedMemory struct {
	vmas    []criuimg.VMA
	private *runIndex
	shmem   map[uint64]*runIndex
}

func openDamagedMemory(src criuimg.Source, pid uint32, vmas []criuimg.VMA, pageSize uint64, warn func(string, ...any)) *damagedMemory {
	m := &damagedMemory{vmas: vmas, shmem: map[uint64]*runIndex{}}
	m.private = readRunIndex(src, fmt.Sprintf("pagemap-%d.img", pid), pageSize, "address", warn)
	var parent, lazy uint64
	for _, r := range m.private.runs {
		if r.off < 0 {
			if r.flags&criuimg.PEParent != 0 {
				parent += r.len
			} else {
				lazy += r.len
			}
		}
	}
	if parent > 0 {
		warn("%d bytes of memory are in a parent checkpoint (incremental dump) and are not in these images", parent)
	}
	if lazy > 0 {
		warn("%d bytes of memory were left to lazy migration and are not in the images", lazy)
	}
	for _, v := range vmas {
		if v.Shmem != 0 && m.shmem[v.Shmem] == nil {
			m.shmem[v.Shmem] = readRunIndex(src, fmt.Sprintf("pagemap-shmem-%d.img", v.Shmem), pageSize, "offset", warn)
		}
	}
	return m
}

func (m *damagedMemory) Close() error {
	var errs []error
	for _, x := range append([]*runIndex{m.private}, mapValues(m.shmem)...) {
		if x != nil && x.pages != nil {
			errs = append(errs, x.pages.Close())
		}
	}
	return errors.Join(errs...)
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// Kinds of the extents of damagedMemory.
const (
	extCaptured = iota
	extZero
	extAbsent
	extUnreadable
)

// extent is a range [start, end) of one mapping with uniform provenance.
type extent struct {
	start, end uint64
	kind       int
	src        criuimg.File // extCaptured: where the bytes are
	off        int64
	why        string // extUnreadable: what is damaged
}

// extents calls fn for each extent of [start, end) within v, in order, as
// criuimg.Memory does, with unreadable extents where the images are
// damaged.
func (m *damagedMemory) extents(v *criuimg.VMA, start, end uint64, fn func(extent) error) error {
	gapOf := func(kind int) func(s, e uint64) error {
		return func(s, e uint64) error { return fn(extent{start: s, end: e, kind: kind}) }
	}
	switch {
	case v.Special():
		return fn(extent{start: start, end: end, kind: extAbsent})
	case v.Shmem != 0:
		shm := func(s, e uint64) error {
			return walk(m.shmem[v.Shmem], v.Pgoff-v.Start, s, e, fn, gapOf(extZero))
		}
		if v.Flags&mapShared != 0 {
			return shm(start, end)
		}
		return walk(m.private, 0, start, end, fn, shm)
	case v.Anon():
		return walk(m.private, 0, start, end, fn, gapOf(extZero))
	}
	return walk(m.private, 0, start, end, fn, gapOf(extAbsent))
}

// walk calls fn for the runs of idx within [start, end) and gap for the
// ranges between them; keys are addresses + delta (mod 2^64). Ranges the
// index no longer describes, and data its pages file lacks, are
// unreadable.
func walk(idx *runIndex, delta uint64, start, end uint64, fn func(extent) error, gap func(s, e uint64) error) error {
	lostGap := func(s, e uint64) error {
		ks := s + delta
		switch {
		case ks >= idx.known:
			return fn(extent{start: s, end: e, kind: extUnreadable, why: idx.lost})
		case e-s > idx.known-ks:
			mid := s + (idx.known - ks)
			if err := gap(s, mid); err != nil {
				return err
			}
			return fn(extent{start: mid, end: e, kind: extUnreadable, why: idx.lost})
		}
		return gap(s, e)
	}
	cur := start
	for j := idx.find(start + delta); j < len(idx.runs) && cur < end; j++ {
		r := idx.runs[j]
		kcur, kend := cur+delta, end+delta
		if r.addr >= kend {
			break
		}
		if r.addr > kcur {
			next := cur + (r.addr - kcur)
			if err := lostGap(cur, next); err != nil {
				return err
			}
			cur, kcur = next, r.addr
		}
		eEnd := cur + (min(r.addr+r.len, kend) - kcur)
		if r.off < 0 {
			if err := fn(extent{start: cur, end: eEnd, kind: extAbsent}); err != nil {
				return err
			}
			cur = eEnd
			continue
		}
		dataOff := r.off + int64(kcur-r.addr)
		var avail uint64
		if idx.pages != nil && dataOff < idx.pagesSize {
			avail = min(eEnd-cur, uint64(idx.pagesSize-dataOff))
		}
		if avail > 0 {
			if err := fn(extent{start: cur, end: cur + avail, kind: extCaptured, src: idx.pages, off: dataOff}); err != nil {
				return err
			}
		}
		if cur+avail < eEnd {
			why := fmt.Sprintf("%s entry %d: its data is at bytes %d-%d of %s, which has %d",
				idx.name, r.entry, r.off, r.off+int64(r.len), idx.pagesName, idx.pagesSize)
			if idx.pages == nil {
				why = fmt.Sprintf("%s entry %d: its pages file %s cannot be opened", idx.name, r.entry, idx.pagesName)
			}
			if err := fn(extent{start: cur + avail, end: eEnd, kind: extUnreadable, why: why}); err != nil {
				return err
			}
		}
		cur = eEnd
	}
	if cur < end {
		return lostGap(cur, end)
	}
	return nil
}

// errStop ends a walk early.
var errStop = errors.New("stop")

// ReadAt implements memView.
func (m *damagedMemory) ReadAt(p []byte, addr int64) (int, error) {
	if addr < 0 {
		return 0, fmt.Errorf("address %#x: %w", uint64(addr), criuimg.ErrNotCaptured)
	}
	start := uint64(addr)
	end := start + uint64(len(p))
	if end < start {
		end = math.MaxUint64
	}
	n := 0
	var damaged error
	i := sort.Search(len(m.vmas), func(i int) bool { return m.vmas[i].End > start })
	for ; i < len(m.vmas) && m.vmas[i].Start < end && damaged == nil; i++ {
		v := &m.vmas[i]
		err := m.extents(v, max(start, v.Start), min(end, v.End), func(e extent) error {
			if e.start != start+uint64(n) {
				return errStop // an unmapped gap
			}
			b := p[n : n+int(e.end-e.start)]
			switch e.kind {
			case extCaptured:
				k, err := e.src.ReadAt(b, e.off)
				n += k
				if err != nil {
					return fmt.Errorf("%s at offset %d: %w", e.src.Name(), e.off, err)
				}
			case extZero:
				clear(b)
				n += len(b)
			case extUnreadable:
				damaged = fmt.Errorf("address %#x: %s: %w", e.start, e.why, errUnreadable)
				return errStop
			default:
				return errStop
			}
			return nil
		})
		if errors.Is(err, errStop) {
			break
		}
		if err != nil {
			return n, err
		}
	}
	if damaged != nil {
		return n, damaged
	}
	if n < len(p) {
		return n, fmt.Errorf("address %#x: %w", start+uint64(n), criuimg.ErrNotCaptured)
	}
	return n, nil
}

// vmaBytes implements memView.
func (m *damagedMemory) vmaBytes(v *criuimg.VMA) (captured, unreadable uint64, err error) {
	err = m.extents(v, v.Start, v.End, func(e extent) error {
		switch e.kind {
		case extCaptured:
			captured += e.end - e.start
		case extUnreadable:
			unreadable += e.end - e.start
		}
		return nil
	})
	return captured, unreadable, err
}
