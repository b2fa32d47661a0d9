package triage_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

// A damaged checkpoint costs only what the damage hides: pid 42's mm and
// pages cut short, remap-fpath.img and a ghost file broken; the other
// processes' findings stay, and nothing panics.
func TestDamaged(t *testing.T) {
	src := imgDir(t)
	for name, size := range map[string]int64{"mm-42.img": 100, "pages-8.img": 5000, "remap-fpath.img": 13, "ghost-file-3.img": 40, "core-57.img": 30} {
		if err := os.Truncate(filepath.Join(src, name), size); err != nil {
			t.Fatal(err)
		}
	}
	got := triageArchive(t, src, "")
	if len(find(got, 68, triage.RuleShellHistory, triage.Info, nil)) != 1 {
		t.Error("pid 68's history lost to other processes' damage")
	}
	if len(find(got, 94, triage.RulePreload, triage.High, nil)) != 1 {
		t.Error("pid 94's LD_PRELOAD lost to other processes' damage")
	}
	if len(find(got, 44, triage.RuleMemfdExe, triage.High, nil)) == 0 {
		t.Error("pid 44's memfd lost")
	}
}

// imgDir unpacks after.tar.zst's images into a directory of the test's.
func imgDir(t *testing.T) string {
	dir := t.TempDir()
	a, err := archive.Open(filepath.Join(intrusion, "after.tar.zst"), archive.Options{TempDir: t.TempDir(), ExtractDir: filepath.Join(dir, "x")})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	return filepath.Join(dir, "x", "checkpoint")
}
