package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestGrepMany: grep -j 2 on three checkpoints, the middle one missing:
// each archive's hits are those of its single run, grouped under its
// name in argument order; the missing one is named on stderr and makes
// the status 2 without stopping the others.
func TestGrepMany(t *testing.T) {
	zst := filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz")
	gz := filepath.Join(podmanDir, "checkpoint-counters_default-counter-gzip.tar.gz")
	bad := filepath.Join(t.TempDir(), "missing.tar")
	single := func(p string) string {
		var out, errb bytes.Buffer
		if code := run([]string{"grep", "PODMAN_SECRET_9f1e_KEY", p}, &out, &errb); code != grepFound {
			t.Fatalf("%s: exit %d: %s", p, code, errb.String())
		}
		return out.String()
	}
	want := "== " + zst + "\n" + single(zst) + "== " + bad + "\n" + "== " + gz + "\n" + single(gz)
	var out, errb bytes.Buffer
	code := run([]string{"grep", "-j", "2", "PODMAN_SECRET_9f1e_KEY", zst, bad, gz}, &out, &errb)
	if code != grepTrouble {
		t.Errorf("exit %d, want 2 (one checkpoint failed)", code)
	}
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !strings.Contains(errb.String(), "missing.tar") {
		t.Errorf("stderr %q does not name the missing checkpoint", errb.String())
	}
}

// TestInspectManyJSON: inspect --json on two checkpoints is one array,
// in argument order, each with its status and report.
func TestInspectManyJSON(t *testing.T) {
	zst := filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz")
	before := imgtest.Testdata("x86_64/intrusion/before.tar")
	var out, errb bytes.Buffer
	if code := run([]string{"inspect", "-j", "2", "--json", zst, before}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got []struct {
		Checkpoint string
		Status     int
		Result     struct {
			Checkpoint string
			Processes  []json.RawMessage
		}
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Checkpoint != zst || got[1].Checkpoint != before || got[0].Result.Checkpoint != zst || len(got[0].Result.Processes) != 3 || got[1].Status != 0 {
		t.Errorf("got %+v", got)
	}
}
