package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/carve"
	"github.com/ckpt2core/ckpt2core/internal/ckptdiff"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/memsearch"
	"github.com/ckpt2core/ckpt2core/internal/report"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

const reportUsage = `Usage: ckpt2core report [flags] CHECKPOINT -o REPORT.html
       ckpt2core report [flags] A B -o DIFF.html

Writes one self-contained HTML file about CHECKPOINT that opens from disk
in any browser, makes no network request and runs no script but its own:
the container (engine, image, pod, hostname, IP addresses, times) and
CRIU's dump statistics; the process tree, each process linked to its
section; each process's memory map drawn to scale (coloured by kind:
executable, libraries, heap, stack, anonymous, JIT, shared; the height of
the solid bar is the share of captured pages; unmapped gaps compressed;
hover a region for its addresses, protection, path and captured bytes),
with the hits of each --mark pattern placed at their addresses; threads
(PC, instruction, system call); files and sockets; the files the
container changed and deleted.

With two checkpoints A and B (say before and after an incident), the file
shows what 'ckpt2core diff A B' finds: processes added, removed and
changed (command lines, environments, credentials, threads, files and
sockets, mappings, pages changed and the strings new in B), the rw layer,
mounts and memfds.

Every string from the checkpoint is escaped: a hostile comm, path or
argument cannot run in the page. The file is written with mode 0600 and
appears under its name only once complete; an existing REPORT.html is
replaced, a symbolic link is refused.

Flags:
%s
Examples:
  ckpt2core report checkpoint.tar.zst -o report.html
  ckpt2core report /var/lib/criu/dump -o report.html --mark RANDOM_1432_KEY
  ckpt2core report dump/ -o r.html --mark password= --mark-hex 'de ad be ef'
  ckpt2core report before.tar after.tar.zst -o diff.html

Exit status: 0 written (with warnings in the report for what could not be
read); 1 the checkpoint could not be read, or the report not written;
2 usage error.
`

func runReport(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core report", pflag.ContinueOnError)
	out := fs.StringP("output", "o", "", "the HTML file to write (required)")
	marks := fs.StringArray("mark", nil, "place the hits of this literal PATTERN on the memory maps (repeatable)")
	hexMarks := fs.StringArray("mark-hex", nil, "place the hits of these hex bytes on the memory maps (repeatable)")
	env := fs.Bool("env", false, "include each process's environment")
	findings := fs.Bool("findings", true, "run triage's rules and show their findings, placed on the maps")
	artifacts := fs.Bool("artifacts", true, "list what 'extract' recovers (ghost files, memfds, rw layer, buffers, queues) with its SHA-256")
	aopts := archiveFlags(fs)
	help := func(w io.Writer) { fmt.Fprintf(w, reportUsage, fs.FlagUsages()) }
	if status, ok := parseFlags(fs, "report", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	if fs.NArg() != 1 && fs.NArg() != 2 {
		return usageError(stderr, "report", exitUsage, "want one CHECKPOINT (or two to compare), got %d arguments", fs.NArg())
	}
	if *out == "" {
		return usageError(stderr, "report", exitUsage, "-o REPORT.html is required")
	}
	if fs.NArg() == 2 {
		if len(*marks)+len(*hexMarks) > 0 {
			return usageError(stderr, "report", exitUsage, "--mark applies to the report of one checkpoint, not to a comparison")
		}
		return reportDiff(stop, fs.Arg(0), fs.Arg(1), aopts, *out, stderr)
	}
	var opts report.Options
	for _, pat := range *marks {
		m, err := memsearch.NewLiteral([]byte(pat), false)
		if err != nil {
			return usageError(stderr, "report", exitUsage, "--mark %q: %v", pat, err)
		}
		opts.Marks = append(opts.Marks, report.Mark{Name: pat, Matcher: m})
	}
	for _, pat := range *hexMarks {
		b, err := parseHexPattern(pat)
		if err == nil {
			var m memsearch.Matcher
			if m, err = memsearch.NewLiteral(b, false); err == nil {
				opts.Marks = append(opts.Marks, report.Mark{Name: pat, Matcher: m})
				continue
			}
		}
		return usageError(stderr, "report", exitUsage, "--mark-hex %q: %v", pat, err)
	}
	path := fs.Arg(0)
	// A compressed archive streams, keeping what inspect (with the
	// environments), the rules and carve read (reportReads); with --mark
	// every page is searched: it is unpacked whole.
	var src criuimg.Source
	var ck *criuimg.Checkpoint
	var closeSrc func()
	var err error
	if len(opts.Marks) == 0 {
		src, ck, closeSrc, err = openRetaining(stop, path, aopts, reportReads(*findings, *artifacts), "report", false, stderr)
	} else {
		src, ck, closeSrc, err = openSalvaged(stop, inspectPath(path), aopts)
	}
	if err != nil {
		complain(stderr, "report", "%v", err)
		return openStatus(err)
	}
	defer closeSrc()
	// Environments for triage's rules (LD_PRELOAD, ...); shown only
	// with --env.
	iopts := inspect.Options{Env: true, Name: path}
	iopts.Meta = checkpointMeta(src)
	rep, err := inspect.Inspect(ck, iopts)
	if err != nil {
		complain(stderr, "report", "%v", err)
		return exitFailed
	}
	if *findings {
		var warnings []string
		opts.Findings, warnings = reportFindings(ck, rep, iopts.Meta)
		rep.Warnings = append(rep.Warnings, warnings...)
	}
	if !*env {
		for i := range rep.Processes {
			rep.Processes[i].Env = nil
		}
	}
	if *artifacts {
		opts.Artifacts = reportArtifacts(src, ck, rep, stderr)
	}
	doc := report.Build(ck, rep, opts)
	return writeReport(*out, doc.Write, processes(len(doc.Views)), stderr)
}

// reportReads adds to k what the report of one checkpoint reads of
// process p of ck (without --mark): inspect's reads with the
// environments, and those of triage's rules (findings) and of carve
// (artifacts) when they run.
func reportReads(findings, artifacts bool) pageReads {
	rs := []pageReads{inspectReads}
	if findings {
		rs[0] = triageReads(inspect.Options{Env: true}, triage.Options{}) // inspect's reads and the rules'
	}
	if artifacts {
		rs = append(rs, carveReads(carve.Options{}))
	}
	return readsAll(rs...)
}

// reportDiff writes the comparison of checkpoints a and b as HTML. The
// two sides are opened as diff opens them (openDiffSides: a compressed
// archive streams twice, keeping what inspect and triage read and the
// pages that differ): B's page reads only B's pagemaps beyond that.
func reportDiff(stop *stopper, a, b string, aopts *archive.Options, out string, stderr io.Writer) int {
	opts := ckptdiff.Options{Strings: 20, MinString: 6}
	sides, closeSides, err := openDiffSides(stop, []string{a, b}, aopts, opts, false, stderr)
	if err != nil {
		complain(stderr, "report", "%v", err)
		return exitFailed
	}
	defer closeSides()
	res, err := ckptdiff.Diff(sides[0], sides[1], opts)
	if err != nil {
		complain(stderr, "report", "%v", err)
		return exitFailed
	}
	docB := report.Build(sides[1].Images, sides[1].Report, report.Options{Notes: report.DiffNotes(res)})
	return writeReport(out, func(w io.Writer) error { return report.WriteDiff(w, res, docB) }, fmt.Sprintf("%d differences", res.Summary.Total()), stderr)
}

// writeReport writes a page to out (report.WriteFile) and says so.
func writeReport(out string, write func(io.Writer) error, what string, stderr io.Writer) int {
	err := report.WriteFile(out, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		complain(stderr, "report", "%v", err)
		return exitFailed
	}
	if st, err := os.Stat(out); err == nil {
		fmt.Fprintf(stderr, "ckpt2core report: wrote %s (%s, %s)\n", safe(out), what, report.Size(uint64(st.Size())))
	}
	return exitOK
}

func processes(n int) string {
	if n == 1 {
		return "1 process"
	}
	return fmt.Sprintf("%d processes", n)
}

// reportArtifacts lists what carve recovers from ck, each hashed as it
// streams by (nothing is written). A problem is said on stderr and the
// other artifacts are still listed.
func reportArtifacts(src criuimg.Source, ck *criuimg.Checkpoint, rep *inspect.Report, stderr io.Writer) []report.Artifact {
	opts := carve.Options{Report: rep}
	if cs, ok := src.(*checkpointSource); ok {
		if f, err := cs.ck.RootfsDiff(); err == nil {
			defer f.Close()
			opts.RootfsDiff = f
		}
	}
	var out []report.Artifact
	problem := func(err error) { fmt.Fprintf(stderr, "ckpt2core report: artifacts: %s\n", safe(err.Error())) }
	err := carve.Carve(ck, opts, func(a carve.Artifact) error {
		rc, err := a.Open()
		if err != nil {
			problem(fmt.Errorf("%s %s entry %d: %w", a.Kind, a.Image, a.Entry, err))
			return nil
		}
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			problem(fmt.Errorf("%s %s entry %d: %w", a.Kind, a.Image, a.Entry, err))
			return nil
		}
		name := a.Path
		if name == "" {
			name = a.Label
		}
		out = append(out, report.Artifact{Name: name, Kind: string(a.Kind), Pid: a.Pid, Size: n,
			SHA256: hex.EncodeToString(h.Sum(nil)), Source: fmt.Sprintf("%s entry %d", a.Image, a.Entry)})
		return nil
	}, problem)
	if err != nil {
		problem(err)
	}
	return out
}

// reportFindings runs triage's rules and turns their findings into the
// report's: the sentence of 'ckpt2core triage', the evidence one line
// each, placed at the first evidence's address.
func reportFindings(ck *criuimg.Checkpoint, rep *inspect.Report, meta iofs.FS) ([]report.Finding, []string) {
	var topts triage.Options
	if sp, err := specSecurity(meta); err == nil {
		topts.Spec = sp
	}
	found, warnings := triage.Run(ck, rep, topts)
	var out []report.Finding
	for _, f := range found {
		rf := report.Finding{Pid: f.Pid, Severity: f.Severity.String(), Rule: f.Rule, Summary: explain(f)}
		for i, e := range f.Evidence {
			if i == 0 && e.Start != "" {
				rf.Addr, _ = strconv.ParseUint(e.Start, 0, 64)
			}
			rf.Evidence = append(rf.Evidence, evidenceLine(e))
		}
		out = append(out, rf)
	}
	return out, warnings
}

// evidenceLine is one evidence of a finding on one line.
func evidenceLine(e triage.Evidence) string {
	var parts []string
	add := func(label, s string) {
		if s != "" {
			parts = append(parts, label+s)
		}
	}
	add("", e.Image)
	add("entry ", e.Entry)
	if e.Start != "" {
		parts = append(parts, e.Start+"-"+e.End)
	}
	add("", e.Mapping)
	add("", e.Prot)
	add("path ", e.Path)
	add("sha256 ", e.SHA256)
	add("", e.Value)
	add("bytes ", e.ASCII)
	return strings.Join(parts, " ")
}
