package criuimg

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
)

// Pagemap entry flags (criu/include/pagemap.h).
const (
	PEParent  = 1 << 0 // the pages are in a parent checkpoint
	PELazy    = 1 << 1 // the pages may be fetched lazily
	PEPresent = 1 << 2 // the pages are in this checkpoint's pages file
)

// Run is one pagemap entry after validation: npages pages from Addr. For
// a private pagemap Addr is a virtual address; for a shmem pagemap it is
// an offset in the shared memory object.
type Run struct {
	Addr   uint64
	Len    uint64 // bytes
	Flags  uint32 // PE_* flags
	Offset int64  // offset in the pages file; -1 if the pages are not in it
}

// InFile reports whether the run's bytes are in this checkpoint's pages
// file. CRIU >= 4.2 marks most anonymous pages PE_LAZY|PE_PRESENT: they are
// in the file too.
func (r Run) InFile() bool { return r.Offset >= 0 }

// PageIndex is the sorted, validated list of runs of one pagemap image with
// the pages file they refer to. Lookups are O(log n).
type PageIndex struct {
	Name  string // pagemap image name
	Pages File   // pages-<id>.img; salvage: nil if it cannot be opened
	Runs  []Run
	// Lost is nil for an index of a sound pagemap. In one SalvageProcess
	// read from a damaged pagemap, it says what ended the reading: Runs
	// hold the entries before it, and keys (addresses, or offsets in a
	// shmem object) from Known on are unknown.
	Lost  error
	Known uint64
	// pagesName names the pages file (for messages, when Pages is nil).
	pagesName string
	// parent is the parent checkpoint's index holding the PE_PARENT
	// pages (openParents), src where it was read.
	parent *PageIndex
	src    Source
}

// ReadPageIndex reads and validates a pagemap image (pagemap-<pid>.img or
// pagemap-shmem-<id>.img) and opens the pages file it names. Entries must
// be page-aligned, sorted and non-overlapping; their pages must lie inside
// the pages file.
func ReadPageIndex(src Source, name string, pageSize uint64) (*PageIndex, error) {
	idx, errs := readPageIndex(src, name, pageSize, false, "")
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return idx, nil
}

// readPageIndex reads a pagemap image. Strict (salvage false:
// ReadPageIndex), the first problem fails it: a nil index and that error.
// With salvage it keeps what is sound and returns the index (never nil)
// with every problem, each saying what it costs: after a bad entry, the
// entries before it are kept and the keys from the end of the last of them
// on are Lost; a pages file that cannot be opened, or that ends before the
// data of some entries, leaves their bytes unreadable (the memory view
// marks them so). key names the keys in messages ("address", or "offset"
// in a shmem object).
func readPageIndex(src Source, name string, pageSize uint64, salvage bool, key string) (*PageIndex, []error) {
	idx := &PageIndex{Name: name}
	probs := idx.read(src, pageSize, key)
	var errs []error
	for _, pr := range probs {
		switch {
		case !salvage && pr.strict != nil:
			idx.Close()
			return nil, []error{pr.strict}
		case salvage && pr.salvaged != nil:
			errs = append(errs, pr.salvaged)
		}
	}
	return idx, errs
}

// pagemapProblem is one problem of a pagemap or its pages file, as a
// strict reader states it (nil: none for it) and as a salvaging one does,
// with what it costs (nil: said otherwise).
type pagemapProblem struct {
	strict, salvaged error
}

// read fills in the index from the pagemap image x.Name and opens its
// pages file, and returns the problems met. The data of entries beyond
// the end of the pages file is a problem of each entry for a strict
// reader, one problem of them all (shortPages) for a salvaging one.
func (x *PageIndex) read(src Source, pageSize uint64, key string) []pagemapProblem {
	r, f, err := openPagemap(src, x.Name, pageSize)
	if err != nil {
		x.Lost = err
		return []pagemapProblem{{err, fmt.Errorf("%w: every page it describes is unreadable", err)}}
	}
	defer f.Close()
	var probs []pagemapProblem
	x.pagesName = pagesImageName(r.head)
	var pagesSize uint64
	if pages, err := src.Open(x.pagesName); err != nil {
		err = fmt.Errorf("%s: pages file of pagemap_head: %w", x.Name, err)
		probs = append(probs, pagemapProblem{err, fmt.Errorf("%w: the pages it holds are unreadable", err)})
	} else {
		x.Pages, pagesSize = pages, uint64(pages.Size())
	}
	var fileOff uint64
	for {
		i, off := r.Entry(), r.Offset()
		e := &pagemap.PagemapEntry{}
		err := r.Next(e)
		if err == io.EOF {
			break
		}
		var run Run
		var short error
		if err == nil {
			run, short, err = x.entryRun(e, pageSize, fileOff, pagesSize)
			if short != nil {
				probs = append(probs, pagemapProblem{strict: &FormatError{File: x.Name, Entry: i, Offset: off, Msg: short.Error()}})
			}
			if err != nil {
				err = &FormatError{File: x.Name, Entry: i, Offset: off, Msg: err.Error()}
			}
		}
		if err != nil {
			probs = append(probs, x.lostFrom(err, key))
			break
		}
		if run.InFile() {
			fileOff += run.Len
		}
		x.Runs = append(x.Runs, run)
	}
	if err := x.shortPages(); err != nil {
		probs = append(probs, pagemapProblem{salvaged: err})
	}
	return probs
}

// pagemapReader is a Reader of a pagemap image past its pagemap_head.
type pagemapReader struct {
	*Reader
	head *pagemap.PagemapHead
}

// PagesName returns the name of the pages image ("pages-<id>.img") that
// the pagemap image name (pagemap-<pid>.img, pagemap-shmem-<id>.img)
// refers to, from its pagemap_head alone: the order of the pages files in
// an archive, say, before any of them is opened.
func PagesName(src Source, name string) (string, error) {
	r, f, err := openPagemap(src, name, 4096) // (the page size is not used)
	if err != nil {
		return "", err
	}
	f.Close()
	return pagesImageName(r.head), nil
}

func pagesImageName(h *pagemap.PagemapHead) string {
	return fmt.Sprintf("pages-%d.img", h.GetPagesId())
}

// openPagemap opens the pagemap image name and reads its pagemap_head.
func openPagemap(src Source, name string, pageSize uint64) (*pagemapReader, File, error) {
	if pageSize == 0 || pageSize&(pageSize-1) != 0 {
		return nil, nil, fmt.Errorf("%s: page size %d is not a power of two", name, pageSize)
	}
	f, err := src.Open(name)
	if err != nil {
		return nil, nil, err
	}
	r, err := NewReader(f, MagicPagemap)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	head := &pagemap.PagemapHead{}
	if err := r.Next(head); err != nil {
		if err == io.EOF {
			err = &FormatError{File: name, Entry: 0, Offset: r.Offset(), Msg: "no pagemap_head"}
		}
		f.Close()
		return nil, nil, err
	}
	return &pagemapReader{r, head}, f, nil
}

// lostFrom records that the pagemap cannot be read from bad entry err on:
// the keys from the end of the last run read are Lost.
func (x *PageIndex) lostFrom(err error, key string) pagemapProblem {
	x.Known, x.Lost = 0, fmt.Errorf("%w (the pagemap is unreadable from there on)", err)
	if n := len(x.Runs); n > 0 {
		x.Known = x.Runs[n-1].Addr + x.Runs[n-1].Len
	}
	return pagemapProblem{err, fmt.Errorf("%w: the pagemap is read up to there: what it says from %s %#x on is lost", err, key, x.Known)}
}

// entryRun validates pagemap entry e, which follows the runs of x, and
// returns its run; its data, if in the pages file, starts at byte fileOff.
// short says that the data does not lie in the pages file (pagesSize
// bytes): a strict reader fails there, a salvaging one leaves the data
// beyond it for the memory view to mark unreadable.
func (x *PageIndex) entryRun(e *pagemap.PagemapEntry, pageSize, fileOff, pagesSize uint64) (run Run, short, err error) {
	n := uint64(e.GetCompatNrPages())
	if e.NrPages != nil {
		n = e.GetNrPages()
	}
	flags := e.GetFlags()
	if e.Flags == nil {
		// Images older than the flags field: in_parent or present.
		flags = PEPresent
		if e.GetInParent() {
			flags = PEParent
		}
	}
	addr := e.GetVaddr()
	if n == 0 {
		return Run{}, nil, fmt.Errorf("zero pages at %#x", addr)
	}
	if addr%pageSize != 0 {
		return Run{}, nil, fmt.Errorf("address %#x is not page-aligned", addr)
	}
	if n > math.MaxUint64/pageSize || addr > math.MaxUint64-n*pageSize {
		return Run{}, nil, fmt.Errorf("%d pages at %#x overflow the address space", n, addr)
	}
	length := n * pageSize
	if k := len(x.Runs); k > 0 {
		prev := x.Runs[k-1]
		if addr < prev.Addr+prev.Len {
			return Run{}, nil, fmt.Errorf("entry at %#x overlaps or precedes the previous one [%#x-%#x)", addr, prev.Addr, prev.Addr+prev.Len)
		}
	}
	run = Run{Addr: addr, Len: length, Flags: flags, Offset: -1}
	if flags&PEPresent != 0 {
		if length > pagesSize || fileOff > pagesSize-length {
			short = fmt.Errorf("%d pages at %#x end at byte %d of %s, which has %d", n, addr, fileOff+length, x.pagesName, pagesSize)
		}
		if length > math.MaxInt64-fileOff {
			return Run{}, short, fmt.Errorf("%d pages at %#x: the pages file offset overflows", n, addr)
		}
		run.Offset = int64(fileOff)
	}
	return run, short, nil
}

// shortPages says which runs of a salvaged index have data beyond the end
// of their pages file (it is truncated); nil if none has.
func (x *PageIndex) shortPages() error {
	if x.Pages == nil {
		return nil // said when it could not be opened
	}
	size := x.Pages.Size()
	first, last := -1, -1
	var lost, dataEnd uint64
	for j, r := range x.Runs {
		if !r.InFile() || x.held(r.Offset, r.Len) == r.Len {
			continue
		}
		if first < 0 {
			first = j + 1 // run j is entry j+1 (entry 0 is pagemap_head)
		}
		last = j + 1
		lost += r.Len - x.held(r.Offset, r.Len)
		dataEnd = uint64(r.Offset) + r.Len
	}
	if first < 0 {
		return nil
	}
	entries := fmt.Sprintf("entry %d", first)
	if last != first {
		entries = fmt.Sprintf("entries %d-%d", first, last)
	}
	return fmt.Errorf("%s: the data of %s ends at byte %d of %s, which has %d (truncated?): %d bytes of captured memory are unreadable",
		x.Name, entries, dataEnd, x.pagesName, size, lost)
}

// held returns how many of the n bytes at offset off of the pages file it
// holds: all of them, but in a salvaged index, whose pages file may be
// short or missing.
func (x *PageIndex) held(off int64, n uint64) uint64 {
	if x.Pages == nil {
		return 0
	}
	size := x.Pages.Size()
	if off >= size {
		return 0
	}
	return min(n, uint64(size-off))
}

// unheld says why the pages file lacks (some of) the data of run j.
func (x *PageIndex) unheld(j int) error {
	r := x.Runs[j] // entry j+1 of the pagemap
	if x.Pages == nil {
		return fmt.Errorf("%s entry %d: its pages file %s cannot be opened", x.Name, j+1, x.pagesName)
	}
	return fmt.Errorf("%s entry %d: its data is at bytes %d-%d of %s, which has %d", x.Name, j+1, r.Offset, r.Offset+int64(r.Len), x.pagesName, x.Pages.Size())
}

// Find returns the index of the first run that ends after addr (len(Runs)
// if none).
func (x *PageIndex) Find(addr uint64) int {
	return sort.Search(len(x.Runs), func(i int) bool { return x.Runs[i].Addr+x.Runs[i].Len > addr })
}

// Close closes the pages file.
func (x *PageIndex) Close() error {
	if x.Pages == nil {
		return nil
	}
	return x.Pages.Close()
}

// ExtentKind says what is known of a range of a process's memory.
type ExtentKind int

// Kinds of extents.
const (
	// Captured bytes are in a pages file.
	Captured ExtentKind = iota
	// Zero is anonymous memory that was never touched (or shared memory
	// never written): its bytes are zero.
	Zero
	// Absent bytes were not captured: clean pages of file mappings (their
	// bytes are in the files), pages kept in a parent checkpoint or left
	// to lazy migration, and kernel mappings such as vvar.
	Absent
	// Unreadable bytes are hidden by damaged images: the checkpoint holds
	// (or may hold) them, but a pagemap that could not be read says
	// nothing of them, or the pages file lacks them. Only the memory view
	// of SalvageProcess has them.
	Unreadable
)

func (k ExtentKind) String() string {
	switch k {
	case Captured:
		return "captured"
	case Zero:
		return "zero"
	case Unreadable:
		return "unreadable"
	}
	return "absent"
}

// Extent is a range [Start, End) of one mapping with uniform provenance.
type Extent struct {
	Start, End uint64
	Kind       ExtentKind
	VMA        *VMA
	// Src and Off locate captured bytes: Start's byte is at Src offset Off.
	Src File
	Off int64
	// Parent or Lazy is set on absent extents whose pages the pagemap
	// places in a parent checkpoint or leaves to lazy migration.
	Parent, Lazy bool
	// Err says, for an Unreadable extent, what hides its bytes.
	Err error
}

// Memory is the address space of one process as captured: an
// io.ReaderAt over virtual addresses, and an iterator over extents for
// writers and searchers. It holds only indexes, never page bytes. The
// memory view of a salvaged process (SalvageProcess) reads what its
// damaged images still hold, and has Unreadable extents for the rest.
type Memory struct {
	vmas    []VMA
	private *PageIndex
	shmem   map[uint64]*PageIndex
}

// openMemory builds p's memory view from its pagemaps. Strict, the
// indexes must be sound; with salvage they keep what is sound
// (readPageIndex).
func (l *loader) openMemory(p *Process) ([]problem, bool) {
	m := &Memory{vmas: p.VMAs, shmem: map[uint64]*PageIndex{}}
	priv, errs := readPageIndex(l.c.Src, fmt.Sprintf("pagemap-%d.img", p.Pid), p.PageSize, l.salvage, "address")
	probs := plainProblems(errs)
	if priv == nil {
		return probs, true
	}
	m.private = priv
	p.Mem = m
	if err := openParents(l.c.Src, priv, p.PageSize); err != nil && err != errNoParent {
		probs = append(probs, problem{err: err})
	}
	for _, v := range p.VMAs {
		if !v.HasShmem || m.shmem[v.Shmem] != nil {
			continue
		}
		idx, errs := l.shmemIndex(v, p.PageSize)
		probs = append(probs, plainProblems(errs)...)
		if idx == nil {
			return probs, true
		}
		m.shmem[v.Shmem] = idx
	}
	if parent, lazy := uncaptured(priv); parent > 0 || lazy > 0 {
		if parent > 0 {
			p.Notes = append(p.Notes, Note{Kind: NoteParentPages, Bytes: parent})
		}
		if lazy > 0 {
			p.Notes = append(p.Notes, Note{Kind: NoteLazyPages, Bytes: lazy})
		}
	}
	return probs, false
}

// plainProblems are the problems of errs, each of which says what it
// costs.
func plainProblems(errs []error) []problem {
	probs := make([]problem, 0, len(errs))
	for _, err := range errs {
		probs = append(probs, problem{err: err})
	}
	return probs
}

// shmemIndex returns the index of the shared memory object that v maps:
// strict, the one validated once for every process (nil and the problem
// if it is not sound); with salvage, read for this process with what is
// sound of it.
func (l *loader) shmemIndex(v VMA, pageSize uint64) (*PageIndex, []error) {
	if l.salvage {
		return readPageIndex(l.c.Src, fmt.Sprintf("pagemap-shmem-%d.img", v.Shmem), pageSize, true, "offset")
	}
	idx, err := l.c.shmemIndex(v.Shmem, pageSize)
	if err != nil {
		return nil, []error{fmt.Errorf("shared mapping [%#x-%#x): %w", v.Start, v.End, err)}
	}
	return idx, nil
}

// uncaptured counts the bytes of the private pagemap's runs that are in
// no pages file at hand: in a parent checkpoint that is not, or left to
// lazy migration.
func uncaptured(priv *PageIndex) (parent, lazy uint64) {
	for _, r := range priv.Runs {
		if !r.InFile() {
			if r.Flags&PEParent != 0 {
				if priv.parent == nil {
					parent += r.Len
				}
			} else {
				lazy += r.Len
			}
		}
	}
	return parent, lazy
}

// shmemKey identifies a validated shmem pagemap.
type shmemKey struct {
	id, pageSize uint64
}

// shmemRuns is a validated shmem pagemap: its runs and its pages file.
type shmemRuns struct {
	runs  []Run
	pages string
}

// shmemIndex returns the page index of pagemap-shmem-<id>.img, read and
// validated once for all the processes that map the object; each caller
// gets the pages file opened for it (closed by Memory.Close).
func (c *Checkpoint) shmemIndex(id, pageSize uint64) (*PageIndex, error) {
	name := fmt.Sprintf("pagemap-shmem-%d.img", id)
	key := shmemKey{id, pageSize}
	c.mu.Lock()
	cached, ok := c.shmem[key]
	c.mu.Unlock()
	if ok {
		pages, err := c.Src.Open(cached.pages)
		if err != nil {
			return nil, fmt.Errorf("%s: pages file of pagemap_head: %w", name, err)
		}
		return &PageIndex{Name: name, Pages: pages, Runs: cached.runs, pagesName: cached.pages}, nil
	}
	idx, err := ReadPageIndex(c.Src, name, pageSize)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.shmem == nil {
		c.shmem = map[shmemKey]shmemRuns{}
	}
	c.shmem[key] = shmemRuns{runs: idx.Runs, pages: idx.Pages.Name()}
	c.mu.Unlock()
	return idx, nil
}

// Close closes the pages files.
func (m *Memory) Close() error {
	var errs []error
	if m.private != nil {
		for p := m.private.parent; p != nil; p = p.parent {
			errs = append(errs, p.Close())
		}
		errs = append(errs, m.private.Close())
	}
	for _, x := range m.shmem {
		errs = append(errs, x.Close())
	}
	return errors.Join(errs...)
}

// Private returns the index of the process's own pagemap.
func (m *Memory) Private() *PageIndex { return m.private }

// VMAExtents calls fn for each extent of v, in address order, stopping at
// the first error.
func (m *Memory) VMAExtents(v *VMA, fn func(Extent) error) error {
	return m.extents(v, v.Start, v.End, fn)
}

// Extents calls fn for each extent of mapped memory in [start, end), in
// address order; unmapped gaps are skipped. It stops at the first error.
func (m *Memory) Extents(start, end uint64, fn func(Extent) error) error {
	i := sort.Search(len(m.vmas), func(i int) bool { return m.vmas[i].End > start })
	for ; i < len(m.vmas) && m.vmas[i].Start < end; i++ {
		v := &m.vmas[i]
		if err := m.extents(v, max(start, v.Start), min(end, v.End), fn); err != nil {
			return err
		}
	}
	return nil
}

func (m *Memory) extents(v *VMA, start, end uint64, fn func(Extent) error) error {
	gapFn := func(kind ExtentKind) func(s, e uint64) error {
		return func(s, e uint64) error { return fn(Extent{Start: s, End: e, Kind: kind, VMA: v}) }
	}
	switch {
	case v.Special():
		return fn(Extent{Start: start, End: end, Kind: Absent, VMA: v})
	case v.HasShmem:
		// Shared memory: its pages are in the shmem pagemap, keyed by
		// offset in the object (vaddr - Start + Pgoff, which loadVMAs
		// checked does not overflow); never-written pages are zero.
		shm := func(s, e uint64) error {
			return walkRuns(m.shmem[v.Shmem], v.Pgoff-v.Start, v, s, e, fn, gapFn(Zero))
		}
		if v.Flags&MapShared != 0 {
			return shm(start, end)
		}
		// A private mapping of shared memory (a memfd mapped MAP_PRIVATE):
		// the pages the process wrote are its own, in its pagemap; the
		// others are the object's.
		return walkRuns(m.private, 0, v, start, end, fn, shm)
	case v.Anon():
		return walkRuns(m.private, 0, v, start, end, fn, gapFn(Zero))
	}
	return walkRuns(m.private, 0, v, start, end, fn, gapFn(Absent))
}

// walkRuns calls fn for the runs of idx within [start, end) of v and gap
// for the ranges between them. Runs are compared by key: key = vaddr +
// delta (mod 2^64): the virtual address itself in a private pagemap, the
// offset in the object in a shmem pagemap.
//
// In a salvaged index, the ranges whose keys are from idx.Known on and
// data beyond the pages file are Unreadable.
func walkRuns(idx *PageIndex, delta uint64, v *VMA, start, end uint64, fn func(Extent) error, gap func(s, e uint64) error) error {
	if idx != nil && idx.Lost != nil {
		gap = idx.lostGap(delta, v, fn, gap)
	}
	cur := start
	if idx != nil {
		kend := end + delta
		for j := idx.Find(start + delta); j < len(idx.Runs) && cur < end; j++ {
			r := idx.Runs[j]
			kcur := cur + delta
			if r.Addr >= kend {
				break
			}
			if r.Addr > kcur {
				next := cur + (r.Addr - kcur)
				if err := gap(cur, next); err != nil {
					return err
				}
				cur, kcur = next, r.Addr
			}
			e := Extent{Start: cur, End: cur + (min(r.Addr+r.Len, kend) - kcur), VMA: v}
			if r.InFile() {
				e.Kind, e.Src, e.Off = Captured, idx.Pages, r.Offset+int64(kcur-r.Addr)
				if held := idx.held(e.Off, e.End-e.Start); held < e.End-e.Start {
					// A salvaged index whose pages file lacks the rest.
					if held > 0 {
						c := e
						c.End = e.Start + held
						if err := fn(c); err != nil {
							return err
						}
					}
					e = Extent{Start: e.Start + held, End: e.End, Kind: Unreadable, VMA: v, Err: idx.unheld(j)}
				}
			} else if r.Flags&PEParent != 0 && idx.parent != nil {
				// In the parent checkpoint (criu/pagemap.c: the page-read
				// goes on in the parent's images), recursively.
				if err := idx.parentExtents(delta, v, e.Start, e.End, fn); err != nil {
					return err
				}
				cur = e.End
				continue
			} else {
				e.Kind, e.Parent, e.Lazy = Absent, r.Flags&PEParent != 0, r.Flags&PEParent == 0
			}
			if err := fn(e); err != nil {
				return err
			}
			cur = e.End
		}
	}
	if cur < end {
		return gap(cur, end)
	}
	return nil
}

// lostGap returns gap but for the keys from x.Known on, which the
// salvaged index x does not describe: their ranges are Unreadable.
func (x *PageIndex) lostGap(delta uint64, v *VMA, fn func(Extent) error, gap func(s, e uint64) error) func(s, e uint64) error {
	lost := func(s, e uint64) error { return fn(Extent{Start: s, End: e, Kind: Unreadable, VMA: v, Err: x.Lost}) }
	return func(s, e uint64) error {
		switch ks := s + delta; {
		case ks >= x.Known:
			return lost(s, e)
		case e-s > x.Known-ks:
			mid := s + (x.Known - ks)
			if err := gap(s, mid); err != nil {
				return err
			}
			return lost(mid, e)
		}
		return gap(s, e)
	}
}

// ErrNotCaptured is wrapped by ReadAt errors for bytes the checkpoint does
// not hold.
var ErrNotCaptured = errors.New("memory not captured in the checkpoint")

// ErrUnreadable is wrapped by ReadAt errors for bytes that damaged images
// hide (Unreadable extents of a salvaged process).
var ErrUnreadable = errors.New("unreadable (damaged images)")

// ReadAt reads len(p) bytes of the address space at addr: captured bytes
// from the pages files, zeros for untouched anonymous memory. Unmapped or
// uncaptured bytes end the read with an error wrapping ErrNotCaptured,
// unreadable ones with an error wrapping ErrUnreadable and saying why.
func (m *Memory) ReadAt(p []byte, addr int64) (int, error) {
	if addr < 0 {
		return 0, fmt.Errorf("address %#x: %w", uint64(addr), ErrNotCaptured)
	}
	start := uint64(addr)
	end := start + uint64(len(p))
	if end < start {
		end = math.MaxUint64
	}
	n := 0
	errStop := errors.New("stop")
	err := m.Extents(start, end, func(e Extent) error {
		if e.Start != start+uint64(n) {
			return errStop // an unmapped gap
		}
		b := p[n : n+int(e.End-e.Start)]
		switch e.Kind {
		case Captured:
			k, err := e.Src.ReadAt(b, e.Off)
			n += k
			if err != nil {
				return fmt.Errorf("%s at offset %d: %w", e.Src.Name(), e.Off, err)
			}
		case Zero:
			clear(b)
			n += len(b)
		case Unreadable:
			return fmt.Errorf("address %#x: %w: %w", e.Start, e.Err, ErrUnreadable)
		default:
			return errStop
		}
		return nil
	})
	if err != nil && err != errStop {
		return n, err
	}
	if n < len(p) {
		return n, fmt.Errorf("address %#x: %w", start+uint64(n), ErrNotCaptured)
	}
	return n, nil
}
