package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
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
	// Meta holds the files a container engine writes around the images
	// (config.dump, spec.dump, network.status, stats-dump,
	// rootfs-diff.tar), or is nil.
	Meta fs.FS
	// Sysroot, if set, is a directory mirroring the checkpointed system's
	// files (a sysroot or the container's root file system): code that the
	// checkpoint did not capture is read from the mapped file there. If it
	// cannot be opened, Inspect fails.
	Sysroot string
	// Name is how the checkpoint is called in the report (a path).
	Name string
}

// Inspect builds the report of an opened checkpoint. Problems with one
// process or one image become warnings in the report, which keeps
// everything else; an error is returned only when nothing can be reported
// (an unknown pid in Options.Pids, a Sysroot that cannot be opened).
func Inspect(ck *criuimg.Checkpoint, opts Options) (*Report, error) {
	rep := &Report{Checkpoint: opts.Name, Arch: criuimg.ArchUnknown.String(), ImagesVersion: ck.Inventory.GetImgVersion()}
	if rep.Checkpoint == "" {
		rep.Checkpoint = ck.Src.String()
	}
	warn := func(format string, a ...any) { rep.Warnings = append(rep.Warnings, fmt.Sprintf(format, a...)) }
	for _, p := range opts.Pids {
		if _, ok := ck.Proc(p); !ok {
			return nil, fmt.Errorf("pid %d is not in the checkpoint (it has %v)", p, ck.Pids())
		}
	}

	// Container metadata and statistics.
	readMeta := func(name string) []byte {
		b, err := readOptional(ck.Src, opts.Meta, name)
		if err != nil {
			warn("%v", err)
		}
		return b
	}
	config, spec, network := readMeta(ConfigDumpFile), readMeta(SpecDumpFile), readMeta(NetworkStatusFile)
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
	if b := readMeta(StatsDumpFile); b != nil {
		ds, _, err := ParseStats(StatsDumpFile, b)
		if err != nil {
			warn("%v", err)
		}
		rep.DumpStats = ds
	}
	if b := readMeta(StatsRestoreFile); b != nil {
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

	var sysroot *os.Root
	if opts.Sysroot != "" {
		r, err := os.OpenRoot(opts.Sysroot)
		if err != nil {
			return nil, fmt.Errorf("sysroot: %w", err)
		}
		defer r.Close()
		sysroot = r
	}

	var files fileTable
	if w, ok := ck.Src.(*withoutFiles); ok {
		// files.img is damaged (Open): what can be read of it.
		files, _ = loadFiles(w.Source)
		warn("%s", damagedFilesWarning(ck, len(files)))
	} else {
		var err error
		if files, err = loadFiles(ck.Src); err != nil {
			warn("files.img: %v", err)
		}
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
		pr, arch := inspectProcess(ck, info, files, opts, sysroot)
		if arch != criuimg.ArchUnknown {
			rep.Arch = arch.String()
		}
		rep.Processes = append(rep.Processes, pr)
	}
	return rep, nil
}

// readOptional returns the named file from the image source or, failing
// that, from meta; nil with no error if neither has it.
func readOptional(src criuimg.Source, meta fs.FS, name string) ([]byte, error) {
	if f, err := src.Open(name); err == nil {
		defer f.Close()
		if f.Size() > MaxMetaSize {
			return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", name, f.Size(), MaxMetaSize)
		}
		b := make([]byte, f.Size())
		if _, err := f.ReadAt(b, 0); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return b, nil
	}
	if meta == nil {
		return nil, nil
	}
	st, err := fs.Stat(meta, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if st.Size() > MaxMetaSize {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", name, st.Size(), MaxMetaSize)
	}
	b, err := fs.ReadFile(meta, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

// MaxMetaSize bounds a metadata file (config.dump, spec.dump,
// network.status, stats).
const MaxMetaSize = 16 << 20

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

// inspectProcess reports one process. What cannot be read becomes its
// warnings; the rest is reported (see loadDamaged).
func inspectProcess(ck *criuimg.Checkpoint, info criuimg.ProcInfo, files fileTable, opts Options, sysroot *os.Root) (Process, criuimg.Arch) {
	pr := Process{Pid: info.Pid, PPid: info.PPid, Pgid: info.Pgid, Sid: info.Sid, State: "unknown", ThreadCount: len(info.Threads)}
	warn := func(format string, a ...any) { pr.Warnings = append(pr.Warnings, fmt.Sprintf(format, a...)) }
	var p *proc
	lp, err := ck.LoadProcess(info.Pid)
	switch {
	case lp != nil && err == nil:
		p = loadedProc(lp)
		if _, ok := ck.Src.(*withoutFiles); ok {
			nameFiles(p, files)
		}
	case lp != nil: // a zombie: task facts only
		lp.Close()
		p = &proc{pid: info.Pid, arch: lp.Arch, task: lp.Task}
	default:
		// A damaged image: read what can be read, image by image.
		p = loadDamaged(ck, info, files)
		if len(p.warnings) == 0 {
			p.warnings = []string{err.Error()} // (loadDamaged found nothing wrong)
		}
	}
	defer p.Close()
	pr.Warnings = append(pr.Warnings, p.warnings...)
	if p.task != nil && p.task.GetTc() != nil {
		pr.Comm, pr.State = p.task.GetTc().GetComm(), stateName(p.task.GetTc().GetTaskState())
	}
	if p.task != nil && zombie(p.task) {
		// task_core.exit_code is the wait status.
		ec := p.task.GetTc().GetExitCode()
		if sig := ec & 0x7f; sig != 0 {
			pr.ExitSignal = &sig
		} else {
			code := ec >> 8 & 0xff
			pr.ExitCode = &code
		}
		if opts.Env {
			pr.Env = []string{}
		}
		return pr, p.arch
	}
	pr.Exe = p.exe

	if p.mm != nil && p.mem != nil {
		argv, trunc, err := readStrings(p, p.mm.GetMmArgStart(), p.mm.GetMmArgEnd())
		if err != nil {
			warn("command line: %v", err)
		}
		pr.Argv, pr.ArgvTruncated = argv, trunc
	}
	if opts.Env {
		pr.Env = []string{}
		if p.mm != nil && p.mem != nil {
			env, trunc, err := readStrings(p, p.mm.GetMmEnvStart(), p.mm.GetMmEnvEnd())
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

	for i := range p.threads {
		th, err := threadReport(p, &p.threads[i], sysroot)
		if err != nil {
			warn("thread %d: %v", th.Tid, err)
		}
		pr.Threads = append(pr.Threads, th)
	}

	if p.mm != nil {
		var sps []uint64
		for _, t := range pr.Threads {
			sps = append(sps, uint64(t.SP))
		}
		mem, err := memorySummary(p, sps)
		if err != nil {
			warn("memory: %v", err)
		}
		pr.Memory = mem
	}

	if id, idsErr, err := filesID(ck.Src, p.task, info.Pid); err != nil {
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
	return pr, p.arch
}

// readStrings reads the NUL-separated strings in [start, end) of p's
// memory (the argument or environment area), at most MaxArgBytes. It
// returns what it could read and whether the area was longer.
func readStrings(p *proc, start, end uint64) ([]string, bool, error) {
	if end <= start {
		return nil, false, nil
	}
	n := end - start
	trunc := false
	if n > MaxArgBytes {
		n, trunc = MaxArgBytes, true
	}
	b := make([]byte, n)
	k, err := p.mem.ReadAt(b, int64(start))
	b = b[:k]
	if err != nil {
		err = fmt.Errorf("[%#x-%#x): read %d of %d bytes: %w", start, end, k, n, err)
		trunc = true
	}
	return splitNUL(b), trunc, err
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

// mapGrowsdown is MAP_GROWSDOWN in vma_entry.flags (the main stack).
const mapGrowsdown = 0x100

// memoryKind classifies a mapping for MemorySummary. stack says whether
// the mapping holds a thread's stack pointer or the initial stack.
func memoryKind(v *criuimg.VMA, stack bool) string {
	switch {
	case v.Status&(criuimg.VMAAreaVDSO|criuimg.VMAAreaVVAR|criuimg.VMAAreaVsyscall|criuimg.VMAAreaAIORing|criuimg.VMAAreaSocket) != 0:
		return KindSpecial
	case v.Status&criuimg.VMAAreaHeap != 0:
		return KindHeap
	case v.Status&criuimg.VMAAreaStack != 0 || v.Flags&mapGrowsdown != 0 || stack:
		return KindStack
	case v.Shmem != 0 || v.Status&(criuimg.VMAAnonShared|criuimg.VMAAreaSysVIPC|criuimg.VMAAreaMemfd) != 0:
		return KindShared
	case v.Path != "":
		return KindFile
	}
	return KindAnon
}

// mapShared is MAP_SHARED in vma_entry.flags.
const mapShared = 0x01

// memorySummary sums p's mappings by kind. sps are the threads' stack
// pointers: the anonymous mappings holding them are stacks. Without a
// memory view (no page size) every byte of the mappings but the kernel's
// special ones is counted unreadable.
func memorySummary(p *proc, sps []uint64) (*MemorySummary, error) {
	order := []string{KindFile, KindAnon, KindHeap, KindStack, KindShared, KindSpecial}
	kinds := map[string]*MemKind{}
	for _, k := range order {
		kinds[k] = &MemKind{Kind: k}
	}
	m := &MemorySummary{VMAs: len(p.vmas)}
	var firstErr error
	startStack := p.mm.GetMmStartStack()
	for i := range p.vmas {
		v := &p.vmas[i]
		stack := v.Start <= startStack && startStack < v.End
		for _, sp := range sps {
			stack = stack || (v.Start <= sp && sp < v.End)
		}
		k := kinds[memoryKind(v, stack && v.Path == "" && v.Shmem == 0)]
		size := v.End - v.Start
		k.VMAs++
		k.Bytes += size
		m.MappedBytes += size
		if v.Flags&mapShared != 0 || v.Shmem != 0 {
			m.SharedBytes += size
		}
		if p.mem == nil {
			if !v.Special() {
				m.UnreadableBytes += size
			}
			continue
		}
		captured, unreadable, err := p.mem.vmaBytes(v)
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
