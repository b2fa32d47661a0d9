// Command ckpt2core turns CRIU checkpoints into ELF core files that gdb and
// Delve load as if the kernel had dumped the frozen processes.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit statuses, documented in --help and the README.
const (
	exitOK      = 0 // everything asked for was done
	exitFailed  = 1 // nothing was converted: the checkpoint or every process failed
	exitUsage   = 2 // bad command line
	exitPartial = 3 // some processes were converted, others failed
)

const usage = `ckpt2core turns a CRIU checkpoint into one ELF core file per process.

CHECKPOINT is a CRIU image directory, or a container checkpoint (Kubernetes,
CRI-O, Podman) as a directory or a tar, tar+gzip or tar+zstd archive.

Usage:
  ckpt2core convert [flags] CHECKPOINT -o OUT_DIR  write OUT_DIR/core.<pid> per process
                                                   ('convert' may be left out)
  ckpt2core inspect [flags] CHECKPOINT             container, processes, threads, syscalls, files
  ckpt2core grep [flags] PATTERN CHECKPOINT        search the processes' memory
  ckpt2core triage [flags] CHECKPOINT              findings: what is suspicious, with evidence
  ckpt2core report [flags] CHECKPOINT -o FILE      one HTML file: tree, memory maps, threads, files
  ckpt2core diff [flags] A B                       what changed between two checkpoints
  ckpt2core extract CHECKPOINT -o DIR [KIND...]    recover ghost files, memfds, queues... ('cat CHECKPOINT PATH': one rw-layer file)
  ckpt2core list [flags] [DIR...]                  the checkpoints in DIR, oldest first
  ckpt2core gdb [flags] CHECKPOINT [-- GDB_ARGS]   convert one process and open it in gdb
  ckpt2core dlv [flags] CHECKPOINT [-- DLV_ARGS]   convert one process and open it in Delve
  ckpt2core verify --exe EXE CORE [--json]         load a core with Delve's core reader
                 [--checkpoint CHECKPOINT]         (and check EXE's build-id against it)
  ckpt2core help | --help | --version

Examples:
  ckpt2core /var/lib/criu/dump -o out/
  gdb /path/to/executable out/core.1234
  ckpt2core checkpoint-web_default-app-2026-11-27T10:00:00Z.tar -o out/ --root /
  ckpt2core inspect --json checkpoint.tar.gz
  ckpt2core grep -i 'password=' checkpoint.tar.gz
  ckpt2core verify --exe ./server out/core.1234

Run 'ckpt2core COMMAND --help' for a command's flags.

Exit status: 0 all converted; 1 nothing converted (or a fatal error);
2 usage error; 3 some processes converted and others failed.
(grep: 0 found, 1 not found, 2 error; diff: 0 same, 1 different, 2 trouble.)
`

func main() {
	os.Exit(runCleanly(os.Args[1:], runWith))
}

// runCleanly runs the command so that no unpacked checkpoint or core
// (every secret of the processes) stays behind, also when it is stopped by
// SIGINT, SIGTERM or SIGHUP, by a closed pipe or a panic. Nothing named is
// made at the start: what a command must write for a while is an
// anonymous file of TMPDIR (O_TMPFILE: archive spools, the core of
// 'ckpt2core gdb'), which even SIGKILL cannot leave behind, and only what
// needs names (an --image root) gets a directory of TMPDIR, through
// stop.tempDir, removed on every exit that runs code. Cores being written
// into OUT_DIR are anonymous files until complete, so a stop leaves none
// there either.
func runCleanly(args []string, cmd func(*stopper, []string, io.Writer, io.Writer) int) int {
	stop := newStopper(os.Stderr)
	return stop.finish(runGuarded(stop, args, cmd))
}

// runGuarded runs cmd with the real stdout and stderr, through which a
// closed pipe ends the run after the cleanup (pipeOut). A panic undoes
// the work in progress and removes the temporary directories before it
// goes on (the runtime then prints it and exits with status 2).
func runGuarded(stop *stopper, args []string, cmd func(*stopper, []string, io.Writer, io.Writer) int) int {
	defer func() {
		if r := recover(); r != nil {
			stop.abandon()
			panic(r)
		}
	}()
	return cmd(stop, args, pipeOut{os.Stdout, stop}, pipeOut{os.Stderr, stop})
}

// run runs the command line args (without the program name) and returns
// the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	return runWith(nil, args, stdout, stderr)
}

// runWith is run with the stopper that forwards stop signals to a
// debugger ckpt2core starts (nil: no forwarding).
func runWith(stop *stopper, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return runVerify(stop, args[1:], stdout, stderr)
		case "gdb", "dlv":
			return runDebugger(stop, args[0], args[1:], stdout, stderr)
		case "convert":
			return runConvert(stop, args[1:], stdout, stderr)
		case "inspect":
			return runInspect(stop, args[1:], stdout, stderr)
		case "diff":
			return runDiff(stop, args[1:], stdout, stderr)
		case "triage":
			return runTriage(stop, args[1:], stdout, stderr)
		case "list":
			return runList(stop, args[1:], stdout, stderr)
		case "grep":
			return runGrep(stop, args[1:], stdout, stderr)
		case "report":
			return runReport(stop, args[1:], stdout, stderr)
		case "extract", "cat":
			return runCarve(stop, args[0], args[1:], stdout, stderr)
		case "help", "-h", "--help":
			fmt.Fprint(stdout, usage)
			return exitOK
		case "version", "--version":
			fmt.Fprintf(stdout, "ckpt2core %s\n", version)
			return exitOK
		}
	}
	if len(args) > 0 {
		if status, unknown := unknownCommand(args[0], stderr); unknown {
			return status
		}
	}
	return runConvert(stop, args, stdout, stderr)
}
