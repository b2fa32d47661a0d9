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

Usage:
  ckpt2core [flags] CHECKPOINT -o OUT_DIR    convert (CHECKPOINT: a CRIU image directory)
  ckpt2core verify --exe EXE CORE [--json]   load a core with Delve's core reader
  ckpt2core inspect CHECKPOINT [--json] [--env] [--pid N]   show what a checkpoint holds
  ckpt2core gdb CHECKPOINT [--pid N] [--root DIR] [-- GDB_ARGS]   convert and open in gdb
  ckpt2core dlv CHECKPOINT [--pid N] --exe EXE                   convert and open in Delve
  ckpt2core grep [flags] PATTERN CHECKPOINT  search the processes' memory (exit 0 found, 1 not)
  ckpt2core help | --help | --version

Examples:
  ckpt2core /var/lib/criu/dump -o out/
  gdb --core out/core.1234 /path/to/executable
  ckpt2core testdata/x86_64/threads-c/images -o out/ --pid 32484 --force
  ckpt2core verify --exe testdata/x86_64/go-goroutines/exe/go-goroutines out/core.2219

Run 'ckpt2core COMMAND --help' for a command's flags.

Exit status: 0 all converted; 1 nothing converted (or a fatal error);
2 usage error; 3 some processes converted and others failed.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return runVerify(args[1:], stdout, stderr)
		case "gdb", "dlv":
			return runDebugger(args[0], args[1:], stdout, stderr)
		case "convert":
			return runConvert(args[1:], stdout, stderr)
		case "inspect":
			return runInspect(args[1:], stdout, stderr)
		case "grep":
			return runGrep(args[1:], stdout, stderr)
		case "help", "-h", "--help":
			fmt.Fprint(stdout, usage)
			return exitOK
		case "version", "--version":
			fmt.Fprintf(stdout, "ckpt2core %s\n", version)
			return exitOK
		}
	}
	return runConvert(args, stdout, stderr)
}
