package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStopRunsCleanup runs this test binary as a child that registers a
// cleanup with its stopper, makes a temporary directory (stop.tempDir)
// with a file in it, and waits; SIGTERM makes it run the cleanup, remove
// the directory and exit with 143, and a released cleanup does not run.
func TestStopRunsCleanup(t *testing.T) {
	if dir := os.Getenv("CKPT2CORE_STOP_CHILD"); dir != "" {
		stop := newStopper(os.Stderr)
		release := stop.onStop(func() { os.WriteFile(filepath.Join(dir, "released-ran"), nil, 0o600) })
		release()
		stop.onStop(func() { os.WriteFile(filepath.Join(dir, "cleanup-ran"), nil, 0o600) })
		tmp, _, err := stop.tempDir("ckpt2core-test-")
		if err != nil {
			os.Exit(1)
		}
		os.WriteFile(filepath.Join(tmp, "core.1"), []byte("secret"), 0o600)
		os.WriteFile(filepath.Join(dir, "ready"), nil, 0o600)
		time.Sleep(30 * time.Second)
		os.Exit(0)
	}
	dir := t.TempDir()
	work := privateTmp(t) // the child's TMPDIR: no t.TempDir there, whose removal a stop skips
	cmd := exec.Command(os.Args[0], "-test.run=^TestStopRunsCleanup$")
	cmd.Env = append(os.Environ(), "CKPT2CORE_STOP_CHILD="+dir, "TMPDIR="+work)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the child never got ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(leftIn(t, work)) != 2 {
		t.Errorf("TMPDIR holds %v, want the directory and its file: the test would prove nothing", leftIn(t, work))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("child: %v, want exit 143", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cleanup-ran")); err != nil {
		t.Errorf("the cleanup did not run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "released-ran")); err == nil {
		t.Error("a released cleanup ran")
	}
	if left := leftIn(t, work); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}
