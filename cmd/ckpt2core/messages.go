package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ckpt2core/ckpt2core/internal/termesc"
)

// The forms of the messages every command shares: what a user reads is
// said one way wherever it is said.

// safe makes a string from the checkpoint (a comm, a path, an error that
// quote one) harmless on a terminal: the one escape (termesc.String) that
// inspect's text report uses too.
func safe(s string) string { return termesc.String(s) }

// count says n things: "1 thread", "4 threads".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// pidList says pids as "1, 6, 7".
func pidList(pids []uint32) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.FormatUint(uint64(p), 10)
	}
	return strings.Join(s, ", ")
}

// signalName names a signal as kill -l does, with its SIG prefix
// ("SIGTERM"), or "signal N" for one without a name.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

// quote says a word from the command line or the checkpoint in double
// quotes, control characters escaped.
func quote(s string) string { return `"` + safe(strings.ReplaceAll(s, `"`, `\"`)) + `"` }

// complain writes a diagnostic of 'ckpt2core NAME' (NAME "" for none) on
// stderr: one line, everything in it escaped (errors quote the
// checkpoint's paths and names).
func complain(stderr io.Writer, name, format string, a ...any) {
	cmd := "ckpt2core"
	if name != "" {
		cmd += " " + name
	}
	fmt.Fprintf(stderr, "%s: %s\n", cmd, safe(fmt.Sprintf(format, a...)))
}
