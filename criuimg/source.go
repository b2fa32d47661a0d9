package criuimg

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/ckpt2core/ckpt2core/internal/readat"
)

// File is one image file of a checkpoint: random access over its bytes and
// its size. Name is the image's name inside the checkpoint (e.g.
// "pagemap-1.img"), used in every error about it.
type File interface {
	io.ReaderAt
	io.Closer
	Name() string
	Size() int64
}

// OSFile is implemented by a File whose bytes lie in a region of a regular
// file on disk, so that a writer can copy from it kernel-side
// (copy_file_range).
type OSFile interface {
	// OSFile returns the underlying file and the offset of the image's
	// first byte in it.
	OSFile() (*os.File, int64)
}

// Viewer is implemented by a File that can lend some of its bytes in
// place instead of copying them (a pages file streaming through memory).
type Viewer interface {
	// View returns the bytes [off, off+n) of the file as a slice of its
	// own memory, or nil (and no error) when it cannot lend them (the
	// caller then uses ReadAt). The slice may not be written; it stays
	// valid until the file is closed, or read (with ReadAt or View) more
	// than ViewSlack bytes past off+n. n is at most MaxView.
	View(off int64, n int) ([]byte, error)
}

// MaxView is the largest n a Viewer lends, and ViewSlack how far past a
// lent slice a caller may read while it still uses it.
const (
	MaxView   = 2 << 20
	ViewSlack = 2 << 20
)

// Source gives access to the image files of one checkpoint, wherever they
// live (a directory, a tar archive, a spooled compressed archive).
type Source interface {
	// Open opens the named image. A missing image is reported with an
	// error that wraps fs.ErrNotExist.
	Open(name string) (File, error)
	// Names lists the images present, sorted.
	Names() ([]string, error)
	// String describes the source for messages (a path).
	String() string
}

// DirSource reads images from a CRIU image directory.
type DirSource struct {
	dir string
}

// NewDirSource returns a Source over the directory dir.
func NewDirSource(dir string) (*DirSource, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	return &DirSource{dir: dir}, nil
}

// String returns the directory's path.
func (d *DirSource) String() string { return d.dir }

// Open opens dir/name. Names with a path separator or ".." are refused,
// and only regular files are opened: the file is opened without following
// a symlink and without blocking (a FIFO swapped in cannot hang it), then
// checked.
func (d *DirSource) Open(name string) (File, error) {
	if !validImageName(name) {
		return nil, fmt.Errorf("%s: invalid image name %q", d.dir, name)
	}
	p := filepath.Join(d.dir, name)
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%s: a symlink, not an image", p)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	return &dirFile{f: f, name: name, size: st.Size()}, nil
}

// Names lists the regular files of the directory.
func (d *DirSource) Names() ([]string, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names, nil
}

func validImageName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`) && !strings.Contains(name, "\x00")
}

type dirFile struct {
	f    *os.File
	name string
	size int64
}

func (f *dirFile) ReadAt(p []byte, off int64) (int, error) {
	return readat.Window(f.f, f.name, 0, f.size, p, off)
}
func (f *dirFile) Close() error              { return f.f.Close() }
func (f *dirFile) Name() string              { return f.name }
func (f *dirFile) Size() int64               { return f.size }
func (f *dirFile) OSFile() (*os.File, int64) { return f.f, 0 }

// IsNotExist reports whether err says that an image is missing.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
