package archive

import (
	"archive/tar"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// TestParentLinkRules: of all links, only DIR/parent -> ../NAME (DIR a
// top-level directory, NAME one component) is accepted; every other link
// in checkpoint/ or with a needed name, or one that leaves the archive,
// is refused naming the member.
func TestParentLinkRules(t *testing.T) {
	files := counterFiles(t)
	base := crioEntries(files)
	for _, tc := range []struct {
		name, linkname string
		typ            byte
		refused        string // "" if accepted
	}{
		{"checkpoint/parent", "../pre-checkpoint", tar.TypeSymlink, ""},
		{"checkpoint/parent", "../pre-checkpoint/", tar.TypeSymlink, ""},
		{"pre-checkpoint/parent", "../pre-0", tar.TypeSymlink, ""},
		{"checkpoint/parent", "/abs", tar.TypeSymlink, "links are refused in checkpoint/"},
		{"checkpoint/parent", "../../up", tar.TypeSymlink, "links are refused in checkpoint/"},
		{"checkpoint/parent", "../a/b", tar.TypeSymlink, "links are refused in checkpoint/"},
		{"checkpoint/parent", "..", tar.TypeSymlink, "links are refused in checkpoint/"},
		{"checkpoint/parent", "../..", tar.TypeSymlink, "links are refused in checkpoint/"},
		{"checkpoint/parent", "sibling", tar.TypeSymlink, "links are refused in checkpoint/"},
		{"checkpoint/parent", "../pre-checkpoint", tar.TypeLink, "hard link"},
		{"checkpoint/sub/parent", "../x", tar.TypeSymlink, "links are refused in checkpoint/"},
		{"checkpoint/pagemap-1.img", "../pre-checkpoint", tar.TypeSymlink, "links are refused in checkpoint/"},
		{"pre-checkpoint/pages-1.img", "../checkpoint/pages-1.img", tar.TypeSymlink, "links are refused"},
		{"pre-checkpoint/parent", "../../etc", tar.TypeSymlink, "points outside the archive"},
		{"parent", "../x", tar.TypeSymlink, "points outside the archive"},
	} {
		t.Run(tc.name+"->"+tc.linkname, func(t *testing.T) {
			es := append(append([]entry(nil), base...), entry{name: tc.name, typ: tc.typ, linkname: tc.linkname})
			data, _ := buildTar(t, es)
			if tc.refused != "" {
				refused(t, data, Options{}, tc.name, tc.refused)
				return
			}
			opens(t, "", data)
		})
	}
}

// TestParentInArchive: the parent images of checkpoint/parent ->
// ../pre-checkpoint are served from the same archive in every mode
// (streamed included), byte for byte; without them, or without the
// link, the errors say which.
func TestParentInArchive(t *testing.T) {
	files := counterFiles(t)
	es := crioEntries(files)
	es = append(es, entry{name: "checkpoint/parent", typ: tar.TypeSymlink, linkname: "../pre-checkpoint"})
	with := append(append([]entry(nil), es...),
		entry{name: "pre-checkpoint/", typ: tar.TypeDir},
		entry{name: "pre-checkpoint/pagemap-3757.img", data: files["pagemap-3757.img"]},
		entry{name: "pre-checkpoint/pages-1.img", data: files["pages-1.img"]},
		entry{name: "pre-checkpoint/inventory.img", data: files["inventory.img"]}, // not a page image: not kept
	)
	check := func(t *testing.T, ck *Checkpoint) {
		t.Helper()
		if n, ok := ck.ParentLink(); !ok || n != "pre-checkpoint" {
			t.Errorf("ParentLink = %q, %v", n, ok)
		}
		p, err := ck.Parent()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"pagemap-3757.img", "pages-1.img"} {
			f, err := p.Open(n)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, f.Size())
			if _, err := f.ReadAt(b, 0); err != nil || string(b) != string(files[n]) {
				t.Errorf("%s: %d bytes, %v; want the member's %d", n, len(b), err, len(files[n]))
			}
			f.Close()
		}
		if _, err := p.Open("inventory.img"); err == nil {
			t.Error("inventory.img of the parent served")
		}
		if _, ok := p.(criuimg.ParentSource); !ok {
			t.Error("the parent's images have no Parent: a chain would stop")
		}
	}
	data, _ := buildTar(t, with)
	for _, mode := range openModes {
		t.Run(mode.name, func(t *testing.T) {
			ck, _, err := openIn(t, mode, data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			check(t, ck)
		})
	}
	t.Run("stream", func(t *testing.T) {
		p, _ := writeArchive(t, KindTarZstd, data)
		ck, err := Open(p, Options{Stream: true})
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		check(t, ck)
		if notes := strings.Join(ck.Notes(), "\n"); !strings.Contains(notes, "checkpoint/parent -> ../pre-checkpoint: the parent's images are read from pre-checkpoint/") {
			t.Errorf("notes %q", notes)
		}
	})
	t.Run("lacking", func(t *testing.T) {
		b, _ := buildTar(t, es)
		ck, _, err := openIn(t, openModes[0], b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		_, err = ck.Parent()
		if !errors.Is(err, ErrParentNotInArchive) || !strings.Contains(err.Error(), "checkpoint/parent -> ../pre-checkpoint") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no-link", func(t *testing.T) {
		b, _ := buildTar(t, crioEntries(files))
		ck, _, err := openIn(t, openModes[0], b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		if _, err := ck.Parent(); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
}

// TestParentWhileHeldBack: a caller reading a consumed pages file holds
// the stream back (more than streamAhead ahead); asking then for the
// parent, which waits for the end of the stream, must not deadlock.
func TestParentWhileHeldBack(t *testing.T) {
	files := counterFiles(t)
	big := make([]byte, streamAhead+16<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	es := crioEntries(files)
	es = append(es,
		entry{name: "checkpoint/pages-99.img", data: big},
		entry{name: "checkpoint/parent", typ: tar.TypeSymlink, linkname: "../pre-checkpoint"},
		entry{name: "pre-checkpoint/pages-1.img", data: files["pages-1.img"]})
	data, _ := buildTar(t, es)
	p, _ := writeArchive(t, KindTarZstd, data)
	ck, err := Open(p, Options{Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	ck.Consume("pages-99.img")
	f, err := ck.Images.Open("pages-99.img")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 4096)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	// Until the reader is held back: the stream stops short of the end
	// (in the file or in the memory ring, whichever it uses) because the
	// reader is far behind.
	deadline := time.Now().Add(30 * time.Second)
	last, still := int64(-1), 0
	for still < 20 {
		st := ck.stream
		st.mu.Lock()
		g := st.grow["pages-99.img"]
		var w, size int64 = -1, 0
		if g != nil {
			w, size = g.written, g.size
		}
		st.mu.Unlock()
		if w >= 0 && w < size && w == last {
			still++
		} else {
			still = 0
		}
		last = w
		if time.Now().After(deadline) {
			t.Fatal("the reader never held back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ck.Parent()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Parent still waits after 60 s: the stream is held back")
	}
}
