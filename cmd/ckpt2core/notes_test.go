package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestConvertNotes: what the images lack (criuimg's Process.Notes) is
// worded by convert as what the core lacks; the core is written.
func TestConvertNotes(t *testing.T) {
	c := imgtest.IncompleteMemory()
	out := filepath.Join(t.TempDir(), "out")
	var stdout, stderr bytes.Buffer
	if status := run([]string{c.WriteTemp(t), "-o", out}, &stdout, &stderr); status != exitOK {
		t.Fatalf("status %d; stderr:\n%s", status, stderr.String())
	}
	for _, want := range []string{
		"12288 bytes of memory are in a parent checkpoint (incremental dump) and are left out of the core",
		"4096 bytes of memory were left to lazy migration and are not in the images; they are left out of the core",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if got := listDir(t, out); len(got) != 1 || got[0] != "core.3" {
		t.Errorf("OUT holds %v", got)
	}
}
