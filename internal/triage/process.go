package triage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/bashhist"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// exeRules: the executable is a deleted file or a memfd.
func (t *run) exeRules(p *criuimg.Process, ip *inspect.Process, pr Process) {
	if p.MM == nil {
		return
	}
	id := p.MM.GetExeFileId()
	mmEv := Evidence{Image: fmt.Sprintf("mm-%d.img", p.Pid), Entry: fmt.Sprintf("exe_file_id %d", id)}
	if r, ok := t.deleted(id); ok {
		ev := append([]Evidence{mmEv, {Image: "files.img", Entry: fmt.Sprintf("REG %d", id), Path: r.Path}}, t.ghostEvidence(r)...)
		t.add(Finding{Process: pr, Rule: RuleDeletedExe, Severity: High, Reason: "exe", Subject: r.Path, Evidence: ev})
	}
	if name, err := t.ck.MemfdName(id); err == nil {
		ev := []Evidence{mmEv, {Image: "files.img", Entry: fmt.Sprintf("MEMFD %d", id), Mapping: name}}
		if e, ok := t.memfdEvidence(id, p.PageSize); ok {
			ev = append(ev, e)
		}
		t.add(Finding{Process: pr, Rule: RuleMemfdExe, Severity: High, Reason: "exe", Subject: name, Evidence: ev})
	}
}

// memfdEvidence is the evidence of a memfd's contents: memfd.img's
// entry and the size and sha256 of the bytes its shmem pagemap holds.
func (t *run) memfdEvidence(fileID uint32, pageSize uint64) (Evidence, bool) {
	in, ok, err := memfdInode(t.ck, fileID, pageSize)
	if err != nil {
		t.warn("%v", err)
	}
	if !ok {
		return Evidence{}, false
	}
	e := Evidence{Image: fmt.Sprintf("memfd.img + pagemap-shmem-%d.img", in.Shmid), Entry: fmt.Sprintf("entry %d: inode %d %q seals %#x", in.Entry, in.InodeID, in.Name, in.Seals)}
	m, err := t.ck.OpenMemfd(in, pageSize)
	if err != nil {
		t.warn("%v", err)
		return e, true
	}
	defer m.Close()
	h := sha256.New()
	n, err := io.Copy(h, m)
	if err != nil {
		t.warn("memfd %q: %v", in.Name, err)
		return e, true
	}
	e.Size, e.SHA256 = &n, hex.EncodeToString(h.Sum(nil))
	return e, true
}

// memfdInode is the memfd.img entry of the memfd file fileID, whose
// contents memfdEvidence reads whole (Reads); false if there is none or
// no page size, with the error when memfd.img cannot be read.
func memfdInode(ck *criuimg.Checkpoint, fileID uint32, pageSize uint64) (criuimg.MemfdInode, bool, error) {
	inode, ok := ck.MemfdInodeOf(fileID)
	if !ok || pageSize == 0 {
		return criuimg.MemfdInode{}, false, nil
	}
	inodes, err := ck.ReadMemfdInodes()
	if err != nil {
		return criuimg.MemfdInode{}, false, err
	}
	for _, in := range inodes {
		if in.InodeID == inode {
			return in, true, nil
		}
	}
	return criuimg.MemfdInode{}, false, nil
}

// kthreadName matches the names of kernel threads.
var kthreadName = regexp.MustCompile(`^\[?(kworker|ksoftirqd|kthreadd|kswapd|migration|rcu_|watchdog|jbd2|kblockd|khugepaged|kcompactd|kdevtmpfs|netns|writeback|cpuhp|idle_inject|irq/|oom_reaper|kauditd|ksmd|scsi_)`)

// interpreters run programs named by their arguments: their comm is the
// script's name.
var interpreters = regexp.MustCompile(`^(sh|ash|bash|dash|zsh|ksh|mksh|busybox|python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|php[0-9.]*|lua[0-9.]*|node|nodejs|tclsh[0-9.]*|java|env)$`)

// shells and script interpreters a server should not start.
var shells = regexp.MustCompile(`^(sh|ash|bash|dash|zsh|ksh|mksh|csh|tcsh|fish)$`)
var scripting = regexp.MustCompile(`^(python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|php[0-9.]*|lua[0-9.]*|tclsh[0-9.]*)$`)

// isShell reports whether the process is a shell or script interpreter:
// by its executable, or (busybox, whose applets share one executable) by
// argv[0].
func isShell(ip *inspect.Process) bool {
	names := []string{base(ip.Exe), ip.Comm}
	if len(ip.Argv) > 0 {
		names = append(names, base(ip.Argv[0]))
	}
	exe := base(ip.Exe)
	for _, n := range names {
		if shells.MatchString(n) || scripting.MatchString(n) {
			if exe == "busybox" && n == ip.Comm && len(ip.Argv) > 0 && !shells.MatchString(base(ip.Argv[0])) {
				continue // a busybox applet named like a shell by comm only
			}
			return true
		}
	}
	return false
}

// nameRule: comm, argv[0] and the executable disagree.
func (t *run) nameRule(p *criuimg.Process, ip *inspect.Process, pr Process) {
	comm := ip.Comm
	argv0 := ""
	if len(ip.Argv) > 0 {
		argv0 = ip.Argv[0]
	}
	ev := []Evidence{
		{Image: fmt.Sprintf("core-%d.img", p.Pid), Entry: "tc.comm", Value: comm},
		{Image: fmt.Sprintf("mm-%d.img", p.Pid), Entry: "mm_arg_start..mm_arg_end (argv[0])", Value: argv0},
		{Image: fmt.Sprintf("mm-%d.img", p.Pid), Entry: "exe_file_id", Path: ip.Exe},
	}
	if p.MM != nil {
		ev[1].Start, ev[1].End = hexAddr(p.MM.GetMmArgStart()), hexAddr(p.MM.GetMmArgEnd())
		if p.Mem != nil && p.MM.GetMmArgEnd() > p.MM.GetMmArgStart() {
			ev[1].Hex, ev[1].ASCII = excerpt(p.Mem, p.MM.GetMmArgStart(), p.MM.GetMmArgEnd())
		}
	}
	// A kernel thread has no mm: a process with one named like a kernel
	// thread hides.
	if p.MM != nil && (kthreadName.MatchString(comm) || kthreadName.MatchString(argv0) || (strings.HasPrefix(argv0, "[") && strings.HasSuffix(argv0, "]"))) {
		subj := argv0
		if kthreadName.MatchString(comm) {
			subj = comm
		}
		t.add(Finding{Process: pr, Rule: RuleNameSpoof, Severity: High, Reason: "kernel-thread", Subject: subj, Evidence: ev})
		return
	}
	if ip.Exe == "" || comm == "" {
		return
	}
	if consistentName(comm, argv0, ip) {
		return
	}
	t.add(Finding{Process: pr, Rule: RuleNameSpoof, Severity: Medium, Reason: "mismatch", Subject: comm, Evidence: ev})
}

// consistentName reports whether comm and argv[0] are explained by the
// executable. The kernel sets comm from the file name execve was given
// (a symlink's name: /bin/sh -> busybox, python3 -> python3.11), a
// script's name for an interpreter, or what the program set with prctl;
// argv[0] is what the caller chose. They are consistent when argv[0]
// names the program (its base is comm's or the executable's name, a
// prefix of it, an interpreter, a login shell's "-bash") or was rewritten
// by setproctitle ("nginx: worker process", "postgres: checkpointer",
// "redis-server 127.0.0.1:6379": its first word names the program), and
// comm is the executable's or argv[0]'s name, a script's name under an
// interpreter, or any thread name while argv[0] names the program.
func consistentName(comm, argv0 string, ip *inspect.Process) bool {
	trunc := func(s string) string {
		if len(s) > 15 {
			return s[:15]
		}
		return s
	}
	exe := strings.TrimPrefix(base(ip.Exe), "memfd:")
	words := strings.Fields(argv0)
	a0 := ""
	if len(words) > 0 {
		a0 = strings.TrimSuffix(base(strings.TrimPrefix(words[0], "-")), ":")
	}
	names := func(n string) bool {
		return n != "" && (n == exe || trunc(n) == comm || strings.HasPrefix(exe, n) || strings.HasPrefix(n, exe))
	}
	if argv0 != "" && !names(a0) && !interpreters.MatchString(a0) {
		return false
	}
	if comm == trunc(exe) || (a0 != "" && comm == trunc(a0)) || strings.HasPrefix(comm, "memfd:") {
		return true
	}
	if interpreters.MatchString(exe) || interpreters.MatchString(a0) {
		for _, a := range ip.Argv[min(1, len(ip.Argv)):] {
			if b := base(a); b != "" && comm == trunc(b) {
				return true
			}
		}
	}
	// A thread name the program set while argv[0] names it.
	return a0 != "" && (a0 == exe || strings.HasPrefix(exe, a0))
}

// preloadRule: LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH in the environment.
func (t *run) preloadRule(ip *inspect.Process, pr Process) {
	for _, e := range ip.Env {
		name, _, ok := strings.Cut(e, "=")
		if !ok {
			continue
		}
		var sev Severity
		switch name {
		case "LD_PRELOAD", "LD_AUDIT":
			sev = High
		case "LD_LIBRARY_PATH":
			sev = Medium
		default:
			continue
		}
		reason := "environment"
		if t.opts.Spec != nil && slices.Contains(t.opts.Spec.Env, e) {
			sev, reason = Info, "environment-from-spec"
		}
		t.add(Finding{Process: pr, Rule: RulePreload, Severity: sev, Reason: reason, Subject: name,
			Evidence: []Evidence{{Image: fmt.Sprintf("mm-%d.img", ip.Pid), Entry: "mm_env_start..mm_env_end", Value: e}}})
	}
}

// rootfsRules: /etc/ld.so.preload in the rw layer.
func (t *run) rootfsRules() {
	for _, d := range t.rep.RootfsDiff {
		if strings.TrimPrefix(d.Path, "/") == "etc/ld.so.preload" {
			size := d.Size
			t.add(Finding{Process: Process{Argv: []string{}}, Rule: RulePreload, Severity: High, Reason: "ld.so.preload", Subject: "/etc/ld.so.preload",
				Evidence: []Evidence{{Image: inspect.RootfsDiffFile, Entry: d.Path, Path: "/etc/ld.so.preload", Size: &size}}})
		}
	}
}

// openFileRules: deleted files held open (ghost or linked remaps).
func (t *run) openFileRules(ip *inspect.Process, pr Process) {
	exeID := uint32(0)
	for _, f := range ip.Files {
		if f.Type != "file" {
			continue
		}
		r, ok := t.deleted(f.ID)
		if !ok || f.ID == exeID {
			continue
		}
		ev := append([]Evidence{{Image: "fdinfo", Entry: fmt.Sprintf("fd %d -> files.img REG %d", f.FD, f.ID), Path: r.Path}}, t.ghostEvidence(r)...)
		t.add(Finding{Process: pr, Rule: RuleDeletedOpen, Severity: Medium, Reason: "fd", Subject: r.Path, Evidence: ev})
	}
}

// services are the processes of the container's service: those listening
// on a socket, those with an accepted connection (local port one the
// checkpoint listens on), and their descendants of the same executable
// and program (pre-forked workers). (networkRules also exempts the root
// of the tree.)
func (t *run) services() map[uint32]bool {
	ports := map[string]bool{}
	svc := map[uint32]bool{}
	for _, p := range t.rep.Processes {
		for _, f := range p.Files {
			if s := f.Socket; s != nil && s.State == "LISTEN" {
				svc[p.Pid] = true
				ports[port(s.Local)] = true
			}
		}
	}
	for _, p := range t.rep.Processes {
		for _, f := range p.Files {
			if s := f.Socket; s != nil && s.State == "ESTABLISHED" && ports[port(s.Local)] {
				svc[p.Pid] = true
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, p := range t.rep.Processes {
			if parent := t.byPid[p.PPid]; !svc[p.Pid] && parent != nil && svc[parent.Pid] && parent.Exe == p.Exe && p.Exe != "" && program(&p) == program(parent) {
				svc[p.Pid], changed = true, true
			}
		}
	}
	return svc
}

// program is the name argv[0] gives the program: its first word's base,
// without a setproctitle colon ("postgres: writer" is postgres).
func program(p *inspect.Process) string {
	if len(p.Argv) == 0 {
		return ""
	}
	f := strings.Fields(p.Argv[0])
	if len(f) == 0 {
		return ""
	}
	return strings.TrimSuffix(base(f[0]), ":")
}

func port(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// networkRules: the sockets of a process (info); a shell whose standard
// descriptors are sockets; connections of processes that are not the
// service; raw and packet sockets.
func (t *run) networkRules(ip *inspect.Process, pr Process) {
	var socks []Evidence
	var conns []Evidence
	stdSock := []Evidence{}
	raw := []Evidence{}
	for _, f := range ip.Files {
		s := f.Socket
		if s == nil {
			continue
		}
		e := Evidence{Image: "files.img", Entry: fmt.Sprintf("fd %d: %s %d", f.FD, strings.ToUpper(f.Type), f.ID), Value: f.Description}
		socks = append(socks, e)
		if f.FD <= 2 && (s.Family == "inet" || s.Family == "inet6") {
			stdSock = append(stdSock, e)
		}
		if (s.Family == "inet" || s.Family == "inet6") && s.State == "ESTABLISHED" {
			conns = append(conns, e)
		}
		if s.Family == "packet" || s.Type == "raw" {
			raw = append(raw, e)
		}
	}
	if len(socks) > 0 {
		t.add(Finding{Process: pr, Rule: RuleNetwork, Severity: Info, Reason: "sockets", Subject: fmt.Sprint(len(socks)), Evidence: socks})
	}
	if len(stdSock) > 0 && isShell(ip) {
		t.add(Finding{Process: pr, Rule: RuleNetwork, Severity: High, Reason: "reverse-shell", Subject: ip.Comm, Evidence: stdSock})
	}
	if len(conns) > 0 && !t.service[ip.Pid] && ip.Pid != t.ck.Procs[0].Pid {
		t.add(Finding{Process: pr, Rule: RuleNetwork, Severity: Medium, Reason: "not-service", Subject: fmt.Sprint(len(conns)), Evidence: conns})
	}
	if len(raw) > 0 {
		t.add(Finding{Process: pr, Rule: RuleNetwork, Severity: Medium, Reason: "raw", Subject: fmt.Sprint(len(raw)), Evidence: raw})
	}
}

// treeRule: a shell or interpreter descending from a server process.
func (t *run) treeRule(ip *inspect.Process, pr Process) {
	if !isShell(ip) || t.service[ip.Pid] {
		return
	}
	var chain []Evidence
	var server *inspect.Process
	seen := map[uint32]bool{ip.Pid: true}
	for q := t.byPid[ip.PPid]; q != nil && !seen[q.Pid]; q = t.byPid[q.PPid] {
		seen[q.Pid] = true
		chain = append(chain, Evidence{Image: "pstree.img", Entry: fmt.Sprintf("pid %d ppid %d", q.Pid, q.PPid), Value: q.Comm + ": " + strings.Join(q.Argv, " ")})
		if t.service[q.Pid] {
			server = q
			break
		}
	}
	if server == nil {
		return
	}
	sev, reason := Medium, "script"
	if interactive(ip) {
		sev, reason = High, "interactive"
	}
	ev := append([]Evidence{{Image: "pstree.img", Entry: fmt.Sprintf("pid %d ppid %d", ip.Pid, ip.PPid), Value: ip.Comm + ": " + strings.Join(ip.Argv, " ")}}, chain...)
	t.add(Finding{Process: pr, Rule: RuleProcessTree, Severity: sev, Reason: reason, Subject: fmt.Sprint(server.Pid), Evidence: ev})
}

// interactive reports whether a shell reads commands from a user: -i, or
// no script and no -c.
func interactive(ip *inspect.Process) bool {
	args := ip.Argv[min(1, len(ip.Argv)):]
	if len(ip.Argv) > 0 && strings.HasPrefix(ip.Argv[0], "-") {
		return true // a login shell
	}
	for _, a := range args {
		if a == "-c" {
			return false
		}
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "i") {
			return true
		}
		if !strings.HasPrefix(a, "-") {
			return false // a script
		}
	}
	return true
}

// capNames are the capabilities by bit.
var capNames = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"}

func capMask(names []string) uint64 {
	var m uint64
	for _, n := range names {
		if i := slices.Index(capNames, n); i >= 0 {
			m |= 1 << i
		}
	}
	return m
}

func capList(m uint64) string {
	var out []string
	for i := 0; i < 64; i++ {
		if m&(1<<i) != 0 {
			if i < len(capNames) {
				out = append(out, capNames[i])
			} else {
				out = append(out, fmt.Sprintf("cap%d", i))
			}
		}
	}
	return strings.Join(out, ",")
}

// credRules: capabilities beyond the spec, seccomp off where the spec
// sets it, signal handlers in anonymous executable memory.
func (t *run) credRules(p *criuimg.Process, pr Process, rt string) {
	for i := range p.Threads {
		th := &p.Threads[i]
		c, err := criuimg.ThreadCreds(th)
		if err != nil {
			t.warn("pid %d: %v", p.Pid, err)
			continue
		}
		img := fmt.Sprintf("core-%d.img", th.Tid)
		if sp := t.opts.Spec; sp != nil {
			if sets := sp.Capabilities; sets != nil {
				for _, set := range []struct {
					name string
					have uint64
				}{{"effective", c.Effective}, {"permitted", c.Permitted}, {"bounding", c.Bounding}} {
					names, ok := sets[set.name]
					if !ok {
						continue
					}
					if extra := set.have &^ capMask(names); extra != 0 {
						t.add(Finding{Process: pr, Rule: RuleCredentials, Severity: High, Reason: "capabilities", Subject: set.name,
							Evidence: []Evidence{{Image: img, Entry: "thread_core.creds.cap_" + set.name[:3], Value: capList(extra)}}})
					}
				}
			}
			if sp.Seccomp && c.Seccomp == criuimg.SeccompDisabled {
				t.add(Finding{Process: pr, Rule: RuleCredentials, Severity: High, Reason: "seccomp-off", Subject: fmt.Sprint(th.Tid),
					Evidence: []Evidence{{Image: img, Entry: "thread_core.seccomp_mode", Value: "disabled"}, {Image: inspect.SpecDumpFile, Entry: "linux.seccomp", Value: "set"}}})
			}
		}
	}
	if p.Task == nil {
		return
	}
	sas, err := criuimg.SigActions(p.Pid, p.Task)
	if err != nil {
		t.warn("pid %d: %v", p.Pid, err)
		return
	}
	for _, sa := range sas {
		if !sa.Installed() {
			continue
		}
		v, ok := p.FindVMA(sa.Handler)
		ev := Evidence{Image: fmt.Sprintf("core-%d.img", p.Pid), Entry: fmt.Sprintf("tc.sigactions signal %d", sa.Signal), Start: hexAddr(sa.Handler)}
		switch {
		case !ok:
			t.add(Finding{Process: pr, Rule: RuleSignalHandler, Severity: High, Reason: "unmapped", Subject: fmt.Sprint(sa.Signal), Evidence: []Evidence{ev}})
		case v.Prot&criuimg.ProtExec == 0:
			ev.Mapping, ev.Prot = mappingName(p, v), inspect.Prot(v.Prot)
			t.add(Finding{Process: pr, Rule: RuleSignalHandler, Severity: High, Reason: "not-executable", Subject: fmt.Sprint(sa.Signal), Evidence: []Evidence{ev, vmaEvidence(p, v)}})
		case v.Path == "" || v.HasShmem:
			ev.Mapping, ev.Prot = mappingName(p, v), inspect.Prot(v.Prot)
			if p.Mem != nil {
				ev.Hex, ev.ASCII = excerpt(p.Mem, sa.Handler, v.End)
			}
			sev := High
			if rt != "" {
				sev = Info
			}
			t.add(Finding{Process: pr, Rule: RuleSignalHandler, Severity: sev, Reason: "anon", Subject: fmt.Sprint(sa.Signal), Runtime: rt, Evidence: []Evidence{ev, vmaEvidence(p, v)}})
		}
	}
}

// readsHistory reports whether historyRule reads p's heap: p is bash
// (its executable or comm, as inspect reports them) of a known
// architecture (an unknown one: its core images are damaged, said).
func readsHistory(p *criuimg.Process) bool {
	return (base(p.ExePath) == "bash" || p.Comm == "bash") && p.Arch != criuimg.ArchUnknown
}

// historyRule: bash's history recovered from its heap.
func (t *run) historyRule(p *criuimg.Process, ip *inspect.Process, pr Process) {
	if !readsHistory(p) {
		return
	}
	entries, err := bashhist.Recover(p)
	if err != nil {
		t.warn("pid %d: %v", p.Pid, err)
	}
	if len(entries) == 0 {
		return
	}
	var ev []Evidence
	for _, e := range entries {
		h, a := hexASCII([]byte(e.Line)[:min(len(e.Line), ExcerptLen)])
		ev = append(ev, Evidence{Image: pagemapName(p, &criuimg.VMA{}), Entry: fmt.Sprintf("hist_entry at %#x, timestamp #%d", e.EntryAddr, e.Time),
			Start: hexAddr(e.LineAddr), End: hexAddr(e.LineAddr + uint64(len(e.Line))), Mapping: "[heap]", Hex: h, ASCII: a, Value: e.Line})
	}
	t.add(Finding{Process: pr, Rule: RuleShellHistory, Severity: Info, Reason: "bash", Subject: fmt.Sprint(len(entries)), Evidence: ev})
}
