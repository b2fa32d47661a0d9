package carve_test

import (
	"math"
	"path"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/carve"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// TestReads: on the intrusion fixture (a bash, a memfd payload), what
// Carve reads of each process follows Options: the environment area of
// every process, a bash's whole address space, the memfds for every
// process; nothing of a process other than Options.Pid (but the memfds);
// no memory with Kinds that read none. (That Reads covers every byte
// Carve reads is checked in cmd/ckpt2core, TestTriageReadsCover.)
func TestReads(t *testing.T) {
	ck, _ := openAfter(t)
	var bash, other *criuimg.Process
	for _, info := range ck.Procs {
		p, err := ck.LoadProcess(info.Pid)
		if err != nil || p.Zombie() {
			continue
		}
		t.Cleanup(func() { p.Close() })
		isBash := p.Comm == "bash" || path.Base(p.ExePath) == "bash"
		if isBash && bash == nil {
			bash = p
		} else if !isBash && other == nil && p.MM.GetMmEnvEnd() > p.MM.GetMmEnvStart() {
			other = p
		}
	}
	if bash == nil || other == nil {
		t.Fatalf("no bash or no other live process in the fixture")
	}
	whole := inspect.Range{Start: 0, End: math.MaxUint64}
	env := inspect.Range{Start: other.MM.GetMmEnvStart(), End: other.MM.GetMmEnvEnd()}
	tests := []struct {
		name       string
		p          *criuimg.Process
		opts       carve.Options
		want       []inspect.Range
		wantMemfds bool
	}{
		{"bash", bash, carve.Options{}, []inspect.Range{{Start: bash.MM.GetMmEnvStart(), End: bash.MM.GetMmEnvEnd()}, whole}, true},
		{"other", other, carve.Options{}, []inspect.Range{env}, true},
		{"another pid", other, carve.Options{Pid: bash.Pid}, nil, true},
		{"ghosts only", bash, carve.Options{Kinds: []carve.Kind{carve.KindGhost}}, nil, false},
		{"history only", bash, carve.Options{Kinds: []carve.Kind{carve.KindHistory}}, []inspect.Range{whole}, false},
	}
	for _, tt := range tests {
		rs, memfds := carve.Reads(ck, tt.p, tt.opts)
		if len(rs) != len(tt.want) {
			t.Errorf("%s: ranges %v, want %v", tt.name, rs, tt.want)
		} else {
			for i := range rs {
				if rs[i] != tt.want[i] {
					t.Errorf("%s: ranges %v, want %v", tt.name, rs, tt.want)
				}
			}
		}
		if (len(memfds) > 0) != tt.wantMemfds {
			t.Errorf("%s: %d memfds, want some: %v", tt.name, len(memfds), tt.wantMemfds)
		}
	}
}
