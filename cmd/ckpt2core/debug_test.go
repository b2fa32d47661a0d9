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
