package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/elfcore"
)

const convertExamples = `
Examples:
  ckpt2core /var/lib/criu/dump -o out/            every process of the dump
  ckpt2core dump/ -o out/ --pid 42 --pid 43       only these processes
  ckpt2core dump/ -o out/ --force                 replace existing cores
  ckpt2core dump/ -o out/ --root /                clean file pages from this host's files

Each core is written as OUT_DIR/core.<pid> (pid as in the images), mode
0600, through a temporary file renamed into place when complete. One line
per core goes to stdout (pid, comm, threads, bytes, path); notices and
errors go to stderr; --json prints one array of records instead (pid,
comm, threads, bytes, path, zombie, error, warnings). A zombie gets no
core, as with the kernel.

Exit status: 0 all converted; 1 nothing converted; 2 usage error;
3 some processes converted and others failed.
`

type convertResult struct {
	pid      uint32
	comm     string
	threads  int
	size     uint64
	path     string
	exePath  string
	arch     criuimg.Arch
	zombie   bool
	exitCode uint32
	err      error
	notes    []string
	// container is the pod checkpoint's container it comes from ("" for
	// another checkpoint); pid 0 with err: the container was not read.
	container string
}

func runConvert(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core", pflag.ContinueOnError)
	out := fs.StringP("output", "o", "", "output directory for the cores (created if missing)")
	pids := fs.UintSlice("pid", nil, "convert only this process (repeatable)")
	force := fs.BoolP("force", "f", false, "replace existing core files")
	jobs := fs.IntP("jobs", "j", runtime.NumCPU(), "processes converted in parallel (one at a time while a compressed archive streams)")
	quiet := fs.BoolP("quiet", "q", false, "no notices on stderr (errors are still printed)")
	asJSON := fs.Bool("json", false, "print one JSON array with a record per process instead of lines")
	root := fs.String("root", "", "root filesystem supplying the clean pages of mapped files (e.g. / or an unpacked image)")
	image := imageFlag(fs)
	verbose := fs.BoolP("verbose", "v", false, "say how a compressed archive was converted (pages files spooled whole, cores written anew)")
	staging := fs.String("staging", "insert", "how cores are written while a compressed archive streams: insert, rewrite (always write anew: tests) or off (spool the pages first)")
	fs.MarkHidden("staging")
	aopts := archiveFlags(fs)
	help := helpText(fs, "Usage: ckpt2core [flags] CHECKPOINT -o OUT_DIR", convertExamples)
	if status, ok := parseFlags(fs, "convert", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	// fail ends the run on a fatal error: said on stderr and, with
	// --json, as a JSON error object on stdout (a program reading it
	// gets valid JSON whatever happens).
	fail := func(code int, format string, a ...any) int {
		complain(stderr, "", format, a...)
		if *asJSON {
			writeJSONError(stdout, code, fmt.Sprintf(format, a...))
		}
		return code
	}
	badUsage := func(format string, a ...any) int {
		usageError(stderr, "convert", exitUsage, format, a...)
		if *asJSON {
			writeJSONError(stdout, exitUsage, fmt.Sprintf(format, a...))
		}
		return exitUsage
	}
	switch {
	case len(args) == 0:
		fmt.Fprint(stderr, usage) // plain 'ckpt2core': the overview
		return exitUsage
	case fs.NArg() != 1:
		return badUsage("want one CHECKPOINT, got %s", count(fs.NArg(), "argument"))
	case *out == "":
		return badUsage("-o OUT_DIR is required")
	case *jobs < 1:
		return fail(exitUsage, "--jobs must be at least 1")
	case *staging != "insert" && *staging != "rewrite" && *staging != "off":
		return badUsage("--staging: want insert, rewrite or off, got %q", *staging)
	}
	// A compressed archive is converted while it streams (convertstream.go)
	// unless the cores need files (--root, --image, --parent) or the
	// members are extracted.
	copts := *aopts
	copts.Stream = *root == "" && *image == "" && aopts.ExtractDir == "" && aopts.Parent == "" && *staging != "off"
	// runPod converts a pod checkpoint named without --container: every
	// container, each into OUT_DIR/NAME (pod.go).
	runPod := func(pod *archive.Pod) int {
		if aopts.ExtractDir != "" {
			return badUsage("--extract on a pod checkpoint needs --container NAME (it has %s)", strings.Join(pod.Names(), ", "))
		}
		if len(*pids) > 0 {
			return badUsage("--pid on a pod checkpoint needs --container NAME (pids are per container; it has %s)", strings.Join(pod.Names(), ", "))
		}
		return podConvert{pod: pod, aopts: *aopts, out: *out, root: *root, image: *image, jobs: *jobs, force: *force, quiet: *quiet, asJSON: *asJSON}.run(stop, stdout, stderr)
	}
	cv, code, err := openConversion(stop, fs.Arg(0), &copts, *root, *image, stderr)
	if pod := podChoice(err); pod != nil {
		return runPod(pod)
	}
	if err != nil {
		return fail(code, "%s", err)
	}
	defer cv.Close()
	ck := cv.ck
	var want []uint32
	if ck != nil {
		if want, err = selectPids(ck, *pids); err != nil {
			return fail(exitUsage, "%s", err)
		}
	}
	var made outDirs
	defer made.removeOnStop(stop)()
	if err := made.make(*out); err != nil {
		return fail(exitFailed, "%s", err)
	}

	var results []convertResult
	if ck == nil {
		// Streaming: the tree is known once the archive is read.
		var code int
		results, code, err = convertStreamed(cv, *pids, *out, *force, *staging == "rewrite", *verbose, stderr)
		if err != nil {
			made.removeEmpty()
			// A pod checkpoint is known as such once the stream
			// reaches its layout.
			if pod := podChoice(podOf(err, *aopts)); pod != nil {
				cv.Close()
				return runPod(pod)
			}
			return fail(code, "%s", err)
		}
	} else {
		prog := startProgress(stderr, pagesBytes(cv.src), !*quiet)
		results = convertAll(ck, want, *jobs, *out, *force, cv.opts, prog.add)
		prog.finish()
	}
	ok, failed := reportConversion(results, convertReport{quiet: *quiet, asJSON: *asJSON, named: len(*pids) > 0}, stdout, stderr)
	switch {
	case failed == 0:
		return exitOK
	case ok == 0:
		made.removeEmpty()
		return exitFailed
	}
	return exitPartial
}

// convertAll converts the processes want, jobs at a time, into dir.
func convertAll(ck *criuimg.Checkpoint, want []uint32, jobs int, dir string, force bool, opts elfcore.Options, progress elfcore.Progress) []convertResult {
	results := make([]convertResult, len(want))
	var wg sync.WaitGroup
	sem := make(chan struct{}, jobs)
	for i, pid := range want {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = convertOne(ck, pid, dir, force, opts, progress)
		}()
	}
	wg.Wait()
	return results
}

// convertReport is how a conversion is reported.
type convertReport struct {
	quiet  bool // no notices
	asJSON bool // one JSON array of records instead of lines
	named  bool // the processes were named with --pid: a zombie is a failure
}

// reportConversion says what became of each process: a line (or a JSON
// record) per core on stdout, notices and errors on stderr. It returns
// how many processes were converted and how many failed.
func reportConversion(results []convertResult, o convertReport, stdout, stderr io.Writer) (ok, failed int) {
	records := make([]convertRecord, 0, len(results))
	for _, r := range results {
		rec := convertRecord{Container: r.container, Pid: r.pid, Comm: r.comm, Threads: r.threads, Bytes: r.size, Path: r.path, Zombie: r.zombie, Warnings: append([]string{}, r.notes...)}
		if !o.quiet {
			for _, n := range r.notes {
				complain(stderr, "", "pid %d (%s): %s", r.pid, r.comm, n)
			}
		}
		switch {
		case r.zombie:
			rec.Threads = 0
			msg := fmt.Sprintf("pid %d (%s): zombie (%s, not reaped): no core, as the kernel writes none", r.pid, safe(r.comm), waitStatus(r.exitCode))
			if o.named {
				// Asked for by name: not converted.
				failed++
				rec.Error = msg
				complain(stderr, "", "%s", msg)
			} else if !o.quiet {
				complain(stderr, "", "%s", msg)
			}
		case r.err != nil:
			failed++
			msg := r.err.Error() // criuimg's errors start with the pid already
			if prefix := fmt.Sprintf("pid %d: ", r.pid); r.pid != 0 && !strings.HasPrefix(msg, prefix) {
				msg = prefix + msg
			}
			if r.container != "" {
				msg = "container " + r.container + ": " + msg
			}
			rec.Error = msg
			complain(stderr, "", "%s", msg)
		default:
			ok++
			if !o.asJSON {
				fmt.Fprintf(stdout, "%d\t%s\t%s\t%d bytes\t%s\n", r.pid, safe(r.comm), count(r.threads, "thread"), r.size, safe(r.path))
			}
		}
		records = append(records, rec)
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(records); err != nil {
			complain(stderr, "", "%v", err)
		}
	}
	return ok, failed
}

// makeOutDir creates dir and its missing parents (mode 0700) and returns
// the directories it created, deepest first.
func makeOutDir(dir string) (created []string, err error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return missing, nil
}

// outDirs are the output directories a run made (makeOutDir), so that a
// run stopped before it wrote a core, or that converted nothing, leaves no
// OUT_DIR of its own making behind (cores are anonymous files until
// complete).
type outDirs struct {
	mu      sync.Mutex // a stop's removal waits for a making in progress
	created []string   // deepest first
}

// removeOnStop registers the removal of the directories made (before any
// is made: a signal between the making and the registering must not leave
// one) and returns the function that unregisters it.
func (o *outDirs) removeOnStop(stop *stopper) (release func()) {
	return stop.onStop(o.removeEmpty)
}

// make makes dir and its missing parents, and records those it created.
func (o *outDirs) make(dir string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	made, err := makeOutDir(dir)
	o.created = append(made, o.created...)
	return err
}

// removeEmpty removes the directories made, deepest first, as long as
// they are empty, and forgets those it removed.
func (o *outDirs) removeEmpty() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.created) > 0 && os.Remove(o.created[0]) == nil {
		o.created = o.created[1:]
	}
}

// convertRecord is what --json prints for each process.
type convertRecord struct {
	Container string   `json:"container,omitempty"` // a pod checkpoint's container
	Pid       uint32   `json:"pid"`
	Comm      string   `json:"comm"`
	Threads   int      `json:"threads"`
	Bytes     uint64   `json:"bytes"` // size of the core (holes included)
	Path      string   `json:"path"`  // "" when no core was written
	Zombie    bool     `json:"zombie"`
	Error     string   `json:"error"`    // "" when converted
	Warnings  []string `json:"warnings"` // [] when none
}

// jsonError is what --json prints on stdout instead of the records when
// the run fails as a whole.
type jsonError struct {
	Error      string `json:"error"`
	ExitStatus int    `json:"exit_status"`
}

// writeJSONError prints a fatal error as a JSON object.
func writeJSONError(stdout io.Writer, code int, msg string) {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(jsonError{Error: msg, ExitStatus: code})
}

// coreNotes words the facts of a process's images that its core lacks.
func coreNotes(notes []criuimg.Note) []string {
	var out []string
	for _, n := range notes {
		switch n.Kind {
		case criuimg.NoteParentPages:
			out = append(out, fmt.Sprintf("%d bytes of memory are in a parent checkpoint (incremental dump) and are left out of the core", n.Bytes))
		case criuimg.NoteLazyPages:
			out = append(out, fmt.Sprintf("%d bytes of memory were left to lazy migration and are not in the images; they are left out of the core", n.Bytes))
		default:
			out = append(out, n.Err.Error())
		}
	}
	return out
}

// convertOne loads, plans and writes the core of one process, dir/core.PID.
// Nothing is left on disk when it fails.
func convertOne(ck *criuimg.Checkpoint, pid uint32, dir string, force bool, opts elfcore.Options, progress elfcore.Progress) convertResult {
	return convertWith(ck, pid, opts, func(plan *elfcore.Plan) (string, error) {
		name := fmt.Sprintf("core.%d", pid)
		if err := elfcore.WriteFile(dir, name, plan, force, progress); err != nil {
			return "", coreFileError(err)
		}
		return filepath.Join(dir, name), nil
	})
}

// convertWith loads and plans the core of one process, and has write
// write it (write returns the core's path, or the error).
func convertWith(ck *criuimg.Checkpoint, pid uint32, opts elfcore.Options, write func(*elfcore.Plan) (string, error)) (res convertResult) {
	res.pid = pid
	defer func() {
		if r := recover(); r != nil {
			res.err = fmt.Errorf("internal error (please report): %v", r)
		}
	}()
	p, plan := planCore(ck, pid, opts, &res)
	if p == nil {
		return res
	}
	defer p.Close()
	if plan == nil {
		return res
	}
	if res.path, res.err = write(plan); res.err != nil {
		return res
	}
	res.size = plan.Size()
	return res
}

// planCore loads process pid and plans its core, saying in res what it
// learns (comm, threads, notes; zombie, or the error). It returns the
// process (nil if none was loaded; the caller closes it) and the plan
// (nil when there is no core to write).
func planCore(ck *criuimg.Checkpoint, pid uint32, opts elfcore.Options, res *convertResult) (*criuimg.Process, *elfcore.Plan) {
	p, err := ck.LoadProcess(pid)
	if p != nil {
		res.comm = p.Comm
	}
	if errors.Is(err, criuimg.ErrZombie) {
		res.zombie = true
		res.exitCode = p.ExitCode
		return p, nil
	}
	if err != nil {
		res.err = err
		return p, nil
	}
	res.notes = coreNotes(p.Notes)
	res.threads = len(p.Threads)
	res.exePath = p.ExePath
	res.arch = p.Arch
	plan, err := elfcore.BuildWith(p, opts)
	if err != nil {
		res.err = err
		return p, nil
	}
	res.notes = append(res.notes, plan.Warnings...)
	return p, plan
}

// coreFileError adds to an error of writing a core what the user can do.
func coreFileError(err error) error {
	switch {
	case errors.Is(err, elfcore.ErrExists):
		err = fmt.Errorf("%w (use --force to replace it)", err)
	case errors.Is(err, elfcore.ErrIsDir):
		err = fmt.Errorf("%w (not replaced, also with --force)", err)
	}
	return err
}

// waitStatus describes a wait(2) status as CRIU records a zombie's exit
// code.
func waitStatus(st uint32) string {
	ws := criuimg.WaitStatus(st)
	if ws.Signaled() {
		return "killed by " + signalName(syscall.Signal(ws.Signal()))
	}
	return fmt.Sprintf("exited with status %d", ws.ExitStatus())
}

// pagesBytes is the size of the checkpoint's pages files: about the bytes a
// full conversion copies, the progress bar's total.
func pagesBytes(src criuimg.Source) int64 {
	names, err := src.Names()
	if err != nil {
		return 0
	}
	var n int64
	for _, name := range names {
		if strings.HasPrefix(name, "pages-") && strings.HasSuffix(name, ".img") {
			if f, err := src.Open(name); err == nil {
				n += f.Size()
				f.Close()
			}
		}
	}
	return n
}
