package bashhist_test

import (
	"slices"
	"strconv"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/bashhist"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/imgtest/archived"
)

// The intrusion fixture's attacker shell (I12): the seven lines of
// recipe/history.txt, in order, each read at one of the addresses where
// the manifest found it in bash's heap.
func TestIntrusionHistory(t *testing.T) {
	m := imgtest.Intrusion(t)
	i := slices.IndexFunc(m.Indicators, func(x imgtest.Indicator) bool { return x.ID == "I12" })
	if i < 0 {
		t.Fatal("manifest has no I12")
	}
	want := m.Indicators[i]
	ck := archived.Images(t, imgtest.IntrusionArchive("after.tar.zst"))
	p := imgtest.LoadFrom(t, ck, want.PidOr(0))
	got, err := bashhist.Recover(p)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range got {
		lines = append(lines, e.Line)
	}
	if len(got) != len(want.Lines) {
		t.Fatalf("recovered %d entries %q, want the manifest's %d", len(got), lines, len(want.Lines))
	}
	var prev int64
	for k, w := range want.Lines {
		e := got[k]
		if e.Line != w.Line {
			t.Errorf("entry %d: %q, want %q", k, e.Line, w.Line)
		}
		if e.Index != k {
			t.Errorf("entry %d (%q): index %d in the history list", k, e.Line, e.Index)
		}
		if !slices.Contains(w.FoundAt, "0x"+strconv.FormatUint(e.LineAddr, 16)) {
			t.Errorf("entry %d (%q) read at %#x, not one of the manifest's %v", k, e.Line, e.LineAddr, w.FoundAt)
		}
		if e.Time < 1.7e9 || e.Time < prev {
			t.Errorf("entry %d: timestamp %d", k, e.Time)
		}
		prev = e.Time
	}
}

// Only bash keeps history lists: no other process of the fixture, nor the
// non-interactive bash -c loop (pid 57), yields an entry.
func TestIntrusionNoHistoryElsewhere(t *testing.T) {
	ck := archived.Images(t, imgtest.IntrusionArchive("after.tar.zst"))
	for _, pid := range ck.Pids() {
		if pid == 68 {
			continue
		}
		p := imgtest.LoadFrom(t, ck, pid)
		got, err := bashhist.Recover(p)
		if err != nil {
			t.Fatalf("pid %d: %v", pid, err)
		}
		if len(got) != 0 {
			t.Errorf("pid %d: %d entries, first %q", pid, len(got), got[0].Line)
		}
	}
}
