package triage

import (
	"math"
	"slices"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// Reads returns what Run reads of process p (loaded from ck) with opts,
// besides inspect's report (inspect.Reads says what that reads): the
// address ranges of p's memory, and the memfds whose whole contents are
// read. A caller that streams an archive keeps the pages under them and
// drops the rest (cmd/ckpt2core); a read outside them would fail, so
// each range is a superset of what the rule reads:
//
//   - every executable mapping (not a kernel one): the excerpt of its
//     first captured run (wx-memory and anon-exec evidence);
//   - a private executable file mapping: all its captured pages
//     (modified-code: an excerpt of each run, and with Options.Files
//     every page compared with the file);
//   - the excerpt of the argument area (name-spoof);
//   - the excerpt at each installed signal handler (signal-handler);
//   - for bash (readsHistory), the whole address space: the history's
//     entries are found in the heap but point anywhere;
//   - the executable's memfd, when it is one (memfd-exe).
//
// A process that Run does not examine (not in opts.Pids, a zombie) reads
// nothing.
func Reads(ck *criuimg.Checkpoint, p *criuimg.Process, opts Options) ([]inspect.Range, []criuimg.MemfdInode) {
	if p == nil || p.Zombie() || (len(opts.Pids) > 0 && !slices.Contains(opts.Pids, p.Pid)) {
		return nil, nil
	}
	var out []inspect.Range
	add := func(s, e uint64) {
		if e > s {
			out = append(out, inspect.Range{Start: s, End: e})
		}
	}
	if readsHistory(p) {
		out = append(out, inspect.Range{Start: 0, End: math.MaxUint64}) // the whole address space
	}
	for i := range p.VMAs {
		v := &p.VMAs[i]
		examined, _, fileBacked := execMapping(p, v)
		if !examined {
			continue
		}
		runs := captured(p, v)
		if len(runs) > 0 {
			add(runs[0][0], excerptEnd(runs[0][0], runs[0][1]))
		}
		if fileBacked && v.Flags&criuimg.MapShared == 0 {
			for _, r := range runs {
				add(r[0], r[1])
			}
		}
	}
	if p.MM != nil {
		s := p.MM.GetMmArgStart()
		add(s, excerptEnd(s, p.MM.GetMmArgEnd()))
	}
	if p.Task != nil {
		sas, _ := criuimg.SigActions(p.Pid, p.Task)
		for _, sa := range sas {
			if v, ok := p.FindVMA(sa.Handler); ok && sa.Installed() {
				add(sa.Handler, excerptEnd(sa.Handler, v.End))
			}
		}
	}
	var memfds []criuimg.MemfdInode
	if p.MM != nil {
		id := p.MM.GetExeFileId()
		if _, err := ck.MemfdName(id); err == nil {
			if in, ok, _ := memfdInode(ck, id, p.PageSize); ok {
				memfds = append(memfds, in)
			}
		}
	}
	return out, memfds
}
