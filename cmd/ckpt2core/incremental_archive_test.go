package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// tarTree writes the files, directories and symbolic links under base
// whose top-level name is in tops, as members named relative to base, in
// the order of tops and sorted within each (as Podman's writer walks each
// of its include list: chrootarchive.Tar keeps a symbolic link as a link
// member), compressed as kind ("", "gzip", "zstd"), to path.
func tarTree(t *testing.T, base, path, kind string, tops ...string) {
	t.Helper()
	var rels []string
	for _, top := range tops {
		var in []string
		filepath.Walk(filepath.Join(base, top), func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(base, p)
			in = append(in, rel)
			return nil
		})
		sort.Strings(in)
		rels = append(rels, in...)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, rel := range rels {
		p := filepath.Join(base, rel)
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		h := &tar.Header{Name: rel, Mode: 0o600, ModTime: st.ModTime()}
		var data []byte
		switch {
		case st.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, rel+"/", 0o700
		case st.Mode()&os.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			h.Linkname, _ = os.Readlink(p)
		default:
			h.Typeflag = tar.TypeReg
			data, _ = os.ReadFile(p)
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var w io.WriteCloser
	switch kind {
	case "gzip":
		w = gzip.NewWriter(&out)
	case "zstd":
		w, _ = zstd.NewWriter(&out)
	}
	if w != nil {
		w.Write(buf.Bytes())
		w.Close()
	} else {
		out = buf
	}
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// podmanIncremental lays out, under a new directory, Podman's bundle after
// podman container checkpoint --pre-checkpoint and then --with-previous
// (libpod/container_internal_common.go: checkpoint/parent ->
// ../pre-checkpoint), from the real counter fixture's pages split between
// the two (splitIncremental).
func podmanIncremental(t *testing.T) string {
	base := t.TempDir()
	splitIncremental(t, base, "pre-checkpoint", "checkpoint")
	if err := os.WriteFile(filepath.Join(base, "config.dump"), []byte(`{"id":"x","name":"counter"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return base
}

// TestIncrementalArchives converts incremental checkpoints inside
// archives, plain, gzip and zstd: one archive holding both checkpoint/
// (with its parent link member) and pre-checkpoint/, and Podman's two
// separate exports (exportCheckpoint includes checkpoint/ with the link
// but not pre-checkpoint/, which the --pre-checkpoint export holds
// instead), the second given with --parent (archive or directory). The
// cores equal the non-incremental fixture's byte for byte. grep, which
// streams a compressed archive, finds the same matches as in the
// directory and says with -v that it spooled. Without --parent the error
// names the pagemap, the address and says the parent images are not in
// the archive.
func TestIncrementalArchives(t *testing.T) {
	ref := t.TempDir()
	if code, _, stderr := convertCLI(t, counterImages, "-o", ref); code != exitOK {
		t.Fatalf("fixture: exit %d: %s", code, stderr)
	}
	want := coresIn(t, ref)
	same := func(t *testing.T, args ...string) {
		t.Helper()
		out := t.TempDir()
		code, _, stderr := convertCLI(t, append(args, "-o", out)...)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		got := coresIn(t, out)
		if len(got) != len(want) {
			t.Fatalf("%d cores, want %d", len(got), len(want))
		}
		for n, b := range want {
			if !bytes.Equal(b, got[n]) {
				t.Errorf("%s differs from the non-incremental fixture's", n)
			}
		}
	}
	base := podmanIncremental(t)
	dirGrep := func() string {
		code, out, stderr := convertCLI(t, "grep", "counter", counterImages) // the real, non-incremental images
		if code != exitOK {
			t.Fatalf("grep fixture: exit %d: %s", code, stderr)
		}
		if strings.Count(out, "\n") < 20 {
			t.Fatalf("grep fixture: %q", out)
		}
		return out
	}()
	dirInspect := processesJSON(t, counterImages)
	for _, tc := range []struct {
		kind  string
		order []string
	}{
		{"", []string{"checkpoint", "config.dump", "pre-checkpoint"}},
		{"gzip", []string{"checkpoint", "config.dump", "pre-checkpoint"}},
		{"zstd", []string{"checkpoint", "config.dump", "pre-checkpoint"}},
		{"zstd", []string{"pre-checkpoint", "config.dump", "checkpoint"}}, // the parent's pages first
	} {
		kind := tc.kind
		t.Run("one-archive-"+kind+"-"+tc.order[0], func(t *testing.T) {
			a := filepath.Join(t.TempDir(), "both.tar")
			tarTree(t, base, a, kind, tc.order...)
			same(t, a)
			ex := filepath.Join(t.TempDir(), "x")
			same(t, a, "--extract", ex)
			// The extracted directory has no parent link (links are
			// not created): --parent names the parent's images.
			same(t, ex, "--parent", filepath.Join(ex, "pre-checkpoint"))
			same(t, ex, "--parent", ex)
			if got := processesJSON(t, a); got != dirInspect {
				t.Errorf("inspect's processes differ from the non-incremental fixture's:\n%s\n---\n%s", got, dirInspect)
			}
			code, out, stderr := convertCLI(t, "grep", "-v", "counter", a)
			if code != exitOK || out != dirGrep {
				t.Errorf("grep: exit %d, %q, want %q (stderr %s)", code, out, dirGrep, stderr)
			}
			if kind != "" && !strings.Contains(stderr, "the parent's images are read from pre-checkpoint/") {
				t.Errorf("grep -v of a stream does not say it spooled: %s", stderr)
			}
		})
	}
	for _, kind := range []string{"", "gzip", "zstd"} {
		t.Run("two-exports-"+kind, func(t *testing.T) {
			dir := t.TempDir()
			child, pre := filepath.Join(dir, "child.tar"), filepath.Join(dir, "pre.tar")
			tarTree(t, base, child, kind, "checkpoint", "config.dump")
			tarTree(t, base, pre, kind, "config.dump", "pre-checkpoint")
			code, _, stderr := convertCLI(t, child, "-o", t.TempDir())
			for _, w := range []string{"pagemap-", "the first at 0x", "checkpoint/parent -> ../pre-checkpoint", "the parent checkpoint's images are not in the archive", "--parent"} {
				if code == exitOK || !strings.Contains(stderr, w) {
					t.Errorf("without --parent: exit %d, stderr %q lacks %q", code, stderr, w)
				}
			}
			same(t, child, "--parent", pre)
			same(t, child, "--parent", base)                                  // the pre-checkpoint export extracted
			same(t, child, "--parent", filepath.Join(base, "pre-checkpoint")) // its image directory
			code, out, stderr := convertCLI(t, "grep", "counter", "--parent", pre, child)
			if code != exitOK || out != dirGrep {
				t.Errorf("grep --parent: exit %d, %q, want %q (stderr %s)", code, out, dirGrep, stderr)
			}
			if got := processesJSON(t, child, "--parent", pre); got != dirInspect {
				t.Errorf("inspect --parent: processes differ from the non-incremental fixture's")
			}
		})
	}
	// --parent naming what holds no parent images, or the child itself.
	t.Run("two-exports-wrong-parent", func(t *testing.T) {
		dir := t.TempDir()
		child := filepath.Join(dir, "child.tar")
		tarTree(t, base, child, "", "checkpoint", "config.dump")
		empty := t.TempDir()
		code, _, stderr := convertCLI(t, child, "--parent", empty, "-o", t.TempDir())
		if code == exitOK || !strings.Contains(stderr, "the parent checkpoint's images are not in the archive") || !strings.Contains(stderr, "nor does "+empty) {
			t.Errorf("--parent without the images: exit %d, %s", code, stderr)
		}
		code, _, stderr = convertCLI(t, child, "--parent", child, "-o", t.TempDir())
		if code == exitOK || !strings.Contains(stderr, "the parent links form a cycle") {
			t.Errorf("--parent the child itself: exit %d, %s", code, stderr)
		}
	})
	t.Run("hostile", func(t *testing.T) {
		for _, tc := range []struct {
			name, link, target, want string
			levels                   []string
		}{
			{"absolute", "checkpoint/parent", "/etc", `links are refused in checkpoint/`, nil},
			{"leaves", "checkpoint/parent", "../../pre-checkpoint", `links are refused in checkpoint/`, nil},
			{"deeper", "checkpoint/parent", "../pre-checkpoint/x", `links are refused in checkpoint/`, nil},
			// pre-checkpoint marks pages in its parent, and names checkpoint.
			{"cycle", "pre-checkpoint/parent", "../checkpoint", "the parent links form a cycle", []string{"pre-0", "pre-checkpoint", "checkpoint"}},
			{"self", "checkpoint/parent", "../checkpoint", "the parent links form a cycle", nil},
			{"missing", "checkpoint/parent", "../nowhere", "the parent checkpoint's images are not in the archive", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := t.TempDir()
				levels := tc.levels
				if levels == nil {
					levels = []string{"pre-checkpoint", "checkpoint"}
				}
				splitIncremental(t, b, levels...)
				os.Remove(filepath.Join(b, tc.link))
				if err := os.Symlink(tc.target, filepath.Join(b, tc.link)); err != nil {
					t.Fatal(err)
				}
				for _, kind := range []string{"", "zstd"} {
					a := filepath.Join(t.TempDir(), "x.tar")
					tarTree(t, b, a, kind, levels...)
					code, _, stderr := convertCLI(t, a, "-o", t.TempDir())
					if code == exitOK || !strings.Contains(stderr, tc.want) {
						t.Errorf("%s: exit %d, stderr %q; want %q", kind, code, stderr, tc.want)
					}
				}
			})
		}
	})
}

// processesJSON returns inspect --json's processes of a checkpoint.
func processesJSON(t *testing.T, args ...string) string {
	t.Helper()
	code, out, stderr := convertCLI(t, append([]string{"inspect", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("inspect %v: exit %d: %s", args, code, stderr)
	}
	var rep struct {
		Processes json.RawMessage `json:"processes"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	return string(rep.Processes)
}
