package main

import (
	"bytes"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestKnownCommandsFromUsage: the commands did-you-mean knows are the
// usage text's, and an example's checkpoint name is not one.
func TestKnownCommandsFromUsage(t *testing.T) {
	got := knownCommands()
	for _, want := range []string{"convert", "inspect", "grep", "gdb", "dlv", "verify", "help"} {
		if !slices.Contains(got, want) {
			t.Errorf("knownCommands() = %q: %q missing", got, want)
		}
	}
	for _, not := range []string{"checkpoint-web_default-app-2026-11-27T10", "show"} {
		if slices.Contains(got, not) {
			t.Errorf("knownCommands() = %q has %q", got, not)
		}
	}
}

func TestNearest(t *testing.T) {
	names := []string{"convert", "inspect", "grep", "gdb", "dlv", "verify", "help"}
	for _, tc := range []struct{ in, want string }{
		{"inspekt", "inspect"},
		{"grpe", "grep"},
		{"verfiy", "verify"},
		{"gbd", "gdb"},
		{"dvl", "dlv"},
		{"show", ""},
		{"x", ""},
		{"frobnicate", ""},
	} {
		if got := nearest(tc.in, names); got != tc.want {
			t.Errorf("nearest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestMessageForms: pid lists, plurals and signal names have one form.
func TestMessageForms(t *testing.T) {
	if got := pidList([]uint32{1, 6, 7}); got != "1, 6, 7" {
		t.Errorf("pidList = %q", got)
	}
	if got := count(1, "argument"); got != "1 argument" {
		t.Errorf("count(1) = %q", got)
	}
	if got := count(2, "argument"); got != "2 arguments" {
		t.Errorf("count(2) = %q", got)
	}
	if got := signalName(syscall.SIGTERM); got != "SIGTERM" {
		t.Errorf("signalName(SIGTERM) = %q", got)
	}
	if got := waitStatus(9); got != "killed by SIGKILL" {
		t.Errorf("waitStatus(9) = %q", got)
	}
	if got := waitStatus(3 << 8); got != "exited with status 3" {
		t.Errorf("waitStatus(3<<8) = %q", got)
	}
}

// TestDiagnosticsEscaped: an error that quotes a path with a terminal
// control sequence reaches stderr escaped, in every command.
func TestDiagnosticsEscaped(t *testing.T) {
	bad := "/nonexistent/\x1b[2Jdump"
	for _, args := range [][]string{
		{"inspect", bad},
		{"grep", "x", bad},
		{"convert", bad, "-o", t.TempDir()},
		{"gdb", bad},
		{"dlv", bad},
		{"verify", "--exe", "/bin/true", bad},
	} {
		var stdout, stderr bytes.Buffer
		run(args, &stdout, &stderr)
		if strings.Contains(stderr.String(), "\x1b") || !strings.Contains(stderr.String(), `\x1b[2Jdump`) {
			t.Errorf("%q: stderr %q, want the path escaped", args, stderr.String())
		}
	}
}
