package memsearch_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/imgtest/archived"
	"github.com/ckpt2core/ckpt2core/internal/memsearch"
)

// TestSetEqualsSingle: on every process of the intrusion fixture, a Set's
// hits of each pattern are exactly (addresses, in order) those of a
// search for the pattern alone, with and without case folding, with the
// default buffer and a 4 KiB one (matches across buffer refills), for
// patterns that overlap each other, repeat, prefix one another and are
// all zeros.
func TestSetEqualsSingle(t *testing.T) {
	ck := archived.Images(t, imgtest.IntrusionArchive("after.tar.zst"))
	pats := [][]byte{
		[]byte("INTRV_"), []byte("INTRV_TASK_e6a1b3c9"), []byte("TASK"), []byte("intrv_rwx"),
		[]byte("id"), []byte("ls -la /tmp/.font-unix"), []byte("/tmp/.font-unix"), []byte("font"),
		[]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x00"), []byte("aa"), []byte("aaa"), []byte("ELF"),
		[]byte("/bin/"), []byte("TASK"), []byte("\x48\xb8"), []byte("LD_PRELOAD="),
	}
	for _, fold := range []bool{false, true} {
		set, err := memsearch.NewSet(pats, fold)
		if err != nil {
			t.Fatal(err)
		}
		for _, buf := range []int{0, 4096} {
			s := memsearch.Searcher{BufSize: buf}
			total := 0
			for _, pid := range ck.Pids() {
				p, err := ck.LoadProcess(pid)
				if err != nil {
					t.Fatal(err)
				}
				got := make([][]uint64, len(pats))
				if err := s.Search(p, set, func(h memsearch.Hit) error {
					got[h.Pattern] = append(got[h.Pattern], h.Addr)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				for i, pat := range pats {
					m, _ := memsearch.NewLiteral(pat, fold)
					var want []uint64
					if err := s.Search(p, m, func(h memsearch.Hit) error { want = append(want, h.Addr); return nil }); err != nil {
						t.Fatal(err)
					}
					g := got[set.First(i)]
					slices.Sort(g)
					if !slices.Equal(g, want) {
						t.Errorf("fold %v buf %d pid %d pattern %q: %d hits, alone %d", fold, buf, pid, pat, len(g), len(want))
					}
					total += len(want)
				}
				p.Close()
			}
			if total < 100 {
				t.Errorf("only %d hits in all: the test proves little", total)
			}
		}
	}
}

func TestNewSetRefusals(t *testing.T) {
	for _, tt := range []struct {
		pats [][]byte
		fold bool
	}{
		{nil, false},
		{[][]byte{[]byte("a"), {}}, false},
		{[][]byte{[]byte("é")}, true},
		{[][]byte{make([]byte, memsearch.MaxPatternLen+1)}, false},
	} {
		if _, err := memsearch.NewSet(tt.pats, tt.fold); err == nil {
			t.Errorf("%q fold %v: no error", tt.pats, tt.fold)
		}
	}
}

// BenchmarkSet: 1000 patterns over the intrusion fixture's pid 68.
func BenchmarkSet(b *testing.B) {
	ck := archived.Images(b, imgtest.IntrusionArchive("after.tar.zst"))
	p, err := ck.LoadProcess(68)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var pats [][]byte
	for i := 0; i < 1000; i++ {
		pats = append(pats, []byte(fmt.Sprintf("indicator-%04d.example", i)))
	}
	set, _ := memsearch.NewSet(pats, false)
	for b.Loop() {
		memsearch.Searcher{}.Search(p, set, func(memsearch.Hit) error { return nil })
	}
}
