package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/carve"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

// pagesKeep is, by pages image name, the byte ranges of it to keep while
// a compressed archive streams (archive.Checkpoint.Retain); a name with
// no range is read not at all.
type pagesKeep map[string][][2]int64

// memory adds the bytes of p's pages files under the address ranges rs.
func (k pagesKeep) memory(p *criuimg.Process, rs []inspect.Range) {
	if p.Mem == nil {
		return
	}
	for _, r := range rs {
		if r.End <= r.Start {
			continue
		}
		p.Mem.Extents(r.Start, r.End, func(x criuimg.Extent) error {
			if x.Kind == criuimg.Captured && x.Src != nil {
				k[x.Src.Name()] = append(k[x.Src.Name()], [2]int64{x.Off, x.Off + int64(x.End-x.Start)})
			}
			return nil
		})
	}
}

// files lists every pages file p's memory reads from, with no range yet.
func (k pagesKeep) files(p *criuimg.Process) {
	if p.Mem == nil {
		return
	}
	p.Mem.Extents(0, math.MaxUint64, func(x criuimg.Extent) error {
		if x.Src != nil {
			if _, ok := k[x.Src.Name()]; !ok {
				k[x.Src.Name()] = nil
			}
		}
		return nil
	})
}

// pageReads adds to k what a command reads of process p of ck.
type pageReads func(ck *criuimg.Checkpoint, p *criuimg.Process, k pagesKeep)

// readsAll is what each of rs reads.
func readsAll(rs ...pageReads) pageReads {
	return func(ck *criuimg.Checkpoint, p *criuimg.Process, k pagesKeep) {
		for _, r := range rs {
			r(ck, p, k)
		}
	}
}

// reads adds the bytes under the address ranges rs of p's memory and the
// whole contents of the memfds (what triage.Reads and carve.Reads say).
func (k pagesKeep) reads(ck *criuimg.Checkpoint, p *criuimg.Process, rs []inspect.Range, memfds []criuimg.MemfdInode) {
	k.memory(p, rs)
	for _, in := range memfds {
		k.memfd(ck.Src, in, p.PageSize)
	}
}

// memfd adds the whole contents of memfd in (what
// criuimg.Checkpoint.OpenMemfd reads: its shmem pagemap's pages).
func (k pagesKeep) memfd(src criuimg.Source, in criuimg.MemfdInode, pageSize uint64) {
	idx, err := criuimg.ReadPageIndex(src, fmt.Sprintf("pagemap-shmem-%d.img", in.Shmid), pageSize)
	if err != nil {
		return // (OpenMemfd fails the same way: nothing is read)
	}
	defer idx.Close()
	name := idx.Pages.Name()
	for _, r := range idx.Runs {
		if r.InFile() {
			k[name] = append(k[name], [2]int64{r.Offset, r.Offset + int64(r.Len)})
		}
	}
	if _, ok := k[name]; !ok {
		k[name] = nil
	}
}

// merged returns rs sorted, overlapping and touching ranges merged (so
// that the archive checks each read against few ranges).
func merged(rs [][2]int64) [][2]int64 {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	n := 0
	for _, r := range out {
		if r[1] <= r[0] {
			continue
		}
		if n > 0 && r[0] <= out[n-1][1] {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out[n] = r
		n++
	}
	return out[:n]
}

// retained is what retainReads told a streamed archive: the pids of the
// provisional tree, and the pages files it told the archive of (whose
// other bytes are dropped).
type retained struct {
	pids []uint32
	told map[string]bool
}

// retainReads tells a streamed archive which bytes of its pages files a
// command will read, before they stream, and returns what it told (nil
// for another source).
//
// The tree is provisional (Podman sorts the names: pstree.img comes after
// the pages): the processes with an mm-<pid>.img read by the first pages
// file, each given every thread core that is not another process's (so
// that every PC is looked up in every process: a few bytes more, never
// fewer). Each process is loaded in its own goroutine, as soon as its
// pages start streaming, and reads adds to k what the command reads of
// it; its private pages file is told at once. A pages file that other
// processes may read too (shared memory, memfds) is told once every
// process is done: a range one process asks for must not be dropped
// because another process's ranges were told first. A pages file that no
// process of the tree reads from is not told: the archive keeps it whole
// (as without streaming). A process whose images come after the first
// pages file is not in the tree: the caller checks the full tree once the
// stream has ended (hurtByRetain).
func retainReads(src criuimg.Source, reads pageReads) *retained {
	a := streamedArchive(src)
	if a == nil {
		return nil
	}
	r := &retained{told: map[string]bool{}}
	ahead, err := a.Ahead()
	if err != nil {
		return r
	}
	ids := func(prefix string) []uint32 {
		var out []uint32
		for _, n := range ahead {
			if s, ok := strings.CutPrefix(n, prefix); ok {
				if s, ok = strings.CutSuffix(s, ".img"); ok {
					if v, err := strconv.ParseUint(s, 10, 32); err == nil && v > 0 {
						out = append(out, uint32(v))
					}
				}
			}
		}
		return out
	}
	pids, cores := ids("mm-"), ids("core-")
	var others []uint32
	for _, t := range cores {
		if !slices.Contains(pids, t) {
			others = append(others, t)
		}
	}
	var procs []criuimg.ProcInfo
	for _, pid := range pids {
		procs = append(procs, criuimg.ProcInfo{Pid: pid, Threads: append([]uint32{pid}, others...)})
	}
	ck, err := criuimg.OpenWithTree(src, procs)
	if err != nil {
		return r
	}
	r.pids = pids
	var mu sync.Mutex
	shared := pagesKeep{}
	var wg sync.WaitGroup
	for _, pid := range pids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, _ := ck.SalvageProcess(pid)
			if p == nil {
				return
			}
			defer p.Close()
			k := readsOf(ck, p, reads)
			private := ""
			if p.Mem != nil && p.Mem.Private() != nil && p.Mem.Private().Pages != nil {
				private = p.Mem.Private().Pages.Name()
			}
			mu.Lock()
			defer mu.Unlock()
			for name, rs := range k {
				r.told[name] = true
				if name == private {
					a.Retain(name, merged(rs))
				} else {
					shared[name] = append(shared[name], rs...)
				}
			}
		}()
	}
	wg.Wait()
	for name, rs := range shared {
		a.Retain(name, merged(rs))
	}
	return r
}

// readsOf is what reads says a command reads of process p of ck, with
// every pages file p's memory reads from listed (files), read or not.
func readsOf(ck *criuimg.Checkpoint, p *criuimg.Process, reads pageReads) pagesKeep {
	k := pagesKeep{}
	k.files(p)
	reads(ck, p, k)
	return k
}

// triageReads adds to k what triage reads of process p of ck: what
// inspect reads of it with iopts (inspect.Reads) and what triage's rules
// read with topts (triage.Reads: executable mappings' captured pages and
// excerpts, signal handlers, a bash's whole memory, the executable's
// memfd).
func triageReads(iopts inspect.Options, topts triage.Options) pageReads {
	return func(ck *criuimg.Checkpoint, p *criuimg.Process, k pagesKeep) {
		k.memory(p, inspect.Reads(p, iopts))
		rs, memfds := triage.Reads(ck, p, topts)
		k.reads(ck, p, rs, memfds)
	}
}

// carveReads adds to k what carve (report's artifacts, extract) reads of
// process p of ck with opts (carve.Reads: the environment area, a bash's
// whole memory, every memfd).
func carveReads(opts carve.Options) pageReads {
	return func(ck *criuimg.Checkpoint, p *criuimg.Process, k pagesKeep) {
		rs, memfds := carve.Reads(ck, p, opts)
		k.reads(ck, p, rs, memfds)
	}
}

// hurtByRetain returns the pids of ck (the full tree, read once the
// stream has ended) that were not in the provisional tree of retainReads
// (their images came after the first pages file) and read, by reads, a
// pages file that r told the archive of: what they need of it (shared
// memory, a memfd) may have been dropped. A process whose pages files
// were not told is whole (kept as without streaming).
func hurtByRetain(ck *criuimg.Checkpoint, r *retained, reads pageReads) []uint32 {
	var out []uint32
	for _, info := range ck.Procs {
		if slices.Contains(r.pids, info.Pid) {
			continue
		}
		p, _ := ck.SalvageProcess(info.Pid)
		if p == nil {
			continue
		}
		k := readsOf(ck, p, reads)
		p.Close()
		for name := range k {
			if r.told[name] {
				out = append(out, info.Pid)
				break
			}
		}
	}
	return out
}
