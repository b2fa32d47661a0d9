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
	Pages File   // pages-<id>.img
	Runs  []Run
}

// ReadPageIndex reads and validates a pagemap image (pagemap-<pid>.img or
// pagemap-shmem-<id>.img) and opens the pages file it names. Entries must
// be page-aligned, sorted and non-overlapping; their pages must lie inside
// the pages file.
func ReadPageIndex(src Source, name string, pageSize uint64) (*PageIndex, error) {
	if pageSize == 0 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("%s: page size %d is not a power of two", name, pageSize)
	}
	f, err := src.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := NewReader(f, MagicPagemap)
	if err != nil {
		return nil, err
	}
	head := &pagemap.PagemapHead{}
	if err := r.Next(head); err != nil {
		if err == io.EOF {
			return nil, &FormatError{File: name, Entry: 0, Offset: r.Offset(), Msg: "no pagemap_head"}
		}
		return nil, err
	}
	pagesName := fmt.Sprintf("pages-%d.img", head.GetPagesId())
	pages, err := src.Open(pagesName)
	if err != nil {
		return nil, fmt.Errorf("%s: pages file of pagemap_head: %w", name, err)
	}
	idx := &PageIndex{Name: name, Pages: pages}
	var fileOff uint64
	pagesSize := uint64(pages.Size())
	for {
		i, off := r.Entry(), r.Offset()
		e := &pagemap.PagemapEntry{}
		if err := r.Next(e); err != nil {
			if err == io.EOF {
				break
			}
			pages.Close()
			return nil, err
		}
		bad := func(format string, a ...any) error {
			pages.Close()
			return &FormatError{File: name, Entry: i, Offset: off, Msg: fmt.Sprintf(format, a...)}
		}
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
			return nil, bad("zero pages at %#x", addr)
		}
		if addr%pageSize != 0 {
			return nil, bad("address %#x is not page-aligned", addr)
		}
		if n > math.MaxUint64/pageSize || addr > math.MaxUint64-n*pageSize {
			return nil, bad("%d pages at %#x overflow the address space", n, addr)
		}
		length := n * pageSize
		if k := len(idx.Runs); k > 0 {
			prev := idx.Runs[k-1]
			if addr < prev.Addr+prev.Len {
				return nil, bad("entry at %#x overlaps or precedes the previous one [%#x-%#x)", addr, prev.Addr, prev.Addr+prev.Len)
			}
		}
		run := Run{Addr: addr, Len: length, Flags: flags, Offset: -1}
		if flags&PEPresent != 0 {
			if length > pagesSize || fileOff > pagesSize-length {
				return nil, bad("%d pages at %#x end at byte %d of %s, which has %d", n, addr, fileOff+length, pagesName, pagesSize)
			}
			run.Offset = int64(fileOff)
			fileOff += length
		}
		idx.Runs = append(idx.Runs, run)
	}
	return idx, nil
}

// Find returns the index of the first run that ends after addr (len(Runs)
// if none).
func (x *PageIndex) Find(addr uint64) int {
	return sort.Search(len(x.Runs), func(i int) bool { return x.Runs[i].Addr+x.Runs[i].Len > addr })
}

// Close closes the pages file.
func (x *PageIndex) Close() error { return x.Pages.Close() }

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
)

func (k ExtentKind) String() string {
	switch k {
	case Captured:
		return "captured"
	case Zero:
		return "zero"
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
}

// Memory is the address space of one process as captured: an
// io.ReaderAt over virtual addresses, and an iterator over extents for
// writers and searchers. It holds only indexes, never page bytes.
type Memory struct {
	vmas    []VMA
	private *PageIndex
	shmem   map[uint64]*PageIndex
}

func (c *Checkpoint) openMemory(p *Process) (*Memory, error) {
	m := &Memory{vmas: p.VMAs, shmem: map[uint64]*PageIndex{}}
	priv, err := ReadPageIndex(c.Src, fmt.Sprintf("pagemap-%d.img", p.Pid), p.PageSize)
	if err != nil {
		return nil, err
	}
	m.private = priv
	var parent, lazy uint64
	for _, r := range priv.Runs {
		if !r.InFile() {
			if r.Flags&PEParent != 0 {
				parent += r.Len
			} else {
				lazy += r.Len
			}
		}
	}
	for _, v := range p.VMAs {
		if v.Shmem == 0 || m.shmem[v.Shmem] != nil {
			continue
		}
		idx, err := c.shmemIndex(v.Shmem, p.PageSize)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("shared mapping [%#x-%#x): %w", v.Start, v.End, err)
		}
		m.shmem[v.Shmem] = idx
	}
	if parent > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d bytes of memory are in a parent checkpoint (incremental dump) and are left out of the core", parent))
	}
	if lazy > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d bytes of memory were left to lazy migration and are not in the images; they are left out of the core", lazy))
	}
	return m, nil
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
		return &PageIndex{Name: name, Pages: pages, Runs: cached.runs}, nil
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
	case v.Shmem != 0:
		// Shared memory: its pages are in the shmem pagemap, keyed by
		// offset in the object (vaddr - Start + Pgoff, which loadVMAs
		// checked does not overflow); never-written pages are zero.
		shm := func(s, e uint64) error {
			return walkRuns(m.shmem[v.Shmem], v.Pgoff-v.Start, v, s, e, fn, gapFn(Zero))
		}
		if v.Flags&mapShared != 0 {
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
func walkRuns(idx *PageIndex, delta uint64, v *VMA, start, end uint64, fn func(Extent) error, gap func(s, e uint64) error) error {
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

// ErrNotCaptured is wrapped by ReadAt errors for bytes the checkpoint does
// not hold.
var ErrNotCaptured = errors.New("memory not captured in the checkpoint")

// ReadAt reads len(p) bytes of the address space at addr: captured bytes
// from the pages files, zeros for untouched anonymous memory. Unmapped or
// uncaptured bytes end the read with an error wrapping ErrNotCaptured.
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
