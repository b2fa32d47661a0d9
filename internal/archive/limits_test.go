package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// limitsTar writes a small container checkpoint (one image and
// config.dump) with tar.Writer, then raw, then the end-of-archive blocks.
func limitsTar(t *testing.T, raw ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range []struct{ name, data string }{
		{"checkpoint/inventory.img", "inventory"},
		{"config.dump", "{}"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, r := range raw {
		buf.Write(r)
	}
	buf.Write(make([]byte, 1024))
	return buf.Bytes()
}

// rawHeader is a tar header block; magic is "ustar\x0000" (POSIX) or
// "ustar  \x00" (old GNU). Call sum once every field is set.
func rawHeader(name string, typ byte, size int64, magic string) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000600\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:265], magic)
	return b
}

func sum(b []byte) []byte {
	copy(b[148:156], "        ")
	s := 0
	for _, c := range b[:512] {
		s += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", s))
	return b
}

// padded is data padded to a whole number of blocks.
func padded(data []byte) []byte {
	return append(slices.Clone(data), make([]byte, (512-len(data)%512)%512)...)
}

// gnuSparse is an old GNU sparse member (type 'S'): realSize bytes once
// expanded, data at the end and a hole before it.
func gnuSparse(name string, realSize int64, data []byte) []byte {
	h := rawHeader(name, tar.TypeGNUSparse, int64(len(data)), "ustar  \x00")
	copy(h[386:398], fmt.Sprintf("%011o\x00", realSize-int64(len(data)))) // sparse[0].offset
	copy(h[398:410], fmt.Sprintf("%011o\x00", len(data)))                 // sparse[0].numbytes
	copy(h[483:495], fmt.Sprintf("%011o\x00", realSize))                  // realsize
	return append(sum(h), padded(data)...)
}

// paxSparse is a PAX GNU sparse member, format 0.1 (GNU.sparse.map).
func paxSparse(name string, realSize int64, data []byte) []byte {
	var recs []byte
	for _, kv := range [][2]string{
		{"GNU.sparse.size", fmt.Sprint(realSize)},
		{"GNU.sparse.numblocks", "1"},
		{"GNU.sparse.map", fmt.Sprintf("%d,%d", realSize-int64(len(data)), len(data))},
	} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		recs = append(recs, fmt.Sprintf("%d%s", n, rec)...)
	}
	out := sum(rawHeader("PaxHeaders/x", tar.TypeXHeader, int64(len(recs)), "ustar\x0000"))
	out = append(out, padded(recs)...)
	out = append(out, sum(rawHeader(name, tar.TypeReg, int64(len(data)), "ustar\x0000"))...)
	return append(out, padded(data)...)
}

// writeArchive writes data (compressed as kind) into a new directory and
// returns its path and the directory.
func writeArchive(t *testing.T, kind string, data []byte) (string, string) {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"in", "tmp"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(root, "in", "x.tar")
	if err := os.WriteFile(p, compress(t, kind, data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, root
}

// openMode is a way an archive is read: its compression, and whether it
// is extracted.
type openMode struct {
	name, kind string
	extract    bool
}

// openModes are the ways an archive is read: in place, spooled, extracted.
var openModes = []openMode{
	{"plain", KindTar, false},
	{"gzip", KindTarGzip, false},
	{"zstd", KindTarZstd, false},
	{"plain-extract", KindTar, true},
	{"gzip-extract", KindTarGzip, true},
}

// openIn writes data with writeArchive, compressed as mode says, and
// opens it with opts in mode (spooling into tmp, extracting into ex of
// the directory written); it returns the checkpoint, the directory and
// Open's error.
func openIn(t *testing.T, mode openMode, data []byte, opts Options) (*Checkpoint, string, error) {
	t.Helper()
	p, root := writeArchive(t, mode.kind, data)
	opts.TempDir = filepath.Join(root, "tmp")
	if mode.extract {
		opts.ExtractDir = filepath.Join(root, "ex")
	}
	ck, err := Open(p, opts)
	return ck, root, err
}

// opens opens data in every mode, in subtests named prefix+mode, and
// checks that it opens.
func opens(t *testing.T, prefix string, data []byte) {
	t.Helper()
	for _, mode := range openModes {
		t.Run(prefix+mode.name, func(t *testing.T) {
			ck, _, err := openIn(t, mode, data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ck.Close()
		})
	}
}

// refused opens data in every mode and checks that the error has every
// string of want and that nothing is left behind.
func refused(t *testing.T, data []byte, opts Options, want ...string) {
	t.Helper()
	for _, mode := range openModes {
		t.Run(mode.name, func(t *testing.T) {
			ck, root, err := openIn(t, mode, data, opts)
			if err == nil {
				ck.Close()
				t.Fatal("opened")
			}
			t.Log(err)
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if got := listTree(t, root); !slices.Equal(got, []string{"in", "in/x.tar", "tmp"}) {
				t.Errorf("after the failed Open the tree is %v", got)
			}
		})
	}
}

// TestSparseMembers: archive/tar expands the holes of a sparse member, so
// an archive of a few KB would spool hundreds of MB of zeros. A sparse
// member the package needs is refused in every mode, in both formats.
func TestSparseMembers(t *testing.T) {
	const real = 8 << 20 // each under MaxBytes, five of them over it
	data := bytes.Repeat([]byte("P"), 512)
	for _, f := range []struct {
		name string
		make func(string, int64, []byte) []byte
	}{{"gnu", gnuSparse}, {"pax", paxSparse}} {
		t.Run(f.name, func(t *testing.T) {
			// archive/tar must read it as sparse: else the test tests nothing.
			tr := tar.NewReader(bytes.NewReader(append(f.make("probe", real, data), make([]byte, 1024)...)))
			h, err := tr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !isSparse(h) || h.Size != real {
				t.Fatalf("not read as sparse: type %q, size %d, PAX %v", h.Typeflag, h.Size, h.PAXRecords)
			}
			var raw [][]byte
			for i := range 5 {
				raw = append(raw, f.make(fmt.Sprintf("checkpoint/pages-%d.img", i+1), real, data))
			}
			t.Run("pages", func(t *testing.T) {
				refused(t, limitsTar(t, raw...), Options{MaxBytes: 16 << 20}, `"checkpoint/pages-1.img"`, "sparse")
			})
			t.Run("rootfs-diff", func(t *testing.T) {
				refused(t, limitsTar(t, f.make("rootfs-diff.tar", real, data)), Options{}, `"rootfs-diff.tar"`, "sparse")
			})
		})
	}
	// A sparse member that is skipped costs nothing and is accepted.
	opens(t, "skipped-", limitsTar(t, gnuSparse("artifacts/big", real, data)))
}

// TestSpoolLimit: what spooling writes, through every file, is bounded
// (by MaxBytes), whatever the tar reader hands out.
func TestSpoolLimit(t *testing.T) {
	var a, b bytes.Buffer
	lw := &limitWriter{w: &a, limit: 10}
	if n, err := lw.Write([]byte("123456")); n != 6 || err != nil {
		t.Fatalf("first write: %d, %v", n, err)
	}
	lw.w = &b
	if n, err := lw.Write([]byte("123456")); n != 0 || !errors.Is(err, errSpoolLimit) {
		t.Fatalf("write beyond the limit: %d, %v", n, err)
	}
	if n, err := lw.Write([]byte("1234")); n != 4 || err != nil {
		t.Fatalf("write up to the limit: %d, %v", n, err)
	}
	if a.Len()+b.Len() != 10 {
		t.Errorf("%d bytes written, want 10", a.Len()+b.Len())
	}

}

// TestLongNames: a name longer than PATH_MAX is refused, naming the
// problem; skipped members' names are not kept in memory.
func TestLongNames(t *testing.T) {
	long := func(prefix string, n int) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		name := prefix + strings.Repeat("a", n-len(prefix))
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Size: 1, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("x"))
		tw.Flush()
		return buf.Bytes()
	}
	t.Run("5000", func(t *testing.T) {
		refused(t, limitsTar(t, long("artifacts/", 5000)), Options{}, "artifacts/aaa", "5000 bytes", "PATH_MAX")
	})
	t.Run("image-name", func(t *testing.T) {
		refused(t, limitsTar(t, long("checkpoint/", 300)), Options{}, "checkpoint/aaa", "NAME_MAX")
	})
	t.Run("4096-ok", func(t *testing.T) {
		var raw [][]byte
		// Components of at most 200 bytes: --extract writes them too.
		for i := range 200 {
			name := fmt.Sprintf("artifacts/%d/", i)
			for len(name) < 4096-201 {
				name += strings.Repeat("a", 200) + "/"
			}
			raw = append(raw, long(name, 4096))
		}
		opens(t, "", limitsTar(t, raw...))
	})
	t.Run("memory", func(t *testing.T) {
		// 10000 skipped members with names of 4096 bytes (40 MB of names),
		// streamed, then a needed member: when it is reached, the heap
		// must not hold the names.
		const n = 10000
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			for i := range n {
				name := fmt.Sprintf("artifacts/%d/", i)
				name += strings.Repeat("a", 4096-len(name))
				if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Format: tar.FormatPAX}); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			tw.WriteHeader(&tar.Header{Name: "checkpoint/inventory.img", Typeflag: tar.TypeReg, Mode: 0o600})
			pw.CloseWithError(tw.Close())
		}()
		var before, at runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		cr := &countReader{r: pr, limit: DefaultMaxBytes}
		_, err := scan("x.tar", cr, tar.NewReader(cr), Options{MaxMembers: 2 * n, MaxBytes: DefaultMaxBytes}, -1, false, func(m *member) error {
			runtime.GC()
			runtime.ReadMemStats(&at)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		grew := int64(at.HeapAlloc) - int64(before.HeapAlloc)
		t.Logf("heap grew by %d bytes over %d long names", grew, n)
		if grew > 8<<20 {
			t.Errorf("heap grew by %d bytes over %d skipped long names: their names are kept", grew, n)
		}
	})
}
