package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestList: a directory with the fixtures' archives, a copied image
// directory and a junk file: every checkpoint is listed once, by content
// (the names are changed), the junk is named on stderr, rows are by time.
func TestList(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, filepath.Join(intrusionDir, "before.tar"), filepath.Join(dir, "a.bin"))
	copyFile(t, filepath.Join(intrusionDir, "after.tar.zst"), filepath.Join(dir, "b.bin"))
	pc := imgtest.Testdata("x86_64/podman-counter")
	copyFile(t, filepath.Join(pc, "checkpoint-counters_default-counter-gzip.tar.gz"), filepath.Join(dir, "gzip"))
	copyFile(t, filepath.Join(pc, "checkpoint-counters_default-counter-zstd.tar.gz"), filepath.Join(dir, "zstd"))
	imgDir := filepath.Join(dir, "images")
	if err := imgtest.CopyImages(imgDir, grepCounter); err != nil {
		t.Fatal(err)
	}
	// A bare image directory is dated by stats-dump's (or inventory.img's)
	// mtime: set it to a time before every archive's.
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, n := range []string{"stats-dump", "inventory.img"} {
		if err := os.Chtimes(filepath.Join(imgDir, n), old, old); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.txt"), []byte("not a checkpoint\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var imgSize int64
	ents, _ := os.ReadDir(imgDir)
	for _, e := range ents {
		if st, err := os.Stat(filepath.Join(imgDir, e.Name())); err == nil && st.Mode().IsRegular() {
			imgSize += st.Size()
		}
	}

	var out, errOut bytes.Buffer
	if code := run([]string{"list", "--json", dir}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rows []checkpointRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	im := imgtest.Intrusion(t)
	intrName := im.Container.Name
	var man struct {
		Container struct {
			Name string `json:"name"`
		} `json:"container"`
	}
	imgtest.ReadJSON(t, filepath.Join(pc, "manifest.json"), &man)
	counterName := man.Container.Name

	byFile := map[string]checkpointRow{}
	index := map[string]int{}
	for i, r := range rows {
		byFile[filepath.Base(r.File)] = r
		index[filepath.Base(r.File)] = i
		if i > 0 && rows[i-1].Checkpointed > r.Checkpointed {
			t.Errorf("rows not sorted by time: %s before %s", rows[i-1].Checkpointed, r.Checkpointed)
		}
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5: %+v", len(rows), rows)
	}
	for _, f := range []string{"a.bin", "b.bin"} {
		if r := byFile[f]; r.Container != intrName || r.Engine != "Podman" || r.Checkpointed == "" {
			t.Errorf("%s: %+v, want container %s of Podman", f, r, intrName)
		}
	}
	for _, f := range []string{"gzip", "zstd"} {
		if r := byFile[f]; r.Container != counterName || r.Engine != "Podman" {
			t.Errorf("%s: %+v, want container %s of Podman", f, r, counterName)
		}
	}
	// BEFORE was checkpointed before AFTER; the gzip one first (manifests).
	if index["a.bin"] > index["b.bin"] || index["gzip"] > index["zstd"] {
		t.Errorf("order %v", index)
	}
	if r := byFile["images"]; r.Kind != "directory" || r.Size != imgSize || r.Processes == 0 || r.Checkpointed != old.Format(time.RFC3339) || index["images"] != 0 {
		t.Errorf("image directory: %+v, want %d bytes", r, imgSize)
	}
	if st, _ := os.Stat(filepath.Join(dir, "a.bin")); byFile["a.bin"].Size != st.Size() {
		t.Errorf("a.bin size %d, want %d", byFile["a.bin"].Size, st.Size())
	}
	if !strings.Contains(errOut.String(), "junk.txt") {
		t.Errorf("stderr does not name the junk file: %q", errOut.String())
	}

	// A DIR that does not exist: named, exit 1, the others still listed.
	out.Reset()
	errOut.Reset()
	if code := run([]string{"list", filepath.Join(dir, "nonexistent"), dir}, &out, &errOut); code != exitFailed || !strings.Contains(out.String(), "a.bin") {
		t.Errorf("missing DIR: exit %d, stdout %s", code, out.String())
	}
}

// TestInspectSummary: inspect --summary on both intrusion archives; the
// sizes of before.tar (a plain tar) are summed here from its members, as
// checkpointctl does.
func TestInspectSummary(t *testing.T) {
	before, after := filepath.Join(intrusionDir, "before.tar"), filepath.Join(intrusionDir, "after.tar.zst")
	var out, errOut bytes.Buffer
	if code := run([]string{"inspect", "--summary", "--json", before, after}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rows []checkpointRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	f, err := os.Open(before)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ckSize, pages, diff int64
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch {
		case h.Typeflag != tar.TypeReg:
		case strings.HasPrefix(name, "checkpoint/"):
			ckSize += h.Size
			if strings.HasPrefix(name, "checkpoint/pages-") {
				pages += h.Size
			}
		case name == "rootfs-diff.tar":
			diff = h.Size
		}
	}
	man := imgtest.Intrusion(t)
	r := rows[0]
	if r.Container != man.Container.Name || r.Image != man.Container.Image || r.Engine != "Podman" || r.ID == "" {
		t.Errorf("row %+v, manifest %+v", r, man.Container)
	}
	if r.CheckpointSize != ckSize || r.PagesSize != pages || r.RootfsDiffSize != diff || pages == 0 || diff == 0 {
		t.Errorf("sizes %d/%d/%d, members give %d/%d/%d", r.CheckpointSize, r.PagesSize, r.RootfsDiffSize, ckSize, pages, diff)
	}
	if rows[1].ID != r.ID {
		t.Errorf("after: id %q, before %q", rows[1].ID, r.ID)
	}
	out.Reset()
	if code := run([]string{"inspect", "--summary", before, after}, &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), "CHKPT SIZE") || strings.Count(out.String(), man.Container.Name) != 2 {
		t.Errorf("table: exit %d\n%s", code, out.String())
	}
}
