package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"
)

// parseFlags parses the flags of 'ckpt2core NAME' (NAME "" for the
// conversion). help writes the command's help. --help prints it on stdout
// (ok false, status exitOK); a bad flag is named on stderr with a pointer
// to --help (ok false, status bad). pflag's own printing is turned off.
func parseFlags(fs *pflag.FlagSet, name string, args []string, help func(io.Writer), stdout, stderr io.Writer, bad int) (status int, ok bool) {
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	fs.VisitAll(func(f *pflag.Flag) {
		if f.DefValue == "[]" {
			f.DefValue = "" // no "(default [])" in the help
		}
	})
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, pflag.ErrHelp):
		help(stdout)
		return exitOK, false
	default:
		return usageError(stderr, name, bad, "%v", err), false
	}
}

// helpText returns the help of a command: its usage line(s), its flags
// and what follows them (examples, exit status).
func helpText(fs *pflag.FlagSet, usage, after string) func(io.Writer) {
	return func(w io.Writer) { fmt.Fprintf(w, "%s\n\nFlags:\n%s%s", usage, fs.FlagUsages(), after) }
}

// usageError reports a bad command line of 'ckpt2core NAME' on stderr and
// returns status.
func usageError(stderr io.Writer, name string, status int, format string, a ...any) int {
	cmd := "ckpt2core"
	if name != "" {
		cmd += " " + name
	}
	fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", cmd, safe(fmt.Sprintf(format, a...)), cmd)
	return status
}
