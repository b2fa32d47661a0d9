// Package rootfs supplies the files behind a checkpoint's file mappings
// from a root filesystem (a container's unpacked image, or / for plain
// processes), optionally overlaid by the files a container changed
// (rootfs-diff.tar). A file is used only if it fits what CRIU recorded of
// it: the same size and, where CRIU read one, the same ELF build-id.
package rootfs

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Root serves mapped files from a directory tree and an optional overlay.
// It is safe for concurrent use.
type Root struct {
	root    *os.Root
	ck      *criuimg.Checkpoint
	overlay map[string]member // cleaned path (no leading /) -> tar member
	ovFile  io.ReaderAt

	mu    sync.Mutex
	cache map[uint32]result // by files.img id
	open  []*os.File
}

type member struct {
	off, size int64
}

type result struct {
	r    io.ReaderAt
	size int64
	err  error
}

// Open returns a Root over dir for the files of ck.
func Open(dir string, ck *criuimg.Checkpoint) (*Root, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Root{root: r, ck: ck, cache: map[uint32]result{}}, nil
}

// Overlay makes the regular files of the tar archive diff (rootfs-diff.tar)
// take precedence over the directory's. Members are read in place.
func (r *Root) Overlay(diff io.ReaderAt, size int64) error {
	r.overlay = map[string]member{}
	r.ovFile = diff
	cr := &countReader{r: io.NewSectionReader(diff, 0, size)}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("rootfs-diff.tar: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean("/" + h.Name)[1:]
		r.overlay[name] = member{off: cr.n, size: h.Size}
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Close closes the files Root opened.
func (r *Root) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, f := range r.open {
		errs = append(errs, f.Close())
	}
	r.open = nil
	errs = append(errs, r.root.Close())
	return errors.Join(errs...)
}

// OpenMapped returns the file mapped by v if it fits the checkpoint's
// record of it (implements elfcore.MappedFiles).
func (r *Root) OpenMapped(v *criuimg.VMA) (io.ReaderAt, int64, error) {
	if v.FileID == 0 {
		return nil, 0, fmt.Errorf("no file recorded for the mapping")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if res, ok := r.cache[v.FileID]; ok {
		return res.r, res.size, res.err
	}
	rd, size, err := r.openChecked(v.FileID)
	r.cache[v.FileID] = result{rd, size, err}
	return rd, size, err
}

func (r *Root) openChecked(id uint32) (io.ReaderAt, int64, error) {
	rf, ok := r.ck.RegFile(id)
	if !ok {
		return nil, 0, fmt.Errorf("file %d is not in files.img", id)
	}
	name := path.Clean("/" + rf.Path)[1:]
	var rd io.ReaderAt
	var size int64
	where := ""
	if m, ok := r.overlay[name]; ok {
		rd, size, where = io.NewSectionReader(r.ovFile, m.off, m.size), m.size, "rootfs-diff.tar:"+name
	} else {
		if name == "" || strings.HasPrefix(name, "../") {
			return nil, 0, fmt.Errorf("%s: not a file path", rf.Path)
		}
		f, err := r.root.Open(name)
		if err != nil {
			return nil, 0, err
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, 0, fmt.Errorf("%s: not a regular file", rf.Path)
		}
		r.open = append(r.open, f)
		rd, size, where = f, st.Size(), path.Join(r.root.Name(), name)
	}
	if rf.HasSize && uint64(size) != rf.Size {
		return nil, 0, fmt.Errorf("%s has %d bytes, the checkpoint's file had %d", where, size, rf.Size)
	}
	if len(rf.BuildID) > 0 {
		got, err := BuildID(io.NewSectionReader(rd, 0, size))
		if err != nil {
			return nil, 0, fmt.Errorf("%s: reading its build-id: %w", where, err)
		}
		if !bytes.Equal(got, rf.BuildID) {
			return nil, 0, fmt.Errorf("%s has build-id %x, the checkpoint's file had %x", where, got, rf.BuildID)
		}
	}
	return rd, size, nil
}

// BuildID returns the GNU build-id of an ELF file, from its PT_NOTE
// segments or, where the linker put the note outside them (Go's linker
// does), its SHT_NOTE sections.
func BuildID(r io.ReaderAt) ([]byte, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	type notes struct {
		io.ReaderAt
		size uint64
	}
	var all []notes
	for _, p := range f.Progs {
		if p.Type == elf.PT_NOTE {
			all = append(all, notes{p, p.Filesz})
		}
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOTE {
			all = append(all, notes{s, s.Size})
		}
	}
	for _, n := range all {
		if n.size > 1<<20 {
			continue
		}
		b := make([]byte, n.size)
		if _, err := n.ReadAt(b, 0); err != nil {
			return nil, err
		}
		if id, ok := findBuildID(b, f.ByteOrder); ok {
			return id, nil
		}
	}
	return nil, errors.New("no NT_GNU_BUILD_ID note")
}

func findBuildID(b []byte, bo interface{ Uint32([]byte) uint32 }) ([]byte, bool) {
	for len(b) >= 12 {
		nsz, dsz, typ := int(bo.Uint32(b)), int(bo.Uint32(b[4:])), bo.Uint32(b[8:])
		b = b[12:]
		na, da := (nsz+3)&^3, (dsz+3)&^3
		if nsz < 0 || dsz < 0 || na > len(b) || da > len(b)-na {
			return nil, false
		}
		if typ == 3 && nsz == 4 && string(b[:4]) == "GNU\x00" {
			return b[na : na+dsz], true
		}
		b = b[na+da:]
	}
	return nil, false
}
