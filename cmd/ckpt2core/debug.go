package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/spf13/pflag"
)

// debugHelp is the help text of 'ckpt2core gdb' and 'ckpt2core dlv' after
// the flags.
var debugHelp = map[string]string{
	"gdb": `
Examples:
  ckpt2core gdb checkpoint.tar --pid 6 --root /
  ckpt2core gdb dump/ --exe ./server -- -batch -ex 'thread apply all bt'

Converts one process (--pid, else the root of the process tree) into a
private temporary directory, starts gdb on its core with the executable
(--exe, else the one the checkpoint recorded, under --root if given) and,
with --root, 'set sysroot' at the root filesystem, and removes the
directory when gdb exits. A core of another architecture than this
machine's is opened with gdb-multiarch when it is installed (unless --gdb
names a debugger). Arguments after -- go to gdb.
` + debugStatus,
	"dlv": `
Examples:
  ckpt2core dlv dump/ --exe ./server
  ckpt2core dlv checkpoint.tar.gz --pid 6 --exe ./server -- --init cmds.txt

Converts one process (--pid, else the root of the process tree) into a
private temporary directory, runs 'dlv core EXE CORE' and removes the
directory when Delve exits. --root supplies the clean pages of mapped
files to the core. Arguments after -- go to dlv.
` + debugStatus,
}

const debugStatus = `
Exit status: the debugger's; 128+N when ckpt2core is stopped by signal N
(SIGTERM and SIGHUP are passed on to the debugger first); 1 when the
process cannot be converted or the debugger cannot be started; 2 for a
usage error.
`

// runDebugger implements 'ckpt2core gdb' and 'ckpt2core dlv'.
func runDebugger(stop *stopper, tool string, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core "+tool, pflag.ContinueOnError)
	pid := fs.Uint("pid", 0, "the process to debug (default: the root of the process tree)")
	rootHelp := "root filesystem: clean file pages, the executable and 'set sysroot'"
	if tool == "dlv" {
		rootHelp = "root filesystem: clean file pages"
	}
	root := fs.String("root", "", rootHelp)
	exe := fs.String("exe", "", "the executable (default: the process's executable, under --root if given)")
	prog := fs.String(tool, tool, "the debugger to run")
	aopts := archiveFlags(fs)
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: ckpt2core %s [flags] CHECKPOINT [-- DEBUGGER_ARGS...]\n\nFlags:\n%s%s", tool, fs.FlagUsages(), debugHelp[tool])
	}
	if status, ok := parseFlags(fs, tool, args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	switch dash := fs.ArgsLenAtDash(); {
	case fs.NArg() == 0 || dash == 0:
		return usageError(stderr, tool, exitUsage, "want CHECKPOINT")
	case dash < 0 && fs.NArg() > 1:
		return usageError(stderr, tool, exitUsage, "want one CHECKPOINT, got %q; arguments for %s go after --", fs.Args(), tool)
	case dash > 1:
		return usageError(stderr, tool, exitUsage, "want one CHECKPOINT before --, got %q", fs.Args()[:dash])
	}
	extra := fs.Args()[1:]
	if *exe != "" {
		if st, err := os.Stat(*exe); err != nil || !st.Mode().IsRegular() {
			return usageError(stderr, tool, exitUsage, "--exe %s: not a file here", safe(*exe))
		}
	}
	cv, code, err := openConversion(stop, fs.Arg(0), aopts, *root, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %s\n", safe(err.Error()))
		return code
	}
	defer cv.Close()
	ck := cv.ck
	target := ck.Procs[0].Pid
	if *pid != 0 {
		want, err := selectPids(ck, []uint{*pid})
		if err != nil {
			fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
			return exitUsage
		}
		target = want[0]
	}
	dir, err := os.MkdirTemp("", "ckpt2core-"+tool+"-")
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %s\n", safe(err.Error()))
		return exitFailed
	}
	defer os.RemoveAll(dir)
	res := convertOne(ck, target, dir, false, cv.opts, nil)
	for _, n := range res.notes {
		fmt.Fprintf(stderr, "ckpt2core: pid %d (%s): %s\n", res.pid, safe(res.comm), safe(n))
	}
	switch {
	case res.zombie:
		fmt.Fprintf(stderr, "ckpt2core: pid %d (%s) is a zombie: it has no memory or registers to debug\n", target, safe(res.comm))
		return exitFailed
	case res.err != nil:
		fmt.Fprintf(stderr, "ckpt2core: pid %d: %s\n", target, safe(res.err.Error()))
		return exitFailed
	}
	if *exe == "" && res.exePath != "" {
		if *exe, err = recordedExe(res.exePath, *root); err != nil {
			fmt.Fprintf(stderr, "ckpt2core: the executable: %s (give --exe or --root)\n", safe(err.Error()))
		}
	}
	if tool == "gdb" && !fs.Changed("gdb") && res.arch != hostArch() {
		// Debian's gdb reads only this machine's cores.
		if p, err := exec.LookPath("gdb-multiarch"); err == nil {
			*prog = p
			fmt.Fprintf(stderr, "ckpt2core: an %s core on %s: using %s\n", res.arch, runtime.GOARCH, p)
		} else {
			fmt.Fprintf(stderr, "ckpt2core: an %s core on %s: gdb may not read it; install gdb-multiarch or give --gdb\n", res.arch, runtime.GOARCH)
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
		// --core=, not a second positional argument: without an
		// executable, gdb would take a lone positional core for one.
		argv = append(argv, "--core="+res.path)
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
	if f := fileOf(stdout); f != nil {
		cmd.Stdout = f // the terminal itself, not a pipe copied by us
	}
	if f := fileOf(stderr); f != nil {
		cmd.Stderr = f
	}
	// ^C and ^\ at the debugger's prompt reach the whole process group:
	// they are the debugger's to handle, not a reason to stop (and remove
	// the core from under it).
	// SIGTERM and SIGHUP are forwarded to the debugger; the run ends
	// (with 128+signal) when it has.
	signal.Ignore(os.Interrupt, syscall.SIGQUIT)
	if sig, err := stop.runChild(cmd); sig != 0 {
		return exitFailed // finish reports the signal and its status
	} else if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(stderr, "ckpt2core: %s: %v\n", *prog, err)
		return exitFailed
	}
	return exitOK
}

// hostArch is the architecture of this machine as criuimg names it.
func hostArch() criuimg.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return criuimg.ArchX86_64
	case "arm64":
		return criuimg.ArchARM64
	}
	return criuimg.ArchUnknown
}

// recordedExe finds the executable the checkpoint recorded, under root if
// given, as an absolute path that is a regular file. Under root, the path
// cannot leave it (os.Root), whatever the recorded path or the symlinks in
// root say.
func recordedExe(recorded, root string) (string, error) {
	rel := filepath.Clean("/" + recorded)[1:]
	if root == "" {
		p, err := filepath.Abs(recorded)
		if err != nil {
			return "", err
		}
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return "", fmt.Errorf("%s is not here", p)
		}
		return p, nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", err
	}
	defer r.Close()
	if st, err := r.Stat(rel); err != nil || !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a file under %s", recorded, root)
	}
	return filepath.Abs(filepath.Join(root, rel))
}
