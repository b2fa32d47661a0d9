package archive

import (
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Meta returns the container's metadata files as a file system: the
// files config.dump, spec.dump, stats-dump, stats-restore, network.status,
// dump.log, bind.mounts, ctr.log and rootfs-diff.tar, where the checkpoint
// has them, and no other. dump.log and the stats files are also looked for
// among the CRIU images, where CRIU writes them. A file's ModTime is the
// time in its tar header (for an archive) or its mtime (in a directory):
// inspect dates a Podman checkpoint by stats-dump's. Opening a metadata
// file larger than MaxMetaSize fails (rootfs-diff.tar, read as a stream,
// has no such bound). The opened files also implement io.ReaderAt. The
// file system is valid until Close.
func (c *Checkpoint) Meta() fs.FS { return metaFS{c} }

type metaFS struct{ c *Checkpoint }

func (m metaFS) Open(name string) (fs.File, error) {
	c := m.c
	notExist := &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if !isMetaName(name) && name != rootfsDiff {
		return nil, notExist
	}
	if name == rootfsDiff && c.top == c.Images {
		return nil, notExist // an image directory: no container files
	}
	src := c.top
	f, err := src.Open(name)
	if err != nil && criuimg.IsNotExist(err) && (name == "dump.log" || name == "stats-dump" || name == "stats-restore") && c.top != c.Images {
		src = c.Images
		f, err = src.Open(name)
	}
	if err != nil {
		if criuimg.IsNotExist(err) {
			return nil, notExist
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if name != rootfsDiff && f.Size() > MaxMetaSize {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%d bytes, more than the %d allowed", f.Size(), MaxMetaSize)}
	}
	mt, _ := modTime(src, name) // the zero time if unknown
	return &metaFile{f: f, r: io.NewSectionReader(f, 0, f.Size()), name: name, mtime: mt}, nil
}

// metaFile is one file of Meta.
type metaFile struct {
	f     criuimg.File
	r     *io.SectionReader
	name  string
	mtime time.Time
}

func (f *metaFile) Read(p []byte) (int, error)              { return f.r.Read(p) }
func (f *metaFile) ReadAt(p []byte, off int64) (int, error) { return f.r.ReadAt(p, off) }
func (f *metaFile) Close() error                            { return f.f.Close() }
func (f *metaFile) Stat() (fs.FileInfo, error) {
	return metaInfo{name: f.name, size: f.f.Size(), mtime: f.mtime}, nil
}

type metaInfo struct {
	name  string
	size  int64
	mtime time.Time
}

func (i metaInfo) Name() string       { return i.name }
func (i metaInfo) Size() int64        { return i.size }
func (i metaInfo) Mode() fs.FileMode  { return 0o400 }
func (i metaInfo) ModTime() time.Time { return i.mtime }
func (i metaInfo) IsDir() bool        { return false }
func (i metaInfo) Sys() any           { return nil }

// modTime returns the modification time of name in one of the sources
// Open makes.
func modTime(src criuimg.Source, name string) (time.Time, error) {
	switch s := src.(type) {
	case *tarSource:
		return s.modTime(name)
	case *spoolSource:
		return s.modTime(name)
	case *anonSource:
		return s.modTime(name)
	case *streamSource:
		return s.modTime(name)
	case *criuimg.DirSource:
	default:
		return time.Time{}, fmt.Errorf("%s: %s: no modification time", src, name)
	}
	// A directory: the file as DirSource opens it (a regular file, no
	// symlink followed).
	f, err := src.Open(name)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	osf, ok := f.(criuimg.OSFile)
	if !ok {
		return time.Time{}, fmt.Errorf("%s: %s: no modification time", src, name)
	}
	of, _ := osf.OSFile()
	st, err := of.Stat()
	if err != nil {
		return time.Time{}, err
	}
	return st.ModTime(), nil
}
