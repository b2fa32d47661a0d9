package main

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/ckptdiff"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

// diffOpened is one checkpoint of a diff, opened.
type diffOpened struct {
	path     string
	o        archive.Options
	src      criuimg.Source
	ck       *criuimg.Checkpoint
	close    func()
	streamed bool // a compressed archive, streamed: only some pages kept
	told     *retained
	hashed   bool // its pages were hashed as it streamed (Options.OnPages)
}

func (d *diffOpened) release() {
	if d != nil && d.close != nil {
		d.close()
		d.close = nil
	}
}

// openDiffSides opens A and B (paths) for diff. Without a compressed
// archive among them each is opened in place; with an incremental
// checkpoint (its pages partly its parent's) a compressed archive is read
// again, unpacked whole. Otherwise a compressed archive is read twice:
// first streamed while its pages are hashed as they pass (one hash per 4
// KiB; of the pages only what inspect reads is kept), then, once
// ckptdiff.Plan has compared the hashes of A and B, streamed again
// keeping only what inspect and triage read and the pages that differ
// (those read again to count the bytes changed and find the new
// strings). A directory or plain tar is read in place (its pages hashed
// by reading them). verbose says so, and what could not stream.
func openDiffSides(stop *stopper, paths []string, aopts *archive.Options, dopts ckptdiff.Options, verbose bool, stderr io.Writer) ([]*ckptdiff.Checkpoint, func(), error) {
	stderr = &lockedWriter{w: stderr} // the two sides stream at once
	seed := maphash.MakeSeed()
	hs := []*ckptdiff.PageHashes{ckptdiff.NewPageHashes(seed), ckptdiff.NewPageHashes(seed)}
	first := make([]*diffOpened, 2)
	closeAll := func(ds []*diffOpened) {
		for _, d := range ds {
			d.release()
		}
	}
	for i, path := range paths {
		o := *aopts
		o.Stream, o.OnPages = true, hs[i].Add
		src, closeSrc, err := openCheckpoint(stop, inspectPath(path), &o)
		if err != nil {
			closeAll(first)
			return nil, nil, err
		}
		first[i] = &diffOpened{path: path, o: o, src: src, close: closeSrc, streamed: streamedArchive(src) != nil}
	}
	if !first[0].streamed && !first[1].streamed {
		return openedDiffSides(first, nil)
	}
	// Pass 1: both streams at once; only what inspect reads is kept.
	if err := eachSide(first, func(d *diffOpened) error { return d.finish(stop, inspectReads, verbose, stderr) }); err != nil {
		closeAll(first)
		return nil, nil, err
	}
	if hasParent(first[0].src) || hasParent(first[1].src) {
		// Incremental: pages are read from the parent's files too, which
		// were not hashed. Unpacked whole, as without streaming.
		for i, d := range first {
			if !d.streamed {
				continue
			}
			d.release()
			if verbose {
				fmt.Fprintf(stderr, "ckpt2core diff: %s: an incremental checkpoint: reading it again, unpacked whole\n", safe(d.path))
			}
			o := d.o
			o.Stream, o.OnPages = false, nil
			src, ck, closeSrc, err := openSalvaged(stop, inspectPath(d.path), &o)
			if err != nil {
				closeAll(first)
				return nil, nil, err
			}
			first[i] = &diffOpened{path: d.path, src: src, ck: ck, close: closeSrc}
		}
		return openedDiffSides(first, nil)
	}
	for i, d := range first {
		if d.ck == nil {
			ck, err := criuimg.SalvageOpen(d.src)
			if err != nil {
				closeAll(first)
				return nil, nil, err
			}
			d.ck = ck
		}
		if !d.hashed {
			if err := hashPages(d.src, hs[i]); err != nil {
				closeAll(first)
				return nil, nil, err
			}
		}
	}
	cs, err := diffCheckpoints(first, hs)
	if err != nil {
		closeAll(first)
		return nil, nil, err
	}
	ra, rb, err := ckptdiff.Plan(cs[0], cs[1], dopts)
	if err != nil {
		closeAll(first)
		return nil, nil, err
	}
	// Pass 2: the streamed archives again, keeping what triage and
	// inspect read and the pages Plan listed: worked out from the first
	// read's images (the whole tree), told before the pages stream.
	plan := []ckptdiff.Reads{ra, rb}
	second := make([]*diffOpened, 2)
	check := make([]*ckptdiff.PageHashes, 2)
	closeBoth := func() {
		closeAll(first)
		closeAll(second)
	}
	var again []*diffOpened
	for i, d := range first {
		if !d.streamed {
			second[i], first[i] = d, nil
			continue
		}
		keep := diffKeep(d.ck, plan[i])
		d.release()
		if verbose {
			var n int64
			for _, rs := range plan[i] {
				for _, r := range rs {
					n += r[1] - r[0]
				}
			}
			fmt.Fprintf(stderr, "ckpt2core diff: %s: read a second time, keeping of its pages only what triage reads and the %d bytes of the pages that differ\n", safe(d.path), n)
		}
		// Hashed again, to be sure the archive read is the one planned.
		o := d.o
		check[i] = ckptdiff.NewPageHashes(seed)
		o.OnPages = check[i].Add
		src, closeSrc, err := openCheckpoint(stop, inspectPath(d.path), &o)
		if err != nil {
			closeBoth()
			return nil, nil, err
		}
		if a := streamedArchive(src); a != nil {
			for name, rs := range keep {
				a.Retain(name, merged(rs))
			}
		}
		first[i] = nil
		second[i] = &diffOpened{path: d.path, o: o, src: src, close: closeSrc, streamed: streamedArchive(src) != nil}
		again = append(again, second[i])
	}
	err = eachSide(again, func(d *diffOpened) error {
		i := 0
		if d == second[1] {
			i = 1
		}
		a := streamedArchive(d.src)
		err := a.Wait()
		if verbose {
			for _, n := range a.Notes() {
				fmt.Fprintf(stderr, "ckpt2core diff: %s\n", safe(n))
			}
		}
		if err != nil {
			return podOf(err, d.o)
		}
		if !check[i].Same(hs[i]) {
			return fmt.Errorf("%s: its pages changed between the two times it was read (was the file rewritten?)", d.path)
		}
		return nil
	})
	if err != nil {
		closeBoth()
		return nil, nil, err
	}
	return openedDiffSides(second, hs)
}

// openedDiffSides builds diff's checkpoints from the opened sides (with
// page hashes hs, if set), and the function that closes them.
func openedDiffSides(ds []*diffOpened, hs []*ckptdiff.PageHashes) ([]*ckptdiff.Checkpoint, func(), error) {
	closeAll := func() {
		for _, d := range ds {
			d.release()
		}
	}
	for _, d := range ds {
		if d.ck == nil {
			ck, err := criuimg.SalvageOpen(d.src)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			d.ck = ck
		}
	}
	cs, err := diffCheckpoints(ds, hs)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return cs, closeAll, nil
}

// diffCheckpoints builds what diff compares of each side (diffSide).
func diffCheckpoints(ds []*diffOpened, hs []*ckptdiff.PageHashes) ([]*ckptdiff.Checkpoint, error) {
	out := make([]*ckptdiff.Checkpoint, len(ds))
	for i, d := range ds {
		c, err := diffSide(d.path, d.src, d.ck)
		if err != nil {
			return nil, err
		}
		if hs != nil {
			c.Hashes = hs[i]
		}
		out[i] = c
	}
	return out, nil
}

// eachSide runs fn on each side at once (two streams, two goroutines)
// and returns the first side's error, else the second's (as if A were
// read before B).
func eachSide(ds []*diffOpened, fn func(*diffOpened) error) error {
	errs := make([]error, len(ds))
	var wg sync.WaitGroup
	for i, d := range ds {
		if !d.streamed {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(d)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// finish tells d's stream what of its pages reads reads (retainReads),
// reads it to its end and opens its images. A process the provisional
// tree lacked that reads a pages file kept only in part has the archive
// read again, unpacked whole (as openTriaged).
func (d *diffOpened) finish(stop *stopper, reads pageReads, verbose bool, stderr io.Writer) error {
	a := streamedArchive(d.src)
	d.told = retainReads(d.src, reads)
	err := a.Wait()
	d.hashed = d.o.OnPages != nil
	if verbose {
		for _, n := range a.Notes() {
			fmt.Fprintf(stderr, "ckpt2core diff: %s\n", safe(n))
		}
	}
	if err != nil {
		return podOf(err, d.o)
	}
	ck, err := criuimg.SalvageOpen(d.src)
	if err != nil {
		return err
	}
	d.ck = ck
	if hurt := hurtByRetain(ck, d.told, reads); len(hurt) > 0 {
		d.release()
		if verbose {
			fmt.Fprintf(stderr, "ckpt2core diff: %s: pids %s: their images come after the pages in the archive, and they share pages with other processes: reading it again, unpacked whole\n", safe(d.path), joinPids(hurt))
		}
		o := d.o
		o.Stream, o.OnPages = false, nil
		src, ck, closeSrc, err := openSalvaged(stop, inspectPath(d.path), &o)
		if err != nil {
			return err
		}
		d.src, d.ck, d.close, d.streamed = src, ck, closeSrc, false
	}
	return nil
}

// diffKeep is what diff reads of the pages files of ck (every process
// of its tree): what inspect and triage read (triageReads) and, of the
// pages files the processes read, the ranges of plan (ckptdiff.Plan's).
// A pages file that no process reads is not in it (kept whole).
func diffKeep(ck *criuimg.Checkpoint, plan ckptdiff.Reads) pagesKeep {
	tr := triageReads(inspect.Options{Env: true}, triage.Options{})
	k := pagesKeep{}
	for _, info := range ck.Procs {
		p, _ := ck.SalvageProcess(info.Pid)
		if p == nil {
			continue
		}
		k.files(p)
		tr(ck, p, k)
		p.Close()
	}
	for name := range k {
		k[name] = append(k[name], plan[name]...)
	}
	return k
}

// hasParent reports whether src's images have a parent checkpoint (an
// incremental checkpoint), or a parent link that cannot be followed.
func hasParent(src criuimg.Source) bool {
	ps, ok := src.(criuimg.ParentSource)
	if !ok {
		return false
	}
	_, err := ps.Parent()
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// hashPages hashes every pages-*.img of src into h, reading them.
func hashPages(src criuimg.Source, h *ckptdiff.PageHashes) error {
	names, err := src.Names()
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for _, name := range names {
		if !strings.HasPrefix(name, "pages-") || !strings.HasSuffix(name, ".img") {
			continue
		}
		f, err := src.Open(name)
		if err != nil {
			return err
		}
		for off := int64(0); off < f.Size(); {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), f.Size()-off)], off)
			h.Add(name, off, buf[:n])
			off += int64(n)
			if err != nil && (err != io.EOF || n == 0) {
				break // a damaged file: the rest has no hash (read, and fails, as without hashes)
			}
		}
		f.Close()
	}
	return nil
}

// lockedWriter serializes the writes of goroutines to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
