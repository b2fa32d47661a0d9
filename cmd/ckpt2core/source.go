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

	"github.com/ckpt2core/ckpt2core/archive"
	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/elfcore"
	"github.com/ckpt2core/ckpt2core/inspect"
	"github.com/ckpt2core/ckpt2core/rootfs"
)

// checkpointSource is a checkpoint's images plus, for a container
// checkpoint, its container files (config.dump, rootfs-diff.tar, ...).
type checkpointSource struct {
	criuimg.Source
	ck *archive.Checkpoint
}

// Meta returns a container metadata file (implements inspect.MetaSource).
func (c *checkpointSource) Meta(name string) ([]byte, error) { return c.ck.Meta(name) }

// Parent returns the parent checkpoint's images of an incremental
// checkpoint (implements criuimg.ParentSource; only image directories
// have one).
func (c *checkpointSource) Parent() (criuimg.Source, error) {
	if ps, ok := c.Source.(criuimg.ParentSource); ok {
		return ps.Parent()
	}
	return nil, fmt.Errorf("%s: %s: %w", c.Source, criuimg.ParentLink, fs.ErrNotExist)
}

// RootfsDiff opens rootfs-diff.tar (implements inspect.MetaSource).
func (c *checkpointSource) RootfsDiff() (criuimg.File, error) { return c.ck.RootfsDiff() }

// archiveFlags registers the flags that control how archives are read.
func archiveFlags(fs *pflag.FlagSet) *archive.Options {
	o := &archive.Options{}
	fs.StringVar(&o.ExtractDir, "extract", "", "keep the files extracted from a compressed archive in this new directory")
	o.MaxMembers, o.MaxBytes = archive.DefaultMaxMembers, archive.DefaultMaxBytes
	fs.Var(positive[int]{&o.MaxMembers}, "max-members", "refuse archives with more members (tar bomb guard)")
	fs.Var(positive[int64]{&o.MaxBytes}, "max-bytes", "refuse archives with more uncompressed bytes (tar bomb guard)")
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
// tar+gzip, tar+zstd, detected by content). It returns its images and a
// function that releases what opening took (temporary files included).
// Every command that reads a checkpoint goes through it. A stop signal
// during the unpacking of an archive cancels it and waits (a few seconds at
// most) for archive.Open to remove what it wrote, so that no partial
// --extract directory is left looking complete and nothing is written
// into the private temporary directory after it is removed.
func openCheckpoint(stop *stopper, path string, opts *archive.Options) (criuimg.Source, func(), error) {
	o := archive.Options{}
	if opts != nil {
		o = *opts
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.Context = ctx
	opened := make(chan struct{})
	release := stop.onStop(func() {
		cancel()
		select {
		case <-opened:
		case <-time.After(5 * time.Second):
		}
	})
	ck, err := archive.Open(path, o)
	close(opened)
	release()
	if err != nil {
		return nil, nil, err
	}
	return &checkpointSource{Source: ck.Images, ck: ck}, func() { ck.Close() }, nil
}

// conversion is a checkpoint opened for conversion: its images, their
// process tree and the options of every core (--root).
type conversion struct {
	src   criuimg.Source
	ck    *criuimg.Checkpoint
	opts  elfcore.Options
	close []func()
	root  string // the root filesystem (--root, or the one unpacked from --image)
}

// openConversion opens the checkpoint at path and, if root is set, the
// root filesystem. On error it returns the exit status to use.
//
// With image (--image) instead, the files the checkpoint maps are unpacked
// from that container image into the private temporary directory, which
// then serves as the root (c.root names it).
func openConversion(stop *stopper, path string, aopts *archive.Options, root, image string, stderr io.Writer) (*conversion, int, error) {
	src, closeSrc, err := openCheckpoint(stop, path, aopts)
	if err != nil {
		return nil, exitFailed, err
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
		dir, cleanup, err := imageRoot(image, src, c.ck, stderr)
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

// Close releases the checkpoint and the root filesystem.
func (c *conversion) Close() {
	for i := len(c.close) - 1; i >= 0; i-- {
		c.close[i]()
	}
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
	if b, err := cs.ck.Meta(inspect.DeletedFilesFile); err == nil {
		del, err := inspect.ParseDeletedFiles(b)
		if err != nil {
			fmt.Fprintf(stderr, "ckpt2core: %v: the files it names are not hidden\n", err)
		}
		r.Hide(del, "deleted in the container ("+inspect.DeletedFilesFile+")")
	}
	diff, err := cs.RootfsDiff()
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err == nil {
		err = r.Overlay(diff, diff.Size())
	}
	if err != nil {
		fmt.Fprintf(stderr, "ckpt2core: rootfs-diff.tar not used: %v\n", err)
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
