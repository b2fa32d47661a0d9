package archive

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/anonfile"
	"github.com/ckpt2core/ckpt2core/internal/readat"
)

// Bounds of what a compressed archive's members take in memory: a member
// of at most memMember bytes is kept in memory while all such members take
// at most memBudget bytes; every other member (and rootfs-diff.tar, which
// its readers copy from by descriptor) goes to an anonymous file.
const (
	memMember = 1 << 20
	memBudget = 16 << 20
)

// newAnonFile creates a file in dir ("" = os.TempDir()) that has no name
// (anonfile.New): it is used by descriptor only, so that the kernel frees
// it when the process ends, however it ends (SIGKILL included).
func newAnonFile(dir string) (*os.File, error) {
	return anonfile.New(dir, "spool file")
}

// blob is one member kept from a compressed archive: its data in memory,
// or in an anonymous file.
type blob struct {
	data  []byte
	f     *os.File
	size  int64
	mtime time.Time
}

// blobs holds the kept members of one compressed archive.
type blobs struct {
	dir     string // where anonymous files are made
	members map[string]*blob
	mem     int64 // bytes kept in memory
	files   []*os.File
}

func (b *blobs) close() error {
	var errs []error
	for _, f := range b.files {
		errs = append(errs, f.Close())
	}
	b.files = nil
	return errors.Join(errs...)
}

// anonSource serves the members of one compressed archive that blobs
// keeps, under prefix (checkpoint/ for the images, "" for the top-level
// files).
type anonSource struct {
	path   string // the archive
	prefix string
	b      *blobs
}

func (s *anonSource) String() string {
	if s.prefix == "" {
		return s.path
	}
	return s.path + ":" + s.prefix[:len(s.prefix)-1]
}

func (s *anonSource) Names() ([]string, error) {
	var out []string
	for _, n := range names(s.b.members) {
		if len(n) > len(s.prefix) && n[:len(s.prefix)] == s.prefix && !containsSlash(n[len(s.prefix):]) {
			out = append(out, n[len(s.prefix):])
		}
	}
	return out, nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

func (s *anonSource) lookup(op, name string) (*blob, error) {
	b, ok := s.b.members[s.prefix+name]
	if !ok || !validMemberKey(name) {
		return nil, &fs.PathError{Op: op, Path: s.path + ": " + s.prefix + name, Err: fs.ErrNotExist}
	}
	return b, nil
}

func validMemberKey(name string) bool { return name != "" && !containsSlash(name) }

// modTime returns the modification time in the header of member name.
func (s *anonSource) modTime(name string) (time.Time, error) {
	b, err := s.lookup("stat", name)
	if err != nil {
		return time.Time{}, err
	}
	return b.mtime, nil
}

func (s *anonSource) Open(name string) (criuimg.File, error) {
	b, err := s.lookup("open", name)
	if err != nil {
		return nil, err
	}
	if b.f != nil {
		return &anonFile{f: b.f, name: name, size: b.size}, nil
	}
	return &memFile{data: bytes.NewReader(b.data), name: name}, nil
}

// memFile is a member kept in memory.
type memFile struct {
	data *bytes.Reader
	name string
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	return readat.Window(m.data, m.name, 0, m.data.Size(), p, off)
}
func (m *memFile) Close() error { return nil }
func (m *memFile) Name() string { return m.name }
func (m *memFile) Size() int64  { return m.data.Size() }

// anonFile is a member kept in an anonymous file (closed with the
// Checkpoint, not with the anonFile).
type anonFile struct {
	f    *os.File
	name string
	size int64
}

func (a *anonFile) ReadAt(p []byte, off int64) (int, error) {
	return readat.Window(a.f, a.name, 0, a.size, p, off)
}
func (a *anonFile) Close() error              { return nil }
func (a *anonFile) Name() string              { return a.name }
func (a *anonFile) Size() int64               { return a.size }
func (a *anonFile) OSFile() (*os.File, int64) { return a.f, 0 }
