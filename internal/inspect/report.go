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
// microseconds (stats) or RFC 3339 strings (container). Every key below is
// always present, whatever the checkpoint holds: an array with nothing in
// it is [], a string that is unknown or does not apply is "", and an
// object or number that is absent, unknown or does not apply is null
// (marked "or null"). What could not be read is named in "warnings".
//
//	{
//	  "checkpoint": string,            // what was inspected (path)
//	  "arch": "x86_64" | "aarch64" | "unknown",
//	  "images_version": int,           // inventory.img img_version
//	  "container": {                   // or null: no container metadata
//	    "engine": string,              // "Podman", "CRI-O", "containerd", ""
//	    "name", "id", "image", "image_id", "runtime", "hostname": string,
//	    "created", "checkpointed": string,   // RFC 3339, "" if unknown
//	    "checkpointed_from": "config.dump" | "mtime of stats-dump" | "",
//	    "ips": [string],               // from network.status / annotations
//	    "pod", "namespace": string,    // Kubernetes pod and namespace
//	    "command": [string],           // the container's configured argv
//	    "annotations": {string: string},
//	    "image_ref", "log_path": string, // image digest; log path on the host
//	    "networks": [{"network", "interface", "ip", "mac", "gateway": string}],
//	    "bind_mounts": [{"source", "destination", "type", "permissions": string}],
//	    "logs": [{"member": string, "size": int}] // container logs held
//	  },
//	  "dump_stats": {                  // stats-dump; or null if absent
//	    "freezing_time_us", "frozen_time_us", "memdump_time_us",
//	    "memwrite_time_us", "irmap_resolve_us": int,
//	    "pages_scanned", "pages_skipped_parent", "pages_written",
//	    "pages_lazy", "page_pipes", "page_pipe_bufs",
//	    "shpages_scanned", "shpages_skipped_parent", "shpages_written": int
//	  },
//	  "restore_stats": {               // stats-restore; or null if absent
//	    "pages_compared", "pages_skipped_cow", "pages_restored",
//	    "forking_time_us", "restore_time_us": int
//	  },
//	  "processes": [{
//	    "pid", "ppid", "pgid", "sid": int,   // in the checkpoint's pid namespace
//	    "comm": string,                // "" if core-<pid>.img is unreadable
//	    "state": "alive" | "zombie" | "stopped" | "unknown",
//	    "exit_code": int,              // or null; zombies that exited: exit status
//	    "exit_signal": int,            // or null; zombies killed by a signal
//	    "thread_count": int,           // threads in pstree.img
//	    "argv": [string],              // from the argument pages, as /proc/PID/cmdline shows it (a title written over the arguments, setproctitle, is one string up to its NUL)
//	    "argv_truncated": bool,        // argument area longer than read
//	    "env": [string],               // or null: only with --env
//	    "exe": string, "cwd": string, "root": string,
//	    "threads": [{                  // those whose core-<tid>.img was read
//	      "tid": int, "name": string, "pc": "0x...", "sp": "0x...",
//	      "code": "captured" | "sysroot" | "not captured" | "unreadable",
//	      "instruction": string,       // decoded at pc, "" if no code
//	      "syscall": {                 // or null: not in a system call
//	        "nr": int, "name": string, // name "" if unknown
//	        "state": "restart" | "interrupted" | "returned" | "at_entry",
//	        "return": int,             // or null; state "returned" only
//	        "evidence": string,        // how it was decided
//	        "note": string             // for people
//	      }
//	    }],
//	    "memory": {                    // or null: mm-<pid>.img unreadable, zombie
//	      "vmas": int, "mapped_bytes", "captured_bytes", "shared_bytes",
//	      "unreadable_bytes": int,     // captured (or maybe captured) bytes
//	                                   // that damaged images hide
//	      "kinds": [{"kind": "file"|"anon"|"heap"|"stack"|"shared"|"sysv"|"special",
//	                 "vmas": int, "bytes": int, "captured_bytes": int}]
//	    },
//	    "files": [{
//	      "fd": int, "type": string,   // "file", "pipe", "unix", "inet", ...
//	      "id": int,                   // files.img id
//	      "path": string,              // regular files, fifos; else ""
//	      "pipe_id": int,              // pipes and fifos (pipe inode); else 0
//	      "socket": {                  // or null: not a socket
//	        "family", "type", "state", "protocol", "local", "remote": string,
//	        "peer": int, "inode": int
//	      },
//	      "description": string        // one line for people
//	    }],
//	    "warnings": [string]
//	  }],
//	  "mounts": [{"mount_id", "parent_id": int, "mountpoint", "source",
//	              "fstype", "root", "options": string}],
//	  "rootfs_diff": [{"path": string, "size": int,
//	                  "type": "file"|"dir"|"symlink"|"other"|"deleted"|"opaque"}],
//	  "volumes": [{"name": string,    // Podman's volumes/NAME.tar
//	               "size", "entries": int, // the tar's bytes; its entries
//	               "files": [{"path", "size", "type"}], // the first 1000, as rootfs_diff
//	               "truncated": bool}],    // more entries than files lists
//	  "uts": [{"image", "hostname", "domain": string}], // utsns-*.img
//	  "sizes": {                      // or null: the images could not be listed
//	    "checkpoint_bytes", "memory_pages_bytes", "rootfs_diff_bytes": int // -1: none
//	  },
//	  "warnings": [string]
//	}
//
// A process whose images are damaged keeps everything that could be read:
// threads, registers and system calls come from core-<tid>.img (comm,
// state and arch from the main thread's), mappings and the memory summary
// from mm-<pid>.img, the command line, environment and instructions from
// the captured pages (pagemap-*.img and pages-*.img), files from
// fdinfo-*.img, fs-<pid>.img and files.img (Open accepts a damaged
// files.img, which criuimg.Open refuses). Each part that could not be
// read leaves its keys empty ([], "", null) and a warning naming the file,
// the entry and what is wrong with it.
package inspect

import "encoding/json"

// Report is everything inspect found in one checkpoint.
type Report struct {
	Checkpoint    string        `json:"checkpoint"`
	Arch          string        `json:"arch"`
	ImagesVersion uint32        `json:"images_version"`
	Container     *Container    `json:"container"`
	DumpStats     *DumpStats    `json:"dump_stats"`
	RestoreStats  *RestoreStats `json:"restore_stats"`
	Processes     []Process     `json:"processes"`
	Mounts        []Mount       `json:"mounts"`
	RootfsDiff    []DiffFile    `json:"rootfs_diff"`
	// Volumes are Podman's named volumes (volumes/NAME.tar).
	Volumes []Volume `json:"volumes"`
	// UTS are the UTS namespaces' host and domain names (utsns-*.img).
	UTS []UTS `json:"uts"`
	// Sizes are the checkpoint's sizes as checkpointctl shows them.
	Sizes    *Sizes   `json:"sizes"`
	Warnings []string `json:"warnings"`
}

// MarshalJSON writes the report with every key of the schema: nil slices
// as [].
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	r.Processes = nonNil(r.Processes)
	r.Mounts = nonNil(r.Mounts)
	r.RootfsDiff = nonNil(r.RootfsDiff)
	r.Volumes = nonNil(r.Volumes)
	for i := range r.Volumes {
		r.Volumes[i].Files = nonNil(r.Volumes[i].Files)
	}
	r.UTS = nonNil(r.UTS)
	r.Warnings = nonNil(r.Warnings)
	return json.Marshal(plain(r))
}

// nonNil returns s, or an empty slice for nil (JSON [] rather than null).
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Container is the container a checkpoint came from, as the engine's
// config.dump, spec.dump and network.status describe it.
type Container struct {
	Engine       string `json:"engine"`
	Name         string `json:"name"`
	ID           string `json:"id"`
	Image        string `json:"image"`
	ImageID      string `json:"image_id"`
	Runtime      string `json:"runtime"`
	Hostname     string `json:"hostname"`
	Created      string `json:"created"`
	Checkpointed string `json:"checkpointed"`
	// CheckpointedFrom says where Checkpointed comes from: "config.dump",
	// or "mtime of stats-dump" when the engine did not record it (Podman).
	CheckpointedFrom string            `json:"checkpointed_from"`
	IPs              []string          `json:"ips"`
	Pod              string            `json:"pod"`
	Namespace        string            `json:"namespace"`
	Command          []string          `json:"command"`
	Annotations      map[string]string `json:"annotations"`
	// ImageRef is the image's digest reference (config.dump's
	// rootfsImageRef, containerd's status.dump image_ref).
	ImageRef string `json:"image_ref"`
	// LogPath is where the engine kept the container's log on its host.
	LogPath    string      `json:"log_path"`
	Networks   []Network   `json:"networks"`
	BindMounts []BindMount `json:"bind_mounts"`
	// Logs are the container logs the checkpoint holds.
	Logs []LogFile `json:"logs"`
}

// MarshalJSON writes the container with every key of the schema.
func (c Container) MarshalJSON() ([]byte, error) {
	type plain Container
	c.IPs = nonNil(c.IPs)
	c.Command = nonNil(c.Command)
	c.Networks = nonNil(c.Networks)
	c.BindMounts = nonNil(c.BindMounts)
	c.Logs = nonNil(c.Logs)
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	return json.Marshal(plain(c))
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
	ExitCode      *uint32        `json:"exit_code"`
	ExitSignal    *uint32        `json:"exit_signal"`
	ThreadCount   int            `json:"thread_count"`
	Argv          []string       `json:"argv"`
	ArgvTruncated bool           `json:"argv_truncated"`
	Env           []string       `json:"env"` // nil without Options.Env; else non-nil
	Exe           string         `json:"exe"`
	Cwd           string         `json:"cwd"`
	Root          string         `json:"root"`
	Threads       []Thread       `json:"threads"`
	Memory        *MemorySummary `json:"memory"`
	Files         []OpenFile     `json:"files"`
	Warnings      []string       `json:"warnings"`
}

// MarshalJSON writes the process with every key of the schema: nil
// slices as [] (but Env, null without Options.Env).
func (p Process) MarshalJSON() ([]byte, error) {
	type plain Process
	p.Argv = nonNil(p.Argv)
	p.Threads = nonNil(p.Threads)
	p.Files = nonNil(p.Files)
	p.Warnings = nonNil(p.Warnings)
	return json.Marshal(plain(p))
}

// Code sources of a thread's instruction.
const (
	CodeCaptured    = "captured"     // from the checkpoint's pages
	CodeSysroot     = "sysroot"      // from the mapped file under Options.Sysroot
	CodeNotCaptured = "not captured" // neither
	// CodeUnreadable: the pages or mappings that would hold the code are
	// damaged in the images (the process's warnings say how), so whether
	// it was captured, and what it is, cannot be told.
	CodeUnreadable = "unreadable"
)

// Thread is one thread and what it was doing when frozen.
type Thread struct {
	Tid         uint32   `json:"tid"`
	Name        string   `json:"name"`
	PC          Hex      `json:"pc"`
	SP          Hex      `json:"sp"`
	Code        string   `json:"code"`
	Instruction string   `json:"instruction"`
	Syscall     *Syscall `json:"syscall"`
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
	Return   *int64 `json:"return"`
	Evidence string `json:"evidence"`
	Note     string `json:"note"`
}

// Kinds of memory in MemorySummary.
const (
	KindFile    = "file"    // file-backed mappings (private or shared)
	KindAnon    = "anon"    // private anonymous mappings
	KindHeap    = "heap"    // [heap]
	KindStack   = "stack"   // [stack]
	KindShared  = "shared"  // shared anonymous, memfd
	KindSysV    = "sysv"    // SysV shared memory segments (/SYSV<key>)
	KindSpecial = "special" // vdso, vvar, vsyscall, AIO rings, socket maps
)

// MemorySummary sums a process's mappings by kind.
type MemorySummary struct {
	VMAs          int    `json:"vmas"`
	MappedBytes   uint64 `json:"mapped_bytes"`
	CapturedBytes uint64 `json:"captured_bytes"`
	SharedBytes   uint64 `json:"shared_bytes"`
	// UnreadableBytes are bytes of mappings that the checkpoint holds, or
	// may hold, but whose contents cannot be read: captured pages whose
	// data lies beyond the end of a truncated pages file, and ranges a
	// damaged pagemap no longer describes. 0 for sound images.
	UnreadableBytes uint64    `json:"unreadable_bytes"`
	Kinds           []MemKind `json:"kinds"`
}

// MarshalJSON writes the summary with every key of the schema.
func (m MemorySummary) MarshalJSON() ([]byte, error) {
	type plain MemorySummary
	m.Kinds = nonNil(m.Kinds)
	return json.Marshal(plain(m))
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
	Path        string  `json:"path"`
	PipeID      uint32  `json:"pipe_id"`
	Socket      *Socket `json:"socket"`
	Description string  `json:"description"`
}

// Socket describes a socket file descriptor.
type Socket struct {
	Family   string `json:"family"`
	Type     string `json:"type"`
	Protocol string `json:"protocol"`
	State    string `json:"state"`
	Local    string `json:"local"`
	Remote   string `json:"remote"`
	Peer     uint32 `json:"peer"`
	Inode    uint32 `json:"inode"`
}

// Mount is one mount point of mountpoints-<id>.img.
type Mount struct {
	MountID    uint32 `json:"mount_id"`
	ParentID   uint32 `json:"parent_id"`
	Mountpoint string `json:"mountpoint"`
	Source     string `json:"source"`
	FSType     string `json:"fstype"`
	Root       string `json:"root"`
	Options    string `json:"options"`
}

// DiffFile is one entry of rootfs-diff.tar: a file the container changed.
type DiffFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Type string `json:"type"`
}
