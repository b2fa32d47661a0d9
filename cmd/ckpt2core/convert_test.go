package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestConvertJSON: --json gives one record per process of static-c: two
// cores whose sizes are the files' sizes, and the zombie (pid 1538 in the
// manifest) with no core.
func TestConvertJSON(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := convertCLI(t, "../../testdata/x86_64/static-c/images", "-o", out, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var recs []convertRecord
	if err := json.Unmarshal([]byte(stdout), &recs); err != nil {
		t.Fatalf("%v in %q", err, stdout)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3: %s", len(recs), stdout)
	}
	for _, r := range recs {
		switch r.Pid {
		case 1538:
			if !r.Zombie || r.Path != "" {
				t.Errorf("zombie record %+v", r)
			}
		case 1535, 1539:
			st, err := os.Stat(filepath.Join(out, filepath.Base(r.Path)))
			if err != nil || uint64(st.Size()) != r.Bytes || r.Comm != "static-c" || r.Threads != 1 {
				t.Errorf("record %+v, file %v %v", r, st, err)
			}
		default:
			t.Errorf("unexpected pid %d", r.Pid)
		}
	}
}
