package main

import (
	"bytes"
	"os"
	"path/filepath"
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
