package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestStopLeavesNothing runs the real binary: 'ckpt2core gdb' on a Podman
// archive (spooled, then a private core) with a stand-in debugger. ^C at
// the debugger's prompt (SIGINT) is left to the debugger; SIGTERM stops
// ckpt2core, and neither leaves the unpacked checkpoint or the core in
// TMPDIR.
func TestStopLeavesNothing(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		exit int
	}{
		{"SIGINT is the debugger's", syscall.SIGINT, 0},
		{"SIGTERM stops", syscall.SIGTERM, 128 + int(syscall.SIGTERM)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			ready, release := filepath.Join(tmp, "ready"), filepath.Join(tmp, "release")
			fake := filepath.Join(t.TempDir(), "fake-gdb")
			script := "#!/bin/sh\ntrap '' INT\ntouch " + ready + "\nwhile [ ! -e " + release + " ]; do sleep 0.05; done\n"
			if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			work := filepath.Join(tmp, "tmp")
			os.Mkdir(work, 0o700)
			cmd := exec.Command(bin, "gdb", filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz"), "--pid", "6", "--gdb", fake)
			cmd.Env = append(os.Environ(), "TMPDIR="+work)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := os.Stat(ready); err == nil {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatal("the debugger was never started")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if ents, _ := os.ReadDir(work); len(ents) == 0 {
				t.Fatal("nothing in TMPDIR while the debugger runs: the test would prove nothing")
			}
			cmd.Process.Signal(tc.sig)
			if tc.sig == syscall.SIGINT {
				time.Sleep(200 * time.Millisecond)
				os.WriteFile(release, nil, 0o600)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			var err error
			select {
			case err = <-waited:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				os.WriteFile(release, nil, 0o600)
				t.Fatalf("%v did not end ckpt2core and its debugger", tc.sig)
			}
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.exit {
				t.Errorf("exit %d (%v), want %d", code, err, tc.exit)
			}
			if ents, _ := os.ReadDir(work); len(ents) != 0 {
				t.Errorf("left in TMPDIR: %v", ents)
			}
		})
	}
}
