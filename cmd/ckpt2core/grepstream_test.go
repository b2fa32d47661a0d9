package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGrepStreamTruncated: grep on a Podman zstd archive cut short finds
// what lies before the cut or not, but says which archive is truncated,
// exits 2, and leaves nothing in TMPDIR.
func TestGrepStreamTruncated(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cut := filepath.Join(dir, "cut.tar.zst")
	os.WriteFile(cut, b[:len(b)*2/3], 0o600)
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o700)
	t.Setenv("TMPDIR", tmp)
	var out, errb bytes.Buffer
	code := run([]string{"grep", "PODMAN_SECRET_9f1e_KEY", cut}, &out, &errb)
	if code != grepTrouble || !strings.Contains(errb.String(), "cut.tar.zst") {
		t.Errorf("exit %d, stderr %q; want 2 and the archive named", code, errb.String())
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
}

// TestGrepStreamPodman: grep streams both real Podman archives (pstree.img
// after the pages: the provisional tree) and finds the manifest's secret
// in pid 6, with nothing spooled whole (-v is silent).
func TestGrepStreamPodman(t *testing.T) {
	for _, name := range []string{"checkpoint-counters_default-counter-gzip.tar.gz", "checkpoint-counters_default-counter-zstd.tar.gz"} {
		var out, errb bytes.Buffer
		code := run([]string{"grep", "-v", "PODMAN_SECRET_9f1e_KEY", filepath.Join(podmanDir, name)}, &out, &errb)
		if code != grepFound || errb.Len() != 0 {
			t.Errorf("%s: exit %d, stderr %q", name, code, errb.String())
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			if !strings.HasPrefix(line, "6 python3 ") {
				t.Errorf("%s: hit outside pid 6: %q", name, line)
			}
		}
	}
}

// TestGrepStreamOrder greps workersArchive: the processes are searched
// as their pages stream (pages-10.img second), so no pages file is kept
// whole (-v would say so), and reported in pid order: text and --json
// are the image directory's. Process 10, searched before its turn, has
// some 160,000 hits held (past spillAt: in an anonymous file).
func TestGrepStreamOrder(t *testing.T) {
	img, arch := workersArchive(t, t.TempDir())
	for _, args := range [][]string{{"--hex", "aa"}, {"--json", "--hex", "aa"}, {"worker1"}, {"--json", "-C", "4", "worker"}} {
		wantCode, want, wantErr := runGrepCLI(append(args, img)...)
		if wantCode != grepFound || wantErr != "" {
			t.Fatalf("%v, directory: exit %d, stderr %q", args, wantCode, wantErr)
		}
		code, got, stderr := runGrepCLI(append(append([]string{"-v"}, args...), arch)...)
		if code != wantCode || got != want {
			t.Errorf("%v: exit %d (directory %d), %d bytes of output (directory %d): differs", args, code, wantCode, len(got), len(want))
		}
		if strings.Contains(stderr, "spooled whole") {
			t.Errorf("%v: a pages file was kept whole: %s", args, stderr)
		}
		if slices.Contains(args, "--hex") && len(want) < 4*spillAt {
			t.Errorf("%v: %d bytes of output: the held hits do not spill", args, len(want))
		}
	}
}

// TestGrepStreamOrderWaitsForNothing: in an archive whose pagemaps are
// not all read before the first pages file (mm-1, mm-2, pagemap-1,
// pages-1, pagemap-2, pages-2: not an engine's order, but a writer's
// that does not sort), working out the order of the processes must not
// wait for pagemap-2.img: that would let pages-1.img (40 MiB) stream by
// unread and be kept whole. Output the directory's.
func TestGrepStreamOrderWaitsForNothing(t *testing.T) {
	img := workers(t, 2, 1)
	var names, late []string
	for _, n := range imageNames(t, img, podmanOrder) {
		switch n {
		case "pagemap-1.img", "pages-1.img", "pagemap-2.img", "pages-2.img":
		default:
			names = append(names, n)
		}
	}
	late = []string{"pagemap-1.img", "pages-1.img", "pagemap-2.img", "pages-2.img"}
	arch := filepath.Join(t.TempDir(), "interleaved.tar.zst")
	writeImagesArchive(t, img, arch, "zstd", append(names, late...))
	wantCode, want, _ := runGrepCLI("worker", img)
	code, got, stderr := runGrepCLI("-v", "worker", arch)
	if code != wantCode || got != want {
		t.Errorf("exit %d (directory %d), output differs:\n%s\ndirectory:\n%s", code, wantCode, got, want)
	}
	if strings.Contains(stderr, "spooled whole") {
		t.Errorf("a pages file was kept whole: %s", stderr)
	}
}
