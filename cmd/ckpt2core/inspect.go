package main

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

const inspectExamples = `
Shows what a checkpoint holds without a debugger: the container it came
from (config.dump, spec.dump, network.status), CRIU's dump statistics
(stats-dump), the process tree with full command lines, every thread's PC,
instruction and system call, memory by kind, open files and sockets,
mounts and the files the container changed (rootfs-diff.tar).

CHECKPOINT is a CRIU image directory, a container checkpoint archive
(Kubernetes, CRI-O or Podman: tar, tar+gzip or tar+zstd, recognized by
content whatever its name), or a directory holding an extracted one (with
checkpoint/ inside, or that checkpoint/ itself). The container's files
(config.dump, spec.dump, network.status, stats-dump, rootfs-diff.tar) are
read from the archive, or from the directory around the images.

Examples:
  ckpt2core inspect /var/lib/criu/dump
  ckpt2core inspect checkpoint-web_default-app-2026-11-27T10:00:00Z.tar
  ckpt2core inspect dump/ --pid 42 --env
  ckpt2core inspect dump/ --json | jq '.processes[].threads[].syscall'
  ckpt2core inspect dump/ --root /srv/guest-root      code pages not captured

A damaged image (a truncated core, mm, pagemap, pages or files image)
costs only what it holds: the rest is still reported, and a warning names
the file, the entry and what is wrong.

Exit status: 0 reported (with warnings for what could not be read); 1 the
checkpoint could not be read at all (a missing or damaged inventory.img
or pstree.img), or the report could not be written; 2 usage error (bad
flag, unknown --pid, --root that cannot be opened).
`

func runInspect(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core inspect", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object (schema in the README) instead of tables")
	env := fs.Bool("env", false, "include each process's environment")
	aopts := archiveFlags(fs)
	pids := fs.UintSlice("pid", nil, "report only this process (repeatable)")
	sysroot := fs.String("root", "", "directory with the checkpointed system's files, to decode code the checkpoint did not capture")
	jobs := fs.IntP("jobs", "j", 1, "checkpoints inspected in parallel (with several CHECKPOINTs)")
	summary := fs.Bool("summary", false, "one row per CHECKPOINT (several allowed), like checkpointctl show")
	image := imageFlag(fs)
	help := helpText(fs, "Usage: ckpt2core inspect CHECKPOINT [CHECKPOINT...] [--json] [--env] [--pid N] [--root DIR] [-j N]\n       ckpt2core inspect --summary CHECKPOINT... [--json]", inspectExamples)
	if status, ok := parseFlags(fs, "inspect", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	if *summary && fs.NArg() > 0 {
		return runSummary(stop, fs.Args(), *asJSON, aopts, stdout, stderr)
	}
	if fs.NArg() < 1 {
		return usageError(stderr, "inspect", exitUsage, "want a CHECKPOINT, got none")
	}
	if *jobs < 1 {
		return usageError(stderr, "inspect", exitUsage, "--jobs must be at least 1")
	}
	one := func(path string, stdout, stderr io.Writer) int {
		return inspectOne(stop, path, aopts, *asJSON, *env, *pids, *sysroot, *image, stdout, stderr)
	}
	if fs.NArg() == 1 {
		return one(fs.Arg(0), stdout, stderr)
	}
	if aopts.ExtractDir != "" {
		return usageError(stderr, "inspect", exitUsage, "--extract takes one CHECKPOINT")
	}
	// Many checkpoints: reports grouped per checkpoint, in argument order;
	// the worst status.
	oneDecoderEach(aopts, *jobs)
	code := exitOK
	for _, st := range runEach(fs.Args(), *jobs, *asJSON, stdout, stderr, one) {
		code = max(code, st)
	}
	return code
}

// inspectOne reports on one checkpoint and returns the exit status. A
// CRI-O pod checkpoint is reported container by container (pod.go).
func inspectOne(stop *stopper, path string, aopts *archive.Options, asJSON, env bool, pids []uint, sysroot, image string, stdout, stderr io.Writer) int {
	rep, code, err := inspectReport(stop, path, aopts, env, pids, sysroot, image, stderr)
	if pod := podChoice(err); pod != nil {
		return inspectPod(stop, pod, aopts, asJSON, env, pids, sysroot, image, stdout, stderr)
	}
	var ue *inspectUsage
	switch {
	case errors.As(err, &ue):
		return usageError(stderr, "inspect", exitUsage, "%v", ue.err)
	case err != nil:
		complain(stderr, "", "%s", err)
		return code
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = inspect.WriteText(stdout, rep)
	}
	if err != nil {
		complain(stderr, "", "%v", err)
		return exitFailed
	}
	return exitOK
}

// inspectUsage is a usage error of inspectReport said as such.
type inspectUsage struct{ err error }

func (e *inspectUsage) Error() string { return e.err.Error() }

// inspectReport opens and inspects one checkpoint; on error, the exit
// status to use. A pod checkpoint gives a podChoiceError.
func inspectReport(stop *stopper, path string, aopts *archive.Options, env bool, pids []uint, sysroot, image string, stderr io.Writer) (*inspect.Report, int, error) {
	o := *aopts
	// A compressed archive streams: only the pages inspect reads are kept
	// (argument areas, code at each PC).
	o.Stream = o.ExtractDir == ""
	endBar := readProgress(&o, path, stderr, "unpacking")
	src, closeSrc, err := openCheckpoint(stop, inspectPath(path), &o)
	if err != nil {
		endBar()
		return nil, openStatus(err), err
	}
	defer func() { closeSrc() }()
	var told *retained
	if a := streamedArchive(src); a != nil {
		told = retainForInspect(src)
		err := a.Wait()
		endBar()
		if err != nil {
			err = podOf(err, o)
			return nil, openStatus(err), err
		}
	}
	endBar()
	// criuimg.Open, but a damaged files.img does not stop the report: the
	// files of its entries before the damaged one are known, and Inspect
	// says what lacks a path because of it.
	ck, err := criuimg.SalvageOpen(src)
	if err != nil {
		return nil, exitFailed, err
	}
	if told != nil && len(hurtByRetain(ck, told, inspectReads)) > 0 {
		// A process whose images came after the pages reads from a pages
		// file of which only some bytes were kept: read the archive
		// again, unpacked whole.
		closeSrc()
		o.Stream, o.OnRead = false, nil
		if src, closeSrc, err = openCheckpoint(stop, inspectPath(path), &o); err != nil {
			closeSrc = func() {}
			return nil, openStatus(err), err
		}
		if ck, err = criuimg.SalvageOpen(src); err != nil {
			return nil, exitFailed, err
		}
	}
	opts := inspect.Options{Env: env, Name: path}
	if image != "" {
		if sysroot != "" {
			return nil, exitUsage, &inspectUsage{errors.New("--root and --image exclude each other")}
		}
		dir, cleanup, err := imageRoot(stop, image, src, ck, stderr)
		if err != nil {
			return nil, exitUsage, err
		}
		defer cleanup()
		sysroot = dir
	}
	if sysroot != "" {
		// As convert and gdb open --root (overlaid by rootfs-diff.tar,
		// files checked against what CRIU recorded); one that cannot be
		// opened is a usage error, said at once.
		r, err := openRoot(sysroot, src, ck, stderr)
		if err != nil {
			return nil, exitUsage, err
		}
		defer r.Close()
		opts.Files = r
	}
	// config.dump, ..., rootfs-diff.tar, with the archive's member times
	// (a Podman checkpoint is dated by stats-dump's).
	opts.Meta = checkpointMeta(src)
	if len(pids) > 0 {
		if opts.Pids, err = selectPids(ck, pids); err != nil {
			return nil, exitUsage, &inspectUsage{err}
		}
	}
	rep, err := inspect.Inspect(ck, opts)
	if err != nil {
		return nil, exitUsage, err // only an unknown --pid fails the whole report
	}
	return rep, exitOK, nil
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
