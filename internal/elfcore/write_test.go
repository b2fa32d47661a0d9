package elfcore

import (
	"bytes"
	"debug/elf"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// fileSrc is a piece source backed by a regular file, like criuimg's
// image files.
type fileSrc struct{ *os.File }

func (f fileSrc) OSFile() (*os.File, int64) { return f.File, 0 }

// TestWriteCopyFileRange checks that pieces from regular files are copied
// with copy_file_range (no buffered fallback), that other sources take the
// buffered path, and that bytes no piece covers stay holes.
func TestWriteCopyFileRange(t *testing.T) {
	dir := t.TempDir()
	const page = 4096
	data := make([]byte, 64*page)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	srcPath := filepath.Join(dir, "pages-1.img")
	if err := os.WriteFile(srcPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	const hole = 16 << 20 // untouched pages between the two pieces
	for _, tc := range []struct {
		name string
		src  interface {
			ReadAt([]byte, int64) (int, error)
		}
		buffered uint64
	}{
		{"file", fileSrc{src}, 0},
		{"reader", bytes.NewReader(data), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := &Plan{Machine: elf.EM_X86_64, PageSize: page, Segments: []Segment{{
				Vaddr: 0x10000, Memsz: 64*page + hole, Filesz: 64*page + hole, Flags: elf.PF_R | elf.PF_W,
				Pieces: []Piece{
					{Off: 0, Len: 32 * page, Src: tc.src, SrcOff: 0},
					{Off: 32*page + hole, Len: 32 * page, Src: tc.src, SrcOff: 32 * page},
				},
			}}}
			if err := plan.Layout(); err != nil {
				t.Fatal(err)
			}
			out, err := os.Create(filepath.Join(dir, "core."+tc.name))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			var progressed uint64
			var cs copyState
			if err := plan.write(out, func(n uint64) { progressed += n }, &cs); err != nil {
				t.Fatal(err)
			}
			if got := cs.buffered; got != tc.buffered {
				t.Errorf("%d pieces copied through a buffer, want %d", got, tc.buffered)
			}
			if progressed != 64*page {
				t.Errorf("progress told %d bytes, want %d", progressed, 64*page)
			}
			f, err := elf.NewFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var load *elf.Prog
			for _, p := range f.Progs {
				if p.Type == elf.PT_LOAD {
					load = p
				}
			}
			got := make([]byte, load.Filesz)
			if _, err := out.ReadAt(got, int64(load.Off)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:32*page], data[:32*page]) || !bytes.Equal(got[32*page+hole:], data[32*page:]) {
				t.Error("segment bytes differ from the pages")
			}
			if !bytes.Equal(got[32*page:32*page+hole], make([]byte, hole)) {
				t.Error("untouched pages are not zero")
			}
			var st syscall.Stat_t
			if err := syscall.Fstat(int(out.Fd()), &st); err != nil {
				t.Fatal(err)
			}
			if alloc := st.Blocks * 512; alloc > hole/2 {
				t.Errorf("%d bytes allocated for a core with a %d-byte hole: untouched pages were written", alloc, hole)
			}
		})
	}
}
