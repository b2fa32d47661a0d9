package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/pflag"
)

const debugExamples = `
Examples:
  ckpt2core gdb checkpoint.tar --pid 6 --root /
  ckpt2core gdb dump/ --exe ./server -- -batch -ex 'thread apply all bt'
  ckpt2core dlv dump/ --exe ./server

Converts one process (--pid, else the root of the process tree) into a
private temporary directory, starts the debugger on its core with the
executable and, with --root, 'set sysroot' at the root filesystem, and
removes the directory when the debugger exits. Arguments after -- go to
the debugger. The exit status is the debugger's.
`

// runDebugger implements 'ckpt2core gdb' and 'ckpt2core dlv'.
func runDebugger(tool string, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core "+tool, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	pid := fs.Uint("pid", 0, "the process to debug (default: the root of the process tree)")
	root := fs.String("root", "", "root filesystem: clean file pages, the executable and 'set sysroot'")
	exe := fs.String("exe", "", "the executable (default: the process's executable, under --root if given)")
	prog := fs.String(tool, tool, "the debugger to run")
	aopts := archiveFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ckpt2core %s [flags] CHECKPOINT [-- DEBUGGER_ARGS...]\n\nFlags:\n%s%s", tool, fs.FlagUsages(), debugExamples)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() < 1 || (fs.ArgsLenAtDash() >= 0 && fs.ArgsLenAtDash() != 1) {
		fs.Usage()
		return exitUsage
	}
	extra := fs.Args()[1:]
	cv, code, err := openConversion(fs.Arg(0), aopts, *root, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return code
	}
	defer cv.Close()
	ck := cv.ck
	target := uint32(*pid)
	if target == 0 {
		target = ck.Procs[0].Pid
	}
	dir, err := os.MkdirTemp("", "ckpt2core-"+tool+"-")
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitFailed
	}
	defer os.RemoveAll(dir)
	res := convertOne(ck, target, dir, false, cv.opts, nil)
	for _, n := range res.notes {
		fmt.Fprintf(stderr, "ckpt2core: pid %d (%s): %s\n", res.pid, res.comm, n)
	}
	switch {
	case res.zombie:
		fmt.Fprintf(stderr, "ckpt2core: pid %d (%s) is a zombie: it has no memory or registers to debug\n", target, res.comm)
		return exitFailed
	case res.err != nil:
		fmt.Fprintf(stderr, "ckpt2core: pid %d: %v\n", target, res.err)
		return exitFailed
	}
	if *exe == "" && res.exePath != "" {
		*exe = res.exePath
		if *root != "" {
			*exe = filepath.Join(*root, res.exePath)
		}
		if _, err := os.Stat(*exe); err != nil {
			fmt.Fprintf(stderr, "ckpt2core: the executable %s is not here (give --exe or --root)\n", *exe)
			*exe = ""
		}
	}
	var argv []string
	switch tool {
	case "gdb":
		argv = append(argv, "-q")
		if *root != "" {
			argv = append(argv, "-iex", "set sysroot "+*root)
		}
		argv = append(argv, extra...)
		if *exe != "" {
			argv = append(argv, *exe)
		}
		argv = append(argv, res.path)
	case "dlv":
		if *exe == "" {
			fmt.Fprintln(stderr, "ckpt2core: dlv needs the executable: give --exe")
			return exitUsage
		}
		argv = append(argv, "core", *exe, res.path)
		argv = append(argv, extra...)
	}
	cmd := exec.Command(*prog, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(stderr, "ckpt2core: %s: %v\n", *prog, err)
		return exitFailed
	}
	return exitOK
}
