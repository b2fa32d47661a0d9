package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestGdbCommand runs 'ckpt2core gdb' on threads-c in batch mode: gdb
// shows the program's own functions (vec_park for thread vec-1, from the
// manifest's source), and the private directory is gone afterwards.
func TestGdbCommand(t *testing.T) {
	if _, err := exec.LookPath("gdb"); err != nil {
		t.Skip("gdb not installed")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out, errb bytes.Buffer
	fx := "../../testdata/x86_64/threads-c"
	code := run([]string{"gdb", fx + "/images", "--exe", fx + "/exe/threads-c", "--", "-batch", "-nx", "-ex", "thread apply all bt"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, fn := range []string{"vec_park", "sleep_forever", "read_forever", "main"} {
		if !strings.Contains(out.String(), " "+fn+" (") {
			t.Errorf("gdb output lacks %s:\n%s", fn, out.String())
		}
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
	// A zombie has nothing to debug.
	code = run([]string{"gdb", "../../testdata/x86_64/static-c/images", "--pid", "1538"}, &out, &errb)
	if code != exitFailed || !strings.Contains(errb.String(), "zombie") {
		t.Errorf("zombie: exit %d, stderr %q", code, errb.String())
	}
}

// TestDlvCommand runs 'ckpt2core dlv' with a stand-in debugger that
// records how it was called: 'dlv core EXE CORE', the core being a
// complete ELF core of the process asked for while the debugger runs.
func TestDlvCommand(t *testing.T) {
	tmp := t.TempDir()
	record := tmp + "/called"
	fake := tmp + "/fake-dlv"
	script := "#!/bin/sh\necho \"$@\" > " + record + "\nhead -c 4 \"$3\" | od -An -c >> " + record + "\n"
	if err := os.WriteFile(fake, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	fx := "../../testdata/x86_64/go-goroutines"
	var out, errb bytes.Buffer
	code := run([]string{"dlv", fx + "/images", "--exe", fx + "/exe/go-goroutines", "--dlv", fake, "--", "--init", "x"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(string(b))
	if len(got) < 9 || got[0] != "core" || got[1] != fx+"/exe/go-goroutines" || !strings.HasSuffix(got[2], "/core.2219") ||
		got[3] != "--init" || got[4] != "x" || strings.Join(got[5:9], "") != "177ELF" {
		t.Errorf("dlv called as %q", b)
	}
	if _, err := os.Stat(got[2]); !os.IsNotExist(err) {
		t.Errorf("the private core %s is still there: %v", got[2], err)
	}
}
