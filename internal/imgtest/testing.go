package imgtest

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// DirSource returns a criuimg.Source over the image directory dir, or
// fails tb.
func DirSource(tb testing.TB, dir string) *criuimg.DirSource {
	tb.Helper()
	src, err := criuimg.NewDirSource(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return src
}

// OpenDir opens the checkpoint in the image directory dir with
// criuimg.Open, or fails tb.
func OpenDir(tb testing.TB, dir string) *criuimg.Checkpoint {
	tb.Helper()
	ck, err := criuimg.Open(DirSource(tb, dir))
	if err != nil {
		tb.Fatal(err)
	}
	return ck
}

// LoadFrom loads process pid of ck, or fails tb (as it does for a
// zombie, which LoadProcess returns with an error). The process is
// closed when the test or benchmark ends (tb.Cleanup): a benchmark that
// loads a process on every iteration should call ck.LoadProcess and
// close the process itself.
func LoadFrom(tb testing.TB, ck *criuimg.Checkpoint, pid uint32) *criuimg.Process {
	tb.Helper()
	p, err := ck.LoadProcess(pid)
	if err != nil {
		if p != nil {
			p.Close()
		}
		tb.Fatalf("%s: %v", ck.Src, err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// LoadProcess opens the checkpoint in the image directory dir and loads
// process pid, or fails tb; the process is closed when the test ends, as
// with LoadFrom.
func LoadProcess(tb testing.TB, dir string, pid uint32) *criuimg.Process {
	tb.Helper()
	return LoadFrom(tb, OpenDir(tb, dir), pid)
}

// WriteTemp writes the checkpoint into a new directory of tb's
// (tb.TempDir) and returns that directory, or fails tb.
func (c *Checkpoint) WriteTemp(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := c.Write(dir); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// Load writes the checkpoint into a new directory of tb's and loads its
// process pid, or fails tb; the process is closed when the test ends, as
// with LoadFrom.
func (c *Checkpoint) Load(tb testing.TB, pid uint32) *criuimg.Process {
	tb.Helper()
	return LoadProcess(tb, c.WriteTemp(tb), pid)
}

// Untar extracts the regular files and directories of tr into a new
// directory of tb's, as tar -x does (modification times kept), and returns
// it. Names are confined to the directory; other member types are skipped.
func Untar(tb testing.TB, tr *tar.Reader) string {
	tb.Helper()
	out := tb.TempDir()
	var times []func() error
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		name := filepath.Join(out, filepath.Clean("/"+h.Name))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o700); err != nil {
				tb.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
				tb.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				tb.Fatal(err)
			}
			if err := os.WriteFile(name, b, 0o600); err != nil {
				tb.Fatal(err)
			}
			mt := h.ModTime
			times = append(times, func() error { return os.Chtimes(name, mt, mt) })
		}
	}
	for _, f := range times {
		if err := f(); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// ReadJSON decodes the JSON file at path (a fixture's manifest.json or
// facts.json) into v, or fails tb.
func ReadJSON(tb testing.TB, path string, v any) {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

// Gunzip decompresses the gzip file gz (a fixture's oracle core.<pid>.gz)
// into dir, under its name without .gz, and returns the new file's path.
func Gunzip(tb testing.TB, gz, dir string) string {
	tb.Helper()
	in, err := os.Open(gz)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		tb.Fatalf("gunzip %s: %v", gz, err)
	}
	dst := filepath.Join(dir, strings.TrimSuffix(filepath.Base(gz), ".gz"))
	out, err := os.Create(dst)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		out.Close()
		tb.Fatalf("gunzip %s: %v", gz, err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
	return dst
}

// IncompleteMemory is an x86_64 checkpoint of one process, pid 3, whose
// anonymous mapping [0x10000, 0x40000) has one page captured, 3 pages
// (12288 bytes) in a parent checkpoint that is not there and one page
// (4096 bytes) left to lazy migration.
func IncompleteMemory() *Checkpoint {
	c := New(X86_64)
	p := c.AddProcess(3, 0)
	p.AddAnon(0x10000, 0x40000)
	p.AddPages(0x10000, []byte("X"), criuimg.PEPresent)
	p.AddPageEntry(0x20000, 3, criuimg.PEParent)
	p.AddPageEntry(0x30000, 1, criuimg.PELazy)
	return c
}
