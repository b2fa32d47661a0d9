package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestFlagsEveryCommand: for every command, --help prints the command's
// help on stdout with status 0 and nothing on stderr; an unknown flag or a
// flag without its value is named on stderr, with the command's --help,
// and gives status 2 with nothing on stdout.
func TestFlagsEveryCommand(t *testing.T) {
	for _, tc := range []struct {
		args   []string // the command's words
		name   string   // as errors name it
		help   string   // in its help
		valued string   // a flag that takes a value
	}{
		// 'ckpt2core --help' is the overview; flags without a command
		// are the conversion's.
		{nil, "ckpt2core convert", "ckpt2core help | --help | --version", "--jobs"},
		{[]string{"convert"}, "ckpt2core convert", "Usage: ckpt2core [flags] CHECKPOINT -o OUT_DIR", "--jobs"},
		{[]string{"inspect"}, "ckpt2core inspect", "Usage: ckpt2core inspect", "--pid"},
		{[]string{"grep"}, "ckpt2core grep", "ckpt2core grep [flags] PATTERN CHECKPOINT", "--pid"},
		{[]string{"verify"}, "ckpt2core verify", "Usage: ckpt2core verify", "--exe"},
		{[]string{"gdb"}, "ckpt2core gdb", "Usage: ckpt2core gdb", "--pid"},
		{[]string{"dlv"}, "ckpt2core dlv", "Usage: ckpt2core dlv", "--pid"},
	} {
		for _, c := range []struct {
			extra  []string
			status int
			stderr string
		}{
			{[]string{"--help"}, exitOK, ""},
			{[]string{"-h"}, exitOK, ""},
			{[]string{"--no-such-flag", "x"}, exitUsage, "unknown flag: --no-such-flag"},
			{[]string{"dir/", tc.valued}, exitUsage, "flag needs an argument"},
		} {
			args := append(append([]string{}, tc.args...), c.extra...)
			var stdout, stderr bytes.Buffer
			status := run(args, &stdout, &stderr)
			if status != c.status {
				t.Errorf("%q: status %d, want %d", args, status, c.status)
			}
			if c.status == exitOK {
				if !strings.Contains(stdout.String(), tc.help) || stderr.Len() != 0 {
					t.Errorf("%q: help not on stdout alone:\nstdout %q\nstderr %q", args, stdout.String(), stderr.String())
				}
				continue
			}
			want := tc.name + ": " + c.stderr
			if !strings.HasPrefix(stderr.String(), want) || !strings.Contains(stderr.String(), "Run '"+tc.name+" --help'") || stdout.Len() != 0 {
				t.Errorf("%q: stderr %q, stdout %q; want %q and a pointer to --help", args, stderr.String(), stdout.String(), want)
			}
		}
	}
}

// TestUsageErrorsSayWhy: a bad command line gets status 2 and one line
// saying what is wrong (not just the usage text), with nothing on stdout.
func TestUsageErrorsSayWhy(t *testing.T) {
	fx := imgtest.Testdata("x86_64/threads-c/images")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `ckpt2core: unknown command "frobnicate"`},
		{[]string{"inspekt", fx}, `ckpt2core: unknown command "inspekt" (did you mean "inspect"?)`},
		{[]string{"grpe", "x", fx}, `ckpt2core: unknown command "grpe" (did you mean "grep"?)`},
		{[]string{"conver", fx, "-o", "x"}, `ckpt2core: unknown command "conver" (did you mean "convert"?)`},
		{[]string{"show", fx}, `ckpt2core: unknown command "show"`},
		{[]string{"lsit", fx}, `ckpt2core: unknown command "lsit" (did you mean "list"?)`},
		{[]string{"dif", fx, fx}, `ckpt2core: unknown command "dif" (did you mean "diff"?)`},
		{[]string{"bad\x1b[2J"}, `ckpt2core: unknown command "bad\x1b[2J"`},
		{[]string{fx}, "ckpt2core convert: -o OUT_DIR is required"},
		{[]string{fx, fx, "-o", "x"}, "ckpt2core convert: want one CHECKPOINT, got 2 arguments"},
		{[]string{"verify"}, "ckpt2core verify: want one CORE, got 0 arguments"},
		{[]string{"grep", "x"}, "ckpt2core grep: want PATTERN and CHECKPOINT (or -f FILE and CHECKPOINT), got 1 argument\n"},
		{[]string{"inspect", podmanDir + "/checkpoint-counters_default-counter-zstd.tar.gz", "--pid", "1", "--pid", "99999"}, "ckpt2core inspect: pid 99999 is not in the checkpoint (it has 1, 6, 7)"},
		{[]string{"verify", "core.1"}, "ckpt2core verify: --exe EXE is required"},
		{[]string{"gdb"}, "ckpt2core gdb: want CHECKPOINT"},
		{[]string{"gdb", fx, "extra"}, `ckpt2core gdb: want one CHECKPOINT, got ["` + fx + `" "extra"]; arguments for gdb go after --`},
		{[]string{"dlv", fx, "extra", "--", "x"}, `ckpt2core dlv: want one CHECKPOINT before --, got ["` + fx + `" "extra"]`},
		{[]string{"gdb", fx, "--exe", "/nonexistent/prog"}, "ckpt2core gdb: --exe /nonexistent/prog: not a file here"},
		{[]string{"dlv", fx, "--exe", "/"}, "ckpt2core dlv: --exe /: not a file here"},
		{[]string{"grep", "x", fx, "--max-bytes", "0"}, `ckpt2core grep: invalid argument "0" for "--max-bytes" flag`},
		{[]string{"inspect", fx, "--max-members", "-1"}, `ckpt2core inspect: invalid argument "-1" for "--max-members" flag`},
	} {
		var stdout, stderr bytes.Buffer
		status := run(tc.args, &stdout, &stderr)
		if status != exitUsage || !strings.HasPrefix(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("%q: status %d, stderr %q, stdout %q; want 2 and %q", tc.args, status, stderr.String(), stdout.String(), tc.want)
		}
	}
	// Plain 'ckpt2core' shows the overview on stderr.
	var stdout, stderr bytes.Buffer
	if status := run(nil, &stdout, &stderr); status != exitUsage || !strings.Contains(stderr.String(), "ckpt2core help | --help") {
		t.Errorf("no arguments: status %d, stderr %q", status, stderr.String())
	}
}
