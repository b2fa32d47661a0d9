package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestReportOutput: the report is a 0600 file under the name asked for,
// nothing else is left in its directory, an existing file is replaced and
// a symbolic link is neither followed nor replaced.
func TestReportOutput(t *testing.T) {
	fx := imgtest.Testdata("x86_64/threads-c/images")
	dir := t.TempDir()
	out := filepath.Join(dir, "r.html")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", fx, "-o", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(out)
	if !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) || !bytes.Contains(b, []byte(`<svg class="map"`)) {
		t.Errorf("not a report: %.60q", b)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q", stdout.String())
	}

	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.html")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run([]string{"report", fx, "-o", link}, &stdout, &stderr); code != exitFailed || !strings.Contains(stderr.String(), "symbolic link") {
		t.Errorf("-o symlink: exit %d, %q", code, stderr.String())
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("the link's target was written: %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced")
	}

	// An unreadable checkpoint: exit 1, no file.
	stderr.Reset()
	bad := filepath.Join(dir, "bad.html")
	if code := run([]string{"report", filepath.Join(dir, "nothing"), "-o", bad}, &stdout, &stderr); code != exitFailed {
		t.Errorf("missing checkpoint: exit %d", code)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "link.html r.html target" {
		t.Errorf("directory holds %v", names)
	}

	for _, args := range [][]string{{"report", fx}, {"report", "-o", out}, {"report", fx, fx, fx, "-o", out}, {"report", fx, fx, "-o", out, "--mark", "x"}, {"report", fx, "-o", out, "--mark", ""}, {"report", fx, "-o", out, "--mark-hex", "zz"}} {
		stderr.Reset()
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestReportDeletedFiles: the engine's deleted.files is listed.
func TestReportDeletedFiles(t *testing.T) {
	f, err := os.Open(imgtest.Testdata("x86_64/intrusion/before.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := imgtest.Untar(t, tar.NewReader(f))
	if err := os.WriteFile(filepath.Join(dir, "deleted.files"), []byte(`["/etc/gone.conf","/tmp/<b>x"]`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "r.html")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"report", dir, "-o", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, _ := os.ReadFile(out)
	for _, want := range []string{`<li class="mono wrap">etc/gone.conf</li>`, `<li class="mono wrap">tmp/&lt;b&gt;x</li>`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("report lacks %s", want)
		}
	}
}

// TestReportStreamSame: the report of one checkpoint (findings and
// artifacts, no --mark) is the same page whatever its form: a compressed
// archive streams, keeping what inspect, the rules and carve read
// (reportReads), and the page is that of the plain tar, read in place.
// For the intrusion fixture (findings, a memfd, bash's history) and
// Podman's export.
func TestReportStreamSame(t *testing.T) {
	dir := t.TempDir()
	for _, fx := range []struct{ name, path string }{
		{"intrusion", intrusionAfter},
		{"podman", filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz")},
	} {
		forms := diffForms(t, fx.path, dir, fx.name)
		page := func(form string) string {
			t.Helper()
			out := filepath.Join(dir, fx.name+".html")
			var stdout, stderr bytes.Buffer
			if code := run([]string{"report", forms[form], "-o", out}, &stdout, &stderr); code != exitOK {
				t.Fatalf("%s %s: exit %d: %s", fx.name, form, code, stderr.String())
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			return strings.ReplaceAll(string(b), forms[form], "CHECKPOINT")
		}
		want := page("tar")
		if fx.name == "intrusion" && (!strings.Contains(want, "bash_history") || !strings.Contains(want, "memfd:")) {
			t.Fatalf("%s: the page of the plain tar lists no bash history or memfd: the test proves little", fx.name)
		}
		for _, form := range []string{"tar.zst", "tar.gz", "dir"} {
			if got := page(form); got != want {
				t.Errorf("%s %s: the page differs from the plain tar's (%d bytes, want %d)", fx.name, form, len(got), len(want))
			}
		}
	}
}
