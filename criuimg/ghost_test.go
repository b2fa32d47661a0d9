package criuimg_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	ghostfile "github.com/checkpoint-restore/go-criu/v8/crit/images/ghost-file"
	remapfile "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	"google.golang.org/protobuf/proto"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/imgtest/archived"
)

// TestGhostIntrusion: every ghost file of the real attacked container, by
// the file id the manifest names, has the manifest's path, mode, size and
// sha256 (crit's oracle); the implant (29168 bytes) is chunked, the stolen
// data (169 bytes) plain.
func TestGhostIntrusion(t *testing.T) {
	want := imgtest.Intrusion(t).BeforeVsAfter.Files.GhostImagesAfter
	if len(want) != 3 {
		t.Fatalf("manifest lists %d ghost files, want 3", len(want))
	}
	ck := archived.Images(t, imgtest.IntrusionArchive("after.tar.zst"))
	tab, err := ck.ReadRemaps()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tab.All()); n != len(want) {
		t.Errorf("%d remaps, want %d", n, len(want))
	}
	for _, w := range want {
		t.Run(w.Image, func(t *testing.T) {
			r, ok := tab.Lookup(w.OrigFileID)
			if !ok {
				t.Fatalf("no remap for file id %d", w.OrigFileID)
			}
			if r.Kind != criuimg.RemapGhost || r.Path != w.Path || r.GhostImage() != w.Image {
				t.Errorf("remap %+v (%s), want ghost %s in %s", r, r.GhostImage(), w.Path, w.Image)
			}
			g, err := ck.OpenGhost(r)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if got := "0o" + strconvOct(g.Mode); got != w.Mode {
				t.Errorf("mode %s, want %s", got, w.Mode)
			}
			if g.Size != w.Size || g.Stored != w.Size {
				t.Errorf("size %d stored %d, want %d", g.Size, g.Stored, w.Size)
			}
			if g.Chunked != (w.Size >= 3*4096) {
				t.Errorf("chunked %v for %d bytes", g.Chunked, w.Size)
			}
			for pass := 0; pass < 2; pass++ { // Contents restarts
				h := sha256.New()
				n, err := io.Copy(h, g.Contents())
				if err != nil {
					t.Fatal(err)
				}
				if got := hex.EncodeToString(h.Sum(nil)); n != w.Size || got != w.SHA256 {
					t.Errorf("pass %d: %d bytes sha256 %s, want %d %s", pass, n, got, w.Size, w.SHA256)
				}
			}
		})
	}
}

func strconvOct(v uint32) string {
	const digits = "01234567"
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v >>= 3 {
		b = append([]byte{digits[v&7]}, b...)
	}
	return string(b)
}

// ghostImage frames a ghost-file image: the header entry, then for each
// chunk its entry and data (chunks != nil) or the plain contents.
func ghostImage(e *ghostfile.GhostFileEntry, plain []byte, chunks []ghostChunk) []byte {
	var b bytes.Buffer
	b.Write(imgtest.Header(criuimg.MagicGhostFile))
	imgtest.AppendEntry(&b, e)
	b.Write(plain)
	for _, c := range chunks {
		imgtest.AppendEntry(&b, &ghostfile.GhostChunkEntry{Len: proto.Uint64(c.len), Off: proto.Uint64(c.off)})
		b.Write(c.data)
	}
	return b.Bytes()
}

type ghostChunk struct {
	off, len uint64
	data     []byte
}

func regEntry(chunked bool, size uint64) *ghostfile.GhostFileEntry {
	e := &ghostfile.GhostFileEntry{Uid: proto.Uint32(0), Gid: proto.Uint32(0), Mode: proto.Uint32(0o100644)}
	if chunked {
		e.Chunks = proto.Bool(true)
		e.Size = proto.Uint64(size)
	}
	return e
}

// TestGhostEdges: images from the writer's framing, the contents each
// should give or the error it must be refused with.
func TestGhostEdges(t *testing.T) {
	abc := []byte("abcdef")
	tests := []struct {
		name    string
		img     []byte
		want    []byte // contents; nil with wantErr
		sizeErr bool   // the error wraps ErrGhostSize
		wantErr bool
	}{
		{"plain", ghostImage(regEntry(false, 0), abc, nil), abc, false, false},
		{"plain empty", ghostImage(regEntry(false, 0), nil, nil), []byte{}, false, false},
		{"plain size mismatch", ghostImage(func() *ghostfile.GhostFileEntry { e := regEntry(false, 0); e.Size = proto.Uint64(1 << 40); return e }(), abc, nil), nil, true, true},
		{"chunked with holes", ghostImage(regEntry(true, 12), nil, []ghostChunk{{2, 3, abc[:3]}, {7, 2, abc[3:5]}}),
			[]byte{0, 0, 'a', 'b', 'c', 0, 0, 'd', 'e', 0, 0, 0}, false, false},
		{"chunked zero-length chunk", ghostImage(regEntry(true, 4), nil, []ghostChunk{{0, 0, nil}, {0, 2, abc[:2]}}), []byte{'a', 'b', 0, 0}, false, false},
		{"chunked no chunk", ghostImage(regEntry(true, 5), nil, nil), make([]byte, 5), false, false},
		{"chunked huge size", ghostImage(regEntry(true, 1<<50), nil, []ghostChunk{{0, 3, abc[:3]}}), nil, true, true},
		{"chunked size 2^64-1", ghostImage(regEntry(true, 1<<64-1), nil, nil), nil, true, true},
		{"chunk beyond size", ghostImage(regEntry(true, 4), nil, []ghostChunk{{2, 3, abc[:3]}}), nil, true, true},
		{"chunk offset overflow", ghostImage(regEntry(true, 4), nil, []ghostChunk{{1<<64 - 1, 2, abc[:2]}}), nil, true, true},
		{"chunk longer than image", ghostImage(regEntry(true, 100), nil, []ghostChunk{{0, 50, abc}}), nil, true, true},
		{"chunks overlap", ghostImage(regEntry(true, 10), nil, []ghostChunk{{0, 3, abc[:3]}, {2, 3, abc[3:]}}), nil, true, true},
		{"chunked without size", ghostImage(func() *ghostfile.GhostFileEntry { e := regEntry(true, 0); e.Size = nil; return e }(), nil, nil), nil, false, true},
		{"directory with bytes", ghostImage(&ghostfile.GhostFileEntry{Uid: proto.Uint32(0), Gid: proto.Uint32(0), Mode: proto.Uint32(0o40755)}, abc, nil), nil, false, true},
		{"no entry", imgtest.Header(criuimg.MagicGhostFile), nil, false, true},
		{"bad magic", imgtest.Header(criuimg.MagicPstree), nil, false, true},
		{"truncated chunk header", append(ghostImage(regEntry(true, 10), nil, nil), 9, 0), nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, criuimg.GhostImageName(0x1a)), tt.img, 0o600); err != nil {
				t.Fatal(err)
			}
			g, err := criuimg.OpenGhostImage(imgtest.DirSource(t, dir), 0x1a)
			if tt.wantErr {
				if err == nil {
					g.Close()
					t.Fatal("no error")
				}
				if !errors.Is(err, criuimg.ErrFormat) {
					t.Errorf("%v: not ErrFormat", err)
				}
				if errors.Is(err, criuimg.ErrGhostSize) != tt.sizeErr {
					t.Errorf("%v: ErrGhostSize %v, want %v", err, !tt.sizeErr, tt.sizeErr)
				}
				if !bytes.Contains([]byte(err.Error()), []byte("ghost-file-1a.img")) {
					t.Errorf("%v: does not name the image", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			got, err := readDirty(g.Contents())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) || g.Size != int64(len(tt.want)) {
				t.Errorf("contents %q (size %d), want %q", got, g.Size, tt.want)
			}
			// Extents give the same bytes at their offsets.
			ext := make([]byte, g.Size)
			var stored int64
			err = g.Extents(func(off, n int64, r io.Reader) error {
				stored += n
				_, err := io.ReadFull(r, ext[off:off+n])
				return err
			})
			if err != nil || !bytes.Equal(ext, tt.want) || stored != g.Stored {
				t.Errorf("extents %q stored %d (%v), want %q %d", ext, stored, err, tt.want, g.Stored)
			}
		})
	}
}

// TestRemapsEdges: old images' ghost bit, linked remaps naming the link's
// path, a duplicate file id refused, no image an empty table.
func TestRemapsEdges(t *testing.T) {
	c := imgtest.New(imgtest.X86_64)
	c.AddProcess(1, 0)
	del := c.AddFile("/tmp/gone")
	link := c.AddFile("/tmp/link.cr")
	dir := c.WriteTemp(t)
	ck := imgtest.OpenDir(t, dir)
	tab, err := ck.ReadRemaps()
	if err != nil || len(tab.All()) != 0 {
		t.Fatalf("no image: %v %v", tab.All(), err)
	}
	write := func(es ...*remapfile.RemapFilePathEntry) {
		t.Helper()
		msgs := make([]proto.Message, len(es))
		for i, e := range es {
			msgs[i] = e
		}
		if err := imgtest.WriteImage(filepath.Join(dir, "remap-fpath.img"), criuimg.MagicRemapFpath, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	write(&remapfile.RemapFilePathEntry{OrigId: proto.Uint32(del), RemapId: proto.Uint32(1<<31 | 5)},
		&remapfile.RemapFilePathEntry{OrigId: proto.Uint32(link), RemapId: proto.Uint32(del), RemapType: remapfile.RemapType_LINKED.Enum()})
	tab, err = ck.ReadRemaps()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := tab.Lookup(del)
	if r.Kind != criuimg.RemapGhost || r.RemapID != 5 || r.Path != "/tmp/gone" || r.GhostImage() != "ghost-file-5.img" {
		t.Errorf("old-style ghost: %+v", r)
	}
	r, _ = tab.Lookup(link)
	if r.Kind != criuimg.RemapLinked || r.LinkPath != "/tmp/gone" {
		t.Errorf("linked: %+v", r)
	}
	if _, err := ck.OpenGhost(r); err == nil {
		t.Error("OpenGhost of a linked remap: no error")
	}
	write(&remapfile.RemapFilePathEntry{OrigId: proto.Uint32(del), RemapId: proto.Uint32(1)},
		&remapfile.RemapFilePathEntry{OrigId: proto.Uint32(del), RemapId: proto.Uint32(2)})
	if _, err := ck.ReadRemaps(); !errors.Is(err, criuimg.ErrFormat) {
		t.Errorf("duplicate: %v", err)
	}
}

// readDirty reads r to its end through a buffer filled with 0xff before
// each Read, so that bytes a reader leaves unwritten show.
func readDirty(r io.Reader) ([]byte, error) {
	out := []byte{}
	buf := make([]byte, 5)
	for {
		for i := range buf {
			buf[i] = 0xff
		}
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
