package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// streamTar is a tar of checkpoint/ images: small ones and one pages file
// of n bytes (byte i is i*7 mod 251), the pages before or after the
// others.
func streamTar(t *testing.T, n int, pagesFirst bool) ([]byte, []byte) {
	t.Helper()
	pages := make([]byte, n)
	for i := range pages {
		pages[i] = byte(i * 7 % 251)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: "checkpoint/" + name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(b))})
		tw.Write(b)
	}
	if pagesFirst {
		add("pages-1.img", pages)
	}
	add("inventory.img", []byte("inventory"))
	add("pagemap-1.img", []byte("pagemap"))
	if !pagesFirst {
		add("pages-1.img", pages)
	}
	add("pstree.img", []byte("pstree"))
	tw.Close()
	return buf.Bytes(), pages
}

// allocated is the disk space the anonymous file of f takes.
func allocated(t *testing.T, f criuimg.File) int64 {
	g := f.(*growingFile).g
	var st syscall.Stat_t
	if err := syscall.Fstat(int(g.f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestStreamOrders: with Stream, a pages file after the images that
// describe it is read while it streams, and a consumed one never takes
// more than the window on disk (128 MiB streamed, st_blocks checked at
// every read); one before them is spooled whole, and Notes says so. Both
// read back the bytes of the archive.
func TestStreamOrders(t *testing.T) {
	const n = 128 << 20
	const bound = streamAhead + streamBack + punchStep + 2<<20
	for _, tc := range []struct {
		name       string
		pagesFirst bool
	}{{"pages-after", false}, {"pages-before", true}} {
		t.Run(tc.name, func(t *testing.T) {
			data, pages := streamTar(t, n, tc.pagesFirst)
			root := t.TempDir()
			p := filepath.Join(root, "x.tar.zst")
			os.WriteFile(p, compress(t, KindTarZstd, data), 0o600)
			ck, err := Open(p, Options{Stream: true, TempDir: root})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			ahead, err := ck.Ahead()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(ahead, " "); tc.pagesFirst != (got == "") {
				t.Errorf("Ahead = %q", got)
			}
			if tc.pagesFirst {
				// Read what comes after the pages first: the pages spool.
				if _, err := ck.Images.Open("pstree.img"); err != nil {
					t.Fatal(err)
				}
			}
			f, err := ck.Images.Open("pages-1.img")
			if err != nil {
				t.Fatal(err)
			}
			ck.Consume("pages-1.img")
			b := make([]byte, 1<<20)
			var peak int64
			for off := 0; off < n; off += len(b) {
				if _, err := f.ReadAt(b, int64(off)); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				if !bytes.Equal(b, pages[off:off+len(b)]) {
					t.Fatalf("bytes at %d differ from the archive's", off)
				}
				peak = max(peak, allocated(t, f))
			}
			if _, err := f.ReadAt(b[:1], 0); err == nil {
				t.Error("a consumed pages file read again from its start: no error")
			}
			f.Close()
			if err := ck.Wait(); err != nil {
				t.Fatal(err)
			}
			notes := ck.Notes()
			if tc.pagesFirst {
				if len(notes) != 1 || !strings.Contains(notes[0], "checkpoint/pages-1.img: spooled whole") {
					t.Errorf("Notes = %q", notes)
				}
				if peak < n/2 {
					t.Errorf("spooled whole, but the peak disk use was %d bytes: the test measures nothing", peak)
				}
			} else {
				if len(notes) != 0 {
					t.Errorf("Notes = %q", notes)
				}
				if peak > bound {
					t.Errorf("peak disk use %d bytes while consuming, want <= %d", peak, bound)
				}
			}
			if left := listTree(t, root); len(left) != 1 {
				t.Errorf("named files in TempDir: %v", left)
			}
		})
	}
}

// TestStreamTruncated: a zstd stream cut short fails the read of the
// member it cuts (named) and Wait, and leaves nothing in TempDir.
func TestStreamTruncated(t *testing.T) {
	data, _ := streamTar(t, 8<<20, false)
	z := compress(t, KindTarZstd, data)
	root := t.TempDir()
	p := filepath.Join(root, "cut.tar.zst")
	os.WriteFile(p, z[:len(z)/2], 0o600)
	tmp := filepath.Join(root, "tmp")
	os.Mkdir(tmp, 0o700)
	ck, err := Open(p, Options{Stream: true, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ck.Images.Open("pages-1.img")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8<<20)
	if _, err := f.ReadAt(b, 0); err == nil || !strings.Contains(err.Error(), "pages-1.img") {
		t.Errorf("ReadAt across the cut: %v", err)
	}
	if err := ck.Wait(); err == nil || !strings.Contains(err.Error(), "cut.tar.zst") {
		t.Errorf("Wait: %v, want an error naming the archive", err)
	}
	ck.Close()
	if left := listTree(t, tmp); len(left) != 0 {
		t.Errorf("left in TempDir: %v", left)
	}
}

// TestOnRead: OnRead is told every byte of the compressed file, as it is
// read (what the progress bar of an unpacking shows), with and without
// Stream.
func TestOnRead(t *testing.T) {
	data, _ := streamTar(t, 4<<20, false)
	z := compress(t, KindTarGzip, data)
	p := filepath.Join(t.TempDir(), "x.tar.gz")
	os.WriteFile(p, z, 0o600)
	for _, stream := range []bool{false, true} {
		var n atomic.Int64
		ck, err := Open(p, Options{Stream: stream, OnRead: func(k int64) { n.Add(k) }})
		if err != nil {
			t.Fatal(err)
		}
		if err := ck.Wait(); err != nil {
			t.Fatal(err)
		}
		if n.Load() != int64(len(z)) {
			t.Errorf("stream %v: OnRead told %d bytes, the file has %d", stream, n.Load(), len(z))
		}
		ck.Close()
	}
}

// TestRetainNothing: a pages file retained with no range is dropped as it
// streams: it takes no disk, and reading it fails (naming it).
func TestRetainNothing(t *testing.T) {
	data, _ := streamTar(t, 16<<20, false)
	root := t.TempDir()
	p := filepath.Join(root, "x.tar.zst")
	os.WriteFile(p, compress(t, KindTarZstd, data), 0o600)
	ck, err := Open(p, Options{Stream: true, TempDir: root})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	ck.Retain("pages-1.img", nil)
	if err := ck.Wait(); err != nil {
		t.Fatal(err)
	}
	f, err := ck.Images.Open("pages-1.img")
	if err != nil {
		t.Fatal(err)
	}
	if n := allocated(t, f); n != 0 {
		t.Errorf("dropped pages file takes %d bytes", n)
	}
	if _, err := f.ReadAt(make([]byte, 10), 0); err == nil || !strings.Contains(err.Error(), "pages-1.img") {
		t.Errorf("ReadAt of a dropped file: %v", err)
	}
	if notes := ck.Notes(); len(notes) != 0 {
		t.Errorf("Notes = %q", notes)
	}
}

// openStreamed opens a zstd tar of streamTar(n, false) with Stream in a
// private TempDir and returns it with the pages' bytes and the pages file,
// opened and consumed.
func openStreamed(t *testing.T, n int) (*Checkpoint, []byte, criuimg.File, string) {
	t.Helper()
	data, pages := streamTar(t, n, false)
	root := t.TempDir()
	p := filepath.Join(root, "x.tar.zst")
	os.WriteFile(p, compress(t, KindTarZstd, data), 0o600)
	tmp := filepath.Join(root, "tmp")
	os.Mkdir(tmp, 0o700)
	ck, err := Open(p, Options{Stream: true, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	f, err := ck.Images.Open("pages-1.img")
	if err != nil {
		t.Fatal(err)
	}
	ck.Consume("pages-1.img")
	return ck, pages, f, tmp
}

// TestStreamRing: a consumed pages file read in order, skipping parts
// (as grep skips what it does not search), is served from memory: its
// anonymous file holds at most what streamed before the reader opened it
// (a chunk or so), the bytes are the archive's, and what lies more than
// streamBack behind the furthest read is gone (errStreamed).
func TestStreamRing(t *testing.T) {
	const n = 96 << 20
	ck, pages, f, tmp := openStreamed(t, n)
	b := make([]byte, 1<<20)
	var peak int64
	for off := 0; off+len(b) <= n; off += len(b) {
		if off/len(b)%7 == 3 {
			off += 5 << 20 // a gap: never read
			continue
		}
		if _, err := f.ReadAt(b, int64(off)); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(b, pages[off:off+len(b)]) {
			t.Fatalf("bytes at %d differ from the archive's", off)
		}
		peak = max(peak, allocated(t, f))
	}
	if peak > streamAhead {
		t.Errorf("the anonymous file took %d bytes while read in order, want the memory ring", peak)
	}
	if _, err := f.ReadAt(b, int64(n-len(b)-ringSize-2*ringChunk)); !errors.Is(err, errStreamed) {
		t.Errorf("ReadAt far behind the furthest read: %v, want errStreamed", err)
	}
	if g := f.(*growingFile).g; g.spilled {
		t.Error("spilled, though nobody waited")
	}
	f.Close()
	if err := ck.Wait(); err != nil {
		t.Fatal(err)
	}
	if left := listTree(t, tmp); len(left) != 0 {
		t.Errorf("left in TempDir: %v", left)
	}
}

// TestStreamRingSpill: while the reader of a consumed pages file waits
// for a member that comes after it (pstree.img), the stream cannot wait
// for the reader: what the ring holds goes to the anonymous file, the
// rest streams there, and the reader then reads every byte it had not
// read, in order.
func TestStreamRingSpill(t *testing.T) {
	const n = 64 << 20
	ck, pages, f, _ := openStreamed(t, n)
	b := make([]byte, 1<<20)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ck.Images.Open("pstree.img"); err != nil {
		t.Fatal(err)
	}
	g := f.(*growingFile).g
	if !g.spilled && g.ringBase < n {
		t.Error("the ring was not spilled while a caller waited for the next member")
	}
	for off := len(b); off < n; off += len(b) {
		if _, err := f.ReadAt(b, int64(off)); err != nil && err != io.EOF {
			t.Fatalf("ReadAt %d after the spill: %v", off, err)
		}
		if !bytes.Equal(b, pages[off:off+len(b)]) {
			t.Fatalf("bytes at %d differ from the archive's", off)
		}
	}
	f.Close()
	if err := ck.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestStreamDone: Done on a consumed pages file still open drops the rest
// of its stream (the stream ends without the reader), frees what was kept,
// and reading it then fails.
func TestStreamDone(t *testing.T) {
	const n = 64 << 20
	ck, _, f, _ := openStreamed(t, n)
	if _, err := f.ReadAt(make([]byte, 1<<20), 0); err != nil {
		t.Fatal(err)
	}
	ck.Done("pages-1.img")
	if err := ck.Wait(); err != nil {
		t.Fatal(err)
	}
	if a := allocated(t, f); a != 0 {
		t.Errorf("after Done the anonymous file takes %d bytes", a)
	}
	if _, err := f.ReadAt(make([]byte, 10), 2<<20); !errors.Is(err, errStreamed) {
		t.Errorf("ReadAt after Done: %v, want errStreamed", err)
	}
	if g := f.(*growingFile).g; g.spilled || g.ring != nil {
		t.Errorf("after Done: spilled %v, ring kept %v", g.spilled, g.ring != nil)
	}
	f.Close()
}

// TestStreamOnPages: OnPages sees every byte of a streamed pages file, in
// order, whether it is read in order (the ring), kept only in part
// (Retain) or spooled whole; nothing else is passed to it.
func TestStreamOnPages(t *testing.T) {
	const n = 8<<20 + 12345
	for _, mode := range []string{"consumed", "retained", "spooled"} {
		t.Run(mode, func(t *testing.T) {
			data, pages := streamTar(t, n, false)
			root := t.TempDir()
			p := filepath.Join(root, "x.tar.gz")
			os.WriteFile(p, compress(t, KindTarGzip, data), 0o600)
			var seen bytes.Buffer
			var bad atomic.Bool
			ck, err := Open(p, Options{Stream: true, TempDir: root, OnPages: func(name string, off int64, b []byte) {
				if name != "pages-1.img" || off != int64(seen.Len()) {
					bad.Store(true)
				}
				seen.Write(b)
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			switch mode {
			case "consumed":
				ck.Consume("pages-1.img")
				f, err := ck.Images.Open("pages-1.img")
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 1<<20)
				for off := int64(0); off < n; off += int64(len(buf)) {
					if k, err := f.ReadAt(buf, off); k == 0 {
						t.Fatalf("read at %d: %v", off, err)
					}
				}
				f.Close()
			case "retained":
				ck.Retain("pages-1.img", [][2]int64{{4096, 8192}})
			}
			if err := ck.Wait(); err != nil {
				t.Fatal(err)
			}
			if bad.Load() || !bytes.Equal(seen.Bytes(), pages) {
				t.Errorf("OnPages saw %d bytes (out of order or another name: %v), want the %d of pages-1.img", seen.Len(), bad.Load(), n)
			}
		})
	}
}

// TestStreamView: a consumed pages file read in order with View is lent
// from the ring in place, and each lent slice keeps the archive's bytes
// while the reader goes on reading up to criuimg.ViewSlack past it.
func TestStreamView(t *testing.T) {
	const n = 96 << 20
	_, pages, f, _ := openStreamed(t, n)
	v := f.(criuimg.Viewer)
	const win = 1 << 20
	lent, copied := 0, 0
	b := make([]byte, 1<<20)
	for off := int64(0); off+win+criuimg.ViewSlack <= n; off += win - 100 {
		view, err := v.View(off, win)
		if err != nil {
			t.Fatal(err)
		}
		if view == nil {
			// Before the ring (what streamed before the reader came) or
			// where it wraps around: read as memsearch then reads.
			copied++
			if _, err := f.ReadAt(make([]byte, win), off); err != nil {
				t.Fatal(err)
			}
			continue
		}
		lent++
		// Read on, as far as a lent slice must stay valid.
		for at := off + win; at < off+win+criuimg.ViewSlack; at += int64(len(b)) {
			if _, err := f.ReadAt(b, at); err != nil {
				t.Fatal(err)
			}
		}
		if lent%8 == 1 {
			settle(f) // let the stream go as far as it may
		}
		if !bytes.Equal(view, pages[off:off+win]) {
			t.Fatalf("the view at %d no longer holds the archive's bytes", off)
		}
	}
	if lent < copied || lent == 0 {
		t.Errorf("%d views lent, %d refused: want most lent", lent, copied)
	}
	if big, err := v.View(0, criuimg.MaxView+1); big != nil || err != nil {
		t.Errorf("a view over MaxView: %d bytes, %v", len(big), err)
	}
}

// settle waits until the stream of f stops writing (it waits for the
// reader, or is done).
func settle(f criuimg.File) {
	st, g := f.(*growingFile).st, f.(*growingFile).g
	last := int64(-1)
	for {
		st.mu.Lock()
		w := g.written
		st.mu.Unlock()
		if w == last {
			return
		}
		last = w
		time.Sleep(30 * time.Millisecond)
	}
}

// TestStreamViewSpill: a ring given up while some of it is lent (the
// reader waits for the next member, so the ring spills) is not given to
// the next pages member: the lent bytes stay the archive's while that
// member streams through a ring of its own.
func TestStreamViewSpill(t *testing.T) {
	const n = 40 << 20
	one, two := make([]byte, n), make([]byte, n)
	for i := range one {
		one[i], two[i] = byte(i*7%251), byte(i*13%241)+1
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range []struct {
		name string
		b    []byte
	}{{"inventory.img", []byte("inventory")}, {"pagemap-1.img", []byte("pagemap")}, {"pages-1.img", one}, {"pages-2.img", two}, {"pstree.img", []byte("pstree")}} {
		tw.WriteHeader(&tar.Header{Name: "checkpoint/" + m.name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(m.b))})
		tw.Write(m.b)
	}
	tw.Close()
	root := t.TempDir()
	p := filepath.Join(root, "x.tar.zst")
	os.WriteFile(p, compress(t, KindTarZstd, buf.Bytes()), 0o600)
	ck, err := Open(p, Options{Stream: true, TempDir: root})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	f1, err := ck.Images.Open("pages-1.img")
	if err != nil {
		t.Fatal(err)
	}
	ck.Consume("pages-1.img")
	ck.Consume("pages-2.img")
	// Read on until the ring lends a window (what streamed before the
	// reader came is in the file).
	var view []byte
	var at int64
	for ; at+1<<20 <= n/2; at += 1 << 20 {
		if view, err = f1.(criuimg.Viewer).View(at, 1<<20); err != nil {
			t.Fatal(err)
		}
		if view != nil {
			break
		}
		if _, err := f1.ReadAt(make([]byte, 1<<20), at); err != nil {
			t.Fatal(err)
		}
	}
	if view == nil {
		t.Fatal("no window lent in the first half of pages-1.img")
	}
	f2, err := ck.Images.Open("pages-2.img") // waits: pages-1 spills
	if err != nil {
		t.Fatal(err)
	}
	if g := f1.(*growingFile).g; !g.spilled {
		t.Fatal("pages-1.img did not spill while the reader waited for pages-2.img")
	}
	b := make([]byte, 1<<20)
	for off := int64(0); off < n; off += int64(len(b)) {
		if _, err := f2.ReadAt(b, off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(b, two[off:off+int64(len(b))]) {
			t.Fatalf("pages-2.img at %d differs from the archive's", off)
		}
	}
	if g := f2.(*growingFile).g; g.ring == nil && !g.spilled && !g.complete {
		t.Error("pages-2.img did not stream through a ring")
	}
	if !bytes.Equal(view, one[at:at+1<<20]) {
		t.Fatal("the lent bytes of pages-1.img were overwritten by pages-2.img")
	}
	f1.Close()
	f2.Close()
	if err := ck.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestDropPages: after DropPages, a pages file streams without taking
// disk (whether it had started streaming or not), reading it fails, and
// the other members are read.
func TestDropPages(t *testing.T) {
	const n = 48 << 20
	ck, _, f, tmp := openStreamed(t, n)
	ck.DropPages()
	if err := ck.Wait(); err != nil {
		t.Fatal(err)
	}
	if a := allocated(t, f); a != 0 {
		t.Errorf("after DropPages the pages file takes %d bytes", a)
	}
	if _, err := f.ReadAt(make([]byte, 10), 0); !errors.Is(err, errNotRetained) {
		t.Errorf("ReadAt after DropPages: %v, want errNotRetained", err)
	}
	if _, err := ck.Images.Open("pstree.img"); err != nil {
		t.Errorf("pstree.img: %v", err)
	}
	f.Close()
	ck.Close()
	if left := listTree(t, tmp); len(left) != 0 {
		t.Errorf("left in TempDir: %v", left)
	}
}
