package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/anonfile"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/elfcore"
)

// debugger is what differs between 'ckpt2core gdb' and 'ckpt2core dlv'.
type debugger struct {
	name     string
	help     string // after the flags
	rootHelp string // of --root
	// argv is the debugger's command line for core (exe "" if unknown),
	// or an error for a usage error.
	argv func(o *debugOptions, exe, core string) ([]string, error)
	// multiarch: a core of another architecture is opened with
	// gdb-multiarch when it is installed (Debian's gdb reads only this
	// machine's).
	multiarch bool
}

// debuggers are the debuggers ckpt2core starts, by command name.
var debuggers = map[string]*debugger{
	"gdb": {
		name: "gdb",
		help: `
Examples:
  ckpt2core gdb checkpoint.tar --pid 6 --root /
  ckpt2core gdb dump/ --exe ./server -- -batch -ex 'thread apply all bt'

Converts one process (--pid, else the root of the process tree) into an
anonymous file, which gdb opens as /proc/self/fd/3 (no name on disk:
nothing is left of it, whatever ends the run), and starts gdb on that core
with the executable (--exe, else the one the checkpoint recorded, under
--root if given) and, with --root or --image, 'set sysroot' at the root
filesystem. A core of another architecture than this machine's is opened
with gdb-multiarch when it is installed (unless --gdb names a debugger).
Arguments after -- go to gdb.
` + debugStatus,
		rootHelp:  "root filesystem: clean file pages, the executable and 'set sysroot'",
		multiarch: true,
		argv: func(o *debugOptions, exe, core string) ([]string, error) {
			argv := []string{"-q"}
			if o.root != "" {
				argv = append(argv, "-iex", "set sysroot "+o.root)
			}
			argv = append(argv, o.extra...)
			if exe != "" {
				argv = append(argv, exe)
			}
			// --core=, not a second positional argument: without an
			// executable, gdb would take a lone positional core for one.
			return append(argv, "--core="+core), nil
		},
	},
	"dlv": {
		name: "dlv",
		help: `
Examples:
  ckpt2core dlv dump/ --exe ./server
  ckpt2core dlv checkpoint.tar.gz --pid 6 --exe ./server -- --init cmds.txt

Converts one process (--pid, else the root of the process tree) into an
anonymous file, which Delve opens as /proc/self/fd/3 (no name on disk:
nothing is left of it, whatever ends the run), and runs
'dlv core EXE /proc/self/fd/3'. --root supplies the clean pages of mapped
files to the core. Arguments after -- go to dlv.
` + debugStatus,
		rootHelp: "root filesystem: clean file pages",
		argv: func(o *debugOptions, exe, core string) ([]string, error) {
			if exe == "" {
				return nil, errors.New("dlv needs the executable: give --exe")
			}
			return append([]string{"core", exe, core}, o.extra...), nil
		},
	},
}

const debugStatus = `
Exit status: the debugger's; 128+N when ckpt2core is stopped by signal N
(SIGTERM and SIGHUP are passed on to the debugger first); 1 when the
process cannot be converted or the debugger cannot be started; 2 for a
usage error.
`

// debugOptions is the command line of 'ckpt2core gdb' or 'dlv'.
type debugOptions struct {
	checkpoint string
	pid        uint32 // 0: the root of the process tree
	root, exe  string
	image      string // --image: the container image as the root
	prog       string // the debugger's executable
	progSet    bool   // named with --gdb or --dlv
	extra      []string
	archive    *archive.Options
}

// runDebugger implements 'ckpt2core gdb' and 'ckpt2core dlv': flags,
// then the conversion of one process into an anonymous file, then the
// debugger on that core.
func runDebugger(stop *stopper, tool string, args []string, stdout, stderr io.Writer) int {
	d := debuggers[tool]
	o, status, ok := d.parse(args, stdout, stderr)
	if !ok {
		return status
	}
	return d.run(stop, o, stdout, stderr)
}

// parse reads the command line; ok false with the exit status when the
// run ends there (--help, a usage error).
func (d *debugger) parse(args []string, stdout, stderr io.Writer) (o *debugOptions, status int, ok bool) {
	tool := d.name
	fs := pflag.NewFlagSet("ckpt2core "+tool, pflag.ContinueOnError)
	pid := fs.Uint("pid", 0, "the process to debug (default: the root of the process tree)")
	o = &debugOptions{}
	fs.StringVar(&o.root, "root", "", d.rootHelp)
	fs.StringVar(&o.exe, "exe", "", "the executable (default: the process's executable, under --root if given)")
	fs.StringVar(&o.prog, tool, tool, "the debugger to run")
	fs.StringVar(&o.image, "image", "", imageHelp)
	o.archive = archiveFlags(fs)
	help := helpText(fs, "Usage: ckpt2core "+tool+" [flags] CHECKPOINT [-- DEBUGGER_ARGS...]", d.help)
	if status, ok := parseFlags(fs, tool, args, help, stdout, stderr, exitUsage); !ok {
		return nil, status, false
	}
	switch dash := fs.ArgsLenAtDash(); {
	case fs.NArg() == 0 || dash == 0:
		return nil, usageError(stderr, tool, exitUsage, "want CHECKPOINT"), false
	case dash < 0 && fs.NArg() > 1:
		return nil, usageError(stderr, tool, exitUsage, "want one CHECKPOINT, got %q; arguments for %s go after --", fs.Args(), tool), false
	case dash > 1:
		return nil, usageError(stderr, tool, exitUsage, "want one CHECKPOINT before --, got %q", fs.Args()[:dash]), false
	case *pid > math.MaxUint32:
		return nil, usageError(stderr, tool, exitUsage, "--pid %d: not a pid", *pid), false
	}
	o.checkpoint, o.extra, o.pid, o.progSet = fs.Arg(0), fs.Args()[1:], uint32(*pid), fs.Changed(tool)
	if o.exe != "" {
		if st, err := os.Stat(o.exe); err != nil || !st.Mode().IsRegular() {
			return nil, usageError(stderr, tool, exitUsage, "--exe %s: not a file here", o.exe), false
		}
	}
	return o, 0, true
}

// run converts the process and runs the debugger on its core; it returns
// the exit status.
func (d *debugger) run(stop *stopper, o *debugOptions, stdout, stderr io.Writer) int {
	cv, code, err := openConversion(stop, o.checkpoint, o.archive, o.root, o.image, stderr)
	if err != nil {
		complain(stderr, "", "%s", err)
		return code
	}
	defer cv.Close()
	o.root = cv.root // --image: the files unpacked from it
	ck := cv.ck
	target := ck.Procs[0].Pid
	if o.pid != 0 {
		want, err := selectPids(ck, []uint{uint(o.pid)})
		if err != nil {
			complain(stderr, "", "%v", err)
			return exitUsage
		}
		target = want[0]
	}
	// The core is an anonymous file of TMPDIR (no name, even for a
	// moment: a SIGKILL leaves nothing), which the debugger inherits as
	// its descriptor 3 and opens as /proc/self/fd/3.
	core, err := anonfile.New("", "core")
	if err != nil {
		complain(stderr, "", "%s", err)
		return exitFailed
	}
	defer core.Close()
	res := convertWith(ck, target, cv.opts, func(plan *elfcore.Plan) (string, error) {
		if err := plan.Write(core, nil); err != nil {
			return "", fmt.Errorf("writing its core into %s: %w", core.Name(), err)
		}
		return debuggerCore, nil
	})
	for _, n := range res.notes {
		complain(stderr, "", "pid %d (%s): %s", res.pid, res.comm, n)
	}
	switch {
	case res.zombie:
		complain(stderr, "", "pid %d (%s) is a zombie: it has no memory or registers to debug", target, res.comm)
		return exitFailed
	case res.err != nil:
		complain(stderr, "", "pid %d: %s", target, res.err)
		return exitFailed
	}
	exe := o.exe
	if exe == "" && res.exePath != "" {
		if exe, err = recordedExe(res.exePath, o.root); err != nil {
			complain(stderr, "", "the executable: %s (give --exe or --root)", err)
		}
	}
	prog := o.prog
	if d.multiarch && !o.progSet && res.arch != hostArch() {
		if p, err := exec.LookPath("gdb-multiarch"); err == nil {
			prog = p
			complain(stderr, "", "an %s core on %s: using %s", res.arch, runtime.GOARCH, p)
		} else {
			complain(stderr, "", "an %s core on %s: gdb may not read it; install gdb-multiarch or give --gdb", res.arch, runtime.GOARCH)
		}
	}
	argv, err := d.argv(o, exe, res.path)
	if err != nil {
		complain(stderr, "", "%s", err)
		return exitUsage
	}
	cmd := exec.Command(prog, argv...)
	cmd.ExtraFiles = []*os.File{core} // descriptor 3: debuggerCore
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
		complain(stderr, "", "%s: %v", prog, err)
		return exitFailed
	}
	return exitOK
}

// debuggerCore is the path under which the debugger opens the core: its
// own descriptor 3, the first of exec.Cmd.ExtraFiles.
const debuggerCore = "/proc/self/fd/3"

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
