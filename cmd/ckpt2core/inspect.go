package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/inspect"
)

const inspectExamples = `
Shows what a checkpoint holds without a debugger: the container it came
from (config.dump, spec.dump, network.status), CRIU's dump statistics
(stats-dump), the process tree with full command lines, every thread's PC,
instruction and system call, memory by kind, open files and sockets,
mounts and the files the container changed (rootfs-diff.tar).

CHECKPOINT is a CRIU image directory, or a directory holding an extracted
container checkpoint archive (with checkpoint/ inside); the files around
the images (config.dump, ...) are read from the image directory and its
parent.

Examples:
  ckpt2core inspect /var/lib/criu/dump
  ckpt2core inspect dump/ --pid 42 --env
  ckpt2core inspect dump/ --json | jq '.processes[].threads[].syscall'
  ckpt2core inspect dump/ --root /srv/guest-root      code pages not captured

Exit status: 0 reported; 1 the checkpoint could not be read; 2 usage error.
`

func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core inspect", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object (schema in the README) instead of tables")
	env := fs.Bool("env", false, "include each process's environment")
	aopts := archiveFlags(fs)
	pids := fs.UintSlice("pid", nil, "report only this process (repeatable)")
	sysroot := fs.String("root", "", "directory with the checkpointed system's files, to decode code the checkpoint did not capture")
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: ckpt2core inspect CHECKPOINT [--json] [--env] [--pid N] [--root DIR]\n\nFlags:\n%s%s", fs.FlagUsages(), inspectExamples)
	}
	if status, ok := parseFlags(fs, "inspect", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	if fs.NArg() != 1 {
		help(stderr)
		return exitUsage
	}
	path := fs.Arg(0)
	src, closeSrc, err := openCheckpoint(inspectPath(path), aopts)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitFailed
	}
	defer closeSrc()
	ck, err := criuimg.Open(src)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitFailed
	}
	opts := inspect.Options{Env: *env, Sysroot: *sysroot, Name: path}
	if m, ok := src.(inspect.MetaSource); ok {
		opts.Meta = inspect.MetaFS(m) // config.dump, ..., rootfs-diff.tar
	}
	for _, p := range *pids {
		opts.Pids = append(opts.Pids, uint32(p))
	}
	rep, err := inspect.Inspect(ck, opts)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitUsage // only an unknown --pid fails the whole report
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = inspect.WriteText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// inspectPath returns what to open for path: the parent directory when
// path is the checkpoint/ directory of an extracted container checkpoint
// (its parent holds config.dump or spec.dump), so that the container's
// files are read too; path itself otherwise (archive.Open reads an
// extracted checkpoint's directory, checkpoint/ and metadata, by itself).
func inspectPath(path string) string {
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	parent := filepath.Dir(abs)
	if sub, err := os.Stat(filepath.Join(parent, "checkpoint")); err != nil || !os.SameFile(st, sub) {
		return path
	}
	for _, name := range []string{inspect.ConfigDumpFile, inspect.SpecDumpFile} {
		if _, err := os.Stat(filepath.Join(parent, name)); err == nil {
			return parent
		}
	}
	return path
}
