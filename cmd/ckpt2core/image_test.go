package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// untarAll extracts a layer tar by hand (directories, regular files and
// symbolic links), as an investigator unpacks an image's layer for --root.
func untarAll(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		switch h.Typeflag {
		case tar.TypeDir:
			os.MkdirAll(p, 0o755)
		case tar.TypeSymlink:
			os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// handRoot unpacks the one layer of image-docker.tar (its manifest.json
// names it) by hand.
func handRoot(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join(intrusionDir, "image-docker.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	dir := t.TempDir()
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no layer in image-docker.tar: %v", err)
		}
		if strings.HasSuffix(h.Name, ".tar") && h.Typeflag == tar.TypeReg {
			untarAll(t, tr, dir)
			return dir
		}
	}
}

var gdbFrameRE = regexp.MustCompile(`(?m)^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(`)

// gdbRun runs 'ckpt2core gdb' on after.tar.zst and returns the functions
// of the backtrace and gdb's list of shared libraries.
func gdbRun(t *testing.T, pid string, rootArgs ...string) ([]string, string) {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out, errb bytes.Buffer
	args := append([]string{"gdb", "--pid", pid}, rootArgs...)
	args = append(args, filepath.Join(intrusionDir, "after.tar.zst"), "--", "-batch", "-nx", "-ex", "bt", "-ex", "info sharedlibrary")
	if code := run(args, &out, &errb); code != exitOK {
		t.Fatalf("%q: exit %d: %s", args, code, errb.String())
	}
	if strings.Contains(errb.String(), "warning: --image") {
		t.Errorf("%q: %s", args, errb.String())
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
	var fns []string
	for _, m := range gdbFrameRE.FindAllStringSubmatch(out.String(), -1) {
		fns = append(fns, m[1])
	}
	libs := out.String()[strings.Index(out.String(), "Shared Object Library"):]
	return fns, libs
}

// TestImageGdb: gdb names the frames of the intrusion fixture's bash
// processes (pid 68 'bash -i', pid 57 the preloaded loop; README
// "Processes in after.tar.zst") from --image alone, from the real podman
// save output in both formats and from an OCI layout directory unpacked
// from image-oci.tar; the frames equal those gdb shows with --root of the
// image's layer unpacked by hand, and the libraries come from the
// unpacked image, not from this host.
func TestImageGdb(t *testing.T) {
	if _, err := exec.LookPath("gdb"); err != nil {
		t.Skip("gdb not installed")
	}
	f, err := os.Open(filepath.Join(intrusionDir, "image-oci.tar"))
	if err != nil {
		t.Fatal(err)
	}
	layoutDir := imgtest.Untar(t, tar.NewReader(f))
	f.Close()
	hand := handRoot(t)
	for _, tc := range []struct {
		pid  string
		want []string
	}{
		{"68", []string{"__pselect", "rl_getc", "readline_internal_char", "reader_loop", "main"}},
		{"57", []string{"execute_command", "parse_and_execute", "main"}},
	} {
		want, wantLibs := gdbRun(t, tc.pid, "--root", hand)
		for _, fn := range tc.want {
			if !slices.Contains(want, fn) {
				t.Errorf("pid %s with --root: no %s in %v", tc.pid, fn, want)
			}
		}
		if !strings.Contains(wantLibs, hand+"/lib/x86_64-linux-gnu/libc.so.6") {
			t.Errorf("pid %s with --root: libc not from the root:\n%s", tc.pid, wantLibs)
		}
		for _, img := range []string{filepath.Join(intrusionDir, "image-docker.tar"), filepath.Join(intrusionDir, "image-oci.tar"), layoutDir} {
			got, libs := gdbRun(t, tc.pid, "--image", img)
			if !slices.Equal(got, want) {
				t.Errorf("pid %s --image %s: frames %v, with --root %v", tc.pid, img, got, want)
			}
			if !regexp.MustCompile(`Yes\s+\S*/` + imageRootPrefix + `[0-9]+/lib/x86_64-linux-gnu/libc\.so\.6`).MatchString(libs) {
				t.Errorf("pid %s --image %s: libc not loaded from the unpacked image:\n%s", tc.pid, img, libs)
			}
		}
	}
}

// TestImageMismatch: an image that is not the one config.dump names is
// warned about (the podman-counter checkpoint ran quay.io/adrianreber/counter,
// not the intrusion image); an image file that is not one is refused.
func TestImageMismatch(t *testing.T) {
	out := t.TempDir()
	code, _, stderr := convertCLI(t, filepath.Join(podmanDir, "checkpoint-counters_default-counter-gzip.tar.gz"), "-o", out, "--image", filepath.Join(intrusionDir, "image-docker.tar"))
	if code != exitOK || !strings.Contains(stderr, "warning: --image") || !strings.Contains(stderr, "config.dump names image") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = convertCLI(t, filepath.Join(intrusionDir, "before.tar"), "-o", t.TempDir(), "--image", filepath.Join(intrusionDir, "manifest.json"))
	if code != exitUsage || !strings.Contains(stderr, "manifest.json") {
		t.Errorf("not an image: exit %d, stderr %q", code, stderr)
	}
	// The right image: cores equal those made with --root of the same
	// files unpacked by hand.
	a, b := t.TempDir(), t.TempDir()
	if code, _, stderr := convertCLI(t, filepath.Join(intrusionDir, "before.tar"), "-o", a, "--image", filepath.Join(intrusionDir, "image-oci.tar")); code != exitOK || stderr != "" {
		t.Fatalf("--image: exit %d: %s", code, stderr)
	}
	if code, _, stderr := convertCLI(t, filepath.Join(intrusionDir, "before.tar"), "-o", b, "--root", handRoot(t)); code != exitOK {
		t.Fatalf("--root: exit %d: %s", code, stderr)
	}
	// inspect --image decodes the instructions at each thread's pc from
	// the image's files (not captured: the code pages are clean).
	for arg, want := range map[string]string{"": "not captured", "--image": "sysroot"} {
		args := []string{"inspect", "--json", filepath.Join(intrusionDir, "after.tar.zst")}
		if arg != "" {
			args = append(args, arg, filepath.Join(intrusionDir, "image-docker.tar"))
		}
		code, stdout, stderr := convertCLI(t, args...)
		var rep struct {
			Processes []struct {
				Threads []struct{ Code string }
			}
		}
		if code != exitOK || json.Unmarshal([]byte(stdout), &rep) != nil {
			t.Fatalf("%q: exit %d: %s", args, code, stderr)
		}
		n := 0
		for _, p := range rep.Processes {
			for _, th := range p.Threads {
				if th.Code == want {
					n++
				}
			}
		}
		if n != 10 { // README: ten processes of one thread each
			t.Errorf("%q: %d threads with code %q, want 10", args, n, want)
		}
	}
	ca, cb := coresIn(t, a), coresIn(t, b)
	if len(ca) != 2 || len(cb) != 2 {
		t.Fatalf("cores %d and %d, want 2 (pids 1 and 8)", len(ca), len(cb))
	}
	for n, x := range cb {
		if !bytes.Equal(x, ca[n]) {
			t.Errorf("%s with --image differs from --root's", n)
		}
	}
}

// TestImageLayers: the image's layers are flattened in order with their
// whiteouts. A layer added on top of the real image replaces libc.so.6
// with a copy one byte longer and deletes libtinfo.so.6 (OCI whiteout):
// converting pid 57 (bash, which maps both) names the size mismatch and
// the missing file instead of using them.
func TestImageLayers(t *testing.T) {
	base, err := tarball.ImageFromPath(filepath.Join(intrusionDir, "image-docker.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	libc, err := os.ReadFile(filepath.Join(handRoot(t), "lib/x86_64-linux-gnu/libc.so.6"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range []tarMember{{"lib/x86_64-linux-gnu/libc.so.6", append(libc, 0)}, {"lib/x86_64-linux-gnu/.wh.libtinfo.so.6", nil}} {
		writeMember(t, tw, m.name, m.data)
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := convertCLI(t, filepath.Join(intrusionDir, "after.tar.zst"), "-o", t.TempDir(), "--pid", "57", "--image", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"lib/x86_64-linux-gnu/libc.so.6 has " + strconv.Itoa(len(libc)+1) + " bytes, the checkpoint's file had " + strconv.Itoa(len(libc)),
		"lib/x86_64-linux-gnu/libtinfo.so.6: no such file",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
