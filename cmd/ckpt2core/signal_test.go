package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStopLeavesNothing runs the real binary: 'ckpt2core gdb' on a Podman
// archive (spooled, then a core) with a stand-in debugger, which reads
// the core through /proc/self/fd/3. While it runs, the core is held in
// TMPDIR as an anonymous file and nothing has a name there. ^C at the
// debugger's prompt (SIGINT) is left to the debugger; SIGTERM stops
// ckpt2core; SIGKILL kills it (the debugger goes on); none leaves the
// unpacked checkpoint or the core in TMPDIR. With --image, the one named
// thing, the image's unpacked files in TMPDIR/ckpt2core-image-*, goes with
// SIGTERM; SIGKILL leaves that directory (as the README says), with
// files of the image only, no core.
func TestStopLeavesNothing(t *testing.T) {
	bin := buildBinary(t)
	podman := []string{filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz"), "--pid", "6"}
	withImage := []string{filepath.Join(intrusionDir, "after.tar.zst"), "--pid", "68", "--image", filepath.Join(intrusionDir, "image-oci.tar")}
	for _, tc := range []struct {
		name  string
		args  []string
		sig   syscall.Signal
		exit  int
		image bool // --image: TMPDIR has its directory while the debugger runs
	}{
		{"SIGINT is the debugger's", podman, syscall.SIGINT, 0, false},
		{"SIGTERM stops", podman, syscall.SIGTERM, 128 + int(syscall.SIGTERM), false},
		{"SIGKILL kills", podman, syscall.SIGKILL, -1, false},
		{"--image, SIGTERM stops", withImage, syscall.SIGTERM, 128 + int(syscall.SIGTERM), true},
		{"--image, SIGKILL kills", withImage, syscall.SIGKILL, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			ready, release := filepath.Join(tmp, "ready"), filepath.Join(tmp, "release")
			fake := filepath.Join(t.TempDir(), "fake-gdb")
			// The stand-in ends when released, when the test's directory
			// is gone (a debugger outliving a SIGKILLed ckpt2core must
			// not outlive the test), or after 60 s.
			script := "#!/bin/sh\ntrap '' INT\nhead -c 4 /proc/self/fd/3 > " + ready + ".part\nmv " + ready + ".part " + ready + "\ni=0\nwhile [ ! -e " + release + " ] && [ -e " + ready + " ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n"
			if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
				t.Fatal(err)
			}
			work := filepath.Join(tmp, "tmp")
			os.Mkdir(work, 0o700)
			cmd := exec.Command(bin, append(append([]string{"gdb"}, tc.args...), "--gdb", fake)...)
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
			if b, _ := os.ReadFile(ready); string(b) != "\x7fELF" {
				t.Errorf("the debugger read %q from /proc/self/fd/3, want an ELF header", b)
			}
			if left := leftIn(t, work); !tc.image && len(left) != 0 {
				t.Errorf("named in TMPDIR while the debugger runs: %v", left)
			} else if tc.image && imageRootLeft(t, work) == "" {
				t.Fatalf("TMPDIR holds %v while the debugger runs, want the --image root: the test would prove nothing", left)
			}
			if len(heldIn(cmd.Process.Pid, work)) == 0 {
				t.Fatal("no core held in TMPDIR while the debugger runs: the test would prove nothing")
			}
			cmd.Process.Signal(tc.sig)
			if tc.sig != syscall.SIGTERM { // the debugger is not stopped by either
				defer os.WriteFile(release, nil, 0o600)
			}
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
			if tc.image && tc.sig == syscall.SIGKILL {
				if imageRootLeft(t, work) == "" {
					t.Errorf("after SIGKILL, TMPDIR holds %v, want the --image root alone", leftIn(t, work))
				}
				return
			}
			if left := leftIn(t, work); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
		})
	}
}

// imageRootLeft returns the one entry of dir if it is an --image root
// (imageRootPrefix) whose regular files are none of them an ELF core, else
// "" (and says why).
func imageRootLeft(t *testing.T, dir string) string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), imageRootPrefix) || !ents[0].IsDir() {
		return ""
	}
	root := filepath.Join(dir, ents[0].Name())
	files, cores := 0, 0
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		files++
		if f, err := elf.Open(p); err == nil {
			if f.Type == elf.ET_CORE {
				t.Errorf("a core in the --image root: %s", p)
				cores++
			}
			f.Close()
		}
		return nil
	})
	if files == 0 || cores > 0 {
		return ""
	}
	return root
}
