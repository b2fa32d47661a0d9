// Package inspect answers an investigator's first questions about a CRIU
// checkpoint without a debugger: which container it was, how the dump
// went, which processes and threads it holds, what each thread was doing
// (the instruction at its PC and the system call it waits in), the full
// command lines and environments, memory, open files, sockets and mounts.
//
// Inspect builds a Report from an opened checkpoint; WriteText prints it as
// tables for people, and the Report marshals to JSON (snake_case fields)
// for programs. Container metadata (config.dump, spec.dump,
// network.status, rootfs-diff.tar) is read from an fs.FS when the caller
// has one; the parsers also take plain []byte.
//
// # JSON schema
//
// The --json output of `ckpt2core inspect` is one Report object. Addresses
// are hexadecimal strings ("0x7f..."); sizes are bytes; times are
// microseconds (stats) or RFC 3339 strings (container). Fields marked
// "omitted" are left out when empty.
//
//	{
//	  "checkpoint": string,            // what was inspected (path)
//	  "arch": "x86_64" | "aarch64" | "unknown",
//	  "images_version": int,           // inventory.img img_version
//	  "container": {                   // omitted without container metadata
//	    "engine": string,              // "Podman", "CRI-O", "containerd", ""
//	    "name", "id", "image", "image_id", "runtime", "hostname": string,
//	    "created", "checkpointed": string,   // RFC 3339, omitted if unknown
//	    "checkpointed_from": "config.dump" | "mtime of stats-dump",
//	    "ips": [string],               // from network.status / annotations
//	    "pod", "namespace": string,    // Kubernetes pod and namespace
//	    "command": [string],           // the container's configured argv
//	    "annotations": {string: string}
//	  },
//	  "dump_stats": {                  // stats-dump; omitted if absent
//	    "freezing_time_us", "frozen_time_us", "memdump_time_us",
//	    "memwrite_time_us", "irmap_resolve_us": int,
//	    "pages_scanned", "pages_skipped_parent", "pages_written",
//	    "pages_lazy", "page_pipes", "page_pipe_bufs",
//	    "shpages_scanned", "shpages_skipped_parent", "shpages_written": int
//	  },
//	  "restore_stats": {               // stats-restore; omitted if absent
//	    "pages_compared", "pages_skipped_cow", "pages_restored",
//	    "forking_time_us", "restore_time_us": int
//	  },
//	  "processes": [{
//	    "pid", "ppid", "pgid", "sid": int,   // in the checkpoint's pid namespace
//	    "comm": string,
//	    "state": "alive" | "zombie" | "stopped" | "dead" | "unknown",
//	    "exit_code": int,              // zombies that exited: exit status
//	    "exit_signal": int,            // zombies killed by a signal
//	    "thread_count": int,
//	    "argv": [string],              // full, from the argument pages
//	    "argv_truncated": bool,        // argument area longer than read
//	    "env": [string],               // only with --env
//	    "exe": string, "cwd": string, "root": string,
//	    "threads": [{
//	      "tid": int, "name": string, "pc": "0x...", "sp": "0x...",
//	      "code": "captured" | "sysroot" | "not captured",
//	      "instruction": string,       // decoded at pc, "" if no code
//	      "syscall": {                 // omitted when not in a system call
//	        "nr": int, "name": string, // name "" if unknown
//	        "state": "restart" | "interrupted" | "returned" | "at_entry",
//	        "return": int,             // state "returned" only
//	        "evidence": string,        // how it was decided
//	        "note": string             // for people
//	      }
//	    }],
//	    "memory": {
//	      "vmas": int, "mapped_bytes", "captured_bytes", "shared_bytes": int,
//	      "kinds": [{"kind": "file"|"anon"|"heap"|"stack"|"shared"|"special",
//	                 "vmas": int, "bytes": int, "captured_bytes": int}]
//	    },
//	    "files": [{
//	      "fd": int, "type": string,   // "file", "pipe", "unix", "inet", ...
//	      "id": int,                   // files.img id
//	      "path": string,              // regular files, fifos
//	      "pipe_id": int,              // pipes and fifos (pipe inode)
//	      "socket": {"family", "type", "state": string, "protocol": string,
//	                 "local", "remote": string, "peer": int, "inode": int},
//	      "description": string        // one line for people
//	    }],
//	    "warnings": [string]
//	  }],
//	  "mounts": [{"mount_id", "parent_id": int, "mountpoint", "source",
//	              "fstype", "root", "options": string}],
//	  "rootfs_diff": [{"path": string, "size": int, "type": "file"|"dir"|"symlink"|"other"}],
//	  "warnings": [string]
//	}
package inspect

// Report is everything inspect found in one checkpoint.
type Report struct {
	Checkpoint    string        `json:"checkpoint"`
	Arch          string        `json:"arch"`
	ImagesVersion uint32        `json:"images_version"`
	Container     *Container    `json:"container,omitempty"`
	DumpStats     *DumpStats    `json:"dump_stats,omitempty"`
	RestoreStats  *RestoreStats `json:"restore_stats,omitempty"`
	Processes     []Process     `json:"processes"`
	Mounts        []Mount       `json:"mounts,omitempty"`
	RootfsDiff    []DiffFile    `json:"rootfs_diff,omitempty"`
	Warnings      []string      `json:"warnings,omitempty"`
}

// Container is the container a checkpoint came from, as the engine's
// config.dump, spec.dump and network.status describe it.
type Container struct {
	Engine       string `json:"engine"`
	Name         string `json:"name,omitempty"`
	ID           string `json:"id,omitempty"`
	Image        string `json:"image,omitempty"`
	ImageID      string `json:"image_id,omitempty"`
	Runtime      string `json:"runtime,omitempty"`
	Hostname     string `json:"hostname,omitempty"`
	Created      string `json:"created,omitempty"`
	Checkpointed string `json:"checkpointed,omitempty"`
	// CheckpointedFrom says where Checkpointed comes from: "config.dump",
	// or "mtime of stats-dump" when the engine did not record it (Podman).
	CheckpointedFrom string            `json:"checkpointed_from,omitempty"`
	IPs              []string          `json:"ips,omitempty"`
	Pod              string            `json:"pod,omitempty"`
	Namespace        string            `json:"namespace,omitempty"`
	Command          []string          `json:"command,omitempty"`
	Annotations      map[string]string `json:"annotations,omitempty"`
}

// DumpStats are CRIU's dump statistics (stats-dump, dump_stats_entry).
// Times are in microseconds.
type DumpStats struct {
	FreezingTimeUS       uint32 `json:"freezing_time_us"`
	FrozenTimeUS         uint32 `json:"frozen_time_us"`
	MemdumpTimeUS        uint32 `json:"memdump_time_us"`
	MemwriteTimeUS       uint32 `json:"memwrite_time_us"`
	IrmapResolveUS       uint32 `json:"irmap_resolve_us"`
	PagesScanned         uint64 `json:"pages_scanned"`
	PagesSkippedParent   uint64 `json:"pages_skipped_parent"`
	PagesWritten         uint64 `json:"pages_written"`
	PagesLazy            uint64 `json:"pages_lazy"`
	PagePipes            uint64 `json:"page_pipes"`
	PagePipeBufs         uint64 `json:"page_pipe_bufs"`
	ShpagesScanned       uint64 `json:"shpages_scanned"`
	ShpagesSkippedParent uint64 `json:"shpages_skipped_parent"`
	ShpagesWritten       uint64 `json:"shpages_written"`
}

// RestoreStats are CRIU's restore statistics (stats-restore), present
// only in a checkpoint directory that was restored from.
type RestoreStats struct {
	PagesCompared   uint64 `json:"pages_compared"`
	PagesSkippedCOW uint64 `json:"pages_skipped_cow"`
	PagesRestored   uint64 `json:"pages_restored"`
	ForkingTimeUS   uint32 `json:"forking_time_us"`
	RestoreTimeUS   uint32 `json:"restore_time_us"`
}

// Process is one process of the tree.
type Process struct {
	Pid           uint32         `json:"pid"`
	PPid          uint32         `json:"ppid"`
	Pgid          uint32         `json:"pgid"`
	Sid           uint32         `json:"sid"`
	Comm          string         `json:"comm"`
	State         string         `json:"state"`
	ExitCode      *uint32        `json:"exit_code,omitempty"`
	ExitSignal    *uint32        `json:"exit_signal,omitempty"`
	ThreadCount   int            `json:"thread_count"`
	Argv          []string       `json:"argv,omitempty"`
	ArgvTruncated bool           `json:"argv_truncated,omitempty"`
	Env           []string       `json:"env,omitempty"`
	Exe           string         `json:"exe,omitempty"`
	Cwd           string         `json:"cwd,omitempty"`
	Root          string         `json:"root,omitempty"`
	Threads       []Thread       `json:"threads,omitempty"`
	Memory        *MemorySummary `json:"memory,omitempty"`
	Files         []OpenFile     `json:"files,omitempty"`
	Warnings      []string       `json:"warnings,omitempty"`
}

// Code sources of a thread's instruction.
const (
	CodeCaptured    = "captured"     // from the checkpoint's pages
	CodeSysroot     = "sysroot"      // from the mapped file under Options.Sysroot
	CodeNotCaptured = "not captured" // neither
)

// Thread is one thread and what it was doing when frozen.
type Thread struct {
	Tid         uint32   `json:"tid"`
	Name        string   `json:"name"`
	PC          Hex      `json:"pc"`
	SP          Hex      `json:"sp"`
	Code        string   `json:"code"`
	Instruction string   `json:"instruction,omitempty"`
	Syscall     *Syscall `json:"syscall,omitempty"`
}

// States of a Syscall.
const (
	// SyscallRestart: the call was interrupted by the checkpoint and
	// rewound (PC at the system call instruction, number and arguments
	// in place): it is restarted on restore.
	SyscallRestart = "restart"
	// SyscallInterrupted: the call was interrupted and cannot be
	// restarted (x86_64: ERESTART_RESTARTBLOCK turned into -EINTR by
	// CRIU): it returns EINTR on restore.
	SyscallInterrupted = "interrupted"
	// SyscallReturned: the call had completed; Return is its result.
	SyscallReturned = "returned"
	// SyscallAtEntry: the thread stood at a system call instruction
	// (arm64, where the images do not say whether it had entered).
	SyscallAtEntry = "at_entry"
)

// Syscall is the system call a thread was stopped in (or at).
type Syscall struct {
	Nr       int64  `json:"nr"`
	Name     string `json:"name"`
	State    string `json:"state"`
	Return   *int64 `json:"return,omitempty"`
	Evidence string `json:"evidence"`
	Note     string `json:"note,omitempty"`
}

// Kinds of memory in MemorySummary.
const (
	KindFile    = "file"    // file-backed mappings (private or shared)
	KindAnon    = "anon"    // private anonymous mappings
	KindHeap    = "heap"    // [heap]
	KindStack   = "stack"   // [stack]
	KindShared  = "shared"  // shared anonymous, memfd, SysV shm
	KindSpecial = "special" // vdso, vvar, vsyscall, AIO rings, socket maps
)

// MemorySummary sums a process's mappings by kind.
type MemorySummary struct {
	VMAs          int       `json:"vmas"`
	MappedBytes   uint64    `json:"mapped_bytes"`
	CapturedBytes uint64    `json:"captured_bytes"`
	SharedBytes   uint64    `json:"shared_bytes"`
	Kinds         []MemKind `json:"kinds"`
}

// MemKind is the total of one kind of mapping.
type MemKind struct {
	Kind          string `json:"kind"`
	VMAs          int    `json:"vmas"`
	Bytes         uint64 `json:"bytes"`
	CapturedBytes uint64 `json:"captured_bytes"`
}

// OpenFile is one file descriptor of a process.
type OpenFile struct {
	FD          uint32  `json:"fd"`
	Type        string  `json:"type"`
	ID          uint32  `json:"id"`
	Path        string  `json:"path,omitempty"`
	PipeID      uint32  `json:"pipe_id,omitempty"`
	Socket      *Socket `json:"socket,omitempty"`
	Description string  `json:"description"`
}

// Socket describes a socket file descriptor.
type Socket struct {
	Family   string `json:"family"`
	Type     string `json:"type"`
	Protocol string `json:"protocol,omitempty"`
	State    string `json:"state,omitempty"`
	Local    string `json:"local,omitempty"`
	Remote   string `json:"remote,omitempty"`
	Peer     uint32 `json:"peer,omitempty"`
	Inode    uint32 `json:"inode,omitempty"`
}

// Mount is one mount point of mountpoints-<id>.img.
type Mount struct {
	MountID    uint32 `json:"mount_id"`
	ParentID   uint32 `json:"parent_id"`
	Mountpoint string `json:"mountpoint"`
	Source     string `json:"source"`
	FSType     string `json:"fstype"`
	Root       string `json:"root"`
	Options    string `json:"options,omitempty"`
}

// DiffFile is one entry of rootfs-diff.tar: a file the container changed.
type DiffFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Type string `json:"type"`
}
