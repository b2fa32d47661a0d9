package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// streamedArchive returns the archive of src when it is read as a stream
// (archive.Options.Stream on a compressed archive), else nil.
func streamedArchive(src criuimg.Source) *archive.Checkpoint {
	cs, ok := src.(*checkpointSource)
	if !ok || cs.ck.Kind() == archive.KindDirectory || cs.ck.Kind() == archive.KindTar {
		return nil
	}
	return cs.ck
}

// openStreamTree opens the process tree of src for a command that reads
// each process once, in pid order, while a compressed archive streams
// (grep). When pstree.img is read before the first pages file, it is
// criuimg.Open. Otherwise (Podman's writer sorts the names: pstree.img
// comes after pages-*.img) the processes are those with an mm-<pid>.img
// among the images read by then (a zombie has none and no memory), each
// with its main thread only; checkStreamTree compares them with
// pstree.img once the stream has ended.
func openStreamTree(src criuimg.Source) (ck *criuimg.Checkpoint, provisional bool, err error) {
	a := streamedArchive(src)
	if a == nil {
		ck, err = criuimg.Open(src)
		return ck, false, err
	}
	ahead, err := a.Ahead()
	if err != nil {
		return nil, false, err
	}
	if slices.Contains(ahead, "pstree.img") {
		ck, err = criuimg.Open(src)
		return ck, false, err
	}
	var procs []criuimg.ProcInfo
	for _, n := range ahead {
		if s, ok := strings.CutPrefix(n, "mm-"); ok {
			if s, ok = strings.CutSuffix(s, ".img"); ok {
				if pid, err := strconv.ParseUint(s, 10, 32); err == nil && pid > 0 {
					procs = append(procs, criuimg.ProcInfo{Pid: uint32(pid), Threads: []uint32{uint32(pid)}})
				}
			}
		}
	}
	slices.SortFunc(procs, func(a, b criuimg.ProcInfo) int { return int(a.Pid) - int(b.Pid) })
	ck, err = criuimg.OpenWithTree(src, procs)
	return ck, true, err
}

// searchOrder returns the indices of pids in the order their pages files
// come in src when it streams (for another source, their order): that of
// the sorted member names, as every engine's writer sorts them
// (pages-10.img before pages-2.img). Each process is then read as its
// pages stream, where pid order would keep whole every pages file that
// streams before its process's turn. Only the pagemaps read before the
// first pages file are looked at (waiting for another would let the
// pages stream by unread); a pid whose pagemap-<pid>.img is not among
// them, or cannot be read, comes last, in pid order.
func searchOrder(src criuimg.Source, pids []uint32) []int {
	order := make([]int, len(pids))
	for i := range order {
		order[i] = i
	}
	a := streamedArchive(src)
	if a == nil {
		return order
	}
	ahead, err := a.Ahead()
	if err != nil {
		return order
	}
	name := make([]string, len(pids))
	for i, pid := range pids {
		if pm := fmt.Sprintf("pagemap-%d.img", pid); slices.Contains(ahead, pm) {
			name[i], _ = criuimg.PagesName(src, pm)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch na, nb := name[a], name[b]; {
		case na == "" || nb == "":
			return strings.Compare(nb, na) // the unknown last
		default:
			return strings.Compare(na, nb)
		}
	})
	return order
}

// consumeOnce tells a streamed archive that p's private pages are read
// once, in order (they are freed as they are read); the returned function
// says the reading is done (the rest of them is dropped as it streams).
func consumeOnce(src criuimg.Source, p *criuimg.Process) (done func()) {
	a := streamedArchive(src)
	if a == nil || p == nil || p.Mem == nil || p.Mem.Private() == nil || p.Mem.Private().Pages == nil {
		return func() {}
	}
	name := p.Mem.Private().Pages.Name()
	a.Consume(name)
	return func() { a.Done(name) }
}

// checkStreamTree waits for the end of a streamed archive (a truncated
// one fails here) and, for a provisional tree, checks it against
// pstree.img: every process searched is listed, and every listed one not
// searched is a zombie. verbose prints what the stream spooled whole.
func checkStreamTree(src criuimg.Source, ck *criuimg.Checkpoint, provisional, verbose bool, stderr io.Writer, cmd string) error {
	a := streamedArchive(src)
	if a == nil {
		return nil
	}
	err := a.Wait()
	if verbose {
		for _, n := range a.Notes() {
			fmt.Fprintf(stderr, "ckpt2core %s: %s\n", cmd, safe(n))
		}
	}
	if err != nil || !provisional {
		return err
	}
	full, err := criuimg.Open(src)
	if err != nil {
		return err
	}
	var missing []string
	for _, p := range full.Procs {
		if _, ok := ck.Proc(p.Pid); ok {
			continue
		}
		if _, err := src.Open(fmt.Sprintf("mm-%d.img", p.Pid)); err == nil {
			missing = append(missing, strconv.FormatUint(uint64(p.Pid), 10))
		}
	}
	var extra []string
	for _, p := range ck.Procs {
		if _, ok := full.Proc(p.Pid); !ok {
			extra = append(extra, strconv.FormatUint(uint64(p.Pid), 10))
		}
	}
	switch {
	case len(missing) > 0:
		return fmt.Errorf("%s: pstree.img lists pids %s, whose images came after their pages in the archive: not searched", src, strings.Join(missing, ", "))
	case len(extra) > 0:
		return fmt.Errorf("%s: pids %s have images but are not in pstree.img", src, strings.Join(extra, ", "))
	}
	return nil
}

// readProgress shows, on stderr if it is a terminal, a progress bar of
// the archive file at path being read (decompressed and unpacked; for
// grep also searched, in the same pass), through opts.OnRead. The
// returned function ends it. Nothing is shown for a directory, or when
// stderr is no terminal (many checkpoints: their stderr is a buffer).
func readProgress(opts *archive.Options, path string, stderr io.Writer, desc string) func() {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return func() {}
	}
	bar := startProgressAs(stderr, st.Size(), true, desc)
	opts.OnRead = func(n int64) { bar.add(uint64(n)) }
	var once sync.Once
	return func() { once.Do(bar.finish) }
}

// retainForInspect tells a streamed archive which bytes of its pages
// files inspect will read, before they stream (retainReads): each
// process's argument and environment areas and the bytes around every
// thread's PC (inspect.Reads), so that only those are kept. Whatever
// cannot be worked out is simply not retained: the member is then kept
// whole (as without streaming).
func retainForInspect(src criuimg.Source) *retained {
	return retainReads(src, inspectReads)
}

// inspectReads adds to k what inspect reads of process p (with --env).
func inspectReads(_ *criuimg.Checkpoint, p *criuimg.Process, k pagesKeep) {
	k.memory(p, inspect.Reads(p, inspect.Options{Env: true}))
}

// dropUnwanted tells a streamed archive that the private pages of the
// processes of ck not in want (grep --pid) are not needed: each such
// process is loaded as its pages start, in a goroutine of its own, and its
// pages file is dropped as it streams instead of being kept whole.
func dropUnwanted(src criuimg.Source, ck *criuimg.Checkpoint, want []uint32) {
	a := streamedArchive(src)
	if a == nil {
		return
	}
	for _, info := range ck.Procs {
		if slices.Contains(want, info.Pid) {
			continue
		}
		go func() {
			p, _ := ck.SalvageProcess(info.Pid)
			if p == nil {
				return
			}
			defer p.Close()
			if p.Mem != nil && p.Mem.Private() != nil && p.Mem.Private().Pages != nil {
				a.Retain(p.Mem.Private().Pages.Name(), nil)
			}
		}()
	}
}
