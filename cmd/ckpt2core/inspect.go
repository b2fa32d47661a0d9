package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/archive"
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
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object (schema in the README) instead of tables")
	env := fs.Bool("env", false, "include each process's environment")
	aopts := archiveFlags(fs)
	pids := fs.UintSlice("pid", nil, "report only this process (repeatable)")
	sysroot := fs.String("root", "", "directory with the checkpointed system's files, to decode code the checkpoint did not capture")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ckpt2core inspect CHECKPOINT [--json] [--env] [--pid N] [--root DIR]\n\nFlags:\n%s%s", fs.FlagUsages(), inspectExamples)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	path := fs.Arg(0)
	imagesPath, meta := inspectPaths(path)
	src, closeSrc, err := openCheckpoint(imagesPath, aopts)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitFailed
	}
	defer closeSrc()
	if m := metaOf(src); m != nil {
		meta = m
	} else if st, err := os.Stat(path); err == nil && st.IsDir() && meta == nil {
		// Package archive reads the metadata of a directory in place.
		if a, err := archive.Open(path, archive.Options{}); err == nil {
			defer a.Close()
			meta = inspect.MetaFS(a)
		}
	}
	ck, err := criuimg.Open(src)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitFailed
	}
	opts := inspect.Options{Env: *env, Meta: meta, Sysroot: *sysroot, Name: path}
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

// inspectPaths finds the CRIU images and the container files around them
// for a directory: an extracted archive (DIR/checkpoint/inventory.img,
// metadata in DIR), or an image directory whose parent holds config.dump
// (the checkpoint/ directory of an extracted archive). For anything else
// the path goes to openCheckpoint unchanged.
func inspectPaths(path string) (string, fs.FS) {
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		return path, nil
	}
	if _, err := os.Stat(filepath.Join(path, "checkpoint", "inventory.img")); err == nil {
		return filepath.Join(path, "checkpoint"), os.DirFS(path)
	}
	parent := filepath.Dir(filepath.Clean(path))
	for _, name := range []string{inspect.ConfigDumpFile, inspect.SpecDumpFile} {
		if _, err := os.Stat(filepath.Join(parent, name)); err == nil {
			return path, os.DirFS(parent)
		}
	}
	return path, nil
}

// metaOf returns the container files of a source that carries them: for
// a container archive, openCheckpoint should return a Source that also
// implements inspect.MetaSource (Meta and RootfsDiff, delegating to the
// *archive.Checkpoint) so that the archive is read once. Directories need
// nothing: their metadata is read with archive.Open.
func metaOf(src criuimg.Source) fs.FS {
	if m, ok := src.(inspect.MetaSource); ok {
		return inspect.MetaFS(m)
	}
	return nil
}
