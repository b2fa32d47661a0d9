package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestTriageImage: with the container's image as the root (--image, both
// formats podman save writes), triage names the bytes of libc that the
// implant patched (I03) exactly as the fixture's manifest gives them:
// address, length, captured and original bytes.
func TestTriageImage(t *testing.T) {
	var m struct {
		Indicators []struct {
			ID            string `json:"id"`
			Pid           uint32 `json:"pid"`
			File          string `json:"file"`
			PatchedAt     string `json:"patched_at"`
			PatchLen      int    `json:"patch_len"`
			OriginalBytes string `json:"original_bytes"`
			CapturedBytes string `json:"captured_bytes"`
		} `json:"indicators"`
	}
	b, err := os.ReadFile(filepath.Join(triageFixture, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var i03 = m.Indicators[0]
	for _, ind := range m.Indicators {
		if ind.ID == "I03" {
			i03 = ind
		}
	}
	if i03.ID != "I03" {
		t.Fatal("manifest has no I03")
	}
	at, err := strconv.ParseUint(i03.PatchedAt, 0, 64)
	if err != nil {
		t.Fatal(err)
	}
	wantEnd := "0x" + strconv.FormatUint(at+uint64(i03.PatchLen), 16)
	for _, img := range []string{"image-docker.tar", "image-oci.tar"} {
		t.Run(img, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := []string{"triage", "--json", "--pid", strconv.Itoa(int(i03.Pid)), "--image", filepath.Join(triageFixture, img), filepath.Join(triageFixture, "after.tar.zst")}
			if got := run(args, &out, &errb); got != exitFindings {
				t.Fatalf("exit %d, want %d; stderr %s", got, exitFindings, errb.String())
			}
			var list []struct {
				Rule     string `json:"rule"`
				Severity string `json:"severity"`
				Subject  string `json:"subject"`
				Evidence []struct {
					Start    string `json:"start"`
					End      string `json:"end"`
					Hex      string `json:"hex"`
					Original string `json:"original"`
				} `json:"evidence"`
			}
			if err := json.Unmarshal(out.Bytes(), &list); err != nil {
				t.Fatal(err)
			}
			found := 0
			for _, f := range list {
				if f.Rule != "modified-code" || f.Severity != "high" || f.Subject != i03.File {
					continue
				}
				for _, e := range f.Evidence {
					if e.Original == "" {
						continue
					}
					found++
					if e.Start != i03.PatchedAt || e.End != wantEnd || e.Hex != i03.CapturedBytes || e.Original != i03.OriginalBytes {
						t.Errorf("differing range %s-%s %s (file %s), want %s-%s %s (file %s)", e.Start, e.End, e.Hex, e.Original, i03.PatchedAt, wantEnd, i03.CapturedBytes, i03.OriginalBytes)
					}
				}
			}
			if found != 1 {
				t.Errorf("%d differing ranges of %s, want 1; stderr %s", found, i03.File, errb.String())
			}
		})
	}
}
