package rootfs_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt2core/ckpt2core/internal/elfcore"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/rootfs"
)

// warningsWithin converts process pid with files and returns the plan's
// warnings; a conversion that takes more than 10 s (an open that blocks)
// fails the test instead of hanging it: the FIFOs are then opened for
// writing, which releases an open of them for reading.
func warningsWithin(t *testing.T, files elfcore.MappedFiles, pid uint32, fifos ...string) string {
	t.Helper()
	type outcome struct {
		warnings []string
		err      error
	}
	// Loading opens no mapped file: only the conversion can block.
	p := imgtest.LoadProcess(t, counter, pid)
	done := make(chan outcome, 1)
	go func() {
		plan, err := elfcore.BuildWith(p, elfcore.Options{Files: files})
		if err == nil {
			err = elfcore.WriteFile(t.TempDir(), "core", plan, false, nil)
		}
		if err != nil {
			done <- outcome{err: err}
			return
		}
		done <- outcome{warnings: plan.Warnings}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		return strings.Join(o.warnings, "\n")
	case <-time.After(10 * time.Second):
		for _, p := range fifos {
			if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
		t.Fatal("conversion still running after 10 s: blocked opening a mapped file")
	}
	return ""
}

// TestRefusesSpecialFiles puts a FIFO, a symbolic link to a FIFO and a
// symbolic link leaving the root at mapped paths: none may be opened (an
// open of a FIFO blocks until a writer comes), each refusal names the file.
func TestRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "usr/lib/x86_64-linux-gnu")
	if err := os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "usr/bin/bash"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../fifo", filepath.Join(lib, "libc.so.6")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib/x86_64-linux-gnu/libtinfo.so.6.4", filepath.Join(lib, "libtinfo.so.6.4")); err != nil {
		t.Fatal(err)
	}
	w := warningsWithin(t, openRoot(t, dir), 3757, filepath.Join(dir, "usr/bin/bash"), filepath.Join(dir, "fifo"))
	for _, want := range []string{
		filepath.Join(dir, "usr/bin/bash") + ": a FIFO, not a regular file: refused",
		filepath.Join(lib, "libc.so.6") + ": a FIFO, not a regular file: refused",
		filepath.Join(lib, "libtinfo.so.6.4") + ": usr/lib/x86_64-linux-gnu/libtinfo.so.6.4: too many levels of symbolic links",
	} {
		if !strings.Contains(w, want) {
			t.Errorf("no warning %q; warnings:\n%s", want, w)
		}
	}
}

// TestOpenRegular checks the refusals of OpenRegular one by one.
func TestOpenRegular(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	os.Mkdir(filepath.Join(dir, "dir"), 0o755)
	os.Symlink("file", filepath.Join(dir, "link"))
	os.Symlink("/file", filepath.Join(dir, "abslink"))
	os.Symlink("../../../../file", filepath.Join(dir, "dir", "uplink"))
	os.Symlink("/etc/passwd", filepath.Join(dir, "escape"))
	os.Symlink("loop", filepath.Join(dir, "loop"))
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	// Links are resolved as in a chroot: they cannot leave the root.
	for _, name := range []string{"file", "link", "abslink", "dir/uplink", "/file", "../../file"} {
		f, st, err := rootfs.OpenRegular(root, name)
		if err != nil || st.Size() != 4 {
			t.Fatalf("%s: %v, %v", name, st, err)
		}
		f.Close()
	}
	for name, want := range map[string]string{
		"fifo":        "a FIFO",
		"dir":         "a directory",
		"escape":      "no such file", // /etc/passwd of the root, not the host's
		"loop":        "too many levels",
		"../etc/x":    "no such file",
		"dir/../fifo": "a FIFO",
		"missing":     "no such file",
	} {
		f, _, err := rootfs.OpenRegular(root, name)
		if err == nil {
			f.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q lacks %q", name, err, want)
		}
	}
}

// overlayTar is a tar of regular files with the given names.
func overlayTar(t *testing.T, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("x"))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestOverlayLongNames: a name longer than PATH_MAX makes rootfs-diff.tar
// unusable, with an error saying why; names up to PATH_MAX are fine.
func TestOverlayLongNames(t *testing.T) {
	r := openRoot(t, t.TempDir())
	b := overlayTar(t, "usr/bin/bash", strings.Repeat("a", 5000))
	err := r.Overlay(bytes.NewReader(b), int64(len(b)))
	if err == nil || !strings.Contains(err.Error(), "5000 bytes") || !strings.Contains(err.Error(), "PATH_MAX") {
		t.Fatalf("5000-byte name: %v", err)
	}
	var names []string
	for i := range 200 {
		n := fmt.Sprintf("d%d/", i)
		names = append(names, n+strings.Repeat("a", 4096-len(n)))
	}
	b = overlayTar(t, names...)
	if err := r.Overlay(bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("200 names of 4096 bytes: %v", err)
	}
}

// TestAbsoluteLinkInRoot: a root filesystem's absolute symbolic links
// (usr/bin/bash -> /opt/real/bash here, like /lib64/ld-linux-x86-64.so.2
// in Debian) are followed inside the root: the file behind is used, or
// refused for what it is, never for being a link.
func TestAbsoluteLinkInRoot(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("/usr/bin/bash")
	if err != nil {
		t.Skipf("this host has no /usr/bin/bash to stand in: %v", err)
	}
	for _, d := range []string{"usr/bin", "opt/real"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "opt/real/bash"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/opt/real/bash", filepath.Join(dir, "usr/bin/bash")); err != nil {
		t.Fatal(err)
	}
	w := warningsWithin(t, openRoot(t, dir), 3757)
	for _, line := range strings.Split(w, "\n") {
		if strings.HasPrefix(line, "/usr/bin/bash:") && !strings.Contains(line, "build-id") && !strings.Contains(line, "bytes") {
			t.Errorf("bash refused for a reason other than its content: %s", line)
		}
	}
}

// TestGzipOverlayHasNoName: a gzip-compressed rootfs-diff.tar (a
// containerd rw layer) is decompressed into a file of TMPDIR that never
// has a name there (O_TMPFILE: /proc shows it as "#INODE (deleted)", not
// a temporary name unlinked afterwards), and is still read through; Close
// lets it go.
func TestGzipOverlayHasNoName(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(overlayTar(t, "etc/hostname"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	r := openRoot(t, t.TempDir())
	if err := r.Overlay(bytes.NewReader(gz.Bytes()), int64(gz.Len())); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("names in TMPDIR: %v", ents)
	}
	held := heldIn(t, tmp)
	if len(held) != 1 || !strings.HasPrefix(filepath.Base(held[0]), "#") || !strings.HasSuffix(held[0], " (deleted)") {
		t.Errorf("files of TMPDIR held: %q, want one O_TMPFILE file", held)
	}
	r.Close()
	if held := heldIn(t, tmp); len(held) != 0 {
		t.Errorf("still held after Close: %q", held)
	}
}

// heldIn lists the /proc/self/fd links of this process into dir.
func heldIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, dir+"/") {
			held = append(held, l)
		}
	}
	return held
}
