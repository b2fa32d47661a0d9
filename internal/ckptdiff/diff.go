// Package ckptdiff compares two checkpoints of one container (or of any
// two process trees): the container, the processes matched by pid and then
// by executable and command line, their environments, credentials, threads,
// open files and sockets, the mounts, the files of the container's rw layer
// (rootfs-diff.tar, by content hash, and deleted.files), and the memory of
// the processes in both: mappings added, removed, grown, shrunk or with
// another protection, and, for the mappings in both, the captured pages
// compared by content, with the printable strings that are new in B; and
// the findings of package triage that B has and A does not.
//
// Diff returns plain data (a Result); wording is the caller's. Memory is
// compared by streaming: the captured pages of a process in A are hashed,
// one 8-byte hash per page, then those of B are read and compared; only a
// page whose hash differs is read again from A to count the bytes that
// changed and to find the strings that are new. Memory use grows with the
// mappings and pages of one process pair (8 bytes per captured page), never
// with the bytes of pages. With Checkpoint.Hashes on both sides (the hashes
// of the pages files, computed as a compressed archive streams) no page
// is read to be hashed: Plan lists the pages Diff will read, those whose
// hashes differ, so that a caller keeps only those.
package ckptdiff

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

// Kinds of change, in every list of the Result.
const (
	Added     = "added"
	Removed   = "removed"
	Changed   = "changed"
	Unchanged = "unchanged" // only with Options.ShowUnchanged
	// Kinds of mapping changes (Mapping.Change), besides Added and Removed.
	Grown      = "grown"
	Shrunk     = "shrunk"
	Protection = "protection"
	// Deleted marks a path of deleted.files (the engine's list of files
	// the container deleted from its image) that A did not list.
	Deleted = "deleted"
)

// Checkpoint is one side of a comparison, decoded.
type Checkpoint struct {
	// Report is inspect's report, built with Options.Env (environments
	// are compared only where both sides have them).
	Report *inspect.Report
	// Images are the CRIU images the report was built from (memory and
	// credentials are read from them).
	Images *criuimg.Checkpoint
	// RootfsDiff opens rootfs-diff.tar; nil if the checkpoint has none.
	RootfsDiff func() (io.ReadCloser, error)
	// DeletedFiles is the engine's deleted.files list (nil if none).
	DeletedFiles []string
	// Spec is what the container's spec asks, for triage (nil if unknown).
	Spec *inspect.SpecSecurity
	// Hashes, if set on both sides, are the hashes of the pages files
	// (computed as they streamed): memory is compared by them, and only
	// the pages that Plan lists are read.
	Hashes *PageHashes
}

// Options tune Diff.
type Options struct {
	// Pids limits the comparison to these processes (their pid in A or
	// in B); all if empty.
	Pids []uint32
	// Strings is how many new strings to keep per process (the longest);
	// 0 keeps none.
	Strings int
	// MinString is the shortest printable run counted as a string
	// (default 6).
	MinString int
	// ShowUnchanged also lists what did not change (Unchanged entries).
	ShowUnchanged bool
}

// Result is everything that differs between A and B.
type Result struct {
	// A and B name the checkpoints (inspect's Report.Checkpoint).
	A         string         `json:"before"`
	B         string         `json:"after"`
	Container *ContainerDiff `json:"container"`
	Processes []ProcessDiff  `json:"processes"`
	Mounts    []MountChange  `json:"mounts"`
	Rootfs    []RootfsChange `json:"rootfs"`
	Memfds    []MemfdChange  `json:"memfds"`
	Ghosts    []GhostChange  `json:"ghost_files"`
	// Findings are triage's findings in B that A does not have (same
	// rule, case, subject and process executable and command line).
	Findings   []triage.Finding `json:"findings"`
	Summary    Summary          `json:"summary"`
	Warnings   []string         `json:"warnings"`
	showUnchgd bool
}

// Differs reports whether anything differs between A and B.
func (r *Result) Differs() bool { return r.Summary.Total() > 0 }

// Summary counts the differences.
type Summary struct {
	ContainerChanged bool   `json:"container_changed"`
	ProcessesAdded   int    `json:"processes_added"`
	ProcessesRemoved int    `json:"processes_removed"`
	ProcessesChanged int    `json:"processes_changed"`
	FilesAdded       int    `json:"files_added"`
	FilesRemoved     int    `json:"files_removed"`
	FilesChanged     int    `json:"files_changed"`
	MountsChanged    int    `json:"mounts_changed"`
	RootfsChanged    int    `json:"rootfs_changed"`
	MemfdsAdded      int    `json:"memfds_added"`
	GhostsAdded      int    `json:"ghost_files_added"`
	FindingsNew      int    `json:"findings_new"`
	MappingsChanged  int    `json:"mappings_changed"`
	PagesChanged     uint64 `json:"pages_changed"`
	BytesChanged     uint64 `json:"bytes_changed"`
	PagesNew         uint64 `json:"pages_newly_captured"`
	NewStrings       int    `json:"new_strings"`
}

// Total is the number of differences (0: A and B are the same).
func (s Summary) Total() int {
	n := s.ProcessesAdded + s.ProcessesRemoved + s.ProcessesChanged + s.MountsChanged + s.RootfsChanged + s.MemfdsAdded + s.GhostsAdded + s.FindingsNew
	if s.ContainerChanged {
		n++
	}
	return n
}

// Field is one value that differs (or, Unchanged, does not).
type Field struct {
	Name   string `json:"name"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// addField appends to fields the field name when x (A's) and y (B's)
// differ.
func addField(fields *[]Field, name, x, y string) {
	if x != y {
		*fields = append(*fields, Field{Name: name, Before: x, After: y})
	}
}

// fieldsChange is the change of an entry both checkpoints have, whose
// differing fields are fields: Changed, else Unchanged; keep is false for
// an unchanged entry not to be shown.
func fieldsChange(fields []Field, showUnchanged bool) (change string, keep bool) {
	switch {
	case len(fields) > 0:
		return Changed, true
	case showUnchanged:
		return Unchanged, true
	}
	return "", false
}

// ContainerDiff compares the containers.
type ContainerDiff struct {
	// Same says whether A and B are checkpoints of one container (same
	// id, or, without ids, same name and image).
	Same bool `json:"same"`
	// CheckpointedA and CheckpointedB are the checkpoint times (RFC
	// 3339, "" if unknown).
	CheckpointedA string `json:"checkpointed_before"`
	CheckpointedB string `json:"checkpointed_after"`
	// Changed lists the fields that differ (engine, name, id, image,
	// image_id, runtime, hostname, ips, command).
	Changed []Field `json:"changed"`
}

// ProcessDiff is one process of A, of B, or of both.
type ProcessDiff struct {
	Change string `json:"change"`
	// Pid is B's pid (A's for a removed process); PidBefore is A's pid
	// when the process was matched by executable and command line under
	// another pid, else 0.
	Pid       uint32   `json:"pid"`
	PidBefore uint32   `json:"pid_before"`
	PPid      uint32   `json:"ppid"`
	Comm      string   `json:"comm"`
	Exe       string   `json:"exe"`
	Argv      []string `json:"argv"`
	// MatchedBy is "pid" or "exe+argv" for a process in both, else "".
	MatchedBy string `json:"matched_by"`
	// Fields lists what changed: ppid, comm, exe, argv, state,
	// thread_count, cwd, root, uid, gid, euid, egid, ... (credentials
	// from core-<pid>.img).
	Fields  []Field        `json:"fields"`
	Env     []EnvChange    `json:"env"`
	Threads []ThreadChange `json:"threads"`
	Files   []FileChange   `json:"files"`
	Memory  *MemoryDiff    `json:"memory"`
	// Warnings are problems met comparing this process.
	Warnings []string `json:"warnings"`
}

// EnvChange is one environment variable added, removed or changed.
type EnvChange struct {
	Change string `json:"change"`
	Name   string `json:"name"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// ThreadChange is one thread added, removed, or whose system call changed.
type ThreadChange struct {
	Change        string `json:"change"`
	Tid           uint32 `json:"tid"`
	Name          string `json:"name"`
	Syscall       string `json:"syscall"`        // B's ("" if none)
	SyscallBefore string `json:"syscall_before"` // A's, Changed only
}

// FileChange is one open file or socket added, removed or changed (a
// socket whose state changed).
type FileChange struct {
	Change string          `json:"change"`
	FD     uint32          `json:"fd"`
	Type   string          `json:"type"`
	Path   string          `json:"path"`
	Socket *inspect.Socket `json:"socket"`
	// Description is inspect's line for the file (B's, A's if removed);
	// Before is A's for a changed one.
	Description string `json:"description"`
	Before      string `json:"before"`
}

// MountChange is one mount point added, removed or changed.
type MountChange struct {
	Change     string  `json:"change"`
	Mountpoint string  `json:"mountpoint"`
	FSType     string  `json:"fstype"`
	Source     string  `json:"source"`
	Fields     []Field `json:"fields"`
}

// RootfsChange is one file of the rw layer added, removed, changed
// (other type, size, mode, link target or content), or newly deleted.
type RootfsChange struct {
	Change string `json:"change"`
	Path   string `json:"path"`
	Type   string `json:"type"` // "file", "dir", "symlink", "other"; "" for Deleted
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // regular files; B's (A's if removed)
	// Fields lists what changed (type, size, mode, link, sha256).
	Fields []Field `json:"fields"`
}

// MemfdChange is a memfd that B's processes hold (open or mapped) and A's
// do not.
type MemfdChange struct {
	Change string   `json:"change"`
	Name   string   `json:"name"`
	Pids   []uint32 `json:"pids"`
	Where  []string `json:"where"` // "fd 3 of pid 42", "mapping 0x...-0x... of pid 44"
}

// Diff compares the checkpoints a and b.
func Diff(a, b *Checkpoint, opts Options) (*Result, error) {
	if opts.MinString <= 0 {
		opts.MinString = 6
	}
	r := &Result{A: a.Report.Checkpoint, B: b.Report.Checkpoint, showUnchgd: opts.ShowUnchanged}
	for _, p := range opts.Pids {
		if !hasPid(a.Report, p) && !hasPid(b.Report, p) {
			return nil, &PidError{Pid: p}
		}
	}
	r.Container = diffContainer(a.Report.Container, b.Report.Container)
	if r.Container != nil && len(r.Container.Changed) > 0 {
		r.Summary.ContainerChanged = true
	}
	r.diffProcesses(a, b, opts)
	if len(opts.Pids) == 0 {
		r.Mounts = diffMounts(a.Report.Mounts, b.Report.Mounts, opts.ShowUnchanged)
		r.Summary.MountsChanged = countChanges(r.Mounts, func(m MountChange) string { return m.Change })
		rs, warns := diffRootfs(a, b, opts.ShowUnchanged)
		r.Rootfs = rs
		r.Warnings = append(r.Warnings, warns...)
		r.Summary.RootfsChanged = countChanges(r.Rootfs, func(c RootfsChange) string { return c.Change })
	}
	mb, uses := memfds(b, opts.Pids)
	ma, _ := memfds(a, opts.Pids)
	r.Memfds = diffMemfds(ma, mb)
	r.Summary.MemfdsAdded = len(r.Memfds)
	gs, warns := diffGhosts(a, b, uses, opts.Pids)
	r.Ghosts = gs
	r.Warnings = append(r.Warnings, warns...)
	r.Summary.GhostsAdded = len(r.Ghosts)
	fs, warns := newFindings(a, b, opts.Pids)
	r.Findings = fs
	r.Warnings = append(r.Warnings, warns...)
	r.Summary.FindingsNew = len(r.Findings)
	return r, nil
}

// PidError says that a pid asked for is in neither checkpoint.
type PidError struct{ Pid uint32 }

func (e *PidError) Error() string { return fmt.Sprintf("pid %d is in neither checkpoint", e.Pid) }

func hasPid(r *inspect.Report, pid uint32) bool {
	for _, p := range r.Processes {
		if p.Pid == pid {
			return true
		}
	}
	return false
}

func countChanges[T any](s []T, change func(T) string) int {
	n := 0
	for _, x := range s {
		if change(x) != Unchanged {
			n++
		}
	}
	return n
}

// diffContainer compares the containers' identities (nil if neither
// checkpoint has container metadata).
func diffContainer(a, b *inspect.Container) *ContainerDiff {
	if a == nil && b == nil {
		return nil
	}
	var ca, cb inspect.Container
	if a != nil {
		ca = *a
	}
	if b != nil {
		cb = *b
	}
	d := &ContainerDiff{CheckpointedA: ca.Checkpointed, CheckpointedB: cb.Checkpointed}
	add := func(name, x, y string) { addField(&d.Changed, name, x, y) }
	add("engine", ca.Engine, cb.Engine)
	add("name", ca.Name, cb.Name)
	add("id", ca.ID, cb.ID)
	add("image", ca.Image, cb.Image)
	add("image_id", ca.ImageID, cb.ImageID)
	add("runtime", ca.Runtime, cb.Runtime)
	add("hostname", ca.Hostname, cb.Hostname)
	add("pod", ca.Pod, cb.Pod)
	add("namespace", ca.Namespace, cb.Namespace)
	add("ips", strings.Join(ca.IPs, " "), strings.Join(cb.IPs, " "))
	add("command", inspect.ShellQuote(ca.Command), inspect.ShellQuote(cb.Command))
	if a != nil && b != nil {
		if ca.ID != "" || cb.ID != "" {
			d.Same = ca.ID == cb.ID
		} else {
			d.Same = ca.Name == cb.Name && ca.Image == cb.Image
		}
	}
	return d
}

// pair is a process of A matched with one of B (either may be nil).
type pair struct {
	a, b *inspect.Process
	by   string
}

// matchProcesses pairs the processes by pid, then the rest by executable
// and command line (in pid order), and returns the pairs sorted by pid.
func matchProcesses(as, bs []inspect.Process) []pair {
	bByPid := map[uint32]*inspect.Process{}
	for i := range bs {
		bByPid[bs[i].Pid] = &bs[i]
	}
	used := map[*inspect.Process]bool{}
	var pairs []pair
	var restA []*inspect.Process
	for i := range as {
		if pb, ok := bByPid[as[i].Pid]; ok {
			pairs = append(pairs, pair{&as[i], pb, "pid"})
			used[pb] = true
		} else {
			restA = append(restA, &as[i])
		}
	}
	key := func(p *inspect.Process) string { return p.Exe + "\x00" + strings.Join(p.Argv, "\x00") }
	byKey := map[string][]*inspect.Process{} // B's unmatched, in pid order
	for i := range bs {
		if pb := &bs[i]; !used[pb] && pb.Exe != "" {
			byKey[key(pb)] = append(byKey[key(pb)], pb)
		}
	}
	for _, pa := range restA {
		var match *inspect.Process
		if c := byKey[key(pa)]; len(c) > 0 && pa.Exe != "" {
			match, byKey[key(pa)] = c[0], c[1:]
		}
		if match != nil {
			used[match] = true
			pairs = append(pairs, pair{pa, match, "exe+argv"})
		} else {
			pairs = append(pairs, pair{a: pa})
		}
	}
	for i := range bs {
		if !used[&bs[i]] {
			pairs = append(pairs, pair{b: &bs[i]})
		}
	}
	pid := func(p pair) uint32 {
		if p.b != nil {
			return p.b.Pid
		}
		return p.a.Pid
	}
	sort.SliceStable(pairs, func(i, j int) bool { return pid(pairs[i]) < pid(pairs[j]) })
	return pairs
}

// Plan returns the bytes of the pages files of a and of b that Diff
// reads to compare their memory with opts, when both have Hashes: the
// pages whose hashes differ (or are not known) and those only B
// captured. A caller that streams a compressed archive keeps those (with
// what inspect and triage read) and drops the rest. It reads no pages.
func Plan(a, b *Checkpoint, opts Options) (ra, rb Reads, err error) {
	for _, p := range opts.Pids {
		if !hasPid(a.Report, p) && !hasPid(b.Report, p) {
			return nil, nil, &PidError{Pid: p}
		}
	}
	plan := [2]Reads{{}, {}}
	if a.Hashes != nil && b.Hashes != nil {
		r := &Result{showUnchgd: opts.ShowUnchanged}
		r.compareProcesses(a, b, opts, &plan)
	}
	return plan[0], plan[1], nil
}

func (r *Result) diffProcesses(a, b *Checkpoint, opts Options) {
	r.compareProcesses(a, b, opts, nil)
}

// compareProcesses is diffProcesses; with plan, the memory comparison
// only records what it would read.
func (r *Result) compareProcesses(a, b *Checkpoint, opts Options, plan *[2]Reads) {
	mc := newMemComparer(opts)
	mc.ha, mc.hb, mc.plan = a.Hashes, b.Hashes, plan
	for _, pr := range matchProcesses(a.Report.Processes, b.Report.Processes) {
		if len(opts.Pids) > 0 && !(pr.a != nil && slices.Contains(opts.Pids, pr.a.Pid) || pr.b != nil && slices.Contains(opts.Pids, pr.b.Pid)) {
			continue
		}
		var d ProcessDiff
		switch {
		case pr.a == nil:
			d = onlyIn(pr.b, Added)
			r.Summary.ProcessesAdded++
		case pr.b == nil:
			d = onlyIn(pr.a, Removed)
			r.Summary.ProcessesRemoved++
		default:
			d = r.diffProcess(a, b, pr, mc)
			if d.Change == Unchanged && !opts.ShowUnchanged {
				continue
			}
			if d.Change == Changed {
				r.Summary.ProcessesChanged++
			}
		}
		for _, f := range d.Files {
			switch f.Change {
			case Added:
				r.Summary.FilesAdded++
			case Removed:
				r.Summary.FilesRemoved++
			case Changed:
				r.Summary.FilesChanged++
			}
		}
		if m := d.Memory; m != nil {
			r.Summary.MappingsChanged += countChanges(m.Mappings, func(x MappingChange) string { return x.Change })
			r.Summary.PagesChanged += m.PagesChanged
			r.Summary.BytesChanged += m.BytesChanged
			r.Summary.PagesNew += m.PagesNewlyCaptured
			r.Summary.NewStrings += m.NewStringsTotal
		}
		r.Processes = append(r.Processes, d)
	}
}

// onlyIn describes a process that only one side has: everything it holds
// is added (or removed).
func onlyIn(p *inspect.Process, change string) ProcessDiff {
	d := ProcessDiff{Change: change, Pid: p.Pid, PPid: p.PPid, Comm: p.Comm, Exe: p.Exe, Argv: p.Argv}
	for _, t := range p.Threads {
		d.Threads = append(d.Threads, ThreadChange{Change: change, Tid: t.Tid, Name: t.Name, Syscall: syscallName(t.Syscall)})
	}
	for _, f := range p.Files {
		d.Files = append(d.Files, fileChange(change, f))
	}
	if p.Memory != nil {
		d.Memory = &MemoryDiff{VMAs: p.Memory.VMAs, CapturedBytes: p.Memory.CapturedBytes}
	}
	return d
}

func syscallName(s *inspect.Syscall) string {
	switch {
	case s == nil:
		return ""
	case s.Name != "":
		return s.Name
	}
	return fmt.Sprintf("syscall %d", s.Nr)
}

func fileChange(change string, f inspect.OpenFile) FileChange {
	return FileChange{Change: change, FD: f.FD, Type: f.Type, Path: f.Path, Socket: f.Socket, Description: f.Description}
}

// diffProcess compares a process of A and its match in B.
func (r *Result) diffProcess(a, b *Checkpoint, pr pair, mc *memComparer) ProcessDiff {
	pa, pb := pr.a, pr.b
	d := ProcessDiff{Change: Unchanged, Pid: pb.Pid, PPid: pb.PPid, Comm: pb.Comm, Exe: pb.Exe, Argv: pb.Argv, MatchedBy: pr.by}
	if pa.Pid != pb.Pid {
		d.PidBefore = pa.Pid
	}
	add := func(name, x, y string) { addField(&d.Fields, name, x, y) }
	add("ppid", fmt.Sprint(pa.PPid), fmt.Sprint(pb.PPid))
	add("comm", pa.Comm, pb.Comm)
	add("exe", pa.Exe, pb.Exe)
	add("argv", inspect.ShellQuote(pa.Argv), inspect.ShellQuote(pb.Argv))
	add("state", pa.State, pb.State)
	add("thread_count", fmt.Sprint(pa.ThreadCount), fmt.Sprint(pb.ThreadCount))
	add("cwd", pa.Cwd, pb.Cwd)
	add("root", pa.Root, pb.Root)

	procA, errsA := a.Images.SalvageProcess(pa.Pid)
	procB, errsB := b.Images.SalvageProcess(pb.Pid)
	for _, e := range errsA {
		d.Warnings = append(d.Warnings, fmt.Sprintf("A: %v", e))
	}
	for _, e := range errsB {
		d.Warnings = append(d.Warnings, fmt.Sprintf("B: %v", e))
	}
	if procA != nil {
		defer procA.Close()
	}
	if procB != nil {
		defer procB.Close()
	}
	ca, errA := credsOf(procA)
	cb, errB := credsOf(procB)
	if errA != nil {
		d.Warnings = append(d.Warnings, fmt.Sprintf("A: credentials: %v", errA))
	}
	if errB != nil {
		d.Warnings = append(d.Warnings, fmt.Sprintf("B: credentials: %v", errB))
	}
	for _, f := range credFields {
		if ca != nil && cb != nil {
			add(f.name, f.get(ca), f.get(cb))
		}
	}

	if pa.Env != nil && pb.Env != nil {
		d.Env = diffEnv(pa.Env, pb.Env)
	}
	d.Threads = diffThreads(pa.Threads, pb.Threads, r.showUnchgd)
	d.Files = diffFiles(pa.Files, pb.Files, r.showUnchgd)

	if procA != nil && procB != nil && procA.MM != nil && procB.MM != nil {
		m, err := mc.compare(procA, procB, pa.Exe != pb.Exe)
		if err != nil {
			d.Warnings = append(d.Warnings, fmt.Sprintf("memory: %v", err))
		}
		d.Memory = m
	}
	if len(d.Fields) > 0 || len(d.Env) > 0 || countChanges(d.Threads, func(t ThreadChange) string { return t.Change }) > 0 ||
		countChanges(d.Files, func(f FileChange) string { return f.Change }) > 0 || d.Memory.differs() {
		d.Change = Changed
	}
	return d
}

// diffEnv compares two environments (NAME=value strings).
func diffEnv(a, b []string) []EnvChange {
	split := func(env []string) (map[string]string, []string) {
		m := map[string]string{}
		var order []string
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			if _, dup := m[k]; !dup {
				order = append(order, k)
			}
			m[k] = v
		}
		return m, order
	}
	ma, oa := split(a)
	mb, ob := split(b)
	var out []EnvChange
	for _, k := range ob {
		va, ok := ma[k]
		switch {
		case !ok:
			out = append(out, EnvChange{Change: Added, Name: k, After: mb[k]})
		case va != mb[k]:
			out = append(out, EnvChange{Change: Changed, Name: k, Before: va, After: mb[k]})
		}
	}
	for _, k := range oa {
		if _, ok := mb[k]; !ok {
			out = append(out, EnvChange{Change: Removed, Name: k, Before: ma[k]})
		}
	}
	return out
}

// diffThreads compares threads by tid.
func diffThreads(a, b []inspect.Thread, showUnchanged bool) []ThreadChange {
	byTid := map[uint32]*inspect.Thread{}
	for i := range a {
		byTid[a[i].Tid] = &a[i]
	}
	seen := map[uint32]bool{}
	var out []ThreadChange
	for _, t := range b {
		seen[t.Tid] = true
		ta, ok := byTid[t.Tid]
		tc := ThreadChange{Tid: t.Tid, Name: t.Name, Syscall: syscallName(t.Syscall)}
		switch {
		case !ok:
			tc.Change = Added
		case syscallName(ta.Syscall) != tc.Syscall:
			tc.Change, tc.SyscallBefore = Changed, syscallName(ta.Syscall)
		case showUnchanged:
			tc.Change = Unchanged
		default:
			continue
		}
		out = append(out, tc)
	}
	for _, t := range a {
		if !seen[t.Tid] {
			out = append(out, ThreadChange{Change: Removed, Tid: t.Tid, Name: t.Name, Syscall: syscallName(t.Syscall)})
		}
	}
	return out
}

// fileKey identifies an open file across checkpoints: descriptor, type,
// path, pipe and socket endpoints (not its state, nor files.img ids,
// which CRIU numbers afresh in every dump).
func fileKey(f inspect.OpenFile) string {
	k := fmt.Sprintf("%d\x00%s\x00%s\x00%d", f.FD, f.Type, f.Path, f.PipeID)
	if s := f.Socket; s != nil {
		k += "\x00" + s.Family + "\x00" + s.Type + "\x00" + s.Protocol + "\x00" + s.Local + "\x00" + s.Remote
	}
	if f.Type == "memfd" || f.Path == "" && f.Socket == nil && f.PipeID == 0 {
		k += "\x00" + f.Description
	}
	return k
}

// diffFiles compares the open files of a process.
func diffFiles(a, b []inspect.OpenFile, showUnchanged bool) []FileChange {
	byKey := map[string]inspect.OpenFile{}
	for _, f := range a {
		byKey[fileKey(f)] = f
	}
	seen := map[string]bool{}
	var out []FileChange
	for _, f := range b {
		k := fileKey(f)
		seen[k] = true
		fa, ok := byKey[k]
		switch {
		case !ok:
			out = append(out, fileChange(Added, f))
		case fa.Description != f.Description:
			c := fileChange(Changed, f)
			c.Before = fa.Description
			out = append(out, c)
		case showUnchanged:
			out = append(out, fileChange(Unchanged, f))
		}
	}
	for _, f := range a {
		if !seen[fileKey(f)] {
			out = append(out, fileChange(Removed, f))
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out
}

// diffMounts compares mount points by mountpoint.
func diffMounts(a, b []inspect.Mount, showUnchanged bool) []MountChange {
	byMP := map[string]inspect.Mount{}
	for _, m := range a {
		byMP[m.Mountpoint] = m
	}
	seen := map[string]bool{}
	var out []MountChange
	for _, m := range b {
		seen[m.Mountpoint] = true
		c := MountChange{Mountpoint: m.Mountpoint, FSType: m.FSType, Source: m.Source}
		ma, ok := byMP[m.Mountpoint]
		if !ok {
			c.Change = Added
			out = append(out, c)
			continue
		}
		add := func(name, x, y string) { addField(&c.Fields, name, x, y) }
		add("source", ma.Source, m.Source)
		add("fstype", ma.FSType, m.FSType)
		add("root", ma.Root, m.Root)
		add("options", ma.Options, m.Options)
		var keep bool
		if c.Change, keep = fieldsChange(c.Fields, showUnchanged); keep {
			out = append(out, c)
		}
	}
	for _, m := range a {
		if !seen[m.Mountpoint] {
			out = append(out, MountChange{Change: Removed, Mountpoint: m.Mountpoint, FSType: m.FSType, Source: m.Source})
		}
	}
	return out
}

// diffMemfds lists the memfds of mb (B's) that ma (A's) lacks, by name.
func diffMemfds(ma, mb map[string]*MemfdChange) []MemfdChange {
	var out []MemfdChange
	for name, c := range mb {
		if ma[name] == nil {
			out = append(out, *c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// memfds finds the memfds of a checkpoint's processes by name: open
// descriptors (inspect's files, named through memfd.img), mappings
// (VMA_AREA_MEMFD) and executables (mm exe_file_id). It also returns the
// uses of every files.img id: descriptors, executables, mappings.
func memfds(c *Checkpoint, pids []uint32) (map[string]*MemfdChange, map[uint32][]string) {
	m := map[string]*MemfdChange{}
	uses := map[uint32][]string{}
	for _, p := range c.Report.Processes {
		if len(pids) > 0 && !slices.Contains(pids, p.Pid) {
			continue
		}
		note := func(name, where string) {
			x := m[name]
			if x == nil {
				x = &MemfdChange{Change: Added, Name: name}
				m[name] = x
			}
			if !slices.Contains(x.Pids, p.Pid) {
				x.Pids = append(x.Pids, p.Pid)
			}
			x.Where = append(x.Where, where)
		}
		for _, f := range p.Files {
			uses[f.ID] = append(uses[f.ID], fmt.Sprintf("fd %d of pid %d", f.FD, p.Pid))
			if f.Type != "memfd" {
				continue
			}
			name, err := c.Images.MemfdName(f.ID)
			if err != nil {
				name = f.Description
			}
			note(name, fmt.Sprintf("fd %d of pid %d", f.FD, p.Pid))
		}
		proc, _ := c.Images.SalvageProcess(p.Pid)
		if proc == nil {
			continue
		}
		if proc.MM != nil {
			id := proc.MM.GetExeFileId()
			uses[id] = append(uses[id], fmt.Sprintf("executable of pid %d", p.Pid))
			if name, err := c.Images.MemfdName(proc.MM.GetExeFileId()); err == nil {
				note(name, fmt.Sprintf("executable of pid %d", p.Pid))
			}
		}
		for _, v := range proc.VMAs {
			if v.FileID != 0 {
				uses[v.FileID] = append(uses[v.FileID], fmt.Sprintf("mapping %#x-%#x %s of pid %d", v.Start, v.End, inspect.Prot(v.Prot), p.Pid))
			}
			if v.Status&criuimg.VMAAreaMemfd != 0 {
				note(v.Path, fmt.Sprintf("mapping %#x-%#x %s of pid %d", v.Start, v.End, inspect.Prot(v.Prot), p.Pid))
			}
		}
		proc.Close()
	}
	return m, uses
}
