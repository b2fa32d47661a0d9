package criuimg

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"google.golang.org/protobuf/proto"
)

// TestLoaderProblems: a problem of the images of the real threads-c
// checkpoint (pid 32484, threads 32487-32489) is, for SalvageProcess, one
// SalvageError with its part, thread and loss, and, for LoadProcess, the
// error: "pid N: " and the same problem (the policy is applied once to
// what the loader's steps found).
func TestLoaderProblems(t *testing.T) {
	var sound *memSource
	for _, s := range loadFixtures(t) {
		if _, ok := s.files["core-32487.img"]; ok {
			sound = s
			break
		}
	}
	if sound == nil {
		t.Fatal("no threads-c fixture")
	}
	const pid = 32484
	plus := func(name string) *memSource {
		return sound.with(name, append(slices.Clone(sound.files[name]), 1, 2, 3))
	}
	emptyVMA := func() *memSource {
		b := sound.files["mm-32484.img"]
		m := &mm.MmEntry{}
		if err := proto.Unmarshal(b[12:], m); err != nil {
			t.Fatal(err)
		}
		m.Vmas[2].End = proto.Uint64(m.Vmas[2].GetStart())
		return sound.with("mm-32484.img", entryImage(t, b[:8], m))
	}
	tests := []struct {
		name    string
		src     *memSource
		part    Part
		tid     uint32
		lost    Loss
		text    string // the problem's text, without what is lost
		threads int
		vmas    int // mappings lost
	}{
		{"task core trailing bytes", plus("core-32484.img"), PartNone, pid, LossIgnored, "core-32484.img: entry 1 at offset", 4, 0},
		{"thread core trailing bytes", plus("core-32488.img"), PartNone, 32488, LossIgnored, "thread 32488: core-32488.img: entry 1 at offset", 4, 0},
		{"thread core missing", sound.with("core-32488.img", nil), PartThread, 32488, LossNone, "thread 32488: open core-32488.img", 3, 0},
		{"mm trailing bytes", plus("mm-32484.img"), PartNone, 0, LossIgnored, "mm-32484.img: entry 1 at offset", 4, 0},
		{"empty mapping", emptyVMA(), PartNone, 0, LossMapping, "mm-32484.img: vma 2 [", 4, 1},
		{"mm missing", sound.with("mm-32484.img", nil), PartMM, 0, LossNone, "open mm-32484.img", 4, 0},
	}
	ref, err := Open(sound)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := ref.LoadProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ck, err := Open(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			sp, errs := ck.SalvageProcess(pid)
			if sp == nil || len(errs) != 1 {
				t.Fatalf("salvage: %v", errs)
			}
			defer sp.Close()
			var se *SalvageError
			if !errors.As(errs[0], &se) || se.Part != tc.part || se.Tid != tc.tid || se.Lost != tc.lost || !strings.HasPrefix(se.Err.Error(), tc.text) {
				t.Fatalf("salvage: %#v (%v)", errs[0], errs[0])
			}
			if want := se.Err.Error() + ": " + tc.lost.String(); tc.lost != LossNone && se.Error() != want {
				t.Errorf("salvage error %q, want %q", se.Error(), want)
			}
			if len(sp.Threads) != tc.threads || (sp.MM != nil && len(sp.VMAs) != len(rp.VMAs)-tc.vmas) {
				t.Errorf("salvage: %d threads, %d mappings", len(sp.Threads), len(sp.VMAs))
			}
			lp, err := ck.LoadProcess(pid)
			if lp != nil || err == nil || err.Error() != "pid 32484: "+se.Err.Error() {
				t.Errorf("strict: %v, %v; want the error %q", lp, err, "pid 32484: "+se.Err.Error())
			}
		})
	}
}

// entryImage is an image of header hdr (its magics) and the one entry m.
func entryImage(t *testing.T, hdr []byte, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.LittleEndian.AppendUint32(slices.Clone(hdr), uint32(len(b))), b...)
}
