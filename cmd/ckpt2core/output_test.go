package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// convertStaticC converts a copy of static-c's images (1535, 1539 live,
// 1538 a zombie) into out with the given extra flags.
func convertStaticC(t *testing.T, out string, flags ...string) (int, string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "images")
	if err := imgtest.CopyImages(dir, corruptFixtures["static-c"].dir); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	var stdout, stderr bytes.Buffer
	status := run(append([]string{dir, "-o", out, "-q"}, flags...), &stdout, &stderr)
	return status, stdout.String(), stderr.String()
}

// TestConvertSymlinkAtCore: a symlink where a core goes is never followed.
// Without --force that process fails (the others are converted: status 3)
// and the link's target is untouched; with --force the link itself is
// replaced by the core, and its target is still untouched.
func TestConvertSymlinkAtCore(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(out, "core.1535")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	checkVictim := func() {
		t.Helper()
		if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
			t.Fatalf("victim: %q %v", b, err)
		}
		if st, err := os.Stat(victim); err != nil || st.Mode().Perm() != 0o644 {
			t.Fatalf("victim: %v %v", st, err)
		}
	}

	status, _, stderr := convertStaticC(t, out)
	if status != exitPartial {
		t.Errorf("without --force: status %d, want %d; stderr:\n%s", status, exitPartial, stderr)
	}
	if !strings.Contains(stderr, "core.1535") || !strings.Contains(stderr, "exists") {
		t.Errorf("stderr does not say core.1535 exists:\n%s", stderr)
	}
	checkVictim()
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link replaced without --force: %v %v", st, err)
	}
	if got := listDir(t, out); !slices.Equal(got, []string{"core.1535", "core.1539"}) {
		t.Errorf("OUT holds %v", got)
	}

	status, _, stderr = convertStaticC(t, out, "--force")
	if status != exitOK {
		t.Errorf("with --force: status %d; stderr:\n%s", status, stderr)
	}
	checkVictim()
	st, err := os.Lstat(link)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Errorf("core.1535 after --force: %v %v", st, err)
	}
	if got := listDir(t, out); !slices.Equal(got, []string{"core.1535", "core.1539"}) {
		t.Errorf("OUT holds %v", got)
	}
}

// TestConvertExistingCores: existing cores are kept without --force (every
// process fails: status 1), replaced with it.
func TestConvertExistingCores(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if status, _, stderr := convertStaticC(t, out); status != exitOK {
		t.Fatalf("status %d; stderr:\n%s", status, stderr)
	}
	for _, name := range []string{"core.1535", "core.1539"} {
		st, err := os.Lstat(filepath.Join(out, name))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", name, st, err)
		}
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("OUT: %v %v", st, err)
	}
	if status, _, stderr := convertStaticC(t, out); status != exitFailed || strings.Count(stderr, "file exists (use --force to replace it)") != 2 {
		t.Errorf("again: status %d, want %d; stderr:\n%s", status, exitFailed, stderr)
	}
	if status, _, stderr := convertStaticC(t, out, "-f"); status != exitOK {
		t.Errorf("with -f: status %d; stderr:\n%s", status, stderr)
	}
	if got := listDir(t, out); !slices.Equal(got, []string{"core.1535", "core.1539"}) {
		t.Errorf("OUT holds %v", got)
	}
	// A directory where a core goes is kept, also with -f.
	if err := os.Remove(filepath.Join(out, "core.1539")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(out, "core.1539"), 0o700); err != nil {
		t.Fatal(err)
	}
	if status, _, stderr := convertStaticC(t, out, "-f"); status != exitPartial || !strings.Contains(stderr, "core.1539: is a directory (not replaced, also with --force)") {
		t.Errorf("directory at a core, with -f: status %d, want %d; stderr:\n%s", status, exitPartial, stderr)
	}
}

// TestExitStatusDocumented: the statuses are what --help and the README
// say, and usage errors give 2.
func TestExitStatusDocumented(t *testing.T) {
	const doc = "0 all converted; 1 nothing converted"
	var stdout, stderr bytes.Buffer
	if s := run([]string{"--help"}, &stdout, &stderr); s != exitOK || !strings.Contains(stdout.String(), "Exit status: "+doc) ||
		!strings.Contains(stdout.String(), "2 usage error; 3 some processes converted and others failed") {
		t.Errorf("--help: status %d:\n%s", s, stdout.String())
	}
	stdout.Reset()
	stderr.Reset()
	if s := run([]string{"convert", "--help"}, &stdout, &stderr); s != exitOK || !strings.Contains(stdout.String(), "Exit status: "+doc) {
		t.Errorf("convert --help: status %d:\n%s", s, stdout.String())
	}
	if readme, err := os.ReadFile("../../README.md"); err == nil {
		readme := strings.Join(strings.Fields(string(readme)), " ")
		for _, s := range []string{"`0` all converted", "`1` nothing converted", "`2` usage error", "`3` some processes converted and others failed"} {
			if !strings.Contains(readme, s) {
				t.Errorf("README lacks %q", s)
			}
		}
	}
	for _, args := range [][]string{{}, {"--no-such-flag", "x", "-o", "y"}, {"x"}, {"x", "y", "-o", "z"}, {"x", "-o", "y", "-j", "0"}} {
		if s := run(args, &stdout, &stderr); s != exitUsage {
			t.Errorf("%q: status %d, want %d", args, s, exitUsage)
		}
	}
	out := filepath.Join(t.TempDir(), "out")
	if s := run([]string{filepath.Join(t.TempDir(), "none"), "-o", out}, &stdout, &stderr); s != exitFailed {
		t.Errorf("missing checkpoint: status %d, want %d", s, exitFailed)
	}
	if status, _, stderr := convertStaticC(t, out, "--pid", "4242"); status != exitUsage {
		t.Errorf("unknown --pid: status %d, want %d; stderr:\n%s", status, exitUsage, stderr)
	}
	// A zombie asked for by --pid gets no core: nothing converted.
	if status, _, stderr := convertStaticC(t, out, "--pid", "1538"); status != exitFailed {
		t.Errorf("--pid of a zombie: status %d, want %d; stderr:\n%s", status, exitFailed, stderr)
	}
}

// TestMeasureSeesAllocations guards the corruption suite's memory check.
func TestMeasureSeesAllocations(t *testing.T) {
	var keep []byte
	_, allocated := measure(func() {
		keep = make([]byte, maxAllocated+1)
		keep[len(keep)-1] = 1
	})
	runtime.KeepAlive(keep)
	if allocated <= maxAllocated {
		t.Errorf("measure saw %d bytes allocated, want more than %d", allocated, maxAllocated)
	}
}
