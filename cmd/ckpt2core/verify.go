package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/rootfs"
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

With --checkpoint, EXE's build-id is compared with the one CRIU recorded
for the process's executable (files.img, CRIU >= 3.16) and a warning says
when they differ: the symbols Delve reads from EXE would then not be the
core's. A core does not hold the build-id itself (the executable's ELF
header is a clean file page, which the checkpoint does not capture), so
without --checkpoint no comparison is made.
`

func runVerify(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core verify", pflag.ContinueOnError)
	exe := fs.String("exe", "", "the executable the core belongs to (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	debugDirs := fs.StringSlice("debug-info-dir", nil, "directory with separate debug info (repeatable)")
	ckpt := fs.String("checkpoint", "", "the checkpoint the core was made from: warn if EXE's build-id is not the one it recorded")
	pid := fs.Uint("pid", 0, "with --checkpoint: the core's process (default: the pid in CORE's name core.<pid>)")
	aopts := archiveFlags(fs)
	help := helpText(fs, "Usage: ckpt2core verify --exe EXE CORE [--json] [--checkpoint CHECKPOINT [--pid N]]", verifyExamples)
	if status, ok := parseFlags(fs, "verify", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	switch {
	case fs.NArg() != 1:
		return usageError(stderr, "verify", exitUsage, "want one CORE, got %s", count(fs.NArg(), "argument"))
	case *exe == "":
		return usageError(stderr, "verify", exitUsage, "--exe EXE is required (Delve reads symbols from the executable)")
	}
	if *ckpt != "" {
		if status, ok := checkBuildID(stop, *ckpt, aopts, *pid, fs.Arg(0), *exe, stderr); !ok {
			return status
		}
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

// checkBuildID warns on stderr when exe's build-id is not the one the
// checkpoint recorded for the executable of the core's process (pid, or
// the one in the core's name core.<pid>). ok is false, with the exit
// status, when the checkpoint or the process cannot be read.
func checkBuildID(stop *stopper, ckpt string, aopts *archive.Options, pid uint, core, exe string, stderr io.Writer) (status int, ok bool) {
	if pid == 0 {
		n, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(core), "core."), 10, 32)
		if err != nil {
			return usageError(stderr, "verify", exitUsage, "--checkpoint: give --pid (%s is not named core.<pid>)", core), false
		}
		pid = uint(n)
	}
	src, closeSrc, err := openWithoutPages(stop, ckpt, aopts)
	if err != nil {
		complain(stderr, "verify", "%s", err)
		return openStatus(err), false
	}
	defer closeSrc()
	ck, err := criuimg.SalvageOpen(src)
	if err != nil {
		complain(stderr, "verify", "%s", err)
		return exitFailed, false
	}
	want, err := selectPids(ck, []uint{pid})
	if err != nil {
		return usageError(stderr, "verify", exitUsage, "%v", err), false
	}
	p, _ := ck.SalvageProcess(want[0])
	if p == nil || p.MM == nil {
		complain(stderr, "verify", "pid %d: the checkpoint does not say which executable it ran (mm-%d.img unreadable): build-id not compared", want[0], want[0])
		return 0, true
	}
	defer p.Close()
	rf, found := ck.RegFile(p.MM.GetExeFileId())
	if !found || len(rf.BuildID) == 0 {
		complain(stderr, "verify", "pid %d (%s): the checkpoint recorded no build-id for its executable: build-id not compared", p.Pid, p.Comm)
		return 0, true
	}
	f, err := os.Open(exe)
	if err != nil {
		complain(stderr, "verify", "--exe: %v", err)
		return exitFailed, false
	}
	defer f.Close()
	got, err := rootfs.BuildID(f)
	switch {
	case err != nil:
		complain(stderr, "verify", "warning: --exe %s: %v; the checkpoint recorded build-id %x for pid %d's executable %s", exe, err, rf.BuildID, p.Pid, rf.Path)
	case !bytes.Equal(got, rf.BuildID):
		complain(stderr, "verify", "warning: --exe %s has build-id %x, the checkpoint recorded %x for pid %d's executable %s: the symbols may not be the core's", exe, got, rf.BuildID, p.Pid, rf.Path)
	}
	return 0, true
}
