package archive

import (
	"archive/tar"
	"io"
	"io/fs"
	"math"
	"os"
	"time"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/readat"
)

// span is where a member's data lies in the archive file, and the
// modification time its header records.
type span struct {
	off, size int64
	mtime     time.Time
}

// openInPlace indexes a plain tar archive and serves its members as
// sections of the file.
func openInPlace(path string, f *os.File, size int64, opts Options) (*Checkpoint, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return openInPlaceAt(path, f, f, 0, size, opts)
}

// openInPlaceAt indexes the plain tar archive of size bytes at offset base
// of f (read through rs, positioned at its start) and serves its members
// as sections of f: a nested container archive of a pod (pod.go) lies at
// a member's offset.
func openInPlaceAt(path string, f *os.File, rs io.ReadSeeker, base, size int64, opts Options) (*Checkpoint, error) {
	cr := &seekCountReader{countReader: countReader{r: rs, limit: math.MaxInt64}, s: rs}
	tr := tar.NewReader(cr)
	images := map[string]span{}
	top := map[string]span{}
	x := newExtras()
	_, err := scan(path, &cr.countReader, tr, opts, size, false, func(m *member) error {
		sp := span{off: base + m.off, size: m.hdr.Size, mtime: m.hdr.ModTime}
		switch m.role {
		case roleImage:
			images[m.key] = sp
		case roleTop:
			top[m.key] = sp
		default:
			x.add(m, sp)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Checkpoint{
		path:   path,
		kind:   KindTar,
		f:      f,
		Images: &tarSource{f: f, path: path, prefix: "checkpoint/", members: images},
		top:    &tarSource{f: f, path: path, members: top},
		x:      x,
	}, nil
}

// tarSource serves members of a plain tar archive in place.
type tarSource struct {
	f       *os.File
	path    string
	prefix  string // of the members' names in the archive
	members map[string]span
}

func (s *tarSource) String() string {
	if s.prefix == "" {
		return s.path
	}
	return s.path + ":" + s.prefix[:len(s.prefix)-1]
}

func (s *tarSource) Names() ([]string, error) { return names(s.members), nil }

// modTime returns the modification time in the header of member name.
func (s *tarSource) modTime(name string) (time.Time, error) {
	sp, ok := s.members[name]
	if !ok {
		return time.Time{}, &fs.PathError{Op: "stat", Path: s.path + ": " + s.prefix + name, Err: fs.ErrNotExist}
	}
	return sp.mtime, nil
}

func (s *tarSource) Open(name string) (criuimg.File, error) {
	sp, ok := s.members[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: s.path + ": " + s.prefix + name, Err: fs.ErrNotExist}
	}
	return &sectionFile{f: s.f, name: name, off: sp.off, size: sp.size}, nil
}

// sectionFile is one member of a plain tar archive: a section of the
// archive file. Closing it leaves the archive open.
type sectionFile struct {
	f         *os.File
	name      string
	off, size int64
}

func (s *sectionFile) ReadAt(p []byte, off int64) (int, error) {
	return readat.Window(s.f, s.name, s.off, s.size, p, off)
}

func (s *sectionFile) Close() error              { return nil }
func (s *sectionFile) Name() string              { return s.name }
func (s *sectionFile) Size() int64               { return s.size }
func (s *sectionFile) OSFile() (*os.File, int64) { return s.f, s.off }
