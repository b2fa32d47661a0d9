package criuimg

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/creds"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	criusa "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-sa"
	"google.golang.org/protobuf/proto"
)

func sa(h uint64) *criusa.SaEntry {
	return &criusa.SaEntry{Sigaction: proto.Uint64(h), Flags: proto.Uint64(0), Restorer: proto.Uint64(0), Mask: proto.Uint64(0)}
}

// CRIU skips SIGKILL and SIGSTOP: entry 8 is signal 10, entry 17 is 20,
// the last (61) is 64.
func TestSigActionsNumbering(t *testing.T) {
	ce := &criucore.CoreEntry{Tc: &criucore.TaskCoreEntry{}}
	for i := 0; i < 62; i++ {
		ce.Tc.Sigactions = append(ce.Tc.Sigactions, sa(uint64(0x1000+i)))
	}
	got, err := SigActions(1, ce)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ i, sig int }{{0, 1}, {7, 8}, {8, 10}, {16, 18}, {17, 20}, {61, 64}} {
		if got[c.i].Signal != c.sig || got[c.i].Handler != uint64(0x1000+c.i) {
			t.Errorf("entry %d: signal %d handler %#x, want signal %d", c.i, got[c.i].Signal, got[c.i].Handler, c.sig)
		}
	}
	ce.Tc.Sigactions = append(ce.Tc.Sigactions, sa(0))
	if _, err := SigActions(1, ce); err == nil {
		t.Error("63 sigactions accepted")
	}
	ce.Tc.Sigactions = []*criusa.SaEntry{{Sigaction: proto.Uint64(5), CompatSigaction: proto.Bool(true)}}
	if _, err := SigActions(1, ce); err == nil {
		t.Error("a compat sigaction accepted")
	}
}

func TestThreadCreds(t *testing.T) {
	mk := func(eff []uint32, mode criucore.SeccompMode) *Thread {
		return &Thread{Tid: 7, Core: &criucore.CoreEntry{ThreadCore: &criucore.ThreadCoreEntry{SeccompMode: mode.Enum(),
			Creds: &creds.CredsEntry{Uid: proto.Uint32(1000), CapEff: eff, NoNewPrivs: proto.Uint32(1)}}}}
	}
	c, err := ThreadCreds(mk([]uint32{1 << 21, 1 << 8}, criucore.SeccompMode_filter))
	if err != nil {
		t.Fatal(err)
	}
	if c.Effective != 1<<21|1<<40 || c.UID != 1000 || !c.NoNewPrivs || c.Seccomp != SeccompFilter {
		t.Errorf("%+v", c)
	}
	if _, err := ThreadCreds(mk([]uint32{1, 2, 3}, 0)); err == nil {
		t.Error("a 3-word capability set accepted")
	}
	if _, err := ThreadCreds(&Thread{Tid: 7, Core: &criucore.CoreEntry{}}); err == nil {
		t.Error("no creds accepted")
	}
}

// Any core entry: no panic, and what is returned is in range.
func FuzzCoreCreds(f *testing.F) {
	ce := &criucore.CoreEntry{Tc: &criucore.TaskCoreEntry{Sigactions: []*criusa.SaEntry{sa(0x401000), sa(1)}},
		ThreadCore: &criucore.ThreadCoreEntry{Creds: &creds.CredsEntry{CapEff: []uint32{0xffffffff, 0x1ff}}, SeccompMode: criucore.SeccompMode_filter.Enum()}}
	b, _ := proto.Marshal(ce)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		ce := &criucore.CoreEntry{}
		if proto.Unmarshal(b, ce) != nil {
			return
		}
		if c, err := ThreadCreds(&Thread{Tid: 1, Core: ce}); err == nil && c.Seccomp > SeccompFilter {
			t.Fatalf("seccomp mode %d", c.Seccomp)
		}
		sas, err := SigActions(1, ce)
		if err == nil {
			for _, s := range sas {
				if s.Signal < 1 || s.Signal > 64 || s.Signal == 9 || s.Signal == 19 {
					t.Fatalf("signal %d", s.Signal)
				}
			}
		}
	})
}
