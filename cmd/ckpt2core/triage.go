package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/triage"
)

// exitFindings is triage's status when a finding is above info.
const exitFindings = 4

const triageExamples = `
Lists what is suspicious in a checkpoint, highest severity first: modified
code, writable+executable and anonymous executable memory (code-generating
runtimes recognised and reported as info), executables and libraries from
deleted files or memfds, name spoofing, preloading, deleted files held
open, network connections, shells started by servers, credentials beyond
the container's spec, signal handlers in anonymous code, and bash history
recovered from the heap. Each finding names the process, the rule, the
severity and its evidence (addresses, mapping, bytes, the CRIU image and
entry). The README's "triage" section documents every rule and its false
positives.

Examples:
  ckpt2core triage checkpoint.tar.zst
  ckpt2core triage dump/ --pid 42 --json | jq '.[] | select(.severity=="high")'
  ckpt2core triage checkpoint.tar --root /srv/image-root    diff patched code
  ckpt2core triage after.tar.zst --image image-oci.tar      the same, from the container image

Exit status: 0 no finding above info; 4 at least one medium or high
finding; 1 the checkpoint could not be read; 2 usage error.
`

func runTriage(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fset := pflag.NewFlagSet("ckpt2core triage", pflag.ContinueOnError)
	asJSON := fset.Bool("json", false, "print a JSON list of findings")
	aopts := archiveFlags(fset)
	pids := fset.UintSlice("pid", nil, "examine only this process (repeatable)")
	sysroot := fset.String("root", "", "directory with the container's files, to show the bytes of modified code that differ from them")
	image := imageFlag(fset)
	verbose := fset.BoolP("verbose", "v", false, "say what a compressed archive could not stream (pages spooled whole)")
	help := helpText(fset, "Usage: ckpt2core triage CHECKPOINT [--pid N] [--json] [--root DIR | --image IMAGE] [-v]", triageExamples)
	if status, ok := parseFlags(fset, "triage", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	if fset.NArg() != 1 {
		return usageError(stderr, "triage", exitUsage, "want one CHECKPOINT, got %s", count(fset.NArg(), "argument"))
	}
	if *image != "" && *sysroot != "" {
		return usageError(stderr, "triage", exitUsage, "--root and --image exclude each other")
	}
	path := fset.Arg(0)
	iopts := inspect.Options{Env: true, Name: path}
	topts := triage.Options{}
	for _, p := range *pids {
		iopts.Pids = append(iopts.Pids, uint32(p))
		topts.Pids = append(topts.Pids, uint32(p))
	}
	src, ck, closeSrc, err := openTriaged(stop, path, aopts, iopts, topts, *verbose, stderr)
	if err != nil {
		complain(stderr, "", "%s", err)
		return openStatus(err)
	}
	defer closeSrc()
	iopts.Meta = checkpointMeta(src)
	if *image != "" {
		// The files the checkpoint maps, unpacked from the image into
		// a temporary directory: then as --root.
		dir, cleanup, err := imageRoot(stop, *image, src, ck, stderr)
		if err != nil {
			complain(stderr, "", "%s", err)
			return exitUsage
		}
		defer cleanup()
		*sysroot = dir
	}
	if *sysroot != "" {
		r, err := openRoot(*sysroot, src, ck, stderr)
		if err != nil {
			complain(stderr, "", "%s", err)
			return exitUsage
		}
		defer r.Close()
		topts.Files = r
	}
	if sp, err := specSecurity(iopts.Meta); err == nil {
		topts.Spec = sp
	} else {
		fmt.Fprintf(stderr, "ckpt2core: %s (credentials are not compared with the spec)\n", safe(err.Error()))
	}
	rep, err := inspect.Inspect(ck, iopts)
	if err != nil {
		complain(stderr, "", "%s", err)
		return exitUsage
	}
	findings, warnings := triage.Run(ck, rep, topts)
	for _, w := range append(rep.Warnings, warnings...) {
		fmt.Fprintf(stderr, "ckpt2core: warning: %s\n", safe(w))
	}
	if *asJSON {
		if findings == nil {
			findings = []triage.Finding{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(findings)
	} else {
		err = writeFindings(stdout, findings)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: %v\n", err)
		return exitFailed
	}
	for _, f := range findings {
		if f.Severity > triage.Info {
			return exitFindings
		}
	}
	return exitOK
}

// openTriaged opens the checkpoint at path for triage (openRetaining,
// keeping what inspect and the rules read with iopts and topts).
func openTriaged(stop *stopper, path string, aopts *archive.Options, iopts inspect.Options, topts triage.Options, verbose bool, stderr io.Writer) (criuimg.Source, *criuimg.Checkpoint, func(), error) {
	return openRetaining(stop, path, aopts, triageReads(iopts, topts), "triage", verbose, stderr)
}

// openRetaining opens the checkpoint at path for command cmd
// (openSalvaged). A compressed archive streams, keeping of its pages only
// what reads says the command will read (retainReads); the stream is
// read to its end here (a truncated archive fails). Should the full tree
// then hold a process that was not in the provisional one (its images
// came after the first pages file) and that reads from a pages file of
// which only some bytes were kept (shared memory, a memfd), the archive
// is read again, unpacked whole; verbose says so, and names the pages
// files spooled whole.
func openRetaining(stop *stopper, path string, aopts *archive.Options, reads pageReads, cmd string, verbose bool, stderr io.Writer) (criuimg.Source, *criuimg.Checkpoint, func(), error) {
	o := *aopts
	o.Stream = o.ExtractDir == ""
	endBar := readProgress(&o, path, stderr, "unpacking")
	defer endBar()
	src, closeSrc, err := openCheckpoint(stop, inspectPath(path), &o)
	if err != nil {
		return nil, nil, nil, err
	}
	a := streamedArchive(src)
	var told *retained
	if a != nil {
		told = retainReads(src, reads)
		err := a.Wait()
		endBar()
		if verbose {
			for _, n := range a.Notes() {
				fmt.Fprintf(stderr, "ckpt2core %s: %s\n", cmd, safe(n))
			}
		}
		if err != nil {
			closeSrc()
			return nil, nil, nil, podOf(err, o)
		}
	}
	ck, err := criuimg.SalvageOpen(src)
	if err != nil {
		closeSrc()
		return nil, nil, nil, err
	}
	if a == nil {
		return src, ck, closeSrc, nil
	}
	if hurt := hurtByRetain(ck, told, reads); len(hurt) > 0 {
		closeSrc()
		if verbose {
			fmt.Fprintf(stderr, "ckpt2core %s: pids %s: their images come after the pages in the archive, and they share pages with other processes: reading it again, unpacked whole\n", cmd, joinPids(hurt))
		}
		o.Stream = false
		o.OnRead = nil
		return openSalvaged(stop, inspectPath(path), &o)
	}
	return src, ck, closeSrc, nil
}

func joinPids(pids []uint32) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.FormatUint(uint64(p), 10)
	}
	return strings.Join(s, ", ")
}

// explain is the one line of a finding.
func explain(f triage.Finding) string {
	s := safe(f.Subject)
	jit := ""
	if f.Runtime != "" {
		jit = " (" + f.Runtime + " generates code: expected)"
	}
	switch f.Rule + "/" + f.Reason {
	case "modified-code/captured":
		return "captured pages of the private executable mapping of " + s + ": its code was written to (patched)"
	case "modified-code/captured-file-refused":
		return "captured pages of the private executable mapping of " + s + " (patched code; the root's file was not usable to compare)"
	case "modified-code/differs":
		return "code of " + s + " differs from the file: patched in memory"
	case "modified-code/criu-injection":
		return "captured first code page of " + s + ": where CRIU itself ran its injected system calls (compare with --root)"
	case "modified-code/captured-identical":
		return "captured pages of " + s + " are identical to the file"
	case "deleted-exe/exe":
		return "the executable " + s + " was deleted after it was started"
	case "deleted-exe/not-in-root":
		return "executable mapping of " + s + ", which the root does not hold as the checkpoint recorded it (missing, other size or build-id)"
	case "deleted-exe/mapping":
		return "executable mapping of the deleted file " + s
	case "memfd-exe/exe":
		return "the executable is a memfd (" + s + "): a program run without a file"
	case "memfd-exe/mapping":
		return "executable mapping of a memfd (" + s + ")"
	case "name-spoof/kernel-thread":
		return "named like a kernel thread (" + s + ") but a user process with its own memory"
	case "name-spoof/mismatch":
		return "comm " + s + " matches neither the executable nor argv[0]"
	case "preload/environment":
		return s + " is set in the environment"
	case "preload/environment-from-spec":
		return s + " is set in the environment, as the container's spec sets it"
	case "preload/ld.so.preload":
		return "/etc/ld.so.preload was written in the container's rw layer"
	case "deleted-open-file/fd":
		return "the deleted file " + s + " is held open"
	case "network/sockets":
		return s + " socket(s)"
	case "network/reverse-shell":
		return "a shell (" + s + ") whose standard input/output is a network socket: a reverse shell"
	case "network/not-service":
		return s + " connection(s) by a process that is not the container's service"
	case "network/raw":
		return s + " raw or packet socket(s)"
	case "process-tree/interactive":
		return "an interactive shell started (through its ancestors) by the server process " + s
	case "process-tree/script":
		return "a shell or interpreter started by the server process " + s
	case "credentials/capabilities":
		return "capabilities in the " + s + " set beyond the container's spec"
	case "credentials/seccomp-off":
		return "thread " + s + " has no seccomp filter, which the container's spec sets"
	case "signal-handler/unmapped":
		return "the handler of signal " + s + " is not in any mapping"
	case "signal-handler/not-executable":
		return "the handler of signal " + s + " is in memory that is not executable"
	case "signal-handler/anon":
		return "the handler of signal " + s + " is in anonymous executable memory" + jit
	case "shell-history/bash":
		return s + " bash history line(s) recovered from the heap"
	}
	switch f.Rule {
	case "wx-memory":
		return "writable and executable " + f.Reason + " memory " + s + jit
	case "anon-exec":
		return "executable " + f.Reason + " memory (not from a file)" + jit
	}
	return f.Rule + " " + f.Reason + " " + s
}

func writeFindings(w io.Writer, findings []triage.Finding) error {
	ew := &errWriter{w: w}
	if len(findings) == 0 {
		fmt.Fprintln(ew, "No findings.")
		return ew.err
	}
	for _, f := range findings {
		who := "container"
		if f.Pid != 0 {
			args := f.Argv
			for len(args) > 1 && args[len(args)-1] == "" {
				args = args[:len(args)-1] // a zeroed argument area
			}
			argv := inspect.ShellQuote(args)
			who = fmt.Sprintf("pid %d (%s) exe %s: %s", f.Pid, safe(f.Comm), safe(f.Exe), safe(oneLineCut(argv, 100)))
		}
		fmt.Fprintf(ew, "%-6s %s  %s\n       %s\n", strings.ToUpper(f.Severity.String()), f.Rule, who, explain(f))
		for i, e := range f.Evidence {
			if i == 16 {
				fmt.Fprintf(ew, "         ... %d more (--json lists all)\n", len(f.Evidence)-i)
				break
			}
			var parts []string
			add := func(k, v string) {
				if v != "" {
					parts = append(parts, k+v)
				}
			}
			add("", safe(e.Image))
			add("", safe(e.Entry))
			if e.Start != "" {
				r := e.Start
				if e.End != "" {
					r += "-" + e.End
				}
				add("", r)
			}
			add("", safe(e.Mapping))
			add("", e.Prot)
			add("path ", safe(e.Path))
			if e.Size != nil {
				add("size ", fmt.Sprint(*e.Size))
			}
			add("sha256 ", e.SHA256)
			add("", safe(e.Value))
			fmt.Fprintf(ew, "         %s\n", strings.Join(parts, "  "))
			if e.Hex != "" {
				fmt.Fprintf(ew, "           bytes %s  |%s|\n", e.Hex, safe(e.ASCII))
			}
			if e.Original != "" {
				fmt.Fprintf(ew, "           file  %s\n", e.Original)
			}
		}
	}
	return ew.err
}

func oneLineCut(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// errWriter remembers the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return len(b), nil
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}
