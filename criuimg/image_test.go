package criuimg_test

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/stats"
	"github.com/checkpoint-restore/go-criu/v8/magic"
	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"google.golang.org/protobuf/proto"
)

func TestMagicsMatchGoCriu(t *testing.T) {
	m := magic.LoadMagic()
	for _, c := range []struct {
		name string
		got  uint32
	}{
		{"IMG_COMMON", criuimg.MagicImgCommon},
		{"IMG_SERVICE", criuimg.MagicImgService},
		{"INVENTORY", criuimg.MagicInventory},
		{"PSTREE", criuimg.MagicPstree},
		{"CORE", criuimg.MagicCore},
		{"MM", criuimg.MagicMM},
		{"PAGEMAP", criuimg.MagicPagemap},
		{"FILES", criuimg.MagicFiles},
		{"STATS", criuimg.MagicStats},
		{"MEMFD_INODE", criuimg.MagicMemfdInode},
	} {
		want, ok := m.ByName[c.name]
		if !ok {
			t.Errorf("go-criu has no magic %s", c.name)
			continue
		}
		if uint64(c.got) != want {
			t.Errorf("%s: criuimg has %#x, go-criu %#x", c.name, c.got, want)
		}
	}
}

// imageKind gives the magic and entry type of an image file by name.
func imageKind(name string) (magic uint32, newMsg func(i int) proto.Message, ok bool) {
	switch {
	case name == "inventory.img":
		return criuimg.MagicInventory, func(int) proto.Message { return &inventory.InventoryEntry{} }, true
	case name == "pstree.img":
		return criuimg.MagicPstree, func(int) proto.Message { return &pstree.PstreeEntry{} }, true
	case name == "files.img":
		return criuimg.MagicFiles, func(int) proto.Message { return &fdinfo.FileEntry{} }, true
	case name == "memfd.img":
		return criuimg.MagicMemfdInode, func(int) proto.Message { return &memfd.MemfdInodeEntry{} }, true
	case name == "stats-dump":
		return criuimg.MagicStats, func(int) proto.Message { return &stats.StatsEntry{} }, true
	case strings.HasPrefix(name, "core-"):
		return criuimg.MagicCore, func(int) proto.Message { return &criucore.CoreEntry{} }, true
	case strings.HasPrefix(name, "mm-"):
		return criuimg.MagicMM, func(int) proto.Message { return &mm.MmEntry{} }, true
	case strings.HasPrefix(name, "pagemap-"):
		return criuimg.MagicPagemap, func(i int) proto.Message {
			if i == 0 {
				return &pagemap.PagemapHead{}
			}
			return &pagemap.PagemapEntry{}
		}, true
	}
	return 0, nil, false
}

// readAllEntries reads every entry of an image with Reader and returns the
// count.
func readAllEntries(src criuimg.Source, name string) (int, error) {
	magic, newMsg, _ := imageKind(name)
	f, err := src.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r, err := criuimg.NewReader(f, magic)
	if err != nil {
		return 0, err
	}
	for {
		i := r.Entry()
		if err := r.Next(newMsg(i)); err != nil {
			if err == io.EOF {
				if r.Offset() != f.Size() {
					return i, fmt.Errorf("EOF at offset %d of %d", r.Offset(), f.Size())
				}
				return i, nil
			}
			return i, err
		}
	}
}

// TestFramingRealImages reads every image of every fixture whose type
// criuimg knows, and checks the entry counts against an independent split
// of the file (imgtest.ReadEntries) and the manifests.
func TestFramingRealImages(t *testing.T) {
	for _, f := range loadFixtures(t) {
		t.Run(f.Arch+"/"+f.Name, func(t *testing.T) {
			src := imgtest.DirSource(t, f.Dir)
			names, err := src.Names()
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, name := range names {
				if _, _, ok := imageKind(name); !ok {
					continue
				}
				seen++
				n, err := readAllEntries(src, name)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				_, ents, err := imgtest.ReadEntries(filepath.Join(f.Dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if n != len(ents) || n == 0 {
					t.Errorf("%s: Reader read %d entries, the file has %d", name, n, len(ents))
				}
				if name == "pstree.img" && n != len(f.Procs) {
					t.Errorf("pstree.img: %d entries, manifest lists %d processes", n, len(f.Procs))
				}
			}
			// inventory, pstree, files, stats-dump, a core, mm and
			// pagemap per process at least.
			if seen < 4+3*len(f.Procs)-2 {
				t.Errorf("only %d known images", seen)
			}
		})
	}
}

type memFile struct {
	name string
	b    []byte
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (m *memFile) Close() error         { return nil }
func (m *memFile) Name() string         { return m.name }
func (m *memFile) Size() int64          { return int64(len(m.b)) }
func mf(name string, b []byte) *memFile { return &memFile{name, b} }

func TestFramingHeaderErrors(t *testing.T) {
	hdr := imgtest.HeaderWithCommon
	for _, c := range []struct {
		name  string
		b     []byte
		magic uint32
		want  string
	}{
		{"wrong image magic", imgtest.Header(criuimg.MagicMM), criuimg.MagicCore,
			"core-1.img: header at offset 4: magic 0x57492820, want 0x55053847"},
		{"wrong common magic", hdr(0x12345678, criuimg.MagicCore), criuimg.MagicCore,
			"core-1.img: header at offset 0: common magic 0x12345678"},
		{"inventory wrong magic", imgtest.Header(criuimg.MagicPstree)[4:], criuimg.MagicInventory,
			"core-1.img: header at offset 0: magic 0x50273030, want 0x58313116"},
		{"inventory magic as common magic", hdr(criuimg.MagicInventory, criuimg.MagicCore), criuimg.MagicCore,
			"core-1.img: header at offset 0: common magic 0x58313116"},
		{"empty file", nil, criuimg.MagicCore, "core-1.img: header at offset 0: short header (0 bytes)"},
		{"inside common magic", imgtest.Header(criuimg.MagicCore)[:3], criuimg.MagicCore, "core-1.img: header at offset 0: short header (3 bytes)"},
		{"inside image magic", imgtest.Header(criuimg.MagicCore)[:6], criuimg.MagicCore, "core-1.img: header at offset 0: short header (6 bytes)"},
		{"inventory inside magic", imgtest.Header(criuimg.MagicInventory)[:2], criuimg.MagicInventory, "core-1.img: header at offset 0: short header (2 bytes)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := criuimg.NewReader(mf("core-1.img", c.b), c.magic)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error %q, want prefix %q", err, c.want)
			}
			if !errors.Is(err, criuimg.ErrFormat) {
				t.Errorf("%v does not wrap ErrFormat", err)
			}
		})
	}
	// The service magic is accepted as common magic (stats-dump).
	if _, err := criuimg.NewReader(mf("stats-dump", hdr(criuimg.MagicImgService, criuimg.MagicStats)), criuimg.MagicStats); err != nil {
		t.Error(err)
	}
}

// TestFramingTruncated cuts real images at offsets inside the header,
// inside a size field and inside an entry.
func TestFramingTruncated(t *testing.T) {
	dir := filepath.Join("..", "testdata", "x86_64", "static-c", "images")
	path := filepath.Join(dir, "pstree.img")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, ents, err := imgtest.ReadEntries(path)
	if err != nil || len(ents) != 3 {
		t.Fatalf("pstree.img: %d entries, %v (the manifest has 3 processes)", len(ents), err)
	}
	e1, _ := imgtest.EntryOffset(path, 1)
	e2, _ := imgtest.EntryOffset(path, 2)
	for _, c := range []struct {
		name string
		cut  int64
		want string // "" : clean EOF after n entries
		n    int
	}{
		{"header only", 8, "", 0},
		{"inside first size field", 8 + 2, "pstree.img: entry 0 at offset 8: truncated size field (2 bytes left)", 0},
		{"after first size field", 8 + 4, fmt.Sprintf("pstree.img: entry 0 at offset 8: entry size %d exceeds the 0 bytes left", len(ents[0])), 0},
		{"inside first entry", 8 + 4 + 3, fmt.Sprintf("pstree.img: entry 0 at offset 8: entry size %d exceeds the 3 bytes left", len(ents[0])), 0},
		{"at the second entry", e1, "", 1},
		{"inside second size field", e1 + 1, fmt.Sprintf("pstree.img: entry 1 at offset %d: truncated size field (1 bytes left)", e1), 1},
		{"inside third entry", e2 + 4 + int64(len(ents[2])) - 1, fmt.Sprintf("pstree.img: entry 2 at offset %d: entry size %d exceeds the %d bytes left", e2, len(ents[2]), len(ents[2])-1), 2},
		{"whole file", int64(len(orig)), "", 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := criuimg.NewReader(mf("pstree.img", orig[:c.cut]), criuimg.MagicPstree)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				err = r.Next(&pstree.PstreeEntry{})
				if err != nil {
					break
				}
				n++
			}
			if n != c.n {
				t.Errorf("read %d entries, want %d", n, c.n)
			}
			if c.want == "" {
				if err != io.EOF {
					t.Errorf("got %v, want io.EOF", err)
				}
				return
			}
			if err == nil || err == io.EOF || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error %v, want prefix %q", err, c.want)
			}
			var fe *criuimg.FormatError
			if !errors.As(err, &fe) || fe.File != "pstree.img" || fe.Entry != c.n {
				t.Errorf("FormatError %+v", fe)
			}
		})
	}
}

// TestFramingEntrySizes covers size 0 (valid for a message without
// required fields, an error otherwise), sizes past the end of the file and
// the size limit.
func TestFramingEntrySizes(t *testing.T) {
	pst := imgtest.Marshal(&pstree.PstreeEntry{Pid: proto.Uint32(1), Ppid: proto.Uint32(0), Pgid: proto.Uint32(1), Sid: proto.Uint32(1)})
	sizeOnly := func(magic uint32, size uint32, extra int) []byte {
		b := imgtest.Header(magic)
		b = append(b, byte(size), byte(size>>8), byte(size>>16), byte(size>>24))
		return append(b, make([]byte, extra)...)
	}
	for _, c := range []struct {
		name  string
		b     []byte
		magic uint32
		msg   func() proto.Message
		want  string // "" : success
	}{
		{"empty stats entry is valid", imgtest.Frame(criuimg.MagicStats, nil), criuimg.MagicStats,
			func() proto.Message { return &stats.StatsEntry{} }, ""},
		{"empty pstree entry misses required fields", imgtest.Frame(criuimg.MagicPstree, nil), criuimg.MagicPstree,
			func() proto.Message { return &pstree.PstreeEntry{} }, "x.img: entry 0 at offset 8: decoding *pstree.PstreeEntry"},
		{"second entry empty", imgtest.Frame(criuimg.MagicPstree, pst, nil), criuimg.MagicPstree,
			func() proto.Message { return &pstree.PstreeEntry{} }, fmt.Sprintf("x.img: entry 1 at offset %d: decoding", 8+4+len(pst))},
		{"size one past the file", sizeOnly(criuimg.MagicPstree, 11, 10), criuimg.MagicPstree,
			func() proto.Message { return &pstree.PstreeEntry{} }, "x.img: entry 0 at offset 8: entry size 11 exceeds the 10 bytes left"},
		{"size 2^32-1", sizeOnly(criuimg.MagicPstree, math.MaxUint32, 16), criuimg.MagicPstree,
			func() proto.Message { return &pstree.PstreeEntry{} }, "x.img: entry 0 at offset 8: entry size 4294967295 exceeds the 16 bytes left"},
		{"garbage protobuf", imgtest.Frame(criuimg.MagicPstree, []byte{0xff, 0xff, 0xff}), criuimg.MagicPstree,
			func() proto.Message { return &pstree.PstreeEntry{} }, "x.img: entry 0 at offset 8: decoding"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := criuimg.NewReader(mf("x.img", c.b), c.magic)
			if err != nil {
				t.Fatal(err)
			}
			for err == nil {
				err = r.Next(c.msg())
			}
			if c.want == "" {
				if err != io.EOF {
					t.Errorf("got %v, want io.EOF", err)
				}
				return
			}
			if err == io.EOF || !strings.HasPrefix(err.Error(), c.want) || !errors.Is(err, criuimg.ErrFormat) {
				t.Errorf("error %v, want prefix %q", err, c.want)
			}
		})
	}
}

// sparseFile is a File of the given size that reads as zeros after its
// first bytes, so that a test can claim a huge entry without writing it.
type sparseFile struct {
	memFile
	size int64
}

func (s *sparseFile) Size() int64 { return s.size }
func (s *sparseFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	n, _ := s.memFile.ReadAt(p, off)
	for i := n; i < len(p) && off+int64(i) < s.size; i++ {
		p[i] = 0
		n++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestFramingEntryLimit(t *testing.T) {
	size := uint32(criuimg.MaxEntrySize + 1)
	b := append(imgtest.Header(criuimg.MagicMM), byte(size), byte(size>>8), byte(size>>16), byte(size>>24))
	f := &sparseFile{memFile: memFile{"mm-1.img", b}, size: 12 + int64(size) + 100}
	r, err := criuimg.NewReader(f, criuimg.MagicMM)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Next(&mm.MmEntry{})
	want := fmt.Sprintf("mm-1.img: entry 0 at offset 8: entry size %d exceeds the limit of %d", size, criuimg.MaxEntrySize)
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestFramingErrorsThroughOpen checks that errors found while opening a
// checkpoint name the file, the entry and its offset.
func TestFramingErrorsThroughOpen(t *testing.T) {
	fx := fixtureByName(t, "x86_64", "static-c")
	for _, c := range []struct {
		name string
		edit func(dir string) error
		want *regexp.Regexp
	}{
		{"pstree truncated in entry 2", func(dir string) error {
			p := filepath.Join(dir, "pstree.img")
			st, _ := os.Stat(p)
			return imgtest.Truncate(p, st.Size()-2)
		}, regexp.MustCompile(`pstree\.img: entry 2 at offset \d+: entry size \d+ exceeds`)},
		{"inventory with mm magic", func(dir string) error {
			return imgtest.PatchBytes(filepath.Join(dir, "inventory.img"), 0, imgtest.Header(criuimg.MagicMM)[4:])
		}, regexp.MustCompile(`inventory\.img: header at offset 0: magic 0x57492820, want 0x58313116`)},
		{"files.img garbage in entry 3", func(dir string) error {
			return imgtest.SetRawEntry(filepath.Join(dir, "files.img"), 3, []byte{0x08})
		}, regexp.MustCompile(`files\.img: entry 3 at offset \d+: decoding`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := imgtest.CopyImages(dir, fx.Dir); err != nil {
				t.Fatal(err)
			}
			if err := c.edit(dir); err != nil {
				t.Fatal(err)
			}
			_, err := openDir(t, dir)
			if err == nil || !c.want.MatchString(err.Error()) {
				t.Errorf("error %v, want %v", err, c.want)
			}
		})
	}
}
