package elfcore

import (
	"bytes"
	"cmp"
	"debug/elf"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// namedSrc is a piece source with a name, as criuimg's image files have.
type namedSrc struct {
	*bytes.Reader
	name string
}

func (n namedSrc) Name() string { return n.name }
func (n namedSrc) Close() error { return nil }

// stagedPlans returns a plan of two segments (one with a hole) over
// pages, with notes of notesLen bytes, and the page size.
func stagedPlan(pages namedSrc, notesLen int, extraSeg bool) *Plan {
	const page = 4096
	p := &Plan{Machine: elf.EM_X86_64, PageSize: page,
		Notes: []Note{{Name: noteCore, Type: 1, Desc: bytes.Repeat([]byte{0xa5}, notesLen)}},
		Segments: []Segment{
			{Vaddr: 0x10000, Memsz: 8 * page, Filesz: 8 * page, Flags: elf.PF_R | elf.PF_W, Pieces: []Piece{
				{Off: 0, Len: 2 * page, Src: pages, SrcOff: 0},
				{Off: 5 * page, Len: 3 * page, Src: pages, SrcOff: 2 * page},
			}},
			{Vaddr: 0x40000, Memsz: 4 * page, Filesz: 0, Flags: elf.PF_R},
			{Vaddr: 0x50000, Memsz: 3 * page, Filesz: 3 * page, Flags: elf.PF_R | elf.PF_X, Pieces: []Piece{
				{Off: 0, Len: 3 * page, Src: pages, SrcOff: 5 * page},
			}},
		}}
	if extraSeg {
		p.Segments = append(p.Segments, Segment{Vaddr: 0x90000, Memsz: page, Filesz: page, Flags: elf.PF_R,
			Pieces: []Piece{{Off: 0, Len: page, Src: pages, SrcOff: 0}}})
	}
	return p
}

func isTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// TestStagedFinish stages the data of a provisional plan and finishes it
// with final plans whose notes are the same size, larger (the data moves
// by a page: room inserted, or a rewrite where the filesystem cannot),
// smaller by a page or whose segments differ (rewrites): the core equals
// what Write makes of the final plan, every way.
func TestStagedFinish(t *testing.T) {
	const page = 4096
	data := make([]byte, 8*page)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	pages := func() namedSrc { return namedSrc{bytes.NewReader(data), "pages-1.img"} }
	dirs := []string{t.TempDir()}
	if isTmpfs("/dev/shm") {
		d, err := os.MkdirTemp("/dev/shm", "elfcore-staged-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs = append(dirs, d)
		}
	}
	for _, dir := range dirs {
		noInsert := isTmpfs(dir)
		for _, tc := range []struct {
			name     string
			prov     int // the provisional notes' size (0: 80)
			notes    int
			extraSeg bool
			rewrite  bool
			how      FinishHow
			why      error
		}{
			{"same size", 0, 100, false, false, InPlace, nil},
			{"larger notes", 0, 3 * page, false, false, Inserted, nil},
			{"smaller notes", 3 * page, 100, false, false, Rewritten, ErrLayoutChanged},
			{"asked to rewrite", 0, 100, false, true, Rewritten, ErrRewriteAsked},
			{"segments differ", 0, 100, true, false, Rewritten, ErrLayoutChanged},
		} {
			t.Run(filepath.Base(dir)+"/"+tc.name, func(t *testing.T) {
				if tc.how == Inserted && noInsert {
					tc.how, tc.why = Rewritten, ErrNoInsert
				}
				out := filepath.Join(dir, tc.name)
				if err := os.Mkdir(out, 0o700); err != nil {
					t.Fatal(err)
				}
				prov := stagedPlan(pages(), cmp.Or(tc.prov, 80), false)
				s, err := StageFile(out, "core.1", prov, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Discard()
				// The staged source gives back the pages the pieces hold,
				// and refuses the others.
				src := s.Source(prov.Segments[0].Pieces[0].Src.(namedSrc))
				got := make([]byte, len(data))
				if n, err := src.ReadAt(got, 0); err != nil || n != len(data) || !bytes.Equal(got, data) {
					t.Fatalf("staged source: %d bytes, %v; equal %v", n, err, bytes.Equal(got, data))
				}
				// Another source of the same name (a parent checkpoint's
				// pages file) has none of them.
				if _, err := s.Source(pages()).ReadAt(got[:1], 0); !errors.Is(err, ErrNotStaged) {
					t.Errorf("another source: %v, want ErrNotStaged", err)
				}

				final := stagedPlan(namedSrc{bytes.NewReader(data), "pages-1.img"}, tc.notes, tc.extraSeg)
				how, why, err := s.Finish(final, tc.rewrite)
				if err != nil {
					t.Fatal(err)
				}
				if how != tc.how || !errors.Is(why, tc.why) || (tc.why == nil && why != nil) {
					t.Errorf("finished %v (%v), want %v (%v)", how, why, tc.how, tc.why)
				}
				ref, err := os.Create(filepath.Join(t.TempDir(), "ref"))
				if err != nil {
					t.Fatal(err)
				}
				defer ref.Close()
				if err := stagedPlan(pages(), tc.notes, tc.extraSeg).Write(ref, nil); err != nil {
					t.Fatal(err)
				}
				want, _ := os.ReadFile(ref.Name())
				core, err := os.ReadFile(filepath.Join(out, "core.1"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(core, want) {
					t.Errorf("the core (%d bytes) differs from Write's (%d bytes)", len(core), len(want))
				}
				if ents, _ := os.ReadDir(out); len(ents) != 1 {
					t.Errorf("%d files in the output directory, want the core only", len(ents))
				}
			})
		}
	}
}

// TestStagedDiscard: a staged core never finished leaves nothing.
func TestStagedDiscard(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 8*4096)
	s, err := StageFile(dir, "core.1", stagedPlan(namedSrc{bytes.NewReader(data), "pages-1.img"}, 80, false), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Discard()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left: %v", ents)
	}
	if err := os.WriteFile(filepath.Join(dir, "core.2"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := StageFile(dir, "core.2", stagedPlan(namedSrc{bytes.NewReader(data), "pages-1.img"}, 80, false), false, nil); !errors.Is(err, ErrExists) {
		t.Errorf("staging over a file: %v, want ErrExists", err)
	}
}
