package inspect

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestCommandLineAsProc checks every process of the real server
// checkpoints against the /proc/PID/cmdline saved just before each dump
// (info/cmdline-PID.txt, NULs as newlines): nginx's master and postgres'
// children write a process title over their arguments, which the kernel
// shows up to its first NUL, running on into the environment area.
func TestCommandLineAsProc(t *testing.T) {
	base := imgtest.ServersDir()
	for _, name := range imgtest.Servers(t) {
		t.Run(name, func(t *testing.T) {
			rep := inspectDir(t, filepath.Join(base, name, "images"), Options{})
			if len(rep.Processes) == 0 {
				t.Fatal("no processes")
			}
			for _, pr := range rep.Processes {
				want, err := os.ReadFile(filepath.Join(base, name, "info", fmt.Sprintf("cmdline-%d.txt", pr.Pid)))
				if err != nil {
					t.Fatal(err)
				}
				if got := strings.Join(pr.Argv, "\n") + "\n"; got != string(want) {
					t.Errorf("pid %d: argv %q, /proc cmdline %q", pr.Pid, got, want)
				}
			}
		})
	}
}

func TestCommandText(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		want string
	}{
		{nil, ""},
		{[]string{"a", ""}, "a ''"},
		{[]string{"nginx: worker process", "", "", ""}, "'nginx: worker process' (+3 empty arguments)"},
		{[]string{"x", "", "y"}, "x '' y"},
	} {
		if got := commandText(tt.argv); got != tt.want {
			t.Errorf("commandText(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}
