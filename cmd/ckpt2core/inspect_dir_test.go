package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// inspectDirFixture is the Podman export of the counter container.
var inspectDirFixture = imgtest.Testdata("x86_64/podman-counter/checkpoint-counters_default-counter-zstd.tar.gz")

// inspectJSON runs inspect --json with args and decodes the report.
func inspectJSON(t *testing.T, args ...string) map[string]json.RawMessage {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(append([]string{"inspect", "--json"}, args...), &stdout, &stderr); code != exitOK {
		t.Fatalf("inspect %q: exit %d: %s", args, code, stderr.String())
	}
	var rep map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("inspect %q: %v", args, err)
	}
	return rep
}

// TestInspectExtractedDir: an archive extracted with --extract, inspected
// as DIR or as DIR/checkpoint, reports what the archive itself reports:
// the container, CRIU's dump statistics and rootfs-diff.tar.
func TestInspectExtractedDir(t *testing.T) {
	if _, err := os.Stat(inspectDirFixture); err != nil {
		t.Fatalf("fixture missing: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "extracted")
	want := inspectJSON(t, inspectDirFixture, "--extract", dir)
	for _, k := range []string{"container", "dump_stats", "rootfs_diff"} {
		if len(want[k]) == 0 {
			t.Fatalf("the archive's report has no %s", k)
		}
	}
	for _, p := range []string{"", "checkpoint", "checkpoint/"} {
		t.Run("DIR/"+p, func(t *testing.T) {
			got := inspectJSON(t, dir+"/"+p)
			var c struct {
				Name     string `json:"name"`
				Hostname string `json:"hostname"`
			}
			if err := json.Unmarshal(got["container"], &c); err != nil {
				t.Fatalf("container: %v (%s)", err, got["container"])
			}
			if c.Name != "counter" || c.Hostname != "counters" {
				t.Errorf("container %q, hostname %q; want counter, counters", c.Name, c.Hostname)
			}
			var st struct {
				PagesWritten uint64 `json:"pages_written"`
			}
			if err := json.Unmarshal(got["dump_stats"], &st); err != nil || st.PagesWritten == 0 {
				t.Errorf("dump_stats %s: %v", got["dump_stats"], err)
			}
			var diff []json.RawMessage
			if err := json.Unmarshal(got["rootfs_diff"], &diff); err != nil || len(diff) == 0 {
				t.Errorf("rootfs_diff %s: %v", got["rootfs_diff"], err)
			}
			delete(got, "checkpoint")
			for k, v := range want {
				if k != "checkpoint" && !bytes.Equal(got[k], v) {
					t.Errorf("%s differs from the archive's report:\n%s\nwant\n%s", k, got[k], v)
				}
			}
			if len(got) != len(want)-1 {
				t.Errorf("report has keys the archive's lacks")
			}
		})
	}
}
