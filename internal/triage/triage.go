// Package triage finds what is suspicious in a CRIU checkpoint: rules
// over the decoded model (criuimg's processes, mappings and memory view,
// inspect's report of files, sockets, environments and the process tree),
// each producing findings as plain data with the evidence that proves
// them (address range, mapping, protection, bytes, the CRIU image and
// entry). cmd/ckpt2core turns findings into text and JSON.
package triage

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/memsearch"
)

// Severity ranks a finding.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Medium
	High
)

func (s Severity) String() string {
	switch s {
	case High:
		return "high"
	case Medium:
		return "medium"
	}
	return "info"
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Rules, as Finding.Rule names them.
const (
	RuleModifiedCode  = "modified-code"
	RuleWXMemory      = "wx-memory"
	RuleAnonExec      = "anon-exec"
	RuleDeletedExe    = "deleted-exe"
	RuleMemfdExe      = "memfd-exe"
	RuleNameSpoof     = "name-spoof"
	RulePreload       = "preload"
	RuleDeletedOpen   = "deleted-open-file"
	RuleNetwork       = "network"
	RuleProcessTree   = "process-tree"
	RuleCredentials   = "credentials"
	RuleSignalHandler = "signal-handler"
	RuleShellHistory  = "shell-history"
)

// Process names the process a finding is about (Pid 0: the container).
type Process struct {
	Pid  uint32   `json:"pid"`
	Comm string   `json:"comm"`
	Exe  string   `json:"exe"`
	Argv []string `json:"argv"`
}

// Evidence is one fact proving a finding. Addresses are "0x..." strings,
// "" when they do not apply.
type Evidence struct {
	Image   string `json:"image"`   // the CRIU image (or container file) that proves it
	Entry   string `json:"entry"`   // which entry of it
	Start   string `json:"start"`   // address range [Start, End)
	End     string `json:"end"`     //
	Mapping string `json:"mapping"` // the mapped file, "[anon]", "[heap]"...
	Prot    string `json:"prot"`    // "rwx" form
	Hex     string `json:"hex"`     // bytes at Start (an excerpt)
	ASCII   string `json:"ascii"`   // the same bytes, printable ASCII or '.'
	// Original holds the file's bytes where the captured ones (Hex)
	// differ from them (modified code with a root).
	Original string `json:"original,omitempty"`
	Path     string `json:"path,omitempty"`
	Size     *int64 `json:"size,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
	// Value is a fact in the finding's own terms: a variable, a socket,
	// a history line, a capability list.
	Value string `json:"value,omitempty"`
}

// Finding is one suspicious fact. Reason says which case of the rule it
// is (cmd words it); Subject is what it is about (a path, a name, a
// variable); Runtime the code-generating runtime recognised, if any.
type Finding struct {
	Process
	Rule     string     `json:"rule"`
	Severity Severity   `json:"severity"`
	Reason   string     `json:"reason"`
	Subject  string     `json:"subject"`
	Runtime  string     `json:"runtime,omitempty"`
	Evidence []Evidence `json:"evidence"`
}

// Options tune Run.
type Options struct {
	// Pids limits the processes examined (all if empty).
	Pids []uint32
	// Files, if set, serves the mapped files (a *rootfs.Root): modified
	// code is compared with them.
	Files inspect.MappedFiles
	// Spec is what the container's spec asks (nil if unknown).
	Spec *inspect.SpecSecurity
}

// ExcerptLen is how many bytes an evidence excerpt shows.
const ExcerptLen = 128

// Run applies every rule to the processes of ck. rep is inspect's report
// of ck made with Options.Env (environments, files, sockets, tree).
// Problems reading one process become warnings; the others are examined.
func Run(ck *criuimg.Checkpoint, rep *inspect.Report, opts Options) ([]Finding, []string) {
	t := &run{ck: ck, rep: rep, opts: opts, byPid: map[uint32]*inspect.Process{}}
	for i := range rep.Processes {
		t.byPid[rep.Processes[i].Pid] = &rep.Processes[i]
	}
	remaps, err := ck.ReadRemaps()
	if err != nil {
		t.warn("remap-fpath.img: %v: deleted files are not recognised", err)
		remaps = nil
	}
	t.remaps = remaps
	t.service = t.services()
	t.rootfsRules()
	for _, info := range ck.Procs {
		if len(opts.Pids) > 0 && !slices.Contains(opts.Pids, info.Pid) {
			continue
		}
		ip := t.byPid[info.Pid]
		if ip == nil {
			continue
		}
		p, errs := ck.SalvageProcess(info.Pid)
		for _, e := range errs {
			t.warn("pid %d: %v", info.Pid, e)
		}
		if p == nil {
			continue
		}
		t.process(p, ip)
		p.Close()
	}
	slices.SortStableFunc(t.out, func(a, b Finding) int {
		if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
			return c
		}
		return cmp.Compare(a.Pid, b.Pid)
	})
	return t.out, t.warnings
}

type run struct {
	ck       *criuimg.Checkpoint
	rep      *inspect.Report
	opts     Options
	byPid    map[uint32]*inspect.Process
	remaps   *criuimg.RemapTable
	service  map[uint32]bool
	out      []Finding
	warnings []string
}

func (t *run) warn(format string, a ...any) {
	t.warnings = append(t.warnings, fmt.Sprintf(format, a...))
}

func (t *run) add(f Finding) { t.out = append(t.out, f) }

func procOf(ip *inspect.Process) Process {
	return Process{Pid: ip.Pid, Comm: ip.Comm, Exe: ip.Exe, Argv: nonNil(ip.Argv)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (t *run) process(p *criuimg.Process, ip *inspect.Process) {
	if p.Zombie() {
		return
	}
	pr := procOf(ip)
	if pr.Exe == "" && p.MM != nil {
		if name, err := t.ck.MemfdName(p.MM.GetExeFileId()); err == nil {
			pr.Exe = name
		}
	}
	rt := runtimeOf(p, ip)
	t.memoryRules(p, pr, rt)
	t.exeRules(p, ip, pr)
	t.nameRule(p, ip, pr)
	t.preloadRule(ip, pr)
	t.openFileRules(ip, pr)
	t.networkRules(ip, pr)
	t.treeRule(ip, pr)
	t.credRules(p, pr, rt)
	t.historyRule(p, ip, pr)
}

// hexAddr formats an address.
func hexAddr(a uint64) string { return fmt.Sprintf("%#x", a) }

// mappingName names a mapping as grep's hits do.
func mappingName(p *criuimg.Process, v *criuimg.VMA) string { return memsearch.MappingName(p, v) }

// excerpt reads up to ExcerptLen bytes at addr (fewer at the end of what
// is captured) and returns them as hex and ASCII.
func excerpt(m *criuimg.Memory, addr, end uint64) (string, string) {
	b := make([]byte, excerptEnd(addr, end)-addr)
	k, _ := m.ReadAt(b, int64(addr))
	return hexASCII(b[:k])
}

// excerptEnd is the end of the excerpt at addr of [addr, end).
func excerptEnd(addr, end uint64) uint64 {
	if end-addr < ExcerptLen {
		return end
	}
	return addr + ExcerptLen
}

func hexASCII(b []byte) (string, string) {
	a := make([]byte, len(b))
	for i, c := range b {
		if c >= 0x20 && c < 0x7f {
			a[i] = c
		} else {
			a[i] = '.'
		}
	}
	return hex.EncodeToString(b), string(a)
}

// vmaEvidence is the evidence of a mapping: mm-<pid>.img's entry.
func vmaEvidence(p *criuimg.Process, v *criuimg.VMA) Evidence {
	return Evidence{Image: fmt.Sprintf("mm-%d.img", p.Pid), Entry: fmt.Sprintf("vma [%#x-%#x) %s", v.Start, v.End, inspect.Prot(v.Prot)),
		Start: hexAddr(v.Start), End: hexAddr(v.End), Mapping: mappingName(p, v), Prot: inspect.Prot(v.Prot)}
}

// capturedEvidence is the evidence of captured bytes [s, e) of v.
func capturedEvidence(p *criuimg.Process, v *criuimg.VMA, s, e uint64) Evidence {
	ev := vmaEvidence(p, v)
	ev.Image = pagemapName(p, v)
	ev.Entry = fmt.Sprintf("pages [%#x-%#x) of vma [%#x-%#x) (mm-%d.img)", s, e, v.Start, v.End, p.Pid)
	ev.Start, ev.End = hexAddr(s), hexAddr(e)
	ev.Hex, ev.ASCII = excerpt(p.Mem, s, e)
	return ev
}

func pagemapName(p *criuimg.Process, v *criuimg.VMA) string {
	if v.HasShmem {
		return fmt.Sprintf("pagemap-shmem-%d.img", v.Shmem)
	}
	if p.Mem != nil && p.Mem.Private() != nil {
		pi := p.Mem.Private()
		if pi.Pages != nil {
			return pi.Name + " + " + pi.Pages.Name()
		}
		return pi.Name
	}
	return fmt.Sprintf("pagemap-%d.img", p.Pid)
}

// captured returns the captured extents of v.
func captured(p *criuimg.Process, v *criuimg.VMA) [][2]uint64 {
	if p.Mem == nil {
		return nil
	}
	var out [][2]uint64
	p.Mem.VMAExtents(v, func(e criuimg.Extent) error {
		if e.Kind == criuimg.Captured {
			if n := len(out); n > 0 && out[n-1][1] == e.Start {
				out[n-1][1] = e.End
			} else {
				out = append(out, [2]uint64{e.Start, e.End})
			}
		}
		return nil
	})
	return out
}

// base is the last element of a path or argv[0].
func base(s string) string {
	s = strings.TrimSuffix(s, " (deleted)")
	if s == "" {
		return ""
	}
	return path.Base(s)
}

// ghostEvidence is the evidence of a deleted file: its remap entry and,
// for a ghost, the ghost image with the contents' size and sha256.
func (t *run) ghostEvidence(r criuimg.Remap) []Evidence {
	ev := []Evidence{{Image: "remap-fpath.img", Entry: fmt.Sprintf("entry %d: file %d %s", r.Entry, r.FileID, r.Kind), Path: r.Path}}
	if r.Kind != criuimg.RemapGhost {
		if r.LinkPath != "" {
			ev[0].Value = "linked as " + r.LinkPath
		}
		return ev
	}
	g, err := t.ck.OpenGhost(r)
	if err != nil {
		t.warn("%s: %v", r.GhostImage(), err)
		return ev
	}
	defer g.Close()
	e := Evidence{Image: g.Image, Entry: fmt.Sprintf("ghost of file %d, mode %#o", r.FileID, g.Mode), Path: r.Path}
	if g.Regular() {
		h := sha256.New()
		n, err := io.Copy(h, g.Contents())
		if err != nil {
			t.warn("%s: %v", g.Image, err)
		} else {
			e.Size, e.SHA256 = &n, hex.EncodeToString(h.Sum(nil))
		}
	}
	return append(ev, e)
}

// deleted returns the remap of a file id (a deleted file) if any.
func (t *run) deleted(fileID uint32) (criuimg.Remap, bool) {
	if t.remaps == nil || fileID == 0 {
		return criuimg.Remap{}, false
	}
	r, ok := t.remaps.Lookup(fileID)
	if !ok || (r.Kind != criuimg.RemapGhost && r.Kind != criuimg.RemapLinked) {
		return criuimg.Remap{}, false
	}
	return r, true
}
