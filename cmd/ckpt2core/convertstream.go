package main

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/elfcore"
)

// Conversion of a compressed archive while it streams: the page data of
// each core is written once, into the core, as the pages stream.
//
// Podman's writer sorts the member names, so pstree.img (the thread
// list, hence the size of the notes and the offset of the core's data)
// comes after the pages. The processes are therefore first those with an
// mm-<pid>.img read before the first pages file (openStreamTree), each
// with its main thread, one at a time in the order of their pages files
// in the archive (searchOrder): the segments of its
// core (which depend on its mappings and pagemaps only) are staged into
// its output file, at offsets from the data offset of that provisional
// plan, while its pages file streams (read once, in order: Consume). Once
// the archive is read, the real plan of each staged process is built
// (its pr_psargs read from the staged data) and its header and notes are
// put in front: in place if they fit (one thread, or pstree.img came
// first), else after inserting room (FALLOC_FL_INSERT_RANGE, ext4 and
// xfs); where that cannot be done the core is written anew from the
// staged data (-v says so). The processes not staged (zombies, those whose
// images came late, those whose provisional loading failed) are converted
// afterwards as without streaming, from the pages the stream kept.

// stagedCore is a process whose core's data is staged.
type stagedCore struct {
	comm  string
	core  *elfcore.Staged
	pages criuimg.File // its private pages image, consumed by the staging
	err   error        // the staging failed after the pages were consumed
}

// convertStreamed converts the processes of cv (a compressed archive
// streaming; see above) named in pids (every one if none) into dir.
// rewrite writes every staged core anew (to test that path). An error is
// fatal to the run (the archive is truncated, say), with the exit status
// to use; nothing is then left in dir.
func convertStreamed(cv *conversion, pids []uint, dir string, force, rewrite, verbose bool, stderr io.Writer) ([]convertResult, int, error) {
	src := cv.src
	a := streamedArchive(src)
	prov, _, err := openStreamTree(src)
	if err != nil {
		a.Wait() // the stream's own error, if it failed
		return nil, openStatus(err), err
	}
	wanted := func(pid uint32) bool { return len(pids) == 0 || slices.Contains(pids, uint(pid)) }
	var provWant []uint32
	for _, info := range prov.Procs {
		if wanted(info.Pid) {
			provWant = append(provWant, info.Pid)
		}
	}
	dropUnwanted(src, prov, provWant)
	staged := map[uint32]*stagedCore{}
	defer func() {
		for _, s := range staged {
			if s.core != nil {
				s.core.Discard()
			}
		}
	}()
	for _, i := range searchOrder(src, provWant) {
		pid := provWant[i]
		if s := stageCore(prov, a, pid, dir, force); s != nil {
			staged[pid] = s
		}
	}

	err = a.Wait()
	cv.endBar()
	if verbose {
		for _, n := range a.Notes() {
			complain(stderr, "", "%s", safe(n))
		}
	}
	if err != nil {
		return nil, openStatus(err), err
	}
	full, err := criuimg.Open(src)
	if err != nil {
		return nil, exitFailed, err
	}
	want, err := selectPids(full, pids)
	if err != nil {
		return nil, exitUsage, err
	}
	ov := &stagedSource{Source: src, files: map[string]criuimg.File{}}
	for _, s := range staged {
		if s.core != nil && s.pages != nil {
			ov.files[s.pages.Name()] = s.core.Source(s.pages)
		}
	}
	ovck, err := criuimg.Open(ov)
	if err != nil {
		return nil, exitFailed, err
	}
	results := make([]convertResult, len(want))
	for i, pid := range want {
		s := staged[pid]
		switch {
		case s == nil:
			results[i] = convertOne(full, pid, dir, force, cv.opts, nil)
		case s.err != nil:
			results[i] = convertResult{pid: pid, comm: s.comm, err: s.err}
		default:
			var how elfcore.FinishHow
			var why error
			results[i], how, why = finishStaged(ovck, pid, s, dir, cv.opts, rewrite)
			if verbose && how == elfcore.Rewritten && results[i].err == nil {
				complain(stderr, "", "pid %d: core written anew from the data staged while the archive streamed: %v", pid, why)
			}
		}
	}
	return results, exitOK, nil
}

// stageCore stages the core's data of process pid of the provisional tree
// ck while its pages stream. It returns nil when the process is left to
// the conversion after the stream (its loading or planning failed: the
// same will happen then, with the real tree), else the staged core or
// the error that ended the staging.
func stageCore(ck *criuimg.Checkpoint, a *archive.Checkpoint, pid uint32, dir string, force bool) *stagedCore {
	p, err := ck.LoadProcess(pid)
	if p != nil {
		defer p.Close() // a consumed pages file: the rest of it is dropped
	}
	if err != nil || p.Mem == nil {
		return nil
	}
	plan, err := elfcore.BuildWith(p, elfcore.Options{NoMemory: true})
	if err != nil {
		return nil
	}
	s := &stagedCore{comm: p.Comm}
	if priv := p.Mem.Private(); priv != nil && priv.Pages != nil {
		s.pages = priv.Pages
		a.Consume(s.pages.Name())
	}
	s.core, err = elfcore.StageFile(dir, fmt.Sprintf("core.%d", pid), plan, force, nil)
	if err != nil {
		s.core, s.err = nil, coreFileError(err)
	}
	return s
}

// finishStaged builds the real plan of staged process pid, from ck (whose
// source serves the process's pages from the staged data), and completes
// its core. how and why are Staged.Finish's.
func finishStaged(ck *criuimg.Checkpoint, pid uint32, s *stagedCore, dir string, opts elfcore.Options, rewrite bool) (res convertResult, how elfcore.FinishHow, why error) {
	res.pid, res.comm = pid, s.comm
	defer s.core.Discard()
	defer func() {
		if r := recover(); r != nil {
			res.err = fmt.Errorf("internal error (please report): %v", r)
		}
	}()
	p, plan := planCore(ck, pid, opts, &res)
	if p != nil {
		defer p.Close()
	}
	if plan == nil {
		return res, how, why
	}
	how, why, err := s.core.Finish(plan, rewrite)
	if err != nil {
		res.err = coreFileError(err)
		return res, how, why
	}
	res.size = plan.Size()
	res.path = filepath.Join(dir, fmt.Sprintf("core.%d", pid))
	return res, how, why
}

// stagedSource is a checkpoint's images with some pages images served
// from staged cores (Staged.Source) instead.
type stagedSource struct {
	criuimg.Source
	files map[string]criuimg.File
}

func (s *stagedSource) Open(name string) (criuimg.File, error) {
	if f, ok := s.files[name]; ok {
		return f, nil // its Close does nothing
	}
	return s.Source.Open(name)
}

// Parent is the parent checkpoint's images (criuimg.ParentSource), if the
// checkpoint has one.
func (s *stagedSource) Parent() (criuimg.Source, error) {
	if ps, ok := s.Source.(criuimg.ParentSource); ok {
		return ps.Parent()
	}
	return nil, fmt.Errorf("%s: no parent checkpoint: %w", s, fs.ErrNotExist)
}
