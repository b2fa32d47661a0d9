package main

import (
	"bytes"
	"debug/elf"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// noteBuildID reads an executable's GNU build-id from its
// .note.gnu.build-id section with debug/elf (not the PT_NOTE reader that
// verify uses).
func noteBuildID(t *testing.T, path string) string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		t.Fatalf("%s: no .note.gnu.build-id", path)
	}
	b, err := s.Data()
	if err != nil || len(b) < 16 {
		t.Fatalf("%s: build-id note: %v", path, err)
	}
	return hex.EncodeToString(b[16:]) // namesz, descsz, type, "GNU\0"
}

// TestVerifyBuildID: verify --checkpoint is silent for the executable the
// checkpoint ran and warns, with both build-ids, for another one; the
// checkpoint as an image directory or a zstd archive (streamed, its pages
// dropped: openWithoutPages).
func TestVerifyBuildID(t *testing.T) {
	images := imgtest.Testdata("x86_64/threads-c/images")
	right := imgtest.Testdata("x86_64/threads-c/exe/threads-c")
	wrong := imgtest.Testdata("x86_64/static-c/exe/static-c")
	out := t.TempDir()
	if code, _, stderr := convertCLI(t, images, "-o", out); code != exitOK {
		t.Fatalf("convert: %d %s", code, stderr)
	}
	core := filepath.Join(out, "core.32484")
	arch := filepath.Join(t.TempDir(), "threads-c.tar.zst")
	writeTarZstdOrder(t, images, arch, false)
	for _, tc := range []struct {
		exe, ckpt string
		warn      bool
	}{{right, images, false}, {wrong, images, true}, {right, arch, false}, {wrong, arch, true}} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"verify", "--exe", tc.exe, core, "--checkpoint", tc.ckpt}, &stdout, &stderr)
		if code != exitOK {
			t.Errorf("%s: exit %d: %s", tc.exe, code, stderr.String())
		}
		warned := strings.Contains(stderr.String(), "build-id")
		if warned != tc.warn {
			t.Errorf("%s: stderr %q, want a build-id warning: %v", tc.exe, stderr.String(), tc.warn)
		}
		if tc.warn && (!strings.Contains(stderr.String(), noteBuildID(t, tc.exe)) || !strings.Contains(stderr.String(), noteBuildID(t, right))) {
			t.Errorf("the warning %q does not give both build-ids", stderr.String())
		}
	}
}
