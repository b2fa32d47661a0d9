package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGrepFile: grep -f prints, per pattern line, the number of hits that
// grep with that pattern alone prints, in text and --json, with -i too;
// duplicate lines get the same count.
func TestGrepFile(t *testing.T) {
	pats := []string{"INTRV_TASK_e6a1b3c9", "INTRV_", "kworker", "INTRV_LOOT_e2a94c10", "/tmp/.font-unix", "font", "INTRV_", "LD_PRELOAD"}
	list := filepath.Join(t.TempDir(), "ind.txt")
	os.WriteFile(list, []byte(strings.Join(pats, "\n")+"\n\n"), 0o600)
	for _, fold := range []bool{false, true} {
		extra := []string{}
		if fold {
			extra = []string{"-i"}
		}
		var stdout, stderr bytes.Buffer
		args := append([]string{"grep", "--json", "-f", list}, append(extra, intrusionAfter)...)
		if st := run(args, &stdout, &stderr); st != grepFound {
			t.Fatalf("status %d: %s", st, stderr.String())
		}
		var res struct {
			Hits   []jsonHit   `json:"hits"`
			Counts []jsonCount `json:"counts"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
			t.Fatalf("%v: %s", err, stdout.String())
		}
		var text bytes.Buffer
		run(append([]string{"grep", "-f", list}, append(extra, intrusionAfter)...), &text, &stderr)
		if len(res.Counts) != len(pats) {
			t.Fatalf("%d counts for %d patterns", len(res.Counts), len(pats))
		}
		sum := 0
		for i, p := range pats {
			var one bytes.Buffer
			run(append([]string{"grep", "--json"}, append(extra, "--", p, intrusionAfter)...), &one, &stderr)
			var hits []jsonHit
			if err := json.Unmarshal(one.Bytes(), &hits); err != nil {
				t.Fatal(err)
			}
			if c := res.Counts[i]; c.Pattern != p || c.Count != len(hits) {
				t.Errorf("fold %v: %q: count %+v, alone %d hits", fold, p, c, len(hits))
			}
			if !strings.Contains(text.String(), fmt.Sprintf("\ncount %d %s\n", len(hits), p)) {
				t.Errorf("fold %v: text has no line count %d %s", fold, len(hits), p)
			}
			if i != 6 { // the duplicate line's hits are reported once
				sum += len(hits)
			}
		}
		if len(res.Hits) != sum {
			t.Errorf("fold %v: %d hits, the patterns alone %d", fold, len(res.Hits), sum)
		}
	}
	var stdout, stderr bytes.Buffer
	if st := run([]string{"grep", "-f", list, "--regex", intrusionAfter}, &stdout, &stderr); st != grepTrouble {
		t.Errorf("-f --regex: status %d", st)
	}
	if st := run([]string{"grep", "-f", filepath.Join(t.TempDir(), "none"), intrusionAfter}, &stdout, &stderr); st != grepTrouble {
		t.Errorf("-f missing file: status %d", st)
	}
}
