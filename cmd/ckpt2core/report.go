package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/archive"
	"github.com/ckpt2core/ckpt2core/ckptdiff"
	"github.com/ckpt2core/ckpt2core/inspect"
	"github.com/ckpt2core/ckpt2core/memsearch"
	"github.com/ckpt2core/ckpt2core/report"
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
	src, closeSrc, err := openCheckpoint(stop, inspectPath(path), aopts)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core report: %s\n", safe(err.Error()))
		return exitFailed
	}
	defer closeSrc()
	ck, err := inspect.Open(src)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core report: %s\n", safe(err.Error()))
		return exitFailed
	}
	iopts := inspect.Options{Env: *env, Name: path}
	iopts.Meta = checkpointMeta(src)
	rep, err := inspect.Inspect(ck, iopts)
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core report: %s\n", safe(err.Error()))
		return exitFailed
	}
	if iopts.Meta != nil {
		if b, err := iofs.ReadFile(iopts.Meta, "deleted.files"); err == nil {
			if opts.DeletedFiles, err = ckptdiff.ParseDeletedFiles(b); err != nil {
				rep.Warnings = append(rep.Warnings, err.Error())
			}
		} else if !errors.Is(err, iofs.ErrNotExist) {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("deleted.files: %v", err))
		}
	}
	doc := report.Build(ck, rep, opts)
	return writeReport(*out, doc.Write, processes(len(doc.Views)), stderr)
}

// reportDiff writes the comparison of checkpoints a and b as HTML.
func reportDiff(stop *stopper, a, b string, aopts *archive.Options, out string, stderr io.Writer) int {
	sides := make([]*ckptdiff.Checkpoint, 2)
	for i, path := range []string{a, b} {
		c, closeIt, err := openDiffSide(stop, path, aopts)
		if err != nil {
			fmt.Fprintf(stderr, "ckpt2core report: %s\n", safe(err.Error()))
			return exitFailed
		}
		defer closeIt()
		sides[i] = c
	}
	res, err := ckptdiff.Diff(sides[0], sides[1], ckptdiff.Options{Strings: 20, MinString: 6})
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core report: %s\n", safe(err.Error()))
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
		fmt.Fprintf(stderr, "ckpt2core report: %s\n", safe(err.Error()))
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
