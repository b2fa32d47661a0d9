package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/ckptdiff"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// Exit statuses of diff, as diff(1)'s.
const (
	diffSame    = 0
	diffDiffer  = 1
	diffTrouble = 2
)

const diffExamples = `
Compares two checkpoints of a container (say one from before an incident
and one from after): the container, the processes (matched by pid, then by
executable and command line) with their command lines, environments,
credentials, threads and system calls, open files and sockets, the mounts,
the files of the container's rw layer (rootfs-diff.tar, compared by
sha256) and deleted.files, memfds, and the memory of the processes in
both: mappings added, removed, grown, shrunk or with another protection,
and for the mappings in both the captured pages compared by content
(pages and bytes changed, pages newly captured) with the longest printable
strings that are new in B's pages, where new secrets and commands show up.

Each line starts with a marker: + only in B (added), - only in A
(removed, or a file newly deleted), ~ changed, = unchanged (only with
--show-unchanged). A summary ends the text.

Directories and plain tars are read once: the pages of a process in A
are hashed (8 bytes a page), then B's are read and compared; only a page
whose hash differs is read again from A. A compressed archive is streamed
twice instead of unpacked: its pages hashed the first time, only the
pages that differ (and what triage reads) kept the second (-v says so).
The JSON object (--json) has the fields of
the text, with pids as "pid" fields; schema in the README.

Examples:
  ckpt2core diff before.tar after.tar.zst
  ckpt2core diff before.tar after.tar.zst --pid 8 -n 50
  ckpt2core diff before/ after/ --json | jq '.processes[] | select(.change=="added") | .pid'

Exit status: 0 the checkpoints do not differ; 1 they differ; 2 trouble
(bad command line, a checkpoint that cannot be read, an unknown --pid).
`

func runDiff(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core diff", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	showUnchanged := fs.Bool("show-unchanged", false, "also list what did not change (marker =)")
	nStrings := fs.IntP("strings", "n", 10, "new strings to show per process (the longest; 0: none)")
	minString := fs.Int("min-string", 6, "shortest printable run counted as a string")
	pids := fs.UintSlice("pid", nil, "compare only this process (its pid in A or B; repeatable)")
	verbose := fs.BoolP("verbose", "v", false, "say how compressed archives are read (twice) and what could not stream")
	aopts := archiveFlags(fs)
	help := helpText(fs, "Usage: ckpt2core diff A B [--pid N] [--json] [--show-unchanged] [-n N] [-v]", diffExamples)
	if status, ok := parseFlags(fs, "diff", args, help, stdout, stderr, diffTrouble); !ok {
		return status
	}
	if fs.NArg() != 2 {
		return usageError(stderr, "diff", diffTrouble, "want two checkpoints A and B, got %d arguments", fs.NArg())
	}
	if aopts.ExtractDir != "" {
		return usageError(stderr, "diff", diffTrouble, "--extract takes one archive: extract A and B one at a time with 'ckpt2core inspect --extract'")
	}
	if *nStrings < 0 || *minString < 1 {
		return usageError(stderr, "diff", diffTrouble, "-n must be >= 0 and --min-string >= 1")
	}
	opts := ckptdiff.Options{Strings: *nStrings, MinString: *minString, ShowUnchanged: *showUnchanged}
	for _, p := range *pids {
		opts.Pids = append(opts.Pids, uint32(p))
	}
	sides, closeSides, err := openDiffSides(stop, fs.Args(), aopts, opts, *verbose, stderr)
	if err != nil {
		complain(stderr, "", "%v", err)
		return diffTrouble
	}
	defer closeSides()
	res, err := ckptdiff.Diff(sides[0], sides[1], opts)
	if err != nil {
		complain(stderr, "", "%v", err)
		return diffTrouble
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(jsonDiff(res))
	} else {
		err = writeDiffText(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return diffTrouble
	}
	if res.Differs() {
		return diffDiffer
	}
	return diffSame
}

// diffSide builds what diff compares of the checkpoint at path, opened
// (src, ck): inspect's report (with environments), the images, the
// rootfs-diff.tar and deleted.files.
func diffSide(path string, src criuimg.Source, ck *criuimg.Checkpoint) (*ckptdiff.Checkpoint, error) {
	opts := inspect.Options{Env: true, Name: path}
	c := &ckptdiff.Checkpoint{Images: ck}
	if cs, ok := src.(*checkpointSource); ok {
		opts.Meta = cs.ck.Meta()
		if _, err := cs.ck.RootfsDiff(); err == nil || !errors.Is(err, fs.ErrNotExist) {
			c.RootfsDiff = func() (io.ReadCloser, error) {
				f, err := cs.ck.RootfsDiff()
				if err != nil {
					return nil, err
				}
				return struct {
					io.Reader
					io.Closer
				}{io.NewSectionReader(f, 0, f.Size()), f}, nil
			}
		}
		if sp, err := specSecurity(cs.ck.Meta()); err == nil {
			c.Spec = sp // for triage's credentials rule
		}
		if b, err := fs.ReadFile(cs.ck.Meta(), "deleted.files"); err == nil {
			if c.DeletedFiles, err = inspect.ParseDeletedFiles(b); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	rep, err := inspect.Inspect(ck, opts)
	if err != nil {
		return nil, err
	}
	c.Report = rep
	return c, nil
}

// jsonDiff is the Result with every list as [] rather than null.
func jsonDiff(r *ckptdiff.Result) any {
	type plain ckptdiff.Result
	p := plain(*r)
	p.Processes = orEmpty(p.Processes)
	p.Mounts = orEmpty(p.Mounts)
	p.Rootfs = orEmpty(p.Rootfs)
	p.Memfds = orEmpty(p.Memfds)
	p.Ghosts = orEmpty(p.Ghosts)
	p.Findings = orEmpty(p.Findings)
	for i := range p.Ghosts {
		p.Ghosts[i].Where = orEmpty(p.Ghosts[i].Where)
	}
	p.Warnings = orEmpty(p.Warnings)
	for i := range p.Processes {
		d := &p.Processes[i]
		d.Argv, d.Fields, d.Env, d.Threads, d.Files, d.Warnings = orEmpty(d.Argv), orEmpty(d.Fields), orEmpty(d.Env), orEmpty(d.Threads), orEmpty(d.Files), orEmpty(d.Warnings)
		if m := d.Memory; m != nil {
			m.Mappings, m.NewStrings = orEmpty(m.Mappings), orEmpty(m.NewStrings)
		}
	}
	if c := p.Container; c != nil {
		c.Changed = orEmpty(c.Changed)
	}
	for i := range p.Mounts {
		p.Mounts[i].Fields = orEmpty(p.Mounts[i].Fields)
	}
	for i := range p.Rootfs {
		p.Rootfs[i].Fields = orEmpty(p.Rootfs[i].Fields)
	}
	return p
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// diffMarker is the marker of a change.
func diffMarker(change string) string {
	switch change {
	case ckptdiff.Added:
		return "+"
	case ckptdiff.Removed, ckptdiff.Deleted:
		return "-"
	case ckptdiff.Unchanged:
		return "="
	}
	return "~"
}

// writeDiffText writes the comparison for people.
func writeDiffText(w io.Writer, r *ckptdiff.Result) error {
	ew := &diffWriter{w: w}
	p := func(format string, a ...any) { fmt.Fprintf(ew, format+"\n", a...) }
	p("A: %s", safe(r.A))
	p("B: %s", safe(r.B))
	if c := r.Container; c != nil {
		same := "another container"
		if c.Same {
			same = "the same container"
		}
		p("Container: %s; checkpointed %s, then %s", same, orUnknown(c.CheckpointedA), orUnknown(c.CheckpointedB))
		for _, f := range c.Changed {
			p("~ container %s: %s -> %s", f.Name, safe(orNone(f.Before)), safe(orNone(f.After)))
		}
	}
	if len(r.Processes) > 0 {
		p("\nProcesses:")
	}
	for i := range r.Processes {
		writeProcessDiff(p, &r.Processes[i])
	}
	if len(r.Mounts) > 0 {
		p("\nMounts:")
	}
	for _, m := range r.Mounts {
		line := fmt.Sprintf("%s %s (%s %s)", diffMarker(m.Change), safe(m.Mountpoint), safe(m.FSType), safe(m.Source))
		p("%s%s", line, fieldsText(m.Fields))
	}
	if len(r.Rootfs) > 0 {
		p("\nRoot filesystem (rw layer, rootfs-diff.tar; deleted.files):")
	}
	for _, f := range r.Rootfs {
		switch f.Change {
		case ckptdiff.Deleted:
			p("- %s (deleted)", safe(f.Path))
		case ckptdiff.Changed:
			p("~ %s (%s)%s", safe(f.Path), f.Type, fieldsText(f.Fields))
		default:
			p("%s %s (%s)", diffMarker(f.Change), safe(f.Path), rwDesc(f))
		}
	}
	if len(r.Memfds) > 0 {
		p("\nMemfds:")
	}
	for _, m := range r.Memfds {
		p("%s %s: %s", diffMarker(m.Change), safe(m.Name), safe(whereText(m.Where)))
	}
	if len(r.Ghosts) > 0 {
		p("\nDeleted files the checkpoint holds (ghost files):")
	}
	for _, g := range r.Ghosts {
		p("%s %s (%s, mode %s, %d bytes, sha256 %s): %s", diffMarker(g.Change), safe(g.Path), g.Image, g.Mode, g.Size, short(g.SHA256), safe(whereText(g.Where)))
	}
	if len(r.Findings) > 0 {
		p("\nFindings new in B (triage):")
	}
	for _, f := range r.Findings {
		who := "container"
		if f.Pid != 0 {
			who = fmt.Sprintf("pid %d %s", f.Pid, safe(f.Comm))
		}
		p("+ %s %s, %s: %s", strings.ToUpper(f.Severity.String()), f.Rule, who, explain(f))
	}
	for _, wn := range r.Warnings {
		p("warning: %s", safe(wn))
	}
	s := r.Summary
	p("\nSummary: %s", diffSummary(s))
	return ew.err
}

func rwDesc(f ckptdiff.RootfsChange) string {
	switch f.Type {
	case "file":
		return fmt.Sprintf("file, %d bytes, sha256 %s", f.Size, short(f.SHA256))
	case "dir":
		return "dir"
	}
	return f.Type
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// fieldsText writes changed fields as ": name a -> b, ...".
func fieldsText(fs []ckptdiff.Field) string {
	if len(fs) == 0 {
		return ""
	}
	parts := make([]string, len(fs))
	for i, f := range fs {
		b, a := f.Before, f.After
		if f.Name == "sha256" {
			b, a = short(b), short(a)
		}
		parts[i] = fmt.Sprintf("%s %s -> %s", f.Name, safe(orNone(b)), safe(orNone(a)))
	}
	return ": " + strings.Join(parts, ", ")
}

func writeProcessDiff(p func(string, ...any), d *ckptdiff.ProcessDiff) {
	pid := fmt.Sprintf("pid %d", d.Pid)
	if d.PidBefore != 0 {
		pid = fmt.Sprintf("pid %d (pid %d in A, matched by executable and command line)", d.Pid, d.PidBefore)
	}
	p("%s %s %s, ppid %d, exe %s: %s", diffMarker(d.Change), pid, safe(d.Comm), d.PPid, safe(orNone(d.Exe)), safe(inspect.ShellQuote(d.Argv)))
	for _, f := range d.Fields {
		p("    ~ %s: %s -> %s", f.Name, safe(orNone(f.Before)), safe(orNone(f.After)))
	}
	for _, e := range d.Env {
		switch e.Change {
		case ckptdiff.Added:
			p("    + env %s=%s", safe(e.Name), safe(e.After))
		case ckptdiff.Removed:
			p("    - env %s=%s", safe(e.Name), safe(e.Before))
		default:
			p("    ~ env %s: %s -> %s", safe(e.Name), safe(e.Before), safe(e.After))
		}
	}
	for _, t := range d.Threads {
		line := fmt.Sprintf("    %s thread %d %s", diffMarker(t.Change), t.Tid, safe(t.Name))
		switch {
		case t.Change == ckptdiff.Changed:
			line += fmt.Sprintf(": in %s -> in %s", orNone(t.SyscallBefore), orNone(t.Syscall))
		case t.Syscall != "":
			line += ": in " + t.Syscall
		}
		p("%s", line)
	}
	for _, f := range d.Files {
		if f.Change == ckptdiff.Changed {
			p("    ~ fd %d: %s -> %s", f.FD, safe(f.Before), safe(f.Description))
			continue
		}
		p("    %s fd %d: %s", diffMarker(f.Change), f.FD, safe(f.Description))
	}
	m := d.Memory
	if m == nil {
		for _, wn := range d.Warnings {
			p("    warning: %s", safe(wn))
		}
		return
	}
	switch d.Change {
	case ckptdiff.Added, ckptdiff.Removed:
		p("    %s memory: %d mappings, %s captured", diffMarker(d.Change), m.VMAs, humanSize(m.CapturedBytes))
		return
	}
	if m.NotCompared != "" {
		p("    %s memory not compared: %s", diffMarker(d.Change), m.NotCompared)
	} else if m.PagesChanged > 0 || m.PagesNewlyCaptured > 0 || m.PagesNoLongerCaptured > 0 {
		p("    ~ memory: %d of %d compared pages changed (%d bytes), %d newly captured, %d no longer captured",
			m.PagesChanged, m.PagesCompared, m.BytesChanged, m.PagesNewlyCaptured, m.PagesNoLongerCaptured)
	} else if d.Change == ckptdiff.Unchanged || len(m.Mappings) == 0 {
		p("    = memory: %d pages compared, none changed", m.PagesCompared)
	}
	for _, mp := range m.Mappings {
		line := fmt.Sprintf("    %s mapping %s-%s %s %s", diffMarker(mp.Change), mp.Start, mp.End, mp.Prot, safe(mappingLabel(mp)))
		var notes []string
		switch mp.Change {
		case ckptdiff.Grown, ckptdiff.Shrunk:
			notes = append(notes, fmt.Sprintf("%s from %s-%s", mp.Change, mp.StartBefore, mp.EndBefore))
		}
		if mp.ProtBefore != "" {
			notes = append(notes, fmt.Sprintf("protection %s -> %s", mp.ProtBefore, mp.Prot))
		}
		if mp.PagesChanged > 0 {
			notes = append(notes, fmt.Sprintf("%d pages changed (%d bytes)", mp.PagesChanged, mp.BytesChanged))
		}
		if mp.PagesNewlyCaptured > 0 {
			notes = append(notes, fmt.Sprintf("%d pages newly captured", mp.PagesNewlyCaptured))
		}
		if len(notes) > 0 {
			line += ": " + strings.Join(notes, ", ")
		}
		p("%s", line)
	}
	if m.NewStringsTotal > 0 {
		shown := ""
		if len(m.NewStrings) < m.NewStringsTotal {
			shown = fmt.Sprintf(" (the %d longest distinct shown)", len(m.NewStrings))
		}
		p("    new strings in changed pages: %d%s", m.NewStringsTotal, shown)
		for _, s := range m.NewStrings {
			more := ""
			if s.Length > len(s.Text) {
				more = fmt.Sprintf("... (%d bytes)", s.Length)
			}
			if s.Count > 1 {
				more += fmt.Sprintf(" (%d times)", s.Count)
			}
			p("      + %s %s: %q%s", s.Addr, safe(s.Mapping), s.Text, more)
		}
	}
	for _, wn := range d.Warnings {
		p("    warning: %s", safe(wn))
	}
}

func mappingLabel(m ckptdiff.MappingChange) string {
	if m.Path != "" {
		return m.Path
	}
	return "[" + m.Kind + "]"
}

// humanSize writes a byte count for people.
func humanSize(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func diffSummary(s ckptdiff.Summary) string {
	if s.Total() == 0 {
		return "no differences"
	}
	var parts []string
	if s.ContainerChanged {
		parts = append(parts, "container changed")
	}
	parts = append(parts, fmt.Sprintf("processes: %d added, %d removed, %d changed", s.ProcessesAdded, s.ProcessesRemoved, s.ProcessesChanged))
	parts = append(parts, fmt.Sprintf("files and sockets: %d added, %d removed, %d changed", s.FilesAdded, s.FilesRemoved, s.FilesChanged))
	if s.MountsChanged > 0 {
		parts = append(parts, fmt.Sprintf("mounts: %d", s.MountsChanged))
	}
	parts = append(parts, fmt.Sprintf("rw layer: %d", s.RootfsChanged))
	if s.MemfdsAdded > 0 {
		parts = append(parts, fmt.Sprintf("new memfds: %d", s.MemfdsAdded))
	}
	if s.GhostsAdded > 0 {
		parts = append(parts, fmt.Sprintf("new ghost files: %d", s.GhostsAdded))
	}
	if s.FindingsNew > 0 {
		parts = append(parts, fmt.Sprintf("new findings: %d", s.FindingsNew))
	}
	parts = append(parts, fmt.Sprintf("memory: %d mappings, %d pages changed (%d bytes), %d newly captured, %d new strings",
		s.MappingsChanged, s.PagesChanged, s.BytesChanged, s.PagesNew, s.NewStrings))
	return strings.Join(parts, "; ")
}

// diffWriter remembers the first write error and writes nothing after it.
type diffWriter struct {
	w   io.Writer
	err error
}

func (d *diffWriter) Write(b []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.w.Write(b)
	d.err = err
	return n, err
}

// whereText joins the uses of a file, the mappings of one process in one
// phrase ("5 mappings of pid 42, 0x1000-0x6000").
func whereText(where []string) string {
	type span struct {
		n          int
		start, end string
	}
	var out []string
	maps := map[string]*span{}
	for _, w := range where {
		var rng, prot, pid string
		if n, _ := fmt.Sscanf(w, "mapping %s %s of pid %s", &rng, &prot, &pid); n == 3 {
			start, end, _ := strings.Cut(rng, "-")
			if sp := maps[pid]; sp != nil {
				sp.n++
				sp.end = end
				continue
			}
			maps[pid] = &span{1, start, end}
			out = append(out, "\x00"+pid)
			continue
		}
		out = append(out, w)
	}
	for i, w := range out {
		if pid, ok := strings.CutPrefix(w, "\x00"); ok {
			sp := maps[pid]
			out[i] = fmt.Sprintf("%s of pid %s, %s-%s", count(sp.n, "mapping"), pid, sp.start, sp.end)
		}
	}
	return strings.Join(out, ", ")
}
