package criuimg

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSpans checks spans a decoder returned: inside the image, in order,
// and readable whole through Span.Open.
func fuzzSpans(t *testing.T, src Source, size int64, spans []Span) {
	t.Helper()
	prev := int64(0)
	for _, s := range spans {
		if s.Offset < prev || s.Len < 0 || s.Offset+s.Len > size {
			t.Fatalf("span %+v of an image of %d bytes (previous end %d)", s, size, prev)
		}
		prev = s.Offset + s.Len
		r, err := s.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || n != s.Len {
			t.Fatalf("span %+v: %d bytes: %v", s, n, err)
		}
	}
}

func fuzzErr(t *testing.T, err error, image string) {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) || fe.File != image {
		t.Fatalf("%v: not a FormatError naming %s", err, image)
	}
}

func seedImages(f *testing.F, names ...string) {
	for _, dir := range []string{"testdata/streams"} {
		for _, n := range names {
			if b, err := os.ReadFile(filepath.Join(dir, n)); err == nil {
				f.Add(b)
			}
		}
	}
}

// FuzzPipeData fuzzes pipes-data.img (fifo-data.img has the same format):
// an error names the image; the spans lie in it, in order.
func FuzzPipeData(f *testing.F) {
	seedImages(f, "pipes-data.img", "fifo-data.img")
	f.Add([]byte{0x19, 0x43, 0x56, 0x54, 0x09, 0x37, 0x45, 0x56, 4, 0, 0, 0, 8, 7, 16, 3, 'a', 'b', 'c'})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &memSource{files: map[string][]byte{"pipes-data.img": data}}
		ck := &Checkpoint{Src: src}
		pds, err := ck.ReadPipeData(false)
		if err != nil {
			fuzzErr(t, err, "pipes-data.img")
			return
		}
		var spans []Span
		for _, p := range pds {
			spans = append(spans, p.Data)
		}
		fuzzSpans(t, src, int64(len(data)), spans)
	})
}

// FuzzSkQueues fuzzes sk-queues.img.
func FuzzSkQueues(f *testing.F) {
	seedImages(f, "sk-queues.img")
	f.Add([]byte{0x19, 0x43, 0x56, 0x54, 0x26, 0x40, 0x26, 0x56, 4, 0, 0, 0, 8, 5, 16, 2, 'h', 'i'})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &memSource{files: map[string][]byte{"sk-queues.img": data}}
		ck := &Checkpoint{Src: src}
		qs, err := ck.ReadSocketQueues()
		if err != nil {
			fuzzErr(t, err, "sk-queues.img")
			return
		}
		var spans []Span
		for _, q := range qs {
			spans = append(spans, q.Data)
		}
		fuzzSpans(t, src, int64(len(data)), spans)
	})
}

// FuzzTCPStream fuzzes tcp-stream-N.img: its two queues must tile the
// bytes after the entry.
func FuzzTCPStream(f *testing.F) {
	seedImages(f, "tcp-stream-32508.img", "tcp-stream-324df.img")
	f.Fuzz(func(t *testing.T, data []byte) {
		name := TCPStreamImageName(0x32508)
		src := &memSource{files: map[string][]byte{name: data}}
		ck := &Checkpoint{Src: src}
		ts, err := ck.ReadTCPStream(0x32508)
		if err != nil {
			fuzzErr(t, err, name)
			return
		}
		if ts.Outq.Offset != ts.Inq.Offset+ts.Inq.Len || ts.Outq.Offset+ts.Outq.Len != int64(len(data)) || int64(ts.UnsentLen) > ts.Outq.Len {
			t.Fatalf("queues %+v %+v unsent %d in %d bytes", ts.Inq, ts.Outq, ts.UnsentLen, len(data))
		}
		fuzzSpans(t, src, int64(len(data)), []Span{ts.Inq, ts.Outq})
	})
}

// FuzzTTYData fuzzes tty-data.img.
func FuzzTTYData(f *testing.F) {
	f.Add([]byte{0x19, 0x43, 0x56, 0x54, 0x26, 0x30, 0x41, 0x59, 7, 0, 0, 0, 8, 1, 0x12, 3, 'l', 's', '\n'})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &memSource{files: map[string][]byte{"tty-data.img": data}}
		ck := &Checkpoint{Src: src}
		tds, err := ck.ReadTTYData()
		if err != nil {
			fuzzErr(t, err, "tty-data.img")
			return
		}
		total := 0
		for _, d := range tds {
			total += len(d.Data)
		}
		if total > len(data) {
			t.Fatalf("%d bytes of tty data from %d", total, len(data))
		}
	})
}

// FuzzRemaps fuzzes remap-fpath.img.
func FuzzRemaps(f *testing.F) {
	seedImages(f, "remap-fpath.img")
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &memSource{files: map[string][]byte{"remap-fpath.img": data}}
		ck := &Checkpoint{Src: src}
		tab, err := ck.ReadRemaps()
		if err != nil {
			fuzzErr(t, err, "remap-fpath.img")
			return
		}
		for _, r := range tab.All() {
			if got, ok := tab.Lookup(r.FileID); !ok || got != r {
				t.Fatalf("Lookup(%d) = %+v, want %+v", r.FileID, got, r)
			}
		}
	})
}
