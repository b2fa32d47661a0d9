// Package synth makes the synthetic checkpoints of the benchmarks (large
// memory, many mappings, many threads) with imgtest's builder: real CRIU
// framing and go-criu messages, page bytes generated while writing.
// scripts/gencheckpoint writes them at full size for scripts/bench.sh; the
// tests of this package convert small versions of the same shapes.
//
// Captured pages hold pseudo-random bytes (nothing a sparse copy could
// skip); the first 8 bytes of every captured page are its own virtual
// address, little-endian, so that a debugger can check any page.
package synth

import (
	"encoding/binary"
	"fmt"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// PageSize is the page size of every synthetic checkpoint.
const PageSize = 4096

// Pid is the pid of the single process of every shape.
const Pid = 1000

// Shape is a synthetic checkpoint and what its core must hold.
type Shape struct {
	Name string
	*imgtest.Checkpoint
	// Loads is the number of PT_LOAD segments of the core.
	Loads int
	// Threads is the number of threads.
	Threads int
	// Captured is the number of captured bytes (the size of the pages
	// file).
	Captured uint64
	// Probe is the address of a captured page (the last one written): its
	// first 8 bytes are the address itself.
	Probe uint64
}

// FillPage fills a captured page at vaddr: its address, then
// pseudo-random words (xorshift64 seeded by the address).
func FillPage(vaddr uint64, page []byte) {
	binary.LittleEndian.PutUint64(page, vaddr)
	s := vaddr*0x9e3779b97f4a7c15 | 1
	for i := 8; i+8 <= len(page); i += 8 {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		binary.LittleEndian.PutUint64(page[i:], s)
	}
}

func newShape(name string) (*Shape, *imgtest.Process) {
	c := imgtest.New(imgtest.X86_64)
	p := c.AddProcess(Pid, 1)
	p.Comm = "synth"
	p.SetExe("/usr/bin/synth")
	p.SetArgs([]string{"/usr/bin/synth", name})
	// SetArgs maps a stack (one PT_LOAD) and captures its pages from the
	// one holding the strings to its end.
	s := &Shape{Name: name, Checkpoint: c, Loads: 1, Threads: 1}
	s.Captured = c.StackEnd() - p.MM.GetMmArgStart()&^(PageSize-1)
	return s, p
}

// addPages adds npages captured pages at vaddr.
func (s *Shape) addPages(p *imgtest.Process, vaddr, npages uint64) {
	p.AddPagesFunc(vaddr, npages, func(i int, page []byte) { FillPage(vaddr+uint64(i)*PageSize, page) })
	s.Captured += npages * PageSize
	s.Probe = vaddr + (npages-1)*PageSize
}

const rw = criuimg.ProtRead | criuimg.ProtWrite

// Large is size bytes of captured pages (rounded down to whole pages) in
// four anonymous mappings, each captured whole but its first page (a hole
// of the sparse core).
func Large(size uint64) *Shape { return large(size, FillPage) }

// LargeFrom is Large with the pages' bytes taken in turn from sample
// (tiled; its length a multiple of PageSize): real programs' pages, so
// that the checkpoint compresses as theirs do.
func LargeFrom(size uint64, sample []byte) *Shape {
	return large(size, func(vaddr uint64, page []byte) {
		i := (vaddr / PageSize) % uint64(len(sample)/PageSize)
		copy(page, sample[i*PageSize:])
	})
}

func large(size uint64, fill func(vaddr uint64, page []byte)) *Shape {
	s, p := newShape(fmt.Sprintf("large-%d", size))
	const nvma = 4
	per := size / PageSize / nvma
	if per < 1 {
		per = 1
	}
	base := uint64(0x7f00_0000_0000)
	for i := range nvma {
		start := base + uint64(i)*(per+2)*PageSize // one unmapped page between mappings
		p.AddAnon(start, start+(per+1)*PageSize)
		vaddr := start + PageSize
		p.AddPagesFunc(vaddr, per, func(i int, page []byte) { fill(vaddr+uint64(i)*PageSize, page) })
		s.Captured += per * PageSize
		s.Probe = vaddr + (per-1)*PageSize
		s.Loads++
	}
	return s
}

// ManyVMAs is n small mappings (a few pages each, with unmapped gaps)
// with scattered captured pages. Mapping i is, by i%4: private anonymous
// with two captured pages apart (0, 1); a private file mapping with one
// dirty page (2); a PROT_NONE reservation never touched (3). Every mapping
// makes exactly one PT_LOAD. With sparse set, only every 64th mapping and
// the last one have captured pages; the others are PROT_NONE reservations
// (for cores with many segments and few bytes).
func ManyVMAs(n int, sparse bool) *Shape {
	s, p := newShape(fmt.Sprintf("vmas-%d", n))
	const vmaPages = 6
	base := uint64(0x5555_0000_0000)
	for i := range n {
		start := base + uint64(i)*(vmaPages+1)*PageSize
		end := start + vmaPages*PageSize
		kind := i % 4
		if sparse {
			kind = 3
			if i%64 == 0 || i == n-1 {
				kind = 0
			}
		}
		switch kind {
		case 0, 1:
			p.AddAnon(start, end)
			s.addPages(p, start+uint64(i%2)*PageSize, 1)
			s.addPages(p, start+uint64(3+i%3)*PageSize, 1)
		case 2:
			v := p.AddVMA(start, end, rw, 0, 0, fmt.Sprintf("/usr/lib/x86_64-linux-gnu/libsynth-%d.so", i%16))
			v.Pgoff = new(uint64)
			s.addPages(p, start+uint64(i%vmaPages)*PageSize, 1)
		case 3:
			p.AddVMA(start, end, 0, 0, 0, "")
		}
		s.Loads++
	}
	return s
}

// Threads is one process with n threads, each with a 1 MiB stack below a
// PROT_NONE guard page, two pages of each stack captured, and a 4 MiB
// captured heap.
func Threads(n int) *Shape {
	s, p := newShape(fmt.Sprintf("threads-%d", n))
	for i := 1; i < n; i++ {
		p.AddThread(Pid + uint32(i))
	}
	s.Threads = n
	heap := uint64(0x5555_5555_0000)
	p.AddVMA(heap, heap+4<<20, rw, 0, criuimg.VMAAreaRegular|criuimg.VMAAnonPrivate|criuimg.VMAAreaHeap, "")
	s.addPages(p, heap, 4<<20/PageSize)
	s.Loads++
	const stack = 1 << 20
	base := uint64(0x7f00_0000_0000)
	for i := range n {
		guard := base + uint64(i)*(stack+PageSize)
		p.AddVMA(guard, guard+PageSize, 0, 0, 0, "")
		p.AddAnon(guard+PageSize, guard+PageSize+stack)
		s.addPages(p, guard+stack-PageSize, 2)
		s.Loads += 2
	}
	return s
}

// ByName returns a shape from the command line's description: large
// (size bytes), vmas (n mappings; sparse: few captured pages) or threads
// (n threads).
func ByName(shape string, size uint64, n int, sparse bool) (*Shape, error) {
	switch shape {
	case "large":
		if size < 4*PageSize {
			return nil, fmt.Errorf("size %d is below 4 pages", size)
		}
		return Large(size), nil
	case "vmas":
		if n < 1 {
			return nil, fmt.Errorf("need at least one mapping")
		}
		return ManyVMAs(n, sparse), nil
	case "threads":
		if n < 1 {
			return nil, fmt.Errorf("need at least one thread")
		}
		return Threads(n), nil
	}
	return nil, fmt.Errorf("unknown shape %q (large, vmas, threads)", shape)
}
