package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestInspectStreamSame: inspect of a compressed archive, streamed (only
// the pages it reads kept), prints exactly what it prints when the same
// archive is unpacked whole (--extract makes it so), for the Podman
// archives and the intrusion fixture, with --env.
func TestInspectStreamSame(t *testing.T) {
	for _, a := range []string{
		filepath.Join(podmanDir, "checkpoint-counters_default-counter-gzip.tar.gz"),
		filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz"),
		imgtest.Testdata("x86_64/intrusion/after.tar.zst"),
	} {
		var s, e bytes.Buffer
		if code := run([]string{"inspect", "--json", "--env", a}, &s, &e); code != exitOK {
			t.Fatalf("%s: exit %d: %s", a, code, e.String())
		}
		var u, e2 bytes.Buffer
		if code := run([]string{"inspect", "--json", "--env", "--extract", filepath.Join(t.TempDir(), "x"), a}, &u, &e2); code != exitOK {
			t.Fatalf("%s --extract: exit %d: %s", a, code, e2.String())
		}
		if s.String() != u.String() || !strings.Contains(s.String(), `"argv"`) {
			t.Errorf("%s: streamed and unpacked reports differ (or no argv)", a)
		}
	}
}

// allocatedUnder is the disk space taken by the files pid holds open
// under dir (st_blocks, holes not counted).
func allocatedUnder(pid int, dir string) int64 {
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(fdDir)
	var sum int64
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil || !strings.HasPrefix(l, dir+"/") {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(fdDir, e.Name()), &st) == nil {
			sum += st.Blocks * 512
		}
	}
	return sum
}

// runPeak runs cmd (its Env given TMPDIR=work) to its end, sampling the
// disk space it holds open under work every millisecond, and returns the
// peak and cmd.Wait's error.
func runPeak(t *testing.T, cmd *exec.Cmd, work string) (int64, error) {
	t.Helper()
	cmd.Env = append(os.Environ(), "TMPDIR="+work)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var peak int64
	for {
		select {
		case err := <-waited:
			return peak, err
		default:
			peak = max(peak, allocatedUnder(cmd.Process.Pid, work))
			time.Sleep(time.Millisecond)
		}
	}
}

// TestInspectStreamDisk runs the real binary's inspect on a zstd archive
// with 128 MiB of pages (names sorted, pstree.img after the pages) and
// watches what it holds in TMPDIR: never more than 32 MiB (the whole
// pages file would be 128 MiB), and the report has the command line.
func TestInspectStreamDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and a 128 MiB archive")
	}
	bin := buildBinary(t)
	tmp := t.TempDir()
	arch := largeArchive(t, tmp, false)
	work := filepath.Join(tmp, "tmp")
	os.Mkdir(work, 0o700)
	var out bytes.Buffer
	cmd := exec.Command(bin, "inspect", arch)
	cmd.Stdout = &out
	peak, err := runPeak(t, cmd, work)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	if peak > 32<<20 {
		t.Errorf("held %d bytes in TMPDIR while inspecting, want <= 32 MiB", peak)
	}
	if !strings.Contains(out.String(), "/usr/bin/synth large-") {
		t.Errorf("no command line in the report:\n%s", out.String())
	}
	t.Logf("peak %d bytes in TMPDIR", peak)
}
