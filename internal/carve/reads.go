package carve

import (
	"math"
	"path"
	"slices"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// Reads returns what Carve reads of process p's memory with opts (ck is
// the checkpoint p was loaded from): the address ranges, and the memfds
// whose whole contents are read. A caller that streams an archive keeps
// the pages under them and drops the rest (cmd/ckpt2core's report); a
// read outside them would fail, so each is a superset of what is read:
//
//   - the environment area (env), when it is at most MaxEnvArea bytes;
//   - for bash (recoversHistory), the whole address space: bashhist
//     finds the history's entries in the heap, and they point anywhere;
//   - every memfd of the checkpoint (memfd, and exe when the executable
//     is one), whoever holds it: the list is the same for every process.
//
// Every other kind is read from images, not from process memory. A
// process that Carve does not examine (another than opts.Pid) reads no
// memory but the memfds.
func Reads(ck *criuimg.Checkpoint, p *criuimg.Process, opts Options) ([]inspect.Range, []criuimg.MemfdInode) {
	if p == nil {
		return nil, nil
	}
	want := func(k Kind) bool { return len(opts.Kinds) == 0 || slices.Contains(opts.Kinds, k) }
	var out []inspect.Range
	if opts.Pid == 0 || opts.Pid == p.Pid {
		if want(KindEnv) && p.MM != nil {
			if s, e := p.MM.GetMmEnvStart(), p.MM.GetMmEnvEnd(); s < e && e-s <= MaxEnvArea {
				out = append(out, inspect.Range{Start: s, End: e})
			}
		}
		if want(KindHistory) && recoversHistory(p) {
			out = append(out, inspect.Range{Start: 0, End: math.MaxUint64})
		}
	}
	var memfds []criuimg.MemfdInode
	if (want(KindMemfd) || want(KindExe)) && ck.HasMemfds() {
		memfds, _ = ck.ReadMemfdInodes() // unreadable: Carve reads none either
	}
	return out, memfds
}

// recoversHistory reports whether Carve recovers p's bash history: its
// comm or executable is bash.
func recoversHistory(p *criuimg.Process) bool {
	return p.Comm == "bash" || path.Base(p.ExePath) == "bash"
}
