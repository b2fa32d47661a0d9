package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var triageFixture = filepath.Join("..", "..", "testdata", "x86_64", "intrusion")

func TestTriageExitAndJSON(t *testing.T) {
	hexAddr := regexp.MustCompile(`^0x[0-9a-f]+$`)
	tests := []struct {
		args   []string
		status int
	}{
		{[]string{"triage", filepath.Join(triageFixture, "after.tar.zst")}, exitFindings},
		{[]string{"triage", "--json", filepath.Join(triageFixture, "after.tar.zst")}, exitFindings},
		{[]string{"triage", "--json", "--pid", "8", filepath.Join(triageFixture, "after.tar.zst")}, exitOK},
		{[]string{"triage", filepath.Join(triageFixture, "before.tar")}, exitOK},
		{[]string{"triage", "--json", filepath.Join(triageFixture, "before.tar")}, exitOK},
		{[]string{"triage"}, exitUsage},
		{[]string{"triage", "--bogus", filepath.Join(triageFixture, "before.tar")}, exitUsage},
		{[]string{"triage", "--pid", "12345", filepath.Join(triageFixture, "before.tar")}, exitUsage},
		{[]string{"triage", filepath.Join(triageFixture, "no-such.tar")}, exitFailed},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := run(tt.args, &out, &errb); got != tt.status {
				t.Fatalf("exit %d, want %d; stderr %s", got, tt.status, errb.String())
			}
			if tt.status == exitUsage || tt.status == exitFailed || !contains(tt.args, "--json") {
				return
			}
			var list []map[string]any
			if err := json.Unmarshal(out.Bytes(), &list); err != nil {
				t.Fatalf("not a JSON list: %v", err)
			}
			for _, f := range list {
				for _, k := range []string{"pid", "rule", "severity", "evidence"} {
					if _, ok := f[k]; !ok {
						t.Fatalf("finding without %q: %v", k, f)
					}
				}
				if s := f["severity"]; s != "high" && s != "medium" && s != "info" {
					t.Errorf("severity %v", s)
				}
				if tt.status == exitOK && f["severity"] != "info" {
					t.Errorf("exit 0 with a %v finding", f["severity"])
				}
				for _, e := range f["evidence"].([]any) {
					for _, k := range []string{"start", "end"} {
						if a := e.(map[string]any)[k].(string); a != "" && !hexAddr.MatchString(a) {
							t.Errorf("%s %q is not a 0x address", k, a)
						}
					}
				}
			}
		})
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
