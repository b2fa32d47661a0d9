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
// dump.log, bind.mounts, ctr.log, rootfs-diff.tar (and the other engines'
// files of metaNames) where the checkpoint has them, and Podman's named
// volumes, volumes/NAME.tar (exportCheckpoint writes each as an
// uncompressed tar, unless --ignore-volumes), listed by fs.ReadDir(Meta,
// "volumes"); no other file. dump.log and the stats files are also looked for
// among the CRIU images, where CRIU writes them. A file's ModTime is the
// time in its tar header (for an archive) or its mtime (in a directory):
// inspect dates a Podman checkpoint by stats-dump's. Opening a metadata
// file larger than MaxMetaSize fails (rootfs-diff.tar, read as a stream,
// and the volumes, read as streams, have no such bound). The opened files also implement io.ReaderAt. The
// file system is valid until Close.
func (c *Checkpoint) Meta() fs.FS { return metaFS{c} }

type metaFS struct{ c *Checkpoint }

// ReadDir lists the volumes (name "volumes"), sorted; every other
// directory does not exist.
func (m metaFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != volumesDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	src, err := m.c.volumeSource()
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	names, err := src.Names()
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	var out []fs.DirEntry
	for _, n := range names {
		if !isVolumeName(volumesDir + "/" + n) {
			continue
		}
		f, err := src.Open(n)
		if err != nil {
			return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
		}
		size := f.Size()
		f.Close()
		mt, _ := modTime(src, n)
		out = append(out, fs.FileInfoToDirEntry(metaInfo{name: n, size: size, mtime: mt}))
	}
	return out, nil
}

// openVolume opens volumes/NAME.tar.
func (c *Checkpoint) openVolume(name string) (fs.File, error) {
	src, err := c.volumeSource()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	file := name[len(volumesDir)+1:]
	f, err := src.Open(file)
	if err != nil {
		if criuimg.IsNotExist(err) {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	mt, _ := modTime(src, file)
	return &metaFile{f: f, r: io.NewSectionReader(f, 0, f.Size()), name: file, mtime: mt}, nil
}

// volumeSource serves the files of volumes/ (an empty source if there
// is none). For a stream it waits for the end of the archive (Podman's
// writer puts volumes/ after checkpoint/).
func (c *Checkpoint) volumeSource() (criuimg.Source, error) {
	if c.top == c.Images {
		return emptySource(c.path), nil // an image directory: no container files
	}
	if c.kind == KindDirectory {
		src, err := c.dirSource(volumesDir)
		if err != nil {
			return emptySource(c.path), nil
		}
		return src, nil
	}
	x := c.extrasDone()
	if c.stream != nil {
		if err := c.Wait(); err != nil {
			return nil, err
		}
	}
	if x == nil || len(x.spans[volumesDir]) == 0 {
		return emptySource(c.path), nil
	}
	return c.dirSource(volumesDir)
}

// emptySource is a source without files.
type emptySource string

func (e emptySource) String() string           { return string(e) }
func (e emptySource) Names() ([]string, error) { return nil, nil }
func (e emptySource) Open(name string) (criuimg.File, error) {
	return nil, &fs.PathError{Op: "open", Path: string(e) + ": " + name, Err: fs.ErrNotExist}
}

func (m metaFS) Open(name string) (fs.File, error) {
	c := m.c
	notExist := &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	if isVolumeName(name) {
		return c.openVolume(name)
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
