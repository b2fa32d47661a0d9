package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// MaxArgBytes bounds what is read of a process's argument or environment
// area (the kernel allows a quarter of the stack limit; 8 MiB covers any
// usual limit).
const MaxArgBytes = 8 << 20

// Options select what Inspect reports.
type Options struct {
	// Env includes each process's environment.
	Env bool
	// Pids limits the processes reported (all if empty).
	Pids []uint32
	// Meta holds the checkpoint's metadata files: those a container
	// engine writes around the images (config.dump, spec.dump,
	// network.status, rootfs-diff.tar) and CRIU's statistics
	// (stats-dump, stats-restore), with their modification times; nil if
	// there are none. archive.Checkpoint.Meta gives it, bounding each
	// file's size.
	Meta fs.FS
	// Files, if set, supplies the bytes of mapped files (a *rootfs.Root:
	// a sysroot or the container's root file system, each file checked
	// against the size and build-id the checkpoint recorded): code that
	// the checkpoint did not capture is read from there.
	Files MappedFiles
	// Name is how the checkpoint is called in the report (a path).
	Name string
}

// Inspect builds the report of an opened checkpoint. Problems with one
// process or one image become warnings in the report, which keeps
// everything else; an error is returned only when nothing can be reported
// (an unknown pid in Options.Pids).
func Inspect(ck *criuimg.Checkpoint, opts Options) (*Report, error) {
	rep := &Report{Checkpoint: opts.Name, Arch: criuimg.ArchUnknown.String(), ImagesVersion: ck.Inventory.GetImgVersion()}
	if rep.Checkpoint == "" {
		rep.Checkpoint = ck.Src.String()
	}
	warn := func(format string, a ...any) { rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, a...)) }
	for _, p := range opts.Pids {
		if _, ok := ck.Proc(p); !ok {
			return nil, &UnknownPidError{Pid: p, Have: ck.Pids()}
		}
	}

	// Container metadata and statistics.
	meta := func(name string) []byte {
		b, err := readMeta(opts.Meta, name)
		if err != nil {
			warn("%v", err)
		}
		return b
	}
	config, spec, network := meta(ConfigDumpFile), meta(SpecDumpFile), meta(NetworkStatusFile)
	if config != nil || spec != nil {
		c, err := ParseContainer(config, spec, network)
		if err != nil {
			warn("container metadata: %v", err)
		} else {
			rep.Container = c
			if c.Checkpointed == "" && opts.Meta != nil {
				// stats-dump is written as the dump ends.
				if st, err := fs.Stat(opts.Meta, StatsDumpFile); err == nil && !st.ModTime().IsZero() {
					c.Checkpointed = st.ModTime().UTC().Format(time.RFC3339)
					c.CheckpointedFrom = "mtime of " + StatsDumpFile
				}
			}
		}
	}
	readFile := func(name string) ([]byte, bool, error) {
		b, err := readMeta(opts.Meta, name)
		return b, b != nil, err
	}
	if rep.Container == nil && opts.Meta != nil {
		// containerd's status.dump alone names the container.
		if _, err := fs.Stat(opts.Meta, StatusDumpFile); err == nil {
			rep.Container = &Container{Engine: "containerd"}
		}
	}
	if b := meta(StatsDumpFile); b != nil {
		ds, _, err := ParseStats(StatsDumpFile, b)
		if err != nil {
			warn("%v", err)
		}
		rep.DumpStats = ds
	}
	if b := meta(StatsRestoreFile); b != nil {
		_, rs, err := ParseStats(StatsRestoreFile, b)
		if err != nil {
			warn("%v", err)
		}
		rep.RestoreStats = rs
	}
	if opts.Meta != nil {
		if f, err := opts.Meta.Open(RootfsDiffFile); err == nil {
			diff, more, err := ParseRootfsDiff(f)
			f.Close()
			rep.RootfsDiff = diff
			if err != nil {
				warn("%v", err)
			}
			if more {
				warn("%s: only the first %d entries are listed", RootfsDiffFile, MaxDiffEntries)
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			warn("%s: %v", RootfsDiffFile, err)
		}
	}

	rep.Volumes = readVolumes(opts.Meta, warn)
	addEngineFiles(rep, rep.Container, opts.Meta, readFile, warn)
	uts, err := loadUTS(ck.Src)
	if err != nil {
		warn("UTS namespace: %v", err)
	}
	rep.UTS = uts
	diffSize := int64(-1)
	if opts.Meta != nil {
		if st, err := fs.Stat(opts.Meta, RootfsDiffFile); err == nil {
			diffSize = st.Size()
		}
	}
	if sz, err := checkpointSizes(ck.Src, diffSize); err != nil {
		warn("sizes: %v", err)
	} else {
		rep.Sizes = sz
	}

	files := fileTable{ck}
	if ferr := ck.FilesError(); ferr != nil {
		// files.img is damaged (SalvageOpen): what could be read of it.
		warn("%v: only its first %d entries are read: the other files' paths (mappings, open files, cwd, executable) are unknown", ferr, ck.FileCount())
	}
	mounts, err := loadMounts(ck.Src)
	if err != nil {
		warn("mounts: %v", err)
	}
	rep.Mounts = mounts

	for _, info := range ck.Procs {
		if len(opts.Pids) > 0 && !slices.Contains(opts.Pids, info.Pid) {
			continue
		}
		pr, arch := inspectProcess(ck, info, files, opts)
		if arch != criuimg.ArchUnknown {
			rep.Arch = arch.String()
		}
		rep.Processes = append(rep.Processes, pr)
	}
	return rep, nil
}

// readMeta returns the named file of meta; nil with no error if there is
// no such file (or no meta).
func readMeta(meta fs.FS, name string) ([]byte, error) {
	if meta == nil {
		return nil, nil
	}
	b, err := fs.ReadFile(meta, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, unwrapPath(err))
	}
	return b, nil
}

// unwrapPath drops the "open NAME: " of a *fs.PathError (the caller names
// the file).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func stateName(s uint32) string {
	switch s {
	case criuimg.TaskAlive:
		return "alive"
	case criuimg.TaskStopped:
		return "stopped"
	case criuimg.TaskDead, criuimg.TaskZombie:
		return "zombie"
	}
	return "unknown"
}

// inspectProcess reports one process: what criuimg.SalvageProcess could
// read of its images (all of it, from sound images). Each problem it met
// becomes a warning saying what the report lacks because of it.
func inspectProcess(ck *criuimg.Checkpoint, info criuimg.ProcInfo, files fileTable, opts Options) (Process, criuimg.Arch) {
	pr := Process{Pid: info.Pid, PPid: info.PPid, Pgid: info.Pgid, Sid: info.Sid, State: "unknown", ThreadCount: len(info.Threads)}
	warn := func(format string, a ...any) { pr.Warnings = append(pr.Warnings, fmt.Sprintf(format, a...)) }
	p, errs := ck.SalvageProcess(info.Pid)
	for _, err := range errs {
		warn("%s", salvageWarning(err))
	}
	if p == nil {
		return pr, criuimg.ArchUnknown // (not in pstree.img)
	}
	defer p.Close()
	for _, n := range p.Notes {
		warn("%s", noteWarning(n))
	}
	pr.Comm, pr.State = p.Comm, stateName(p.State)
	if p.Zombie() {
		if ws := criuimg.WaitStatus(p.ExitCode); ws.Signaled() {
			sig := ws.Signal()
			pr.ExitSignal = &sig
		} else {
			code := ws.ExitStatus()
			pr.ExitCode = &code
		}
		if opts.Env {
			pr.Env = []string{}
		}
		return pr, p.Arch
	}
	pr.Exe = p.ExePath

	if p.MM != nil && p.Mem != nil {
		argv, trunc, err := readArgv(p)
		if err != nil {
			warn("command line: %v", err)
		}
		pr.Argv, pr.ArgvTruncated = argv, trunc
	}
	if opts.Env {
		pr.Env = []string{}
		if p.MM != nil && p.Mem != nil {
			env, trunc, err := readStrings(p.Mem, p.MM.GetMmEnvStart(), p.MM.GetMmEnvEnd())
			if err != nil {
				warn("environment: %v", err)
			}
			if trunc && err == nil {
				warn("environment: only the first %d bytes are shown", MaxArgBytes)
			}
			if env != nil {
				pr.Env = env
			}
		}
	}

	cwd, root, err := fsPaths(ck.Src, files, info.Pid)
	if err != nil {
		warn("cwd: %v", err)
	}
	pr.Cwd, pr.Root = cwd, root

	refused := map[string]bool{}
	onRefused := func(path string, err error) {
		if !refused[path] {
			refused[path] = true
			warn("%s: code not read from the root filesystem: %v", path, err)
		}
	}
	for i := range p.Threads {
		th, err := threadReport(p, &p.Threads[i], opts.Files, onRefused)
		if err != nil {
			warn("thread %d: %v", th.Tid, err)
		}
		pr.Threads = append(pr.Threads, th)
	}

	if p.MM != nil {
		mem, err := memorySummary(p)
		if err != nil {
			warn("memory: %v", err)
		}
		pr.Memory = mem
	}

	if id, idsErr, err := filesID(ck.Src, p.Task, info.Pid); err != nil {
		warn("open files: %v", err)
	} else {
		if idsErr != nil {
			warn("open files: %v: the table's id is core-%d.img's", idsErr, info.Pid)
		}
		fds, err := openFiles(ck.Src, files, id)
		if err != nil {
			warn("open files: %v", err)
		}
		pr.Files = fds
	}
	return pr, p.Arch
}

// noteWarning is the warning about a fact of a process's images that
// leaves memory out of the report (or a mapping unnamed).
func noteWarning(n criuimg.Note) string {
	switch n.Kind {
	case criuimg.NoteParentPages:
		return fmt.Sprintf("%d bytes of memory are in a parent checkpoint (incremental dump) that is not here: they are not read", n.Bytes)
	case criuimg.NoteLazyPages:
		return fmt.Sprintf("%d bytes of memory were left to lazy migration and are not in the images", n.Bytes)
	}
	return n.Err.Error()
}

// salvageWarning is the warning about a problem criuimg.SalvageProcess
// met: the error, and what the report lacks because of it when the error
// does not say it.
func salvageWarning(err error) string {
	var se *criuimg.SalvageError
	if !errors.As(err, &se) {
		return err.Error()
	}
	switch se.Part {
	case criuimg.PartTask:
		return err.Error() + ": comm, state and the main thread (name, registers, system call) are unknown"
	case criuimg.PartThread:
		return err.Error() + ": its name, registers and system call are unknown (and its stack counts as anonymous memory)"
	case criuimg.PartMM:
		return err.Error() + ": mappings, memory, command line, environment and executable are unknown, and no instruction can be read"
	case criuimg.PartMemory:
		return err.Error() + ": no page size, so memory, command line, environment and instructions cannot be read"
	}
	return err.Error()
}

// readStrings reads the NUL-separated strings in [start, end) of mem (the
// argument or environment area), at most MaxArgBytes. It returns what it
// could read and whether the area was longer.
func readStrings(mem *criuimg.Memory, start, end uint64) ([]string, bool, error) {
	if end <= start {
		return nil, false, nil
	}
	n := cappedEnd(start, end) - start
	trunc := n < end-start
	b := make([]byte, n)
	k, err := mem.ReadAt(b, int64(start))
	b = b[:k]
	if err != nil {
		err = fmt.Errorf("[%#x-%#x): read %d of %d bytes: %w", start, end, k, n, err)
		trunc = true
	}
	return splitNUL(b), trunc, err
}

// readArgv reads p's command line as the kernel shows it in
// /proc/PID/cmdline (fs/proc/base.c get_mm_cmdline): the argument area's
// strings; but when the area's last byte is not NUL, the process has
// written a title over it (setproctitle, as nginx and postgres do) that may
// run on into the environment area, and the command line is that title: the
// bytes from mm_arg_start up to the first NUL, within one page and within
// the environment area when it follows the arguments (get_mm_proctitle).
func readArgv(p *criuimg.Process) ([]string, bool, error) {
	start, end := p.MM.GetMmArgStart(), p.MM.GetMmArgEnd()
	argv, trunc, err := readStrings(p.Mem, start, end)
	if err != nil || end <= start {
		return argv, trunc, err
	}
	var last [1]byte
	if _, err := p.Mem.ReadAt(last[:], int64(end-1)); err != nil || last[0] == 0 {
		return argv, trunc, nil
	}
	b := make([]byte, titleEnd(p)-start)
	k, err := p.Mem.ReadAt(b, int64(start))
	b = b[:k]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	} else if err != nil {
		// The title runs into bytes the checkpoint lacks: keep the
		// argument area's strings.
		return argv, trunc, nil
	}
	return []string{string(b)}, false, nil
}

// splitNUL splits NUL-terminated strings; an unterminated last string is
// kept.
func splitNUL(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	b = bytes.TrimSuffix(b, []byte{0})
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, s := range parts {
		out[i] = string(s)
	}
	return out
}

// MemoryKind is the kind (KindFile, KindAnon, KindHeap, KindStack,
// KindShared, KindSysV, KindSpecial) that MemorySummary counts a mapping
// of kind k under: criuimg's kinds, the kernel's special ones as one.
func MemoryKind(k criuimg.VMAKind) string {
	if k.Special() {
		return KindSpecial
	}
	return k.String() // the names of the others are inspect's
}

// Prot writes PROT_* bits (criuimg.ProtRead...) as "rwx", "r--".
func Prot(p uint32) string {
	b := []byte("---")
	if p&criuimg.ProtRead != 0 {
		b[0] = 'r'
	}
	if p&criuimg.ProtWrite != 0 {
		b[1] = 'w'
	}
	if p&criuimg.ProtExec != 0 {
		b[2] = 'x'
	}
	return string(b)
}

// memorySummary sums p's mappings by kind (criuimg's Process.VMAKind).
// Without a
// memory view (no page size) every byte of the mappings but the kernel's
// special ones is counted unreadable.
func memorySummary(p *criuimg.Process) (*MemorySummary, error) {
	order := []string{KindFile, KindAnon, KindHeap, KindStack, KindShared, KindSysV, KindSpecial}
	kinds := map[string]*MemKind{}
	for _, k := range order {
		kinds[k] = &MemKind{Kind: k}
	}
	m := &MemorySummary{VMAs: len(p.VMAs)}
	var firstErr error
	for i := range p.VMAs {
		v := &p.VMAs[i]
		k := kinds[MemoryKind(p.VMAKind(v))]
		size := v.End - v.Start
		k.VMAs++
		k.Bytes += size
		m.MappedBytes += size
		if v.Shared() {
			m.SharedBytes += size
		}
		if p.Mem == nil {
			if !v.Special() {
				m.UnreadableBytes += size
			}
			continue
		}
		captured, unreadable, err := vmaBytes(p.Mem, v)
		k.CapturedBytes += captured
		m.CapturedBytes += captured
		m.UnreadableBytes += unreadable
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, k := range order {
		if kinds[k].VMAs > 0 {
			m.Kinds = append(m.Kinds, *kinds[k])
		}
	}
	return m, firstErr
}

// vmaBytes returns how many bytes of v the checkpoint holds and can be
// read, and how many it holds (or may hold) that damaged images hide.
func vmaBytes(m *criuimg.Memory, v *criuimg.VMA) (captured, unreadable uint64, err error) {
	err = m.VMAExtents(v, func(e criuimg.Extent) error {
		switch e.Kind {
		case criuimg.Captured:
			captured += e.End - e.Start
		case criuimg.Unreadable:
			unreadable += e.End - e.Start
		}
		return nil
	})
	return captured, unreadable, err
}

// UnknownPidError is returned by Inspect for an Options.Pids entry the
// checkpoint does not have.
type UnknownPidError struct {
	Pid  uint32
	Have []uint32 // the checkpoint's pids
}

func (e *UnknownPidError) Error() string {
	have := make([]string, len(e.Have))
	for i, p := range e.Have {
		have[i] = strconv.FormatUint(uint64(p), 10)
	}
	return fmt.Sprintf("pid %d is not in the checkpoint (it has %s)", e.Pid, strings.Join(have, ", "))
}
