package main

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/synth"
)

// writeStreamArchive writes the CRIU images of dir as checkpoint/* of a
// tar at path, compressed with comp ("zstd" or "gzip"), names sorted as
// Podman's writer walks the directory (pstree.img after the pages), or
// with pagesLast every pages-*.img after all other images (pstree.img
// before the pages, as other writers have it).
func writeStreamArchive(t *testing.T, dir, path, comp string, pagesLast bool) {
	t.Helper()
	order := podmanOrder
	if pagesLast {
		order = pagesAfter
	}
	writeImagesArchive(t, dir, path, comp, imageNames(t, dir, order))
}

// memberOrder is an order of a checkpoint's images in a test archive.
type memberOrder int

const (
	podmanOrder memberOrder = iota // sorted by name, as Podman's writer walks the directory
	pagesBefore                    // every pages-*.img before the other images
	pagesAfter                     // every pages-*.img after the other images
)

// imageNames returns the names of the regular files of dir in order.
func imageNames(t *testing.T, dir string, order memberOrder) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	if order != podmanOrder {
		rank := func(n string) int {
			if strings.HasPrefix(n, "pages-") == (order == pagesBefore) {
				return 0
			}
			return 1
		}
		slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(rank(a), rank(b)) })
	}
	return names
}

// writeImagesArchive writes the files names of dir, in that order, under
// checkpoint/ into a tar at path compressed with comp ("zstd" or "gzip").
func writeImagesArchive(t *testing.T, dir, path, comp string, names []string) {
	t.Helper()
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var w io.WriteCloser
	switch comp {
	case "zstd":
		if w, err = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedFastest)); err != nil {
			t.Fatal(err)
		}
	case "gzip":
		w, _ = gzip.NewWriterLevel(out, gzip.BestSpeed)
	default:
		t.Fatalf("compression %q", comp)
	}
	tw := tar.NewWriter(w)
	tw.WriteHeader(&tar.Header{Name: "checkpoint/", Typeflag: tar.TypeDir, Mode: 0o700})
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(&tar.Header{Name: "checkpoint/" + n, Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// imageDirs returns every real fixture's image directory (those holding a
// pstree.img) under testdata.
func imageDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	filepath.WalkDir(imgtest.Testdata(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "pstree.img" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if len(dirs) < 10 {
		t.Fatalf("only %d fixtures with a pstree.img under %s", len(dirs), imgtest.Testdata())
	}
	return dirs
}

func isTmpfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.TMPFS_MAGIC
}

// sameCoresIn checks that dir got exactly the cores of want.
func sameCoresIn(t *testing.T, what string, want map[string][]byte, dir string) {
	t.Helper()
	got := coresIn(t, dir)
	if len(got) != len(want) {
		t.Errorf("%s: %d cores, the directory's conversion %d", what, len(got), len(want))
	}
	for n, b := range want {
		if !bytes.Equal(got[n], b) {
			t.Errorf("%s: %s differs from the directory's (%d bytes, want %d)", what, n, len(got[n]), len(b))
		}
	}
}

// TestStreamedConvertMatchesDirectory converts every real fixture from a
// zstd and a gzip tar, in Podman's order (pstree.img after the pages: the
// cores are staged while the pages stream and completed once the tree is
// read) and with the pages last (the tree is known first), also forcing
// the rewrite of the staged cores: every core is byte-identical to the
// one converted from the directory. A multi-threaded process in Podman's
// order needs room inserted for its notes: where the output directory's
// filesystem can (not tmpfs) -v says nothing of a rewrite; on tmpfs
// (/dev/shm) the core is written anew, and -v says so.
func TestStreamedConvertMatchesDirectory(t *testing.T) {
	tmp := t.TempDir()
	shm := ""
	if isTmpfs("/dev/shm") {
		if d, err := os.MkdirTemp("/dev/shm", "ckpt2core-test-"); err == nil {
			shm = d
			t.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	for i, dir := range imageDirs(t) {
		rel, _ := filepath.Rel(imgtest.Testdata(), dir)
		t.Run(rel, func(t *testing.T) {
			base := filepath.Join(tmp, fmt.Sprintf("f%d", i))
			ref := base + "-dir"
			code, stdout, stderr := convertCLI(t, dir, "-o", ref)
			if code != exitOK && code != exitPartial {
				t.Fatalf("directory: exit %d: %s", code, stderr)
			}
			want := coresIn(t, ref)
			multi := strings.Contains(stdout, " threads\t") // a core of more than one thread
			for _, comp := range []string{"zstd", "gzip"} {
				for _, pagesLast := range []bool{false, true} {
					if comp == "gzip" && pagesLast {
						continue // zstd's runs cover it
					}
					arch := base + "-" + comp + map[bool]string{false: "-sorted", true: "-pageslast"}[pagesLast]
					writeStreamArchive(t, dir, arch, comp, pagesLast)
					modes := [][]string{nil}
					if comp == "zstd" {
						modes = append(modes, []string{"--staging=rewrite"})
					}
					for _, extra := range modes {
						out := arch + "-out" + strings.Join(extra, "")
						c, _, stderr := convertCLI(t, append([]string{arch, "-o", out, "-v"}, extra...)...)
						if c != code {
							t.Fatalf("%s %v: exit %d, the directory's %d: %s", arch, extra, c, code, stderr)
						}
						sameCoresIn(t, filepath.Base(out), want, out)
						rewritten := strings.Contains(stderr, "written anew")
						if (extra != nil) != rewritten && !isTmpfs(out) {
							t.Errorf("%s %v: -v says %q", arch, extra, stderr)
						}
					}
				}
			}
			if shm != "" && multi {
				arch := base + "-zstd-sorted"
				out := filepath.Join(shm, filepath.Base(base))
				_, _, stderr := convertCLI(t, arch, "-o", out, "-v")
				sameCoresIn(t, "tmpfs", want, out)
				if !strings.Contains(stderr, "FALLOC_FL_INSERT_RANGE") {
					t.Errorf("tmpfs: -v says %q, want a core written anew (no FALLOC_FL_INSERT_RANGE)", stderr)
				}
			}
		})
	}
}

// TestStreamedConvertRealArchives converts the real compressed exports
// (Podman's, and the intrusion fixture's) as they stream, also forcing
// the rewrite of the staged cores: the cores are byte-identical to those
// of the same archive extracted (--extract) and converted as a directory.
func TestStreamedConvertRealArchives(t *testing.T) {
	for _, arch := range []string{
		filepath.Join(podmanDir, "checkpoint-counters_default-counter-gzip.tar.gz"),
		filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz"),
		intrusionAfter,
	} {
		t.Run(filepath.Base(arch), func(t *testing.T) {
			tmp := t.TempDir()
			ext := filepath.Join(tmp, "extracted")
			code, _, stderr := convertCLI(t, arch, "-o", filepath.Join(tmp, "x"), "--extract", ext)
			if code != exitOK {
				t.Fatalf("--extract: exit %d: %s", code, stderr)
			}
			ref := filepath.Join(tmp, "ref")
			if code, _, stderr := convertCLI(t, ext, "-o", ref); code != exitOK {
				t.Fatalf("extracted directory: exit %d: %s", code, stderr)
			}
			want := coresIn(t, ref)
			for _, extra := range [][]string{nil, {"--staging=rewrite"}} {
				out := filepath.Join(tmp, "out"+strings.Join(extra, ""))
				code, _, stderr := convertCLI(t, append([]string{arch, "-o", out, "-v"}, extra...)...)
				if code != exitOK {
					t.Fatalf("%v: exit %d: %s", extra, code, stderr)
				}
				sameCoresIn(t, fmt.Sprint(extra), want, out)
				if extra != nil && !strings.Contains(stderr, "written anew") {
					t.Errorf("%v: -v says %q", extra, stderr)
				}
			}
		})
	}
}

// TestStreamedConvertDoesNotSpool converts a zstd archive in Podman's
// order with 64 MiB of pages (more than the stream reads ahead): the
// pages file is not spooled whole (-v would say so), and the core equals
// the directory's.
func TestStreamedConvertDoesNotSpool(t *testing.T) {
	tmp := t.TempDir()
	img := filepath.Join(tmp, "images")
	if err := synth.Large(64 << 20).Write(img); err != nil {
		t.Fatal(err)
	}
	arch := filepath.Join(tmp, "big.tar.zst")
	writeStreamArchive(t, img, arch, "zstd", false)
	ref := convertUnspooled(t, img, arch, tmp)
	// With the pages before the images that describe them, nothing can
	// be staged: the pages file is spooled, and -v says so (the check
	// above can fail); the core is the same.
	first := filepath.Join(tmp, "first.tar.zst")
	writeTarZstdOrder(t, img, first, true)
	out := filepath.Join(tmp, "first")
	code, _, stderr := convertCLI(t, first, "-o", out, "-v")
	if code != exitOK || !strings.Contains(stderr, "spooled whole") {
		t.Errorf("pages first: exit %d, -v says %q; want a pages file spooled whole", code, stderr)
	}
	sameCoresIn(t, "pages first", ref, out)
}

// TestStreamedConvertTruncated converts a zstd and a gzip archive cut in
// the middle of the pages: the run fails naming the archive, the member
// and the truncation, and leaves no core, no OUT_DIR of its own making
// and nothing in its private TMPDIR.
func TestStreamedConvertTruncated(t *testing.T) {
	bin := buildBinary(t)
	tmp := t.TempDir()
	img := filepath.Join(tmp, "images")
	if err := synth.Large(48 << 20).Write(img); err != nil {
		t.Fatal(err)
	}
	for _, comp := range []string{"zstd", "gzip"} {
		t.Run(comp, func(t *testing.T) {
			arch := filepath.Join(tmp, "a.tar."+comp)
			writeStreamArchive(t, img, arch, comp, false)
			b, err := os.ReadFile(arch)
			if err != nil {
				t.Fatal(err)
			}
			cut := filepath.Join(tmp, "cut.tar."+comp)
			if err := os.WriteFile(cut, b[:len(b)*3/5], 0o600); err != nil {
				t.Fatal(err)
			}
			work := privateTmp(t)
			out := filepath.Join(t.TempDir(), "new", "out")
			cmd := exec.Command(bin, cut, "-o", out, "-v")
			cmd.Env = append(os.Environ(), "TMPDIR="+work)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err = cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailed {
				t.Errorf("exit: %v, want %d", err, exitFailed)
			}
			for _, s := range []string{cut, "pages-", "truncated archive"} {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr %q does not name %q", stderr.String(), s)
				}
			}
			if _, err := os.Stat(filepath.Dir(out)); err == nil {
				t.Errorf("OUT_DIR left: %v", leftIn(t, filepath.Dir(out)))
			}
			if left := leftIn(t, work); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
		})
	}
}

// workersArchive writes a checkpoint of twelve processes whose pages
// files are pages-1.img ... pages-12.img into dir, as an image directory
// and as a zstd archive in Podman's order (names sorted), so that they
// stream as pages-1, pages-10, pages-11, pages-12, pages-2, ...; process
// 10 has 40 MiB of pages (more than the stream reads ahead), the others a
// page each.
func workersArchive(t *testing.T, dir string) (img, arch string) {
	t.Helper()
	img = workers(t, 12, 10)
	if _, err := os.Stat(filepath.Join(img, "pages-10.img")); err != nil {
		t.Fatalf("the builder's pages ids are not the pids: %v", err)
	}
	arch = filepath.Join(dir, "workers.tar.zst")
	writeTarZstdOrder(t, img, arch, false)
	return img, arch
}

// workers writes (into a temporary directory) the images of n processes,
// pids 1 to n, children of 1, each running /usr/bin/workerPID with one
// page of random memory, but process big, which has 40 MiB (more than a
// stream reads ahead). The builder numbers the pages files by pid.
func workers(t *testing.T, n, big uint32) string {
	t.Helper()
	c := imgtest.New(imgtest.X86_64)
	for pid := uint32(1); pid <= n; pid++ {
		p := c.AddProcess(pid, 0)
		if pid > 1 {
			p.PPid = 1
		}
		p.SetArgs([]string{fmt.Sprintf("/usr/bin/worker%d", pid)})
		npages := uint64(1)
		if pid == big {
			npages = 40 << 20 / 4096
		}
		p.AddAnon(0x10000000, 0x10000000+npages*4096)
		p.AddPagesFunc(0x10000000, npages, func(i int, b []byte) { synth.FillPage(uint64(pid)<<32|uint64(i), b) })
	}
	return c.WriteTemp(t)
}

// TestStreamedConvertStreamOrder converts workersArchive: the 40 MiB of
// process 10 must be staged as they stream, not kept whole while the
// conversion waits for pages-2.img (which pid order would do, and -v
// would say so). The cores are the directory's.
func TestStreamedConvertStreamOrder(t *testing.T) {
	tmp := t.TempDir()
	img, arch := workersArchive(t, tmp)
	if n := len(convertUnspooled(t, img, arch, tmp)); n != 12 {
		t.Errorf("%d cores, want 12", n)
	}
}

// convertUnspooled converts the image directory img and the archive
// arch of the same checkpoint (into directories under tmp) and checks
// that the archive's pages streamed into the cores, none kept whole (-v
// would say so), and that the cores are the directory's, which it
// returns.
func convertUnspooled(t *testing.T, img, arch, tmp string) map[string][]byte {
	t.Helper()
	ref := filepath.Join(tmp, "ref")
	if code, _, stderr := convertCLI(t, img, "-o", ref); code != exitOK {
		t.Fatalf("directory: exit %d: %s", code, stderr)
	}
	out := filepath.Join(tmp, "out")
	code, _, stderr := convertCLI(t, arch, "-o", out, "-v")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "spooled whole") {
		t.Errorf("a pages file was kept whole: %s", stderr)
	}
	want := coresIn(t, ref)
	sameCoresIn(t, "archive", want, out)
	return want
}
