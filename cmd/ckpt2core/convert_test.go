package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestConvertJSON: --json gives one record per process of static-c: two
// cores whose sizes are the files' sizes, and the zombie (pid 1538 in the
// manifest) with no core.
func TestConvertJSON(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := convertCLI(t, imgtest.Testdata("x86_64/static-c/images"), "-o", out, "--json")
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

// TestConvertJSONKeys: every record carries every key the README lists
// (a zombie's and a converted process's alike), and a fatal error with
// --json prints a JSON error object on stdout.
func TestConvertJSONKeys(t *testing.T) {
	code, stdout, stderr := convertCLI(t, imgtest.Testdata("x86_64/static-c/images"), "-o", t.TempDir(), "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var recs []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		for _, k := range []string{"pid", "comm", "threads", "bytes", "path", "zombie", "error", "warnings"} {
			if _, ok := r[k]; !ok {
				t.Errorf("record %s lacks %q", r["pid"], k)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"/nonexistent/dump", "-o", t.TempDir(), "--json"}, exitFailed},
		{[]string{imgtest.Testdata("x86_64/static-c/images"), "--json"}, exitUsage},
		{[]string{imgtest.Testdata("x86_64/static-c/images"), "-o", t.TempDir(), "--pid", "4", "--json"}, exitUsage},
	} {
		code, stdout, _ := convertCLI(t, tc.args...)
		var e jsonError
		if err := json.Unmarshal([]byte(stdout), &e); err != nil || code != tc.code || e.ExitStatus != tc.code || e.Error == "" {
			t.Errorf("%q: exit %d, stdout %q (%v), want a JSON error object with status %d", tc.args, code, stdout, err, tc.code)
		}
	}
}
