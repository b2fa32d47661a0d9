package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/internal/verify"
)

const verifyExamples = `
Examples:
  ckpt2core verify --exe ./server out/core.1234
  ckpt2core verify --exe ./server out/core.1234 --json | jq '.goroutines[].user_function'

Lists every thread (tid, PC, SP, function) and, for Go programs, every
goroutine with its current user function, as Delve's core reader sees them.
Delve's reader does not support cores with more than 65534 segments
(PN_XNUM); gdb does.
`

func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core verify", pflag.ContinueOnError)
	exe := fs.String("exe", "", "the executable the core belongs to (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	debugDirs := fs.StringSlice("debug-info-dir", nil, "directory with separate debug info (repeatable)")
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: ckpt2core verify --exe EXE CORE [--json]\n\nFlags:\n%s%s", fs.FlagUsages(), verifyExamples)
	}
	if status, ok := parseFlags(fs, "verify", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	switch {
	case fs.NArg() != 1:
		return usageError(stderr, "verify", exitUsage, "want one CORE, got %s", count(fs.NArg(), "argument"))
	case *exe == "":
		return usageError(stderr, "verify", exitUsage, "--exe EXE is required (Delve reads symbols from the executable)")
	}
	rep, err := verify.Verify(fs.Arg(0), *exe, *debugDirs)
	if err != nil {
		complain(stderr, "", "%v", err)
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		complain(stderr, "", "%v", err)
		return exitFailed
	}
	return exitOK
}
