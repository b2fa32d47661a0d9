package inspect

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/ckpt2core/ckpt2core/internal/termesc"
)

// WriteText prints the report as tables for people, in the spirit of
// `checkpointctl show --print-stats` and `checkpointctl inspect`.
func WriteText(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	p := func(format string, a ...any) { fmt.Fprintf(ew, format, a...) }
	p("Checkpoint:    %s\n", r.Checkpoint)
	p("Architecture:  %s (CRIU images version %d)\n", r.Arch, r.ImagesVersion)

	if c := r.Container; c != nil {
		p("\nContainer\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		row := func(k, v string) {
			if v != "" {
				fmt.Fprintf(tw, "  %s:\t%s\n", k, v)
			}
		}
		row("Engine", clean(c.Engine))
		row("Name", clean(c.Name))
		row("ID", clean(c.ID))
		row("Image", clean(c.Image))
		row("Image ID", clean(c.ImageID))
		row("Runtime", clean(c.Runtime))
		row("Hostname", clean(c.Hostname))
		row("Created", clean(c.Created))
		if c.CheckpointedFrom != "" && c.CheckpointedFrom != ConfigDumpFile {
			row("Checkpointed", clean(c.Checkpointed)+" ("+c.CheckpointedFrom+")")
		} else {
			row("Checkpointed", clean(c.Checkpointed))
		}
		row("Image ref", clean(c.ImageRef))
		row("IP", clean(strings.Join(c.IPs, ", ")))
		for _, n := range c.Networks {
			row("Network", clean(fmt.Sprintf("%s: %s %s mac %s gateway %s", n.Network, n.Interface, n.IP, n.MAC, n.Gateway)))
		}
		for _, b := range c.BindMounts {
			row("Bind mount", clean(fmt.Sprintf("%s -> %s (%s, %s)", b.Source, b.Destination, b.Type, b.Permissions)))
		}
		row("Log path", clean(c.LogPath))
		for _, l := range c.Logs {
			row("Log", clean(fmt.Sprintf("%s (%d bytes)", l.Member, l.Size)))
		}
		row("Pod", clean(c.Pod))
		row("Namespace", clean(c.Namespace))
		row("Command", ShellQuote(c.Command))
		tw.Flush()
	}

	if len(r.UTS) > 0 || r.Sizes != nil {
		p("\nCheckpoint\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		for _, u := range r.UTS {
			fmt.Fprintf(tw, "  Hostname (%s):\t%s\n", clean(u.Image), clean(u.Hostname))
			fmt.Fprintf(tw, "  Domain (%s):\t%s\n", clean(u.Image), clean(u.Domain))
		}
		if s := r.Sizes; s != nil {
			fmt.Fprintf(tw, "  Checkpoint size:\t%s\n", byteSize(s.CheckpointBytes))
			fmt.Fprintf(tw, "  Memory pages size:\t%s\n", byteSize(s.MemoryPagesBytes))
			if s.RootfsDiffBytes >= 0 {
				fmt.Fprintf(tw, "  Root fs diff size:\t%s\n", byteSize(s.RootfsDiffBytes))
			}
		}
		tw.Flush()
	}

	if s := r.DumpStats; s != nil {
		p("\nCRIU dump statistics\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		us := func(k string, v uint32) { fmt.Fprintf(tw, "  %s:\t%12s\n", k, time.Duration(v)*time.Microsecond) }
		n := func(k string, v uint64) { fmt.Fprintf(tw, "  %s:\t%12d\n", k, v) }
		us("Freezing time", s.FreezingTimeUS)
		us("Frozen time", s.FrozenTimeUS)
		us("Memdump time", s.MemdumpTimeUS)
		us("Memwrite time", s.MemwriteTimeUS)
		if s.IrmapResolveUS != 0 {
			us("Irmap resolve time", s.IrmapResolveUS)
		}
		n("Pages scanned", s.PagesScanned)
		n("Pages skipped (in parent)", s.PagesSkippedParent)
		n("Pages written", s.PagesWritten)
		n("Pages lazy", s.PagesLazy)
		n("Page pipes", s.PagePipes)
		n("Page pipe buffers", s.PagePipeBufs)
		if s.ShpagesScanned+s.ShpagesWritten+s.ShpagesSkippedParent != 0 {
			n("Shared pages scanned", s.ShpagesScanned)
			n("Shared pages skipped (in parent)", s.ShpagesSkippedParent)
			n("Shared pages written", s.ShpagesWritten)
		}
		tw.Flush()
	}
	if s := r.RestoreStats; s != nil {
		p("\nCRIU restore statistics\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  Forking time:\t%12s\n  Restore time:\t%12s\n", time.Duration(s.ForkingTimeUS)*time.Microsecond, time.Duration(s.RestoreTimeUS)*time.Microsecond)
		fmt.Fprintf(tw, "  Pages compared:\t%12d\n  Pages skipped (COW):\t%12d\n  Pages restored:\t%12d\n", s.PagesCompared, s.PagesSkippedCOW, s.PagesRestored)
		tw.Flush()
	}

	p("\nProcess tree\n")
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PID\tPPID\tSTATE\tTHREADS\tCOMM\tCOMMAND")
	depth := treeDepths(r.Processes)
	for _, pr := range r.Processes {
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%d\t%s%s\t%s\n", pr.Pid, pr.PPid, pr.State, pr.ThreadCount,
			strings.Repeat("  ", depth[pr.Pid]), clean(pr.Comm), oneLine(commandText(pr.Argv), 100))
	}
	tw.Flush()

	for i := range r.Processes {
		writeProcess(ew, &r.Processes[i])
	}

	if len(r.Mounts) > 0 {
		p("\nMounts (%d)\n", len(r.Mounts))
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tPARENT\tMOUNTPOINT\tTYPE\tSOURCE\tROOT")
		for _, m := range r.Mounts {
			fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%s\t%s\n", m.MountID, m.ParentID, clean(m.Mountpoint), clean(m.FSType), clean(m.Source), clean(m.Root))
		}
		tw.Flush()
	}
	if len(r.RootfsDiff) > 0 {
		p("\nChanged files (rootfs-diff.tar, deleted.files: %d entries)\n", len(r.RootfsDiff))
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SIZE\tTYPE\tPATH")
		for _, d := range r.RootfsDiff {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", humanBytes(uint64(d.Size)), d.Type, clean(d.Path))
		}
		tw.Flush()
	}
	for _, v := range r.Volumes {
		more := ""
		if v.Truncated {
			more = fmt.Sprintf(", the first %d listed", len(v.Files))
		}
		p("\nVolume %s (volumes/%s.tar, %s, %d entries%s)\n", clean(v.Name), clean(v.Name), humanBytes(uint64(v.Size)), v.Entries, more)
		if len(v.Files) > 0 {
			tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  SIZE\tTYPE\tPATH")
			for _, d := range v.Files {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", humanBytes(uint64(d.Size)), d.Type, clean(d.Path))
			}
			tw.Flush()
		}
	}
	if len(r.Warnings) > 0 {
		p("\nWarnings\n")
		for _, w := range r.Warnings {
			p("  %s\n", clean(w))
		}
	}
	return ew.err
}

func writeProcess(ew io.Writer, pr *Process) {
	p := func(format string, a ...any) { fmt.Fprintf(ew, format, a...) }
	p("\nProcess %d (%s): %s", pr.Pid, clean(pr.Comm), pr.State)
	switch {
	case pr.ExitCode != nil:
		p(" (exited with status %d, not reaped)", *pr.ExitCode)
	case pr.ExitSignal != nil:
		p(" (killed by %s, not reaped)", signalName(*pr.ExitSignal))
	}
	p(", %d thread%s\n", pr.ThreadCount, plural(pr.ThreadCount))
	if len(pr.Argv) > 0 {
		trunc := ""
		if pr.ArgvTruncated {
			trunc = " (truncated)"
		}
		p("  Command:  %s%s\n", commandText(pr.Argv), trunc)
	}
	if pr.Exe != "" {
		p("  Exe:      %s\n", clean(pr.Exe))
	}
	if pr.Cwd != "" {
		p("  Cwd:      %s\n", clean(pr.Cwd))
	}
	if pr.Root != "" && pr.Root != "/" {
		p("  Root:     %s\n", clean(pr.Root))
	}
	if len(pr.Env) > 0 {
		p("  Environment (%d):\n", len(pr.Env))
		for _, e := range pr.Env {
			p("    %s\n", clean(e))
		}
	}
	if len(pr.Threads) > 0 {
		p("  Threads:\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    TID\tNAME\tPC\tINSTRUCTION\tSYSTEM CALL")
		for _, t := range pr.Threads {
			inst := t.Instruction
			switch {
			case t.Code == CodeNotCaptured:
				inst = "code not captured"
			case t.Code == CodeUnreadable:
				inst = "code unreadable (damaged images)"
			case t.Code == CodeSysroot:
				inst += " (code from sysroot)"
			}
			fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\t%s\n", t.Tid, clean(t.Name), t.PC, inst, syscallLine(t.Syscall))
		}
		tw.Flush()
	}
	if m := pr.Memory; m != nil {
		p("  Memory: %d mappings, %s mapped, %s captured, %s shared", m.VMAs, humanBytes(m.MappedBytes), humanBytes(m.CapturedBytes), humanBytes(m.SharedBytes))
		if m.UnreadableBytes > 0 {
			p(", %s unreadable (damaged images)", humanBytes(m.UnreadableBytes))
		}
		p("\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "    KIND\t%8s\t%10s\t%10s\n", "MAPPINGS", "SIZE", "CAPTURED")
		for _, k := range m.Kinds {
			fmt.Fprintf(tw, "    %s\t%8d\t%10s\t%10s\n", k.Kind, k.VMAs, humanBytes(k.Bytes), humanBytes(k.CapturedBytes))
		}
		tw.Flush()
	}
	if len(pr.Files) > 0 {
		p("  Open files:\n")
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    FD\tTYPE\tDESCRIPTION")
		for _, f := range pr.Files {
			fmt.Fprintf(tw, "    %d\t%s\t%s\n", f.FD, f.Type, clean(f.Description))
		}
		tw.Flush()
	}
	for _, w := range pr.Warnings {
		p("  warning: %s\n", clean(w))
	}
}

func syscallLine(s *Syscall) string {
	if s == nil {
		return "-"
	}
	name := s.Name
	if name == "" {
		name = fmt.Sprintf("syscall %d", s.Nr)
	}
	if strings.Contains(s.Evidence, "not verified") {
		name += "?"
	}
	return name + " " + s.Note
}

// treeDepths returns each process's depth in the tree (0 for roots).
func treeDepths(ps []Process) map[uint32]int {
	parent := map[uint32]uint32{}
	for _, p := range ps {
		parent[p.Pid] = p.PPid
	}
	d := map[uint32]int{}
	for _, p := range ps {
		n := 0
		for q, ok := parent[p.PPid]; ok && n < len(ps); q, ok = parent[q] {
			n++
		}
		d[p.Pid] = n
	}
	return d
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// ShellQuote joins argv into one line a POSIX shell would split back into
// the same arguments.
func ShellQuote(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case shellSafe.MatchString(a):
			q[i] = a
		case strings.IndexFunc(a, notPrintable) >= 0 || !utf8.ValidString(a):
			q[i] = ansiCQuote(a)
		default:
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// commandText is argv shell-quoted for the text report, with a run of
// trailing empty arguments (a process title padded with NULs over its
// argument area, as nginx's workers have) counted instead of quoted.
func commandText(argv []string) string {
	n := len(argv)
	for n > 0 && argv[n-1] == "" {
		n--
	}
	if empty := len(argv) - n; empty > 1 {
		return fmt.Sprintf("%s (+%d empty arguments)", ShellQuote(argv[:n]), empty)
	}
	return ShellQuote(argv)
}

func notPrintable(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }

// ansiCQuote quotes s as bash's $'...', escaping every byte that is not a
// printable character, so that no control sequence reaches a terminal.
func ansiCQuote(s string) string {
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == utf8.RuneError && n == 1, notPrintable(r):
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, "\\x%02x", c)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteString("'")
	return b.String()
}

// clean makes s safe to print on a terminal (termesc.String).
func clean(s string) string { return termesc.String(s) }

// oneLine shortens s to n runes for a table cell (the full text is in the
// process section).
func oneLine(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	if err != nil {
		e.err = err
	}
	return n, err
}

// signalName names signal n as kill -l does ("SIGKILL"), or "signal N".
func signalName(n uint32) string {
	if s := unix.SignalName(syscall.Signal(n)); s != "" {
		return s
	}
	return fmt.Sprintf("signal %d", n)
}

// byteSize writes b as checkpointctl does (1024-based, one decimal).
func byteSize(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
