package main

import (
	"bufio"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/inspect"
	"github.com/ckpt2core/ckpt2core/memsearch"
	"github.com/ckpt2core/ckpt2core/report"
)

const reportUsage = `Usage: ckpt2core report [flags] CHECKPOINT -o REPORT.html

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
container changed.

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
	if fs.NArg() != 1 {
		return usageError(stderr, "report", exitUsage, "want one CHECKPOINT, got %d arguments", fs.NArg())
	}
	if *out == "" {
		return usageError(stderr, "report", exitUsage, "-o REPORT.html is required")
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
	doc := report.Build(ck, rep, opts)
	err = report.WriteFile(*out, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := doc.Write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core report: %s\n", safe(err.Error()))
		return exitFailed
	}
	if st, err := os.Stat(*out); err == nil {
		fmt.Fprintf(stderr, "ckpt2core report: wrote %s (%s, %s)\n", safe(*out), processes(len(doc.Views)), report.Size(uint64(st.Size())))
	}
	return exitOK
}

func processes(n int) string {
	if n == 1 {
		return "1 process"
	}
	return fmt.Sprintf("%d processes", n)
}
