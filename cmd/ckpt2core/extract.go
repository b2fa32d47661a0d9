package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/carve"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/outfile"
)

const extractUsage = `Usage: ckpt2core extract [flags] CHECKPOINT -o DIR [KIND...]

Recovers what CHECKPOINT holds besides process memory, each object as one
file in DIR (created if missing, mode 0700), plus DIR/manifest.json listing
every file with its kind, process, fd, source image and entry, size and
sha256. Files are written 0600 under a temporary name and linked into
place only when complete; an existing name is never overwritten (a number
is appended), and nothing is written outside DIR or through a link. Names
come from the checkpoint and are escaped: every byte outside
[A-Za-z0-9._+-] becomes %%XX.

Kinds (all when none is given):
  ghost      deleted files kept open or mapped (CRIU's ghost-file-N.img)
  memfd      memfd contents (memfd.img + pagemap-shmem-N.img)
  exe        each process's executable, when it is a ghost file, a memfd
             or a file of the container's rw layer
  rootfs     the files the container added (rootfs-diff.tar)
  tmpfs      CRIU's archives of tmpfs mounts (tmpfs-dev-N.tar.gz.img, as is)
             and each regular file in them
  pipe fifo  pipe and FIFO buffers (pipes-data.img, fifo-data.img)
  tty        unread pty input (tty-data.img)
  sk-queue   packets queued on unix and packet sockets (sk-queues.img)
  tcp-queue  TCP receive and send queues (tcp-stream-N.img)
  env        each process's environment area (NUL-separated)
  history    each bash's command history, recovered from its heap
             (HISTFILE format: "#SECONDS" before each line)
  volume     each file of the container's named volumes (Podman's
             volumes/NAME.tar; label: the volume's name)

Flags:
%s
Examples:
  ckpt2core extract checkpoint.tar.zst -o loot
  ckpt2core extract --pid 42 checkpoint.tar.zst -o loot ghost memfd exe
  jq -r '.[] | "\(.sha256)  \(.path)"' loot/manifest.json

Exit status: 0 everything found was extracted; 1 nothing could be
extracted; 2 usage error; 3 some objects could not be read (named on
stderr), the others were extracted.
`

const catUsage = `Usage: ckpt2core cat [flags] CHECKPOINT PATH

Writes the file at PATH of the container's rw layer (rootfs-diff.tar of a
container checkpoint) to stdout.

Flags:
%s
Example:
  ckpt2core cat checkpoint.tar.zst /etc/crontabs/root

Exit status: 0 written; 1 no such file in the rw layer, or an error; 2
usage error.
`

// manifestEntry is one file of extract's manifest.json.
type manifestEntry struct {
	Path     string      `json:"path"` // the file's name in DIR
	Kind     carve.Kind  `json:"kind"`
	Pid      uint32      `json:"pid"`
	FD       int         `json:"fd"`
	Refs     []carve.Ref `json:"refs"`
	Original string      `json:"original_path"`
	Label    string      `json:"label"`
	Image    string      `json:"image"`
	Entry    int         `json:"entry"`
	Size     int64       `json:"size"`
	Mode     string      `json:"mode"`
	SHA256   string      `json:"sha256"`
}

// runCarve runs extract or cat.
func runCarve(stop *stopper, cmd string, args []string, stdout, stderr io.Writer) int {
	if cmd == "cat" {
		return runCat(stop, args, stdout, stderr)
	}
	return runExtract(stop, args, stdout, stderr)
}

func runExtract(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core extract", pflag.ContinueOnError)
	out := fs.StringP("output", "o", "", "write the files into this directory (required)")
	pid := fs.Uint32("pid", 0, "only this process's objects (no rootfs, tmpfs or tty)")
	aopts := archiveFlags(fs)
	help := func(w io.Writer) { fmt.Fprintf(w, extractUsage, fs.FlagUsages()) }
	if status, ok := parseFlags(fs, "extract", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	usageErr := func(format string, a ...any) int { return usageError(stderr, "extract", exitUsage, format, a...) }
	if fs.NArg() < 1 {
		return usageErr("want CHECKPOINT")
	}
	if *out == "" {
		return usageErr("-o DIR is required")
	}
	var kinds []carve.Kind
	for _, a := range fs.Args()[1:] {
		k, ok := carve.ParseKind(a)
		if !ok {
			return usageErr("unknown kind %q (one of %v)", safe(a), carve.Kinds())
		}
		kinds = append(kinds, k)
	}
	fail := func(err error) int {
		complain(stderr, "extract", "%v", err)
		return exitFailed
	}
	opts := carve.Options{Pid: *pid, Kinds: kinds}
	// A compressed archive streams, keeping of the pages what carve reads
	// (and inspect, which carve runs).
	src, _, closeSrc, err := openRetaining(stop, fs.Arg(0), aopts, readsAll(inspectReads, carveReads(opts)), "extract", false, stderr)
	if err != nil {
		fail(err)
		return openStatus(err)
	}
	defer closeSrc()
	ck, err := criuimg.Open(src)
	if err != nil {
		return fail(err)
	}
	if cs, ok := src.(*checkpointSource); ok {
		if f, err := cs.ck.RootfsDiff(); err == nil {
			defer f.Close()
			opts.RootfsDiff = f
		} else if !criuimg.IsNotExist(err) {
			complain(stderr, "extract", "%v", err)
		}
		vols, closeVols, err := openVolumes(cs.ck.Meta())
		defer closeVols()
		if err != nil {
			complain(stderr, "extract", "%v", err)
		}
		opts.Volumes = vols
	}
	dir, dirf, err := openOutputDir(*out)
	if err != nil {
		return fail(err)
	}
	defer dir.Close()
	defer dirf.Close()
	w := &extractWriter{dir: dirf, taken: map[string]bool{}, stop: stop}
	problems := 0
	var manifest []manifestEntry
	err = carve.Carve(ck, opts, func(a carve.Artifact) error {
		e, err := w.write(a)
		if err != nil {
			var we *writeError
			if errors.As(err, &we) {
				return err
			}
			problems++
			fmt.Fprintf(stderr, "ckpt2core extract: %s %s: %s\n", a.Kind, safe(a.Image), safe(err.Error()))
			return nil
		}
		manifest = append(manifest, e)
		return nil
	}, func(err error) {
		problems++
		complain(stderr, "extract", "%v", err)
	})
	if err != nil {
		if errors.Is(err, carve.ErrNoPid) {
			return usageErr("%s", safe(err.Error()))
		}
		return fail(err)
	}
	if manifest == nil {
		manifest = []manifestEntry{}
	}
	b, err := json.MarshalIndent(manifest, "", " ")
	if err != nil {
		return fail(err)
	}
	if err := w.writeManifest(append(b, '\n')); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "%d files written to %s (manifest.json)\n", len(manifest), safe(*out))
	switch {
	case problems > 0 && len(manifest) == 0:
		return exitFailed
	case problems > 0:
		return exitPartial
	}
	return exitOK
}

// openOutputDir opens (creating it 0700 if missing) the directory dir, as
// an os.Root (no name below it can leave it) and as a directory file (for
// anonymous files, O_TMPFILE). dir itself must be a real directory, not a
// symlink.
func openOutputDir(dir string) (*os.Root, *os.File, error) {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, nil, err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, nil, err
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		return nil, nil, fmt.Errorf("%s: %w", dir, errOutputSymlink)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("%s: not a directory", dir)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, nil, err
	}
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	// dir could have been swapped for a symlink since the Lstat.
	rst, err1 := r.Stat(".")
	dst, err2 := d.Stat()
	if err1 != nil || err2 != nil || !os.SameFile(st, rst) || !os.SameFile(st, dst) {
		r.Close()
		d.Close()
		return nil, nil, fmt.Errorf("%s: %w", dir, errOutputSymlink)
	}
	return r, d, nil
}

var errOutputSymlink = errors.New("the output directory is a symbolic link")

// extractWriter writes artifacts into an output directory.
type extractWriter struct {
	dir   *os.File // the output directory, for outfile
	taken map[string]bool
	stop  *stopper
}

// extractTmpPrefix begins the temporary names of files being written
// (where the filesystem has no O_TMPFILE); no artifact is given one.
const extractTmpPrefix = ".ckpt2core-tmp-"

// create returns a new output file (outfile: anonymous, O_TMPFILE, so
// that nothing is left even after SIGKILL; where the filesystem has none,
// a new file with a temporary name, removed on a stop signal) and the
// function that releases it.
func (w *extractWriter) create() (*outfile.File, func(), error) {
	f, err := outfile.Create(w.dir, extractTmpPrefix)
	if err != nil {
		return nil, nil, err
	}
	release := func() {}
	if tmp := f.TempName(); tmp != "" {
		dfd := int(w.dir.Fd())
		release = w.stop.onStop(func() { unix.Unlinkat(dfd, tmp, 0) })
	}
	return f, func() { f.Discard(); release() }, nil
}

// write writes a into a new file of the directory and returns its
// manifest entry. The file is written by outfile and then linked to its
// final name, which fails rather than replaces when the name exists (it
// is then base-2, base-3...).
func (w *extractWriter) write(a carve.Artifact) (manifestEntry, error) {
	e := manifestEntry{Kind: a.Kind, Pid: a.Pid, FD: a.FD, Refs: a.Refs, Original: a.Path, Label: a.Label, Image: a.Image, Entry: a.Entry, Size: a.Size}
	if e.Refs == nil {
		e.Refs = []carve.Ref{}
	}
	if a.Mode != 0 {
		e.Mode = fmt.Sprintf("%#o", a.Mode)
	}
	r, err := a.Open()
	if err != nil {
		return e, err
	}
	defer r.Close()
	f, release, err := w.create()
	if err != nil {
		return e, &writeError{err}
	}
	defer release()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(&fileWriter{f.File}, h), io.LimitReader(r, a.Size+1))
	if err == nil && n != a.Size {
		err = fmt.Errorf("%d bytes read, %d expected", n, a.Size)
	}
	if err != nil {
		return e, err
	}
	name, err := w.freeName(carve.FileName(a), f.Link)
	if err != nil {
		return e, &writeError{err}
	}
	e.SHA256 = hex.EncodeToString(h.Sum(nil))
	e.Path = name
	return e, nil
}

// fileWriter marks the errors of writing the output as writeErrors (the
// checkpoint's read errors stay problems of one artifact).
type fileWriter struct{ f *os.File }

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// freeName calls link with base, then base-2, base-3... until it does not
// fail with fs.ErrExist, and returns the name linked.
func (w *extractWriter) freeName(base string, link func(name string) error) (string, error) {
	if strings.ContainsAny(base, "/\x00") || base == "." || base == ".." {
		return "", fmt.Errorf("%q: not a file name", base)
	}
	for i := 1; i < 10000; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		if w.taken[name] || name == "manifest.json" || strings.HasPrefix(name, extractTmpPrefix) {
			continue
		}
		err := link(name)
		if errors.Is(err, fs.ErrExist) {
			w.taken[name] = true
			continue
		}
		if err != nil {
			return "", err
		}
		w.taken[name] = true
		return name, nil
	}
	return "", fmt.Errorf("%s: no free name", base)
}

// writeManifest writes manifest.json, replacing an earlier one (a rename
// replaces a link there rather than following it).
func (w *extractWriter) writeManifest(b []byte) error {
	f, release, err := w.create()
	if err != nil {
		return err
	}
	defer release()
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Replace("manifest.json")
}

func runCat(stop *stopper, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("ckpt2core cat", pflag.ContinueOnError)
	aopts := archiveFlags(fs)
	help := func(w io.Writer) { fmt.Fprintf(w, catUsage, fs.FlagUsages()) }
	if status, ok := parseFlags(fs, "cat", args, help, stdout, stderr, exitUsage); !ok {
		return status
	}
	if fs.NArg() != 2 {
		return usageError(stderr, "cat", exitUsage, "want CHECKPOINT and PATH, got %d arguments", fs.NArg())
	}
	fail := func(err error) int {
		complain(stderr, "cat", "%v", err)
		return exitFailed
	}
	src, closeSrc, err := openWithoutPages(stop, fs.Arg(0), aopts)
	if err != nil {
		fail(err)
		return openStatus(err)
	}
	defer closeSrc()
	cs, ok := src.(*checkpointSource)
	if !ok {
		return fail(fmt.Errorf("%s: no rw layer", fs.Arg(0)))
	}
	diff, err := cs.ck.RootfsDiff()
	if err != nil {
		return fail(err)
	}
	defer diff.Close()
	a, found, err := carve.OpenRootfsFile(diff, fs.Arg(1))
	if err != nil {
		return fail(err)
	}
	if !found {
		return fail(fmt.Errorf("%s: no file %s in rootfs-diff.tar", fs.Arg(0), fs.Arg(1)))
	}
	r, err := a.Open()
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	if _, err := io.Copy(stdout, r); err != nil {
		return fail(fmt.Errorf("writing output: %w", err))
	}
	return exitOK
}

// openVolumes opens the volumes (volumes/NAME.tar) of meta for carve; the
// function returned closes them. A volume that cannot be opened is left
// out and named in the error; the others are opened.
func openVolumes(meta fs.FS) ([]carve.VolumeTar, func(), error) {
	var out []carve.VolumeTar
	var files []fs.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	ents, err := fs.ReadDir(meta, inspect.VolumesDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return nil, closeAll, err
	}
	var errs []error
	for _, e := range ents {
		f, err := meta.Open(inspect.VolumesDir + "/" + e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files = append(files, f)
		st, err := f.Stat()
		ra, ok := f.(io.ReaderAt)
		if err != nil || !ok {
			errs = append(errs, fmt.Errorf("%s/%s: not readable in place", inspect.VolumesDir, e.Name()))
			continue
		}
		out = append(out, carve.VolumeTar{Name: strings.TrimSuffix(e.Name(), ".tar"), R: ra, Size: st.Size()})
	}
	return out, closeAll, errors.Join(errs...)
}
