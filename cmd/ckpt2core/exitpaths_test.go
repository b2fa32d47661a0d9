package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// buildBinary builds the real ckpt2core for tests that run it.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ckpt2core")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// privateTmp returns a fresh directory to be the binary's TMPDIR.
func privateTmp(t *testing.T) string {
	t.Helper()
	work := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	return work
}

// leftIn lists what is below dir.
func leftIn(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if p != dir {
			left = append(left, strings.TrimPrefix(p, dir+"/"))
		}
		return nil
	})
	return left
}

// heldIn returns the files of dir that process pid has open, as
// /proc/PID/fd links them (an anonymous file: "DIR/#INODE (deleted)"),
// with their sizes.
func heldIn(pid int, dir string) map[string]int64 {
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(fdDir)
	held := map[string]int64{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil || !strings.HasPrefix(l, dir+"/") {
			continue
		}
		if st, err := os.Stat(filepath.Join(fdDir, e.Name())); err == nil && st.Mode().IsRegular() {
			held[e.Name()+" -> "+l] = st.Size()
		}
	}
	return held
}

// waitFor waits for cmd and returns its wait status.
func waitFor(t *testing.T, cmd *exec.Cmd) syscall.WaitStatus {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.Sys().(syscall.WaitStatus)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("ckpt2core did not end")
	}
	return 0
}

// startPiped starts the binary with TMPDIR work and stdout a pipe of one
// page, and returns it with the pipe's read end, its stderr and the first
// line it printed.
func startPiped(t *testing.T, bin, work string, args ...string) (*exec.Cmd, *os.File, *strings.Builder, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, os.Getpagesize()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+work)
	cmd.Stdout = w
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("first line: %v (stderr %s)", err, stderr.String())
	}
	return cmd, r, stderr, line
}

// TestClosedPipeLeavesNothing reads the first line of the real binary's
// stdout and closes the pipe, as '| head -1' does. The pipe holds one
// page, so that the rest of the output meets the closed pipe (EPIPE):
// the binary must die by SIGPIPE, as a pipeline expects (status 141 in a
// shell), and leave nothing in TMPDIR, not even an empty directory (grep
// holds the checkpoint's members there, as anonymous files, while the
// first line is read).
func TestClosedPipeLeavesNothing(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		name  string
		args  []string
		holds bool // spooled members in TMPDIR when the first line is out
	}{
		{"inspect", []string{"inspect", intrusionAfter}, false},
		{"inspect --json", []string{"inspect", "--json", intrusionAfter}, false},
		{"grep", []string{"grep", "-C0", "--hex", "00", intrusionAfter}, true},
		{"inspect --extract", []string{"inspect", "--extract", "EXTRACT", intrusionAfter}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := privateTmp(t)
			extract := filepath.Join(t.TempDir(), "extract")
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "EXTRACT", extract)
			}
			cmd, r, stderr, line := startPiped(t, bin, work, args...)
			if held := heldIn(cmd.Process.Pid, work); tc.holds && len(held) == 0 {
				t.Fatalf("nothing held in TMPDIR after the first line %q: the test would prove nothing", line)
			}
			r.Close()
			ws := waitFor(t, cmd)
			if !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
				t.Errorf("wait status %#x (exit %d), want killed by SIGPIPE; stderr:\n%s", uint32(ws), ws.ExitStatus(), stderr.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr: %q, want nothing", stderr.String())
			}
			if left := leftIn(t, work); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
			if strings.Contains(tc.name, "extract") {
				if _, err := os.Stat(filepath.Join(extract, "checkpoint", "inventory.img")); err != nil {
					t.Errorf("--extract DIR, named by the user, is to stay: %v", err)
				}
			}
		})
	}
}

// TestSignalsLeaveNothing stops the real binary by SIGINT, SIGTERM and
// SIGHUP while it is blocked writing grep's hits (stdout is a pipe nobody
// reads) with the checkpoint's members in anonymous files of TMPDIR:
// each leaves nothing there, says which signal stopped it and exits
// 128+signal.
func TestSignalsLeaveNothing(t *testing.T) {
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(signalName(sig), func(t *testing.T) {
			work := privateTmp(t)
			cmd, r, stderr, _ := startPiped(t, bin, work, "grep", "-C0", "--hex", "00", intrusionAfter)
			defer r.Close()
			if len(heldIn(cmd.Process.Pid, work)) == 0 {
				t.Fatal("nothing held in TMPDIR while grep runs: the test would prove nothing")
			}
			cmd.Process.Signal(sig)
			ws := waitFor(t, cmd)
			if ws.Signaled() || ws.ExitStatus() != 128+int(sig) {
				t.Errorf("wait status %#x (exit %d), want exit %d", uint32(ws), ws.ExitStatus(), 128+int(sig))
			}
			if want := fmt.Sprintf("ckpt2core: stopped by %s\n", signalName(sig)); stderr.String() != want {
				t.Errorf("stderr %q, want %q", stderr.String(), want)
			}
			if left := leftIn(t, work); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
		})
	}
}

// TestEndsLeaveNothing: a normal end, an error (a damaged archive) and a
// usage error leave nothing in the private TMPDIR either.
func TestEndsLeaveNothing(t *testing.T) {
	bin := buildBinary(t)
	damaged := filepath.Join(t.TempDir(), "damaged.tar.zst")
	b, err := os.ReadFile(intrusionAfter)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(damaged, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		exit int
	}{
		{"normal end", []string{"inspect", intrusionAfter}, exitOK},
		{"grep, nothing found", []string{"grep", "no such string in memory 0x5e0050", intrusionAfter}, grepNone},
		{"damaged archive", []string{"inspect", damaged}, exitFailed},
		{"convert, damaged archive", []string{"convert", damaged, "-o", "OUT"}, exitFailed},
		{"usage error", []string{"inspect", "--pid", "99999", intrusionAfter}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := privateTmp(t)
			out := filepath.Join(t.TempDir(), "out")
			for i, a := range tc.args {
				if a == "OUT" {
					tc.args[i] = out
				}
			}
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), "TMPDIR="+work)
			cmd.Stdout = io.Discard
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if ws := waitFor(t, cmd); ws.ExitStatus() != tc.exit {
				t.Errorf("exit %d, want %d", ws.ExitStatus(), tc.exit)
			}
			if left := leftIn(t, work); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was made and left empty", out)
			}
		})
	}
}

// TestInterruptedConvertRemovesOutDir stops 'convert -o NEW/OUT' by
// SIGTERM after it created OUT_DIR (and its parent) and before it wrote a
// core: both directories, its own making, go with it. The run is frozen
// (SIGSTOP) as soon as OUT_DIR appears, so that the signal finds no core
// yet; a try in which a core was already there is run again.
func TestInterruptedConvertRemovesOutDir(t *testing.T) {
	bin := buildBinary(t)
	archive := filepath.Join(podmanDir, "checkpoint-counters_default-counter-zstd.tar.gz")
	for try := 0; ; try++ {
		if try == 10 {
			t.Fatal("every try had a core in OUT_DIR before it could be stopped")
		}
		work := privateTmp(t)
		parent := filepath.Join(t.TempDir(), "new")
		out := filepath.Join(parent, "out")
		cmd := exec.Command(bin, "convert", "-j1", archive, "-o", out)
		cmd.Env = append(os.Environ(), "TMPDIR="+work)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			if _, err := os.Stat(out); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("OUT_DIR never appeared")
			}
		}
		cmd.Process.Signal(syscall.SIGSTOP)
		ents, _ := os.ReadDir(out)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Process.Signal(syscall.SIGCONT)
		ws := waitFor(t, cmd)
		// A core written while the signal was on its way (it was an
		// anonymous file when OUT_DIR was read) keeps OUT_DIR: try again.
		if after, _ := os.ReadDir(out); len(ents) != 0 || len(after) != 0 {
			continue
		}
		if ws.ExitStatus() != 128+int(syscall.SIGTERM) {
			t.Errorf("exit %d, want %d", ws.ExitStatus(), 128+int(syscall.SIGTERM))
		}
		if _, err := os.Stat(parent); !os.IsNotExist(err) {
			t.Errorf("the OUT_DIR the run made is still there: %v", leftIn(t, parent))
		}
		if left := leftIn(t, work); len(left) != 0 {
			t.Errorf("left in TMPDIR: %v", left)
		}
		return
	}
}

// TestPanicLeavesNothing runs this test binary as a child whose command
// opens the archive, writes a file into a temporary directory of TMPDIR
// (stop.tempDir, as --image does) and panics, through runCleanly as main
// runs every command: the panic goes on (exit status 2, the runtime's)
// after the directory is removed.
func TestPanicLeavesNothing(t *testing.T) {
	if os.Getenv("CKPT2CORE_PANIC_CHILD") != "" {
		os.Exit(runCleanly(nil, func(stop *stopper, _ []string, _, stderr io.Writer) int {
			_, closeSrc, err := openCheckpoint(stop, intrusionAfter, nil)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitFailed
			}
			defer closeSrc()
			// Compressed archives spool anonymously; a named file in a
			// temporary directory stands for what --image unpacks.
			dir, _, err := stop.tempDir(imageRootPrefix)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return exitFailed
			}
			if err := os.WriteFile(filepath.Join(dir, "libc.so.6"), []byte("secret"), 0o600); err != nil {
				fmt.Fprintln(stderr, err)
				return exitFailed
			}
			panic("test panic")
		}))
	}
	work := privateTmp(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestPanicLeavesNothing$")
	cmd.Env = append(os.Environ(), "CKPT2CORE_PANIC_CHILD=1", "TMPDIR="+work)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ws := waitFor(t, cmd)
	if ws.ExitStatus() != 2 || !strings.Contains(stderr.String(), "panic: test panic") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and the panic", ws.ExitStatus(), stderr.String())
	}
	if left := leftIn(t, work); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}
