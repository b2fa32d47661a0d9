package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/ckptdiff"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
	"github.com/ckpt2core/ckpt2core/internal/synth"
)

// diffForms writes the checkpoint archive at src (plain, gzip or zstd) into dir
// as a plain tar, a gzip and a zstd archive (members in src's order) and
// an extracted directory, and returns them by form.
func diffForms(t *testing.T, src, dir, name string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err = d.DecodeAll(b, nil)
		d.Close()
		if err != nil {
			t.Fatal(err)
		}
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
	}
	forms := map[string]string{}
	for _, form := range []string{"dir", "tar", "tar.gz", "tar.zst"} {
		p := filepath.Join(dir, form, name)
		if form != "dir" {
			p += "." + form
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		var out bytes.Buffer
		switch form {
		case "dir":
			untarTimes(t, b, p)
		case "tar":
			out.Write(b)
		case "tar.gz":
			w := gzip.NewWriter(&out)
			w.Write(b)
			w.Close()
		case "tar.zst":
			w, _ := zstd.NewWriter(&out)
			w.Write(b)
			w.Close()
		}
		if form != "dir" {
			if err := os.WriteFile(p, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		forms[form] = p
	}
	return forms
}

// untarAll's extraction of the tar b into dir, with the members'
// modification times (the checkpoint's time is one).
func untarTimes(t *testing.T, b []byte, dir string) {
	t.Helper()
	untarAll(t, bytes.NewReader(b), dir)
	tr := tar.NewReader(bytes.NewReader(b))
	var dirs []*tar.Header
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeDir {
			dirs = append(dirs, h)
			continue
		}
		os.Chtimes(filepath.Join(dir, filepath.Clean("/"+h.Name)), h.ModTime, h.ModTime)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Chtimes(filepath.Join(dir, filepath.Clean("/"+dirs[i].Name)), dirs[i].ModTime, dirs[i].ModTime)
	}
}

// diffOut runs diff and returns its exit status and stdout, the paths of
// A and B replaced by "A" and "B".
func diffOut(t *testing.T, a, b string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append(append([]string{"diff"}, args...), a, b), &out, &errb)
	s := strings.ReplaceAll(strings.ReplaceAll(out.String(), a, "A"), b, "B")
	return code, s, errb.String()
}

// TestDiffStreamSame: diff of two checkpoints prints the same (text and
// --json, with --pid and --show-unchanged too) whatever their forms: a
// compressed side (gzip or zstd, members in Podman's order: pstree.img
// after the pages) streams, twice (-v says so), and its output is the
// one of the plain tars, read in place. For the intrusion pair (4 pages
// differ, 8 processes added) and Podman's two archives of one container.
func TestDiffStreamSame(t *testing.T) {
	dir := t.TempDir()
	pairs := []struct {
		name string
		a, b map[string]string
		args [][]string
	}{
		{"intrusion", diffForms(t, filepath.Join(intrusionDir, "before.tar"), dir, "before"), diffForms(t, filepath.Join(intrusionDir, "after.tar.zst"), dir, "after"),
			[][]string{{}, {"--json"}, {"--json", "--show-unchanged", "--pid", "8", "-n", "50"}}},
		{"podman", diffForms(t, filepath.Join(podmanDir, "checkpoint-counters_default-counter-gzip.tar.gz"), dir, "one"), diffForms(t, filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz"), dir, "two"),
			[][]string{{"--json", "--show-unchanged"}}},
	}
	for _, pr := range pairs {
		for _, args := range pr.args {
			wantCode, want, wantErr := diffOut(t, pr.a["tar"], pr.b["tar"], args...)
			if wantCode == diffTrouble || !strings.Contains(want, "memory") {
				t.Fatalf("%s %v, plain tars: exit %d, no memory compared: %s\n%s", pr.name, args, wantCode, want, wantErr)
			}
			for _, fa := range []string{"dir", "tar", "tar.gz", "tar.zst"} {
				for _, fb := range []string{"dir", "tar", "tar.gz", "tar.zst"} {
					if fa == "tar" && fb == "tar" {
						continue
					}
					code, got, errs := diffOut(t, pr.a[fa], pr.b[fb], append([]string{"-v"}, args...)...)
					if code != wantCode || got != want {
						t.Errorf("%s %v, %s and %s: exit %d (plain tars %d), output differs:\n%s\nplain tars:\n%s\nstderr: %s", pr.name, args, fa, fb, code, wantCode, got, want, errs)
					}
					if streamed := strings.HasPrefix(fa, "tar.") || strings.HasPrefix(fb, "tar."); streamed != strings.Contains(errs, "read a second time") {
						t.Errorf("%s %s and %s: -v says %q", pr.name, fa, fb, errs)
					}
				}
			}
		}
	}
}

// TestDiffStreamTruncated: diff with a compressed side cut short names
// that archive, exits 2, prints nothing and leaves nothing in TMPDIR
// (either side).
func TestDiffStreamTruncated(t *testing.T) {
	b, err := os.ReadFile(imgtest.IntrusionArchive("after.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	full := filepath.Join(dir, "after.tar.zst")
	os.WriteFile(full, b, 0o600)
	for _, cut := range []int{len(b) / 2, len(b) - 100} {
		p := filepath.Join(dir, "cut.tar.zst")
		os.WriteFile(p, b[:cut], 0o600)
		for _, args := range [][]string{{p, full}, {full, p}, {filepath.Join(intrusionDir, "before.tar"), p}} {
			tmp := privateTmp(t)
			t.Setenv("TMPDIR", tmp)
			var out, errb bytes.Buffer
			code := run(append([]string{"diff"}, args...), &out, &errb)
			if code != diffTrouble || !strings.Contains(errb.String(), "cut.tar.zst") || out.Len() != 0 {
				t.Errorf("cut at %d, %v: exit %d, stdout %d bytes, stderr %q; want 2, nothing, the archive named", cut, args, code, out.Len(), errb.String())
			}
			if left := leftIn(t, tmp); len(left) != 0 {
				t.Errorf("cut at %d: left in TMPDIR: %v", cut, left)
			}
		}
	}
}

// TestDiffStreamDisk runs the real binary's diff on two zstd archives
// with 128 MiB of pages each (names sorted, pstree.img after the pages;
// B has every 1000th page changed) and watches what it holds in TMPDIR:
// never more than 64 MiB (unpacked whole, both pages files would be 256
// MiB). A pages file is written whole until its process is loaded and
// tells what to keep, so the peak depends on how fast that goroutine
// runs against two streams on a loaded machine: 1-40 MiB seen. The
// output is that of the same checkpoints as plain tars.
func TestDiffStreamDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and two 128 MiB archives")
	}
	bin := buildBinary(t)
	tmp := t.TempDir()
	var arch []string
	for i, s := range []*synth.Shape{synth.Large(128 << 20), synth.LargeChanged(128<<20, 1000)} {
		img := filepath.Join(tmp, "images")
		if err := s.Write(img); err != nil {
			t.Fatal(err)
		}
		a := filepath.Join(tmp, []string{"a", "b"}[i]+".tar.zst")
		writeTarZstdOrder(t, img, a, false)
		os.RemoveAll(img)
		arch = append(arch, a)
	}
	work := privateTmp(t)
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, "diff", "-v", "-n", "5", arch[0], arch[1])
	cmd.Stdout, cmd.Stderr = &out, &errb
	peak, _ := runPeak(t, cmd, work) // exit status 1 (differences) is checked below
	if code := cmd.ProcessState.ExitCode(); code != diffDiffer {
		t.Fatalf("diff: exit %d, want 1\n%s", code, errb.String())
	}
	if peak > 64<<20 {
		t.Errorf("held %d bytes in TMPDIR while diffing, want <= 64 MiB; stderr %q", peak, errb.String())
	}
	t.Logf("peak %d bytes in TMPDIR; stderr %q", peak, errb.String())
	// The same as plain tars.
	var plain []string
	for _, a := range arch {
		p := diffForms(t, a, filepath.Join(tmp, "plain"), filepath.Base(a))["tar"]
		plain = append(plain, p)
	}
	_, want, _ := diffOut(t, plain[0], plain[1], "-n", "5")
	got := strings.ReplaceAll(strings.ReplaceAll(out.String(), arch[0], "A"), arch[1], "B")
	if got != want || !strings.Contains(want, "CHANGED_PAGE") {
		t.Errorf("streamed output differs from the plain tars' (or no changed page found):\n%s\nplain:\n%s", got, want)
	}
}

// TestDiffStreamIncremental: an incremental checkpoint in a zstd archive
// (its pages partly in the parent's files, which are not hashed) is
// unpacked whole, as before streaming (-v says so), and diff prints what
// it prints for the plain tar, against the non-incremental images and
// against itself.
func TestDiffStreamIncremental(t *testing.T) {
	base := podmanIncremental(t)
	dir := t.TempDir()
	plain, z := filepath.Join(dir, "both.tar"), filepath.Join(dir, "both.tar.zst")
	tarTree(t, base, plain, "", "checkpoint", "config.dump", "pre-checkpoint")
	tarTree(t, base, z, "zstd", "checkpoint", "config.dump", "pre-checkpoint")
	for _, other := range []string{counterImages, ""} {
		wa, wb := plain, other
		ga, gb := z, other
		if other == "" {
			wb, gb = plain, z
		}
		wantCode, want, _ := diffOut(t, wa, wb, "--json", "--show-unchanged")
		code, got, errs := diffOut(t, ga, gb, "-v", "--json", "--show-unchanged")
		if other == "" {
			// A and B are both the archive: the names are one.
			want, got = strings.ReplaceAll(want, plain, "B"), strings.ReplaceAll(got, z, "B")
		}
		if wantCode == diffTrouble || code != wantCode || got != want || !strings.Contains(want, `"pages_compared"`) {
			t.Errorf("against %q: exit %d (plain %d), output differs:\n%s\nplain:\n%s\nstderr %s", other, code, wantCode, got, want, errs)
		}
		if !strings.Contains(errs, "an incremental checkpoint: reading it again, unpacked whole") {
			t.Errorf("against %q: -v says %q", other, errs)
		}
	}
}

// TestDiffStreamLateProcess: a zstd archive whose pid 2 has its mm image
// after the pages (not in the provisional tree; it maps shared memory
// that pid 1 maps too) diffs against its image directory, and against
// itself, as the directory against itself: nothing differs, and the same
// pages are compared.
func TestDiffStreamLateProcess(t *testing.T) {
	dir, arch := lateArchive(t)
	wantCode, want, _ := diffOut(t, dir, dir, "--json", "--show-unchanged")
	want = strings.ReplaceAll(want, `"A"`, `"B"`)
	for _, pair := range [][2]string{{arch, dir}, {dir, arch}, {arch, arch}} {
		code, got, errs := diffOut(t, pair[0], pair[1], "-v", "--json", "--show-unchanged")
		got = strings.ReplaceAll(got, `"A"`, `"B"`)
		if wantCode != diffSame || code != wantCode || got != want || !strings.Contains(want, `"pages_compared"`) {
			t.Errorf("%v: exit %d (directory %d), output differs:\n%s\ndirectory:\n%s\nstderr %s", pair, code, wantCode, got, want, errs)
		}
	}
}

// TestReportDiffStream: report's comparison page of two checkpoints is
// the same whatever their forms; compressed sides stream as diff's do
// (twice, keeping the differing pages), and the page is that of the plain
// tars, read in place.
func TestReportDiffStream(t *testing.T) {
	dir := t.TempDir()
	a := diffForms(t, filepath.Join(intrusionDir, "before.tar"), dir, "before")
	b := diffForms(t, filepath.Join(intrusionDir, "after.tar.zst"), dir, "after")
	page := func(fa, fb string) string {
		t.Helper()
		out := filepath.Join(dir, "r.html")
		var stdout, stderr bytes.Buffer
		if code := run([]string{"report", a[fa], b[fb], "-o", out}, &stdout, &stderr); code != exitOK {
			t.Fatalf("report %s %s: exit %d: %s", fa, fb, code, stderr.String())
		}
		html, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(strings.ReplaceAll(string(html), a[fa], "A"), b[fb], "B")
	}
	want := page("tar", "tar")
	if !strings.Contains(want, "New strings") || !strings.Contains(want, "font-unix") {
		t.Fatalf("the page of the plain tars shows no new strings (from the pages that differ) or no planted file: the test proves little")
	}
	for _, f := range [][2]string{{"tar.zst", "tar.zst"}, {"tar.gz", "tar.zst"}, {"dir", "tar.zst"}} {
		if got := page(f[0], f[1]); got != want {
			t.Errorf("report %s %s: the page differs from the plain tars' (%d bytes, want %d)", f[0], f[1], len(got), len(want))
		}
	}
}

// TestDiffStreamRewritten: a compressed side rewritten between diff's two
// reads (here: one byte of a pages file changed once the first read has
// reached the end of the file) is refused, naming the archive: the second
// read's page hashes are not the first's, and what the plan kept would
// not be what was compared.
func TestDiffStreamRewritten(t *testing.T) {
	dir := t.TempDir()
	a := diffForms(t, filepath.Join(intrusionDir, "before.tar"), dir, "before")["dir"]
	forms := diffForms(t, intrusionAfter, dir, "after")
	b := forms["tar.zst"]
	plain, err := os.ReadFile(forms["tar"])
	if err != nil {
		t.Fatal(err)
	}
	// The same archive, one byte of its largest pages file changed.
	changed := bytes.Clone(plain)
	br := bytes.NewReader(plain)
	tr := tar.NewReader(br)
	var at, size int64
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if strings.HasPrefix(filepath.Base(h.Name), "pages-") && h.Size > size {
			// The data follows the header: where the reader is now.
			off, _ := br.Seek(0, io.SeekCurrent)
			at, size = off+h.Size/2, h.Size
		}
	}
	if size == 0 {
		t.Fatal("no pages file in the archive")
	}
	changed[at] ^= 0xff
	var zb bytes.Buffer
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(changed)
	zw.Close()
	rewritten := filepath.Join(dir, "rewritten.tar.zst")
	if err := os.WriteFile(rewritten, zb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	var read int64
	o := archive.Options{OnRead: func(n int64) {
		// The reading goroutine of B, the only compressed side: at the
		// end of the first read, B's path gets the other file.
		if read += n; read >= fi.Size() && read-n < fi.Size() {
			if err := os.Rename(rewritten, b); err != nil {
				t.Error(err)
			}
		}
	}}
	var errb bytes.Buffer
	_, closeSides, err := openDiffSides(newStopper(io.Discard), []string{a, b}, &o, ckptdiff.Options{Strings: 5, MinString: 6}, false, &errb)
	if err == nil {
		closeSides()
		t.Fatal("diff read a rewritten archive without a word")
	}
	if !strings.Contains(err.Error(), b) || !strings.Contains(err.Error(), "changed between the two times") {
		t.Errorf("error %q: want the archive named and why", err)
	}
	if read < 2*fi.Size()-fi.Size()/2 {
		t.Errorf("the archive was read %d bytes in all, not twice (%d each)", read, fi.Size())
	}
}
