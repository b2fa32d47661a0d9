package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/klauspost/compress/zstd"
)

const (
	podmanDir  = "../../testdata/x86_64/podman-counter"
	podmanGzip = podmanDir + "/checkpoint-counters_default-counter-gzip.tar.gz"
	podmanZstd = podmanDir + "/checkpoint-counters_default-counter-zstd.tar.gz"
	counterDir = "../../testdata/x86_64/counter/images"
)

func needFile(t testing.TB, p string) {
	t.Helper()
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture missing: %v", err)
	}
}

// entry is one member of a tar built by a test.
type entry struct {
	name     string
	typ      byte
	data     []byte
	linkname string
}

// buildTar writes entries as a tar and returns it with the data offset of
// each member.
func buildTar(t testing.TB, entries []entry) ([]byte, map[string]int64) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	offs := map[string]int64{}
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.linkname, Mode: 0o644, Size: int64(len(e.data)), Format: tar.FormatPAX}
		if typ == tar.TypeDir {
			h.Mode = 0o700
		}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if typ == tar.TypeChar {
			h.Devmajor, h.Devminor = 1, 3
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		offs[e.name] = int64(buf.Len())
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), offs
}

func compress(t testing.TB, kind string, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	switch kind {
	case KindTar:
		return b
	case KindTarGzip:
		w := gzip.NewWriter(&out)
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case KindTarZstd:
		w, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("kind %q", kind)
	}
	return out.Bytes()
}

// counterFiles reads the counter fixture's image directory.
func counterFiles(t testing.TB) map[string][]byte {
	t.Helper()
	needFile(t, counterDir)
	ents, err := os.ReadDir(counterDir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(counterDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = b
	}
	return m
}

var (
	crioConfig  = []byte(`{"id":"4f1c","name":"counter","rootfsImageName":"localhost/counter:fixture"}`)
	crioSpec    = []byte(`{"ociVersion":"1.0.2","hostname":"counters"}`)
	crioDumpLog = []byte("(00.000000) CRI-O dump.log\n")
	rootfsTar   = []byte(strings.Repeat("rootfs-diff", 200))
)

// crioEntries lays the counter images out as CRI-O does.
func crioEntries(files map[string][]byte) []entry {
	es := []entry{{name: "checkpoint/", typ: tar.TypeDir}}
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		es = append(es, entry{name: "checkpoint/" + n, data: files[n]})
	}
	return append(es,
		entry{name: "config.dump", data: crioConfig},
		entry{name: "spec.dump", data: crioSpec},
		entry{name: "dump.log", data: crioDumpLog},
		entry{name: "bind.mounts", data: []byte("[]")},
		entry{name: "rootfs-diff.tar", data: rootfsTar},
		entry{name: "other/ignored", data: []byte("ignored")},
	)
}

func pids(t *testing.T, src criuimg.Source) []uint32 {
	t.Helper()
	c, err := criuimg.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	var ps []uint32
	for _, p := range c.Procs {
		ps = append(ps, p.Pid)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// listTree lists every path under root (relative), directories included.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", p, err)
			return nil
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestPodmanFixtures(t *testing.T) {
	for _, tc := range []struct {
		path, kind string
	}{
		{podmanGzip, KindTarGzip},
		{podmanZstd, KindTarZstd},
		{"", KindTar}, // podman --compress none: the gzip fixture, decompressed
	} {
		t.Run(tc.kind, func(t *testing.T) {
			if tc.path == "" {
				tc.path = gunzipTo(t, podmanGzip, filepath.Join(t.TempDir(), "podman.tar"))
			}
			needFile(t, tc.path)
			spool := t.TempDir()
			ck, err := Open(tc.path, Options{TempDir: spool})
			if err != nil {
				t.Fatal(err)
			}
			if ck.Kind() != tc.kind {
				t.Errorf("Kind = %q, want %q", ck.Kind(), tc.kind)
			}
			if got := pids(t, ck.Images); !slices.Equal(got, []uint32{1, 6, 7}) {
				t.Errorf("pids = %v, want [1 6 7]", got)
			}
			cfg, err := fs.ReadFile(ck.Meta(), "config.dump")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(cfg, []byte(`"counter"`)) {
				t.Errorf("config.dump lacks the container name: %.200s", cfg)
			}
			for _, n := range []string{"spec.dump", "network.status", "stats-dump", "ctr.log"} {
				if b, err := fs.ReadFile(ck.Meta(), n); err != nil || len(b) == 0 {
					t.Errorf("Meta(%s): %d bytes, %v", n, len(b), err)
				}
			}
			if _, err := fs.ReadFile(ck.Meta(), "bind.mounts"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Meta(bind.mounts) = %v, want not exist (Podman writes none)", err)
			}
			if _, err := fs.ReadFile(ck.Meta(), "../etc/passwd"); err == nil {
				t.Error("Meta accepted an unknown name")
			}
			rf, err := ck.RootfsDiff()
			if err != nil {
				t.Fatal(err)
			}
			var rootfs []string
			tr := tar.NewReader(io.NewSectionReader(rf, 0, rf.Size()))
			for {
				h, err := tr.Next()
				if err != nil {
					break
				}
				rootfs = append(rootfs, h.Name)
			}
			rf.Close()
			if !slices.Contains(rootfs, "test-file") || !slices.Contains(rootfs, "opt/logfile") {
				t.Errorf("rootfs-diff.tar lists %v", rootfs)
			}
			names, _ := ck.Images.Names()
			if !slices.Contains(names, "pages-2.img") || slices.Contains(names, "config.dump") {
				t.Errorf("Images.Names = %v", names)
			}
			if tc.kind == KindTar {
				f, err := ck.Images.Open("pages-2.img")
				if err != nil {
					t.Fatal(err)
				}
				if _, off := f.(criuimg.OSFile).OSFile(); off <= 0 || ck.Dir() != "" {
					t.Errorf("plain tar: pages-2.img at offset %d, Dir %q: not read in place", off, ck.Dir())
				}
				f.Close()
			} else if ck.Dir() != "" {
				t.Errorf("compressed archive: Dir %q: spooled into a named directory", ck.Dir())
			}
			if err := ck.Close(); err != nil {
				t.Fatal(err)
			}
			if left := listTree(t, spool); len(left) != 0 {
				t.Errorf("left in the temp dir after Close: %v", left)
			}
		})
	}
}

// gunzipTo decompresses the gzip file src into dst.
func gunzipTo(t testing.TB, src, dst string) string {
	t.Helper()
	needFile(t, src)
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(gr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestBuiltArchives(t *testing.T) {
	files := counterFiles(t)
	tarBytes, offs := buildTar(t, crioEntries(files))
	for _, tc := range []struct {
		name, kind string
		extract    bool
	}{
		{"plain", KindTar, false},
		{"gzip", KindTarGzip, false},
		{"zstd", KindTarZstd, false},
		{"plain-extract", KindTar, true},
		{"zstd-extract", KindTarZstd, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := filepath.Join(root, "checkpoint-counter_default-counter-2026.tar")
			if err := os.WriteFile(p, compress(t, tc.kind, tarBytes), 0o600); err != nil {
				t.Fatal(err)
			}
			spool := filepath.Join(root, "tmp")
			os.Mkdir(spool, 0o700)
			opts := Options{TempDir: spool}
			if tc.extract {
				opts.ExtractDir = filepath.Join(root, "extracted")
			}
			ck, err := Open(p, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			if ck.Kind() != tc.kind {
				t.Errorf("Kind = %q, want %q", ck.Kind(), tc.kind)
			}
			names, err := ck.Images.Names()
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Sorted(func(yield func(string) bool) {
				for k := range files {
					yield(k)
				}
			})
			if !slices.Equal(names, want) {
				t.Errorf("Names = %v, want %v", names, want)
			}
			inPlace := tc.kind == KindTar && !tc.extract
			for name, data := range files {
				f, err := ck.Images.Open(name)
				if err != nil {
					t.Fatal(err)
				}
				if f.Size() != int64(len(data)) || f.Name() != name {
					t.Errorf("%s: size %d name %q", name, f.Size(), f.Name())
				}
				got := make([]byte, f.Size())
				if n, err := f.ReadAt(got, 0); n != len(got) || (err != nil && err != io.EOF) {
					t.Fatalf("%s: ReadAt: %d, %v", name, n, err)
				}
				if !bytes.Equal(got, data) {
					t.Errorf("%s differs from the directory's file", name)
				}
				// Reads past the end stop at the member's end.
				if len(data) > 0 {
					b := make([]byte, 2)
					if n, err := f.ReadAt(b, int64(len(data)-1)); n != 1 || err != io.EOF || b[0] != data[len(data)-1] {
						t.Errorf("%s: read across the end: %d %v", name, n, err)
					}
				}
				of, ok := f.(criuimg.OSFile)
				if !ok && (inPlace || tc.extract || len(data) > memMember) {
					t.Fatalf("%s: not an OSFile", name)
				}
				if !ok {
					f.Close() // kept in memory: compared above
					continue
				}
				osf, off := of.OSFile()
				if inPlace {
					if off != offs["checkpoint/"+name] {
						t.Errorf("%s: OSFile offset %d, want %d", name, off, offs["checkpoint/"+name])
					}
					if osf.Name() != p {
						t.Errorf("%s: OSFile is %s, want the archive", name, osf.Name())
					}
				} else if off != 0 {
					t.Errorf("%s: spooled file at offset %d", name, off)
				}
				viaOS := make([]byte, len(data))
				if _, err := osf.ReadAt(viaOS, off); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				if !bytes.Equal(viaOS, data) {
					t.Errorf("%s: bytes at the OSFile offset differ", name)
				}
				f.Close()
			}
			if _, err := ck.Images.Open("nope.img"); !criuimg.IsNotExist(err) {
				t.Errorf("Open(nope.img) = %v, want not exist", err)
			}
			if got := pids(t, ck.Images); len(got) != 3 {
				t.Errorf("pids = %v", got)
			}
			for n, want := range map[string][]byte{"config.dump": crioConfig, "spec.dump": crioSpec, "dump.log": crioDumpLog, "bind.mounts": []byte("[]"), "stats-dump": files["stats-dump"]} {
				if got, err := fs.ReadFile(ck.Meta(), n); err != nil || !bytes.Equal(got, want) {
					t.Errorf("Meta(%s) = %q, %v", n, got, err)
				}
			}
			if _, err := fs.ReadFile(ck.Meta(), "network.status"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Meta(network.status) = %v, want not exist", err)
			}
			rf, err := ck.RootfsDiff()
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, rf.Size())
			rf.ReadAt(got, 0)
			if !bytes.Equal(got, rootfsTar) {
				t.Error("rootfs-diff.tar differs")
			}
			if _, ok := rf.(criuimg.OSFile); !ok {
				t.Error("rootfs-diff.tar: not an OSFile")
			}
			rf.Close()
			if inPlace && ck.Dir() != "" {
				t.Errorf("in-place Dir = %q", ck.Dir())
			}
			dir := ck.Dir()
			if err := ck.Close(); err != nil {
				t.Fatal(err)
			}
			if left := listTree(t, spool); len(left) != 0 {
				t.Errorf("left in the temp dir: %v", left)
			}
			if tc.extract {
				// Kept, every member, and reopenable.
				if got := listTree(t, dir); !slices.Contains(got, "other/ignored") || !slices.Contains(got, "checkpoint/pages-2.img") || !slices.Contains(got, "config.dump") {
					t.Errorf("extracted: %v", got)
				}
				ck2, err := Open(dir, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if ck2.Kind() != KindDirectory || len(pids(t, ck2.Images)) != 3 {
					t.Errorf("reopened extract dir: kind %s", ck2.Kind())
				}
				if b, err := fs.ReadFile(ck2.Meta(), "config.dump"); err != nil || !bytes.Equal(b, crioConfig) {
					t.Errorf("reopened Meta: %v", err)
				}
				ck2.Close()
			}
		})
	}
}

func TestDirectory(t *testing.T) {
	needFile(t, counterDir)
	ck, err := Open(counterDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if ck.Kind() != KindDirectory {
		t.Errorf("Kind = %q", ck.Kind())
	}
	if got := pids(t, ck.Images); len(got) != 3 {
		t.Errorf("pids = %v", got)
	}
	if b, err := fs.ReadFile(ck.Meta(), "dump.log"); err != nil || len(b) == 0 {
		t.Errorf("Meta(dump.log) in a CRIU dir: %v", err)
	}
	if _, err := fs.ReadFile(ck.Meta(), "config.dump"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Meta(config.dump) = %v", err)
	}
	if _, err := ck.RootfsDiff(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RootfsDiff = %v", err)
	}
}

func TestExtractDirRules(t *testing.T) {
	needFile(t, podmanGzip)
	root := t.TempDir()
	full := filepath.Join(root, "full")
	os.Mkdir(full, 0o700)
	os.WriteFile(filepath.Join(full, "x"), nil, 0o600)
	if _, err := Open(podmanGzip, Options{ExtractDir: full}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty ExtractDir: %v", err)
	}
	empty := filepath.Join(root, "empty")
	os.Mkdir(empty, 0o755)
	ck, err := Open(podmanGzip, Options{ExtractDir: empty})
	if err != nil {
		t.Fatal(err)
	}
	ck.Close()
	// Every member of the real archive, not only those Open reads: the
	// list tar -t gives of it.
	for _, name := range []string{"checkpoint/pstree.img", "devshm-checkpoint.tar", "artifacts", "ctr.log", "rootfs-diff.tar", "checkpoint/descriptors.json", "checkpoint/tmpfs-dev-44.tar.gz.img"} {
		if _, err := os.Stat(filepath.Join(empty, name)); err != nil {
			t.Errorf("member %s not extracted: %v", name, err)
		}
	}
	if st, err := os.Stat(filepath.Join(empty, "devshm-checkpoint.tar")); err != nil || st.Size() != 1536 || st.Mode().Perm() != 0o600 {
		t.Errorf("devshm-checkpoint.tar: %v %v (the archive has 1536 bytes; want mode 0600)", st, err)
	}
}

// TestSpoolIsAnonymous: a compressed archive's members are kept in memory
// and in files without a name: nothing appears in TempDir while the
// checkpoint is open (a SIGKILL could leave nothing), and the images read
// back as the archive has them.
func TestSpoolIsAnonymous(t *testing.T) {
	needFile(t, podmanZstd)
	tmp := t.TempDir()
	ck, err := Open(podmanZstd, Options{TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ck.Images.Open("pages-2.img")
	if err != nil {
		t.Fatal(err)
	}
	if f.Size() != 11075584 {
		t.Errorf("pages-2.img: %d bytes, the archive has 11075584", f.Size())
	}
	osf, ok := f.(criuimg.OSFile)
	if !ok {
		t.Fatal("pages-2.img (11 MB): not in a file")
	}
	of, _ := osf.OSFile()
	st, err := of.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Sys().(*syscall.Stat_t).Nlink; n != 0 {
		t.Errorf("pages-2.img's spool file has %d links, want 0 (anonymous)", n)
	}
	if left := listTree(t, tmp); len(left) != 0 {
		t.Errorf("named files in TempDir while open: %v", left)
	}
	if err := ck.Close(); err != nil {
		t.Fatal(err)
	}
	if left := listTree(t, tmp); len(left) != 0 {
		t.Errorf("left in TempDir: %v", left)
	}
}

// small is a minimal container checkpoint layout for hostile variants.
func small(extra ...entry) []entry {
	es := []entry{
		{name: "checkpoint/", typ: tar.TypeDir},
		{name: "checkpoint/inventory.img", data: []byte("inventory")},
		{name: "checkpoint/pstree.img", data: []byte("pstree")},
		{name: "config.dump", data: crioConfig},
	}
	return append(es, extra...)
}

func TestHostile(t *testing.T) {
	files := counterFiles(t)
	full, offs := buildTar(t, crioEntries(files))
	cut := offs["checkpoint/pages-2.img"] + 4096 // inside pages-2.img
	rng := rand.New(rand.NewSource(1))
	garbage := make([]byte, 8192)
	rng.Read(garbage)
	tarOf := func(es ...entry) []byte { b, _ := buildTar(t, es); return b }

	type hostile struct {
		name string
		tar  []byte
		opts Options
		want []string // substrings of the error
	}
	cases := func(root string) []hostile {
		return []hostile{
			{"dotdot", tarOf(small(entry{name: "../evil", data: []byte("evil")})...), Options{}, []string{`"../evil"`, ".."}},
			{"abs", tarOf(small(entry{name: filepath.Join(root, "abs-evil"), data: []byte("evil")})...), Options{}, []string{"abs-evil", "absolute"}},
			{"checkpoint-dotdot", tarOf(small(entry{name: "checkpoint/../../x", data: []byte("evil")})...), Options{}, []string{`"checkpoint/../../x"`}},
			{"symlink-out", tarOf(small(entry{name: "escape", typ: tar.TypeSymlink, linkname: root})...), Options{}, []string{`"escape"`, "outside"}},
			{"symlink-ckpt", tarOf(small(entry{name: "checkpoint/pages-1.img", typ: tar.TypeSymlink, linkname: "../../../../etc/shadow"})...), Options{}, []string{"checkpoint/pages-1.img", "symbolic link"}},
			{"symlink-then-write", tarOf(append([]entry{{name: "checkpoint", typ: tar.TypeSymlink, linkname: root}}, small()...)...), Options{}, []string{`"checkpoint"`, "symbolic link"}},
			{"hardlink", tarOf(small(entry{name: "checkpoint/core-1.img", typ: tar.TypeLink, linkname: "config.dump"})...), Options{}, []string{"checkpoint/core-1.img", "hard link"}},
			{"chardev", tarOf(small(entry{name: "checkpoint/null", typ: tar.TypeChar})...), Options{}, []string{"checkpoint/null", "device"}},
			{"chardev-elsewhere", tarOf(small(entry{name: "dev/null", typ: tar.TypeChar})...), Options{}, []string{"dev/null", "device"}},
			{"fifo", tarOf(small(entry{name: "checkpoint/fifo", typ: tar.TypeFifo})...), Options{}, []string{"checkpoint/fifo", "FIFO"}},
			{"duplicate", tarOf(small(entry{name: "checkpoint/pstree.img", data: []byte("again")})...), Options{}, []string{"checkpoint/pstree.img", "duplicate"}},
			{"duplicate-dotslash", tarOf(small(entry{name: "./config.dump", data: []byte("again")})...), Options{}, []string{"./config.dump", "duplicate"}},
			{"truncated", full[:cut], Options{}, []string{"checkpoint/pages-2.img", "truncated"}},
			{"too-many-members", full, Options{MaxMembers: 5}, []string{"MaxMembers"}},
			{"too-many-bytes", full, Options{MaxBytes: 1 << 20}, []string{"MaxBytes"}},
			{"garbage", garbage, Options{}, []string{"not a checkpoint", "neither a directory nor a tar archive"}},
			{"short text", []byte("hello\n"), Options{}, []string{"not a checkpoint", "neither a directory nor a tar archive"}},
			{"empty", nil, Options{}, []string{"empty"}},
			{"no-images", tarOf(entry{name: "config.dump", data: crioConfig}), Options{}, []string{"no checkpoint/ images"}},
		}
	}
	for _, mode := range openModes {
		t.Run(mode.name, func(t *testing.T) {
			base := t.TempDir()
			for _, h := range cases(base) {
				t.Run(h.name, func(t *testing.T) {
					root := filepath.Join(base, h.name)
					in, tmp, out := filepath.Join(root, "in"), filepath.Join(root, "tmp"), filepath.Join(root, "out")
					for _, d := range []string{in, tmp, out} {
						if err := os.MkdirAll(filepath.Join(d), 0o700); err != nil {
							t.Fatal(err)
						}
					}
					data := h.tar
					if !(mode.kind == KindTar && len(data) == 0) {
						data = compress(t, mode.kind, h.tar)
					}
					p := filepath.Join(in, "x.tar")
					if err := os.WriteFile(p, data, 0o600); err != nil {
						t.Fatal(err)
					}
					opts := h.opts
					opts.TempDir = tmp
					if mode.extract {
						opts.ExtractDir = filepath.Join(out, "ex")
					}
					ck, err := Open(p, opts)
					if err == nil {
						ck.Close()
						t.Fatalf("opened")
					}
					if ck != nil {
						t.Error("non-nil Checkpoint with an error")
					}
					t.Log(err)
					for _, w := range h.want {
						if !strings.Contains(err.Error(), w) {
							t.Errorf("error %q lacks %q", err, w)
						}
					}
					got := listTree(t, root)
					if want := []string{"in", "in/x.tar", "out", "tmp"}; !slices.Equal(got, want) {
						t.Errorf("after the failed Open the tree is %v, want %v", got, want)
					}
				})
			}
			if got := listTree(t, base); slices.ContainsFunc(got, func(s string) bool {
				return strings.Contains(s, "evil") || filepath.Base(s) == "x"
			}) {
				t.Errorf("files escaped: %v", got)
			}
		})
	}
}

// TestBadStreams covers broken compression and garbage behind a magic.
func TestBadStreams(t *testing.T) {
	files := counterFiles(t)
	full, _ := buildTar(t, crioEntries(files))
	gz := compress(t, KindTarGzip, full)
	zs := compress(t, KindTarZstd, full)
	rng := rand.New(rand.NewSource(2))
	junk := make([]byte, 4096)
	rng.Read(junk)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"gzip-truncated", gz[:len(gz)/2], "truncated"},
		{"zstd-truncated", zs[:len(zs)/2], "checkpoint/"},
		{"gzip-magic-junk", append([]byte{0x1f, 0x8b}, junk...), "gzip"},
		{"zstd-magic-junk", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, junk...), "x.tar"},
		{"zstd-huge-window", append([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xf8}, junk...), "x.tar"},
		{"xz", append([]byte("\xfd7zXZ\x00"), junk...), "xz"},
		{"one-byte", []byte{0}, "x.tar"},
		{"zero-blocks", make([]byte, 10240), "empty tar"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tmp := filepath.Join(root, "tmp")
			os.Mkdir(tmp, 0o700)
			p := filepath.Join(root, "x.tar")
			os.WriteFile(p, tc.data, 0o600)
			ck, err := Open(p, Options{TempDir: tmp})
			if err == nil {
				ck.Close()
				t.Fatal("opened")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if got := listTree(t, root); !slices.Equal(got, []string{"tmp", "x.tar"}) {
				t.Errorf("tree after failure: %v", got)
			}
		})
	}
}

func FuzzOpen(f *testing.F) {
	tb, _ := buildTar(f, small())
	f.Add(tb)
	f.Add(compress(f, KindTarGzip, tb))
	f.Add(compress(f, KindTarZstd, tb))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0})
	f.Add([]byte("garbage"))
	// An incremental checkpoint with its parent and a volume (parent.go).
	inc, _ := buildTar(f, append(small(),
		entry{name: "checkpoint/parent", typ: tar.TypeSymlink, linkname: "../pre-checkpoint"},
		entry{name: "pre-checkpoint/pages-1.img", data: []byte("pages")},
		entry{name: "pre-checkpoint/parent", typ: tar.TypeSymlink, linkname: "../checkpoint"},
		entry{name: "volumes/v.tar", data: []byte("not a tar")}))
	f.Add(inc)
	f.Add(compress(f, KindTarZstd, inc))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		p := filepath.Join(root, "x")
		os.WriteFile(p, data, 0o600)
		tmp := filepath.Join(root, "tmp")
		os.Mkdir(tmp, 0o700)
		ck, err := Open(p, Options{TempDir: tmp, MaxMembers: 100, MaxBytes: 1 << 20})
		if err != nil {
			if got := listTree(t, tmp); len(got) != 0 {
				t.Fatalf("left %v", got)
			}
			return
		}
		names, _ := ck.Images.Names()
		for _, n := range names {
			if fl, err := ck.Images.Open(n); err == nil {
				b := make([]byte, 16)
				fl.ReadAt(b, 0)
				fl.Close()
			}
		}
		fs.ReadFile(ck.Meta(), "config.dump")
		if src, err := ck.Parent(); err == nil && src != nil {
			names, _ := src.Names()
			for _, n := range names {
				if fl, err := src.Open(n); err == nil {
					fl.Close()
				}
			}
		}
		if ents, err := fs.ReadDir(ck.Meta(), "volumes"); err == nil {
			for _, e := range ents {
				fs.ReadFile(ck.Meta(), "volumes/"+e.Name())
			}
		}
		ck.Close()
		if got := listTree(t, tmp); len(got) != 0 {
			t.Fatalf("left %v", got)
		}
	})
}

func BenchmarkOpen(b *testing.B) {
	needFile(b, podmanGzip)
	// The same archive uncompressed, read in place.
	plainPath := gunzipTo(b, podmanGzip, filepath.Join(b.TempDir(), "podman-counter.tar"))
	for _, tc := range []struct{ name, path string }{
		{"podman-gzip", podmanGzip},
		{"podman-zstd", podmanZstd},
		{"podman-plain-tar", plainPath},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tmp := b.TempDir()
			for b.Loop() {
				ck, err := Open(tc.path, Options{TempDir: tmp})
				if err != nil {
					b.Fatal(err)
				}
				ck.Close()
			}
		})
	}
}
