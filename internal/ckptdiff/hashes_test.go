package ckptdiff

import (
	"encoding/json"
	"hash/maphash"
	"io"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/synth"
)

// withHashes returns c with the hashes of its pages files, fed to Add
// in chunks of chunk bytes (not a multiple of HashBlock: blocks span
// calls).
func withHashes(t *testing.T, c *Checkpoint, seed maphash.Seed, chunk int) *Checkpoint {
	t.Helper()
	h := NewPageHashes(seed)
	src := c.Images.Src
	names, err := src.Names()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if !strings.HasPrefix(name, "pages-") {
			continue
		}
		f, err := src.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(io.NewSectionReader(f, 0, f.Size()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(b); off += chunk {
			h.Add(name, int64(off), b[off:min(off+chunk, len(b))])
		}
	}
	cc := *c
	cc.Hashes = h
	return &cc
}

// TestDiffByHashes: Diff with the page hashes of both sides (as a
// compressed archive's are computed while it streams) gives exactly the
// Result it gives reading every page, for each edge case and the
// synthetic checkpoint with every 5th page changed; and Plan lists, of
// A and B, exactly the pages that differ (and those B alone captured).
func TestDiffByHashes(t *testing.T) {
	const size, every = 64 * synth.PageSize, 5
	type pair struct {
		name  string
		a, b  *Checkpoint
		bytes [2]int64 // what Plan lists of A and of B
	}
	var pairs []pair
	for _, e := range []struct {
		name  string
		edit  func(*shape)
		bytes [2]int64
	}{
		{"same", func(*shape) {}, [2]int64{0, 0}},
		{"one byte", func(s *shape) {
			s.heapPage = append([]byte(nil), s.heapPage...)
			s.heapPage[0x100] = 'X'
		}, [2]int64{4096, 4096}},
		{"newly captured", func(s *shape) { s.heapEnd += 8 * 4096; s.extraPages = true }, [2]int64{0, 4096}},
		{"another exe", func(s *shape) { s.exe, s.argv = "/tmp/implant", []string{"implant"} }, [2]int64{0, 0}},
	} {
		sb := base()
		e.edit(&sb)
		pairs = append(pairs, pair{e.name, build(t, base()), build(t, sb), e.bytes})
	}
	load := func(s *synth.Shape) *Checkpoint {
		dir := s.WriteTemp(t)
		return loadDir(t, dir)
	}
	// synth.Large's captured pages: 4 mappings of size/4 pages; marked,
	// those whose address is a multiple of every pages.
	pairs = append(pairs, pair{"synthetic", load(synth.Large(size)), load(synth.LargeChanged(size, every)), [2]int64{-1, -1}})
	for _, pr := range pairs {
		for _, chunk := range []int{1000, 1 << 20} {
			opts := Options{Strings: 1000, ShowUnchanged: true}
			want, err := Diff(pr.a, pr.b, opts)
			if err != nil {
				t.Fatal(err)
			}
			seed := maphash.MakeSeed()
			ha, hb := withHashes(t, pr.a, seed, chunk), withHashes(t, pr.b, seed, chunk)
			got, err := Diff(ha, hb, opts)
			if err != nil {
				t.Fatal(err)
			}
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if string(wj) != string(gj) {
				t.Errorf("%s, chunks of %d: by hashes\n%s\nreading every page\n%s", pr.name, chunk, gj, wj)
			}
			ra, rb, err := Plan(ha, hb, opts)
			if err != nil {
				t.Fatal(err)
			}
			n := [2]int64{}
			for i, r := range []Reads{ra, rb} {
				for _, rs := range r {
					for _, x := range rs {
						n[i] += x[1] - x[0]
					}
				}
			}
			wantBytes := pr.bytes
			if wantBytes[0] < 0 {
				changed := int64(want.Summary.PagesChanged) * synth.PageSize
				wantBytes = [2]int64{changed, changed}
				if changed == 0 {
					t.Errorf("synthetic: no page changed")
				}
			}
			if n != wantBytes {
				t.Errorf("%s, chunks of %d: Plan lists %d bytes of A and %d of B, want %v", pr.name, chunk, n[0], n[1], wantBytes)
			}
		}
	}
}

// loadDir decodes the image directory dir as ckpt2core diff does.
func loadDir(t *testing.T, dir string) *Checkpoint {
	t.Helper()
	ck, err := criuimg.SalvageOpen(imgtest.DirSource(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.Inspect(ck, inspect.Options{Env: true})
	if err != nil {
		t.Fatal(err)
	}
	return &Checkpoint{Report: rep, Images: ck}
}
