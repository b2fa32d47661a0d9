package inspect

import (
	"math"
	"slices"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Range is an address range [Start, End) of a process's memory.
type Range struct{ Start, End uint64 }

// codeBefore and codeAfter bound the bytes around a thread's PC that
// Inspect reads: x86Thread reads [PC-2, PC+15), arm64Thread [PC-4, PC+4).
const (
	codeBefore = 16
	codeAfter  = 16
)

// Reads returns the address ranges of p's memory that Inspect reads of it
// with opts: the argument area (and the title that may run from it into
// the environment area, readArgv), with Env the environment area, each
// at most MaxArgBytes, and the code around every thread's PC. A caller
// that streams an archive keeps the pages under them and drops the rest
// (cmd/ckpt2core: inspect and triage); a read outside them would fail.
// A process not in opts.Pids (when set), a zombie or one without mm
// reads nothing.
func Reads(p *criuimg.Process, opts Options) []Range {
	if p == nil || p.Zombie() || (len(opts.Pids) > 0 && !slices.Contains(opts.Pids, p.Pid)) {
		return nil
	}
	var out []Range
	add := func(s, e uint64) {
		if e > s {
			out = append(out, Range{s, e})
		}
	}
	if p.MM != nil {
		as, ae := p.MM.GetMmArgStart(), p.MM.GetMmArgEnd()
		add(as, cappedEnd(as, ae))
		if ae > as {
			add(ae-1, ae) // readArgv: is the area's last byte NUL?
			add(as, titleEnd(p))
		}
		if opts.Env {
			es, ee := p.MM.GetMmEnvStart(), p.MM.GetMmEnvEnd()
			add(es, cappedEnd(es, ee))
		}
	}
	for i := range p.Threads {
		if pc, ok := threadPC(p, &p.Threads[i]); ok {
			add(pc-min(pc, codeBefore), pc+min(codeAfter, math.MaxUint64-pc))
		}
	}
	return out
}

// cappedEnd is where readStrings stops reading [start, end): at most
// MaxArgBytes.
func cappedEnd(start, end uint64) uint64 {
	if end > start && end-start > MaxArgBytes {
		return start + MaxArgBytes
	}
	return end
}

// titleEnd is the end of what readArgv reads of a process title written
// over the argument area: one page from mm_arg_start, within the
// environment area when it follows the arguments (get_mm_proctitle).
func titleEnd(p *criuimg.Process) uint64 {
	start, end := p.MM.GetMmArgStart(), p.MM.GetMmArgEnd()
	limit := end
	if envStart, envEnd := p.MM.GetMmEnvStart(), p.MM.GetMmEnvEnd(); envStart == end && envEnd >= envStart {
		limit = envEnd
	}
	page := p.PageSize
	if page == 0 || page > 1<<16 {
		page = 4096
	}
	if limit-start > page {
		limit = start + page
	}
	return limit
}

// threadPC is the PC of th (a thread of p) as threadReport reads it.
func threadPC(p *criuimg.Process, th *criuimg.Thread) (uint64, bool) {
	switch p.Arch {
	case criuimg.ArchX86_64:
		if r := th.Core.GetThreadInfo().GetGpregs(); r != nil {
			return r.GetIp(), true
		}
	case criuimg.ArchARM64:
		if r := th.Core.GetTiAarch64().GetGpregs(); r != nil {
			return r.GetPc(), true
		}
	}
	return 0, false
}
