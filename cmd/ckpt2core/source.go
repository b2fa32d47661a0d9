package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
	"github.com/ckpt2core/ckpt2core/internal/elfcore"
	"github.com/ckpt2core/ckpt2core/internal/inspect"
	"github.com/ckpt2core/ckpt2core/internal/rootfs"
)

// checkpointSource is what openCheckpoint gives: a checkpoint's CRIU
// images (the criuimg.Source) and the archive.Checkpoint they come from,
// whose Meta is the checkpoint's metadata files (config.dump, spec.dump,
// stats-dump, rootfs-diff.tar, ...) with their modification times.
type checkpointSource struct {
	criuimg.Source
	ck *archive.Checkpoint
}

// checkpointMeta returns the metadata files of a source openCheckpoint
// opened (nil for another source): the one way commands read config.dump,
// spec.dump, network.status, the stats files and rootfs-diff.tar.
func checkpointMeta(src criuimg.Source) fs.FS {
	if cs, ok := src.(*checkpointSource); ok {
		return cs.ck.Meta()
	}
	return nil
}

// Parent returns the parent checkpoint's images of an incremental
// checkpoint (implements criuimg.ParentSource): the directory the parent
// link names, in the image directory or in the archive, else in the
// --parent checkpoint.
func (c *checkpointSource) Parent() (criuimg.Source, error) {
	src, err := c.ck.Parent()
	if errors.Is(err, archive.ErrParentNotInArchive) {
		return nil, fmt.Errorf("%w (Podman exports a --pre-checkpoint separately: give that export with --parent)", err)
	}
	return src, err
}

// archiveFlags registers the flags every command that reads a checkpoint
// shares (the one place for them): how archives are read, and
// --container for pod checkpoints.
func archiveFlags(fs *pflag.FlagSet) *archive.Options {
	o := &archive.Options{}
	fs.StringVar(&o.ExtractDir, "extract", "", "also extract every member of an archive into this new directory, and keep it")
	fs.StringVar(&o.Parent, "parent", "", "the pre-checkpoint (export archive or directory) holding the pages an incremental checkpoint marks in its parent")
	o.MaxMembers, o.MaxBytes = archive.DefaultMaxMembers, archive.DefaultMaxBytes
	fs.Var(positive[int]{&o.MaxMembers}, "max-members", "refuse archives with more members (tar bomb guard)")
	fs.Var(positive[int64]{&o.MaxBytes}, "max-bytes", "refuse archives with more uncompressed bytes (tar bomb guard)")
	containerFlag(fs, o)
	return o
}

// positive is a flag value that must be a whole number of at least 1
// (for a limit, 0 or less would silently mean the default).
type positive[T int | int64] struct{ v *T }

func (p positive[T]) String() string {
	if p.v == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*p.v), 10)
}

func (p positive[T]) Type() string { return "int" }

func (p positive[T]) Set(s string) error {
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil || n < 1 || int64(T(n)) != n {
		return fmt.Errorf("%q is not a whole number of at least 1", s)
	}
	*p.v = T(n)
	return nil
}

// openCheckpoint opens the checkpoint at path: a CRIU image directory, an
// extracted container checkpoint, or a container checkpoint archive (tar,
// tar+gzip, tar+zstd, detected by content). It returns its images (decode
// them with criuimg.Open; checkpointMeta gives the metadata files) and a
// function that releases what opening took: the members of a compressed
// archive are kept in memory and anonymous files (nothing named is
// written but with --extract, so even SIGKILL leaves nothing behind).
// Every command that reads a checkpoint goes through it: it is the one
// entry point (new commands call it too, with archiveFlags' options). A stop signal
// during the unpacking of an archive cancels it and waits (a few seconds at
// most) for archive.Open to remove what it wrote, so that no partial
// --extract directory is left looking complete.
func openCheckpoint(stop *stopper, path string, opts *archive.Options) (criuimg.Source, func(), error) {
	o := archive.Options{}
	if opts != nil {
		o = *opts
	}
	if o.Container != "" { // --container: a container of a pod checkpoint (pod.go)
		var err error
		if path, err = resolveContainer(path, &o); err != nil {
			return nil, nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.Context = ctx
	opened := make(chan struct{})
	release := stop.onStop(func() {
		cancel()
		select {
		case <-opened:
		case <-time.After(5 * time.Second):
		}
	})
	ck, err := openArchive(path, o) // archive.Open, or a checkpoint image's layer (pod.go)
	close(opened)
	if err != nil || !o.Stream {
		release()
		cancel()
	}
	if err != nil {
		return nil, nil, podOf(err, o)
	}
	// A stream is read until Close: a stop cancels it (what it holds is
	// anonymous: nothing to remove).
	return &checkpointSource{Source: ck.Images, ck: ck}, func() { ck.Close(); release(); cancel() }, nil
}

// conversion is a checkpoint opened for conversion: its images, their
// process tree and the options of every core (--root). A compressed
// archive opened with Options.Stream has no tree yet (ck is nil): see
// convertStreamed.
type conversion struct {
	src    criuimg.Source
	ck     *criuimg.Checkpoint
	endBar func() // ends the progress bar of a streamed archive
	opts   elfcore.Options
	close  []func()
	root   string // the root filesystem (--root, or the one unpacked from --image)
}

// openConversion opens the checkpoint at path and, if root is set, the
// root filesystem. On error it returns the exit status to use.
//
// With image (--image) instead, the files the checkpoint maps are unpacked
// from that container image into a temporary directory (imageRoot), which
// then serves as the root (c.root names it).
func openConversion(stop *stopper, path string, aopts *archive.Options, root, image string, stderr io.Writer) (*conversion, int, error) {
	o := archive.Options{}
	if aopts != nil {
		o = *aopts
	}
	desc := "unpacking"
	if o.Stream {
		desc = "converting"
	}
	endBar := readProgress(&o, path, stderr, desc)
	src, closeSrc, err := openCheckpoint(stop, path, &o)
	if err == nil && o.Stream && streamedArchive(src) != nil {
		// A compressed archive streaming (Options.Stream): the caller
		// reads the tree as it comes (convertStreamed); the bar follows
		// the stream until the end.
		return &conversion{src: src, close: []func(){endBar, closeSrc}, endBar: endBar}, exitOK, nil
	}
	endBar()
	if err != nil {
		return nil, openStatus(err), err
	}
	c := &conversion{src: src, close: []func(){closeSrc}}
	if c.ck, err = criuimg.Open(src); err != nil {
		c.Close()
		return nil, exitFailed, err
	}
	if root != "" && image != "" {
		c.Close()
		return nil, exitUsage, errors.New("--root and --image exclude each other")
	}
	if image != "" {
		dir, cleanup, err := imageRoot(stop, image, src, c.ck, stderr)
		if err != nil {
			c.Close()
			return nil, exitUsage, err
		}
		c.close = append(c.close, cleanup)
		root = dir
	}
	c.root = root
	if root != "" {
		rfs, err := openRoot(root, src, c.ck, stderr)
		if err != nil {
			c.Close()
			return nil, exitUsage, err
		}
		c.close = append(c.close, func() { rfs.Close() })
		c.opts.Files = rfs
	}
	return c, exitOK, nil
}

// Close releases the checkpoint and the root filesystem (once: it may be
// called again).
func (c *conversion) Close() {
	for i := len(c.close) - 1; i >= 0; i-- {
		c.close[i]()
	}
	c.close = nil
}

// openRoot opens --root for ck, overlaid by the container's
// rootfs-diff.tar when the checkpoint has one.
func openRoot(dir string, src criuimg.Source, ck *criuimg.Checkpoint, stderr io.Writer) (*rootfs.Root, error) {
	r, err := rootfs.Open(dir, ck)
	if err != nil {
		return nil, fmt.Errorf("--root: %w", err)
	}
	cs, ok := src.(*checkpointSource)
	if !ok {
		return r, nil
	}
	if b, err := fs.ReadFile(cs.ck.Meta(), inspect.DeletedFilesFile); err == nil {
		del, err := inspect.ParseDeletedFiles(b)
		if err != nil {
			complain(stderr, "", "%v: the files it names are not hidden", err)
		}
		r.Hide(del, "deleted in the container ("+inspect.DeletedFilesFile+")")
	}
	diff, err := cs.ck.RootfsDiff()
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err == nil {
		err = r.Overlay(diff, diff.Size())
	}
	if err != nil {
		complain(stderr, "", "rootfs-diff.tar not used: %v", err)
	}
	return r, nil
}

// selectPids returns the pids named with --pid (all of ck's if none),
// sorted and without repeats, or an error naming one the checkpoint lacks.
func selectPids(ck *criuimg.Checkpoint, pids []uint) ([]uint32, error) {
	if len(pids) == 0 {
		return ck.Pids(), nil
	}
	var want []uint32
	for _, p := range pids {
		if _, ok := ck.Proc(uint32(p)); !ok || p > math.MaxUint32 {
			var have []string
			for _, q := range ck.Pids() {
				have = append(have, strconv.FormatUint(uint64(q), 10))
			}
			return nil, fmt.Errorf("pid %d is not in the checkpoint (it has %s)", p, strings.Join(have, ", "))
		}
		if !slices.Contains(want, uint32(p)) {
			want = append(want, uint32(p))
		}
	}
	slices.Sort(want)
	return want, nil
}

// openSalvaged opens the checkpoint at path (openCheckpoint) and its
// images with the salvage loader, for the commands that read a damaged
// checkpoint as far as it goes (list, diff, report, triage, verify).
// close releases both.
func openSalvaged(stop *stopper, path string, aopts *archive.Options) (criuimg.Source, *criuimg.Checkpoint, func(), error) {
	src, closeSrc, err := openCheckpoint(stop, path, aopts)
	if err != nil {
		return nil, nil, nil, err
	}
	ck, err := criuimg.SalvageOpen(src)
	if err != nil {
		closeSrc()
		return nil, nil, nil, err
	}
	return src, ck, closeSrc, nil
}

// openWithoutPages opens the checkpoint at path (openCheckpoint) for a
// command that reads no page (cat: the rw layer; verify --checkpoint: the
// executable's build-id): a compressed archive streams, every page
// dropped as it passes (archive DropPages), and is read to its end here
// (a truncated archive fails).
func openWithoutPages(stop *stopper, path string, aopts *archive.Options) (criuimg.Source, func(), error) {
	o := *aopts
	o.Stream = o.ExtractDir == ""
	src, closeSrc, err := openCheckpoint(stop, path, &o)
	if err != nil {
		return nil, nil, err
	}
	if a := streamedArchive(src); a != nil {
		a.DropPages()
		if err := a.Wait(); err != nil {
			closeSrc()
			return nil, nil, podOf(err, o)
		}
	}
	return src, closeSrc, nil
}

// specSecurity is what the container's spec.dump in meta (nil: none)
// says of the process's security, for triage's credentials rule: nil
// without a spec, and the error when it does not parse.
func specSecurity(meta fs.FS) (*inspect.SpecSecurity, error) {
	if meta == nil {
		return nil, nil
	}
	b, err := fs.ReadFile(meta, inspect.SpecDumpFile)
	if err != nil {
		return nil, nil
	}
	return inspect.ParseSpecSecurity(b)
}
