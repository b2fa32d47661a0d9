package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestGrepDamaged: grep searches what a damaged process still holds. The
// counter fixture's pages files are cut (pages-1.img is 3757's, pages-2.img
// 3760's, which holds the key twice): the warning names the file and says
// how many bytes could not be searched — exactly the bytes cut off, since a
// pages file holds only its pagemap's page data —, the exit status is 2,
// and the hits of what is left are printed (all of them when the damage
// is in another process).
func TestGrepDamaged(t *testing.T) {
	keyLines := []string{
		"3760 python3 0x7f6d0fb6fbad [anon]+0x6fbad  RANDOM_1432_KEY",
		"3760 python3 0x7f6d0fba0410 [anon]+0xa0410  RANDOM_1432_KEY",
	}
	for _, tc := range []struct {
		name, file string
		keep       int64 // bytes of the file kept
		pid        string
		allHits    bool
	}{
		{"another process", "pages-1.img", 0, "pid 3757 (bash)", true},
		{"the process with the key", "pages-2.img", 9093120 / 2, "pid 3760 (python3)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := imgtest.CopyImages(dir, grepCounter); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tc.file)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, tc.keep); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runGrepCLI("-C0", "RANDOM_1432_KEY", dir)
			if code != grepTrouble {
				t.Errorf("exit %d, want %d", code, grepTrouble)
			}
			if !strings.Contains(stderr, tc.pid) || !strings.Contains(stderr, tc.file) {
				t.Errorf("stderr %q names neither %s nor %s", stderr, tc.pid, tc.file)
			}
			want := tc.pid + ": damaged images: " + strconv.FormatInt(st.Size()-tc.keep, 10) + " bytes of memory unreadable, not searched"
			if !strings.Contains(stderr, want) {
				t.Errorf("stderr %q, want %q", stderr, want)
			}
			got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
			if stdout == "" {
				got = nil
			}
			for _, l := range got {
				if !strings.Contains(strings.Join(keyLines, "\n"), l) {
					t.Errorf("hit %q is not the key's", l)
				}
			}
			if tc.allHits && len(got) != len(keyLines) {
				t.Errorf("hits %q, want %q", got, keyLines)
			}
		})
	}
}
