package criuimg

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzGhost fuzzes a ghost-file image: OpenGhostImage either refuses it
// with a FormatError naming the image or gives a file whose Contents are
// exactly Size bytes, equal to the bytes its Extents place, with at most
// MaxGhostHoles bytes not stored in the image. Seeds: the intrusion
// fixture's plain ghost image (testdata/ghost/, from after.tar.zst) and a
// small synthetic plain and chunked one.
func FuzzGhost(f *testing.F) {
	for _, p := range []string{"ghost-file-1.img", "ghost-file-2.img", "ghost-file-3.img"} {
		if b, err := os.ReadFile(filepath.Join("testdata", "ghost", p)); err == nil {
			f.Add(b)
		}
	}
	f.Add(ghostSeed(false))
	f.Add(ghostSeed(true))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &memSource{files: map[string][]byte{"ghost-file-1.img": data}}
		g, err := OpenGhostImage(src, 1)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) || fe.File != "ghost-file-1.img" {
				t.Fatalf("%v: not a FormatError naming the image", err)
			}
			return
		}
		defer g.Close()
		if g.Stored > int64(len(data)) || g.Size < g.Stored || g.Size-g.Stored > MaxGhostHoles {
			t.Fatalf("size %d stored %d from %d bytes", g.Size, g.Stored, len(data))
		}
		if g.Size > 1<<24 { // holes only: do not hash a GiB of zeros per input
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, g.Contents())
		if err != nil || n != g.Size {
			t.Fatalf("Contents: %d bytes of %d: %v", n, g.Size, err)
		}
		buf := make([]byte, g.Size)
		err = g.Extents(func(off, n int64, r io.Reader) error {
			_, err := io.ReadFull(r, buf[off:off+n])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(h.Sum(nil), sha256Sum(buf)) {
			t.Fatal("Contents and Extents disagree")
		}
	})
}

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// ghostSeed frames a small plain or chunked ghost image by hand.
func ghostSeed(chunked bool) []byte {
	var b []byte
	b = append(b, 0x19, 0x43, 0x56, 0x54, 0x05, 0x36, 0x58, 0x52) // ImgCommon, GhostFile
	// uid=0 gid=0 mode=0100644 [chunks=1 size=8]
	e := []byte{0x08, 0, 0x10, 0, 0x18, 0xa4, 0x83, 0x02}
	if chunked {
		e = append(e, 0x48, 1, 0x50, 8)
	}
	b = append(b, byte(len(e)), 0, 0, 0)
	b = append(b, e...)
	if !chunked {
		return append(b, "contents"...)
	}
	c := []byte{0x08, 3, 0x10, 2} // len 3 off 2
	b = append(b, byte(len(c)), 0, 0, 0)
	b = append(b, c...)
	return append(b, "abc"...)
}
