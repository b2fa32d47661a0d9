// Package rootfs supplies the files behind a checkpoint's file mappings
// from a root filesystem (a container's unpacked image, or / for plain
// processes), optionally overlaid by the files a container changed
// (rootfs-diff.tar). A file is used only if it fits what CRIU recorded of
// it: the same size and, where CRIU read one, the same ELF build-id. The
// checkpoint naming the files is untrusted: only regular files inside the
// root are opened (OpenRegular), never a FIFO, a device or a symbolic link.
package rootfs

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Root serves mapped files from a directory tree and an optional overlay.
// It is safe for concurrent use.
type Root struct {
	root    *os.Root
	ck      *criuimg.Checkpoint
	overlay map[string]member // cleaned path (no leading /) -> tar member
	ovFile  io.ReaderAt
	hidden  map[string]string // path -> why the container's root lacks it (whiteout, opaque dir, deleted.files)
	spool   *os.File          // decompressed gzip rootfs-diff.tar (unlinked)

	mu     sync.Mutex
	cache  map[uint32]*result // by files.img id
	open   []*os.File
	closed bool
}

type member struct {
	off, size int64
}

// result is the outcome of opening one file, computed once.
type result struct {
	once sync.Once
	r    io.ReaderAt
	size int64
	err  error
}

// Limits on rootfs-diff.tar, an untrusted archive: a longer name cannot be
// a path (PATH_MAX), and the index of its files is bounded.
const (
	maxNameLen        = 4096
	maxOverlayFiles   = 1 << 18
	maxOverlayNameLen = 64 << 20 // the names of all files together
)

// Open returns a Root over dir for the files of ck.
func Open(dir string, ck *criuimg.Checkpoint) (*Root, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &Root{root: r, ck: ck, cache: map[uint32]*result{}}, nil
}

// Overlay makes the regular files of the tar archive diff (rootfs-diff.tar)
// take precedence over the directory's. Members are read in place. A
// member name longer than PATH_MAX, or more than maxOverlayFiles regular
// files or maxOverlayNameLen bytes of their names, is an error: then no
// overlay is used.
//
// A gzip-compressed diff (containerd's rw layer blob, told by content) is
// first decompressed into an anonymous file of os.TempDir() (anonfile), at
// most MaxDecompressed bytes. OCI whiteouts hide the directory's files: ".wh.NAME"
// deletes NAME, ".wh..wh..opq" hides what the directory held before.
func (r *Root) Overlay(diff io.ReaderAt, size int64) error {
	r.overlay = nil
	diff, size, err := r.decompress(diff, size)
	if err != nil {
		return err
	}
	overlay := map[string]member{}
	hidden := map[string]string{}
	nameLen := 0
	cr := &countReader{r: io.NewSectionReader(diff, 0, size)}
	tr := tar.NewReader(cr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("rootfs-diff.tar: %w", err)
		}
		if len(h.Name) > maxNameLen {
			return fmt.Errorf("rootfs-diff.tar: member %q...: name of %d bytes, longer than %d (PATH_MAX): refused", h.Name[:64], len(h.Name), maxNameLen)
		}
		name := path.Clean("/" + h.Name)[1:]
		if dir, base := path.Split(name); base == whiteoutOpaque {
			hidden[strings.TrimSuffix(dir, "/")+"/"] = "an opaque directory in rootfs-diff.tar (" + name + ")"
			continue
		} else if strings.HasPrefix(base, whiteoutPrefix) {
			hidden[dir+strings.TrimPrefix(base, whiteoutPrefix)] = "deleted in the container (whiteout " + name + " in rootfs-diff.tar)"
			continue
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if _, ok := overlay[name]; !ok {
			nameLen += len(name)
			if len(overlay) >= maxOverlayFiles || nameLen > maxOverlayNameLen {
				return fmt.Errorf("rootfs-diff.tar: member %q: more than %d files or %d bytes of names: refused", h.Name, maxOverlayFiles, maxOverlayNameLen)
			}
		}
		overlay[name] = member{off: cr.n, size: h.Size}
	}
	r.overlay, r.ovFile = overlay, diff
	if r.hidden == nil {
		r.hidden = map[string]string{}
	}
	for k, v := range hidden {
		r.hidden[k] = v
	}
	return nil
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
	r.open, r.closed = nil, true
	if r.spool != nil {
		errs = append(errs, r.spool.Close())
	}
	errs = append(errs, r.root.Close())
	return errors.Join(errs...)
}

// OpenMapped returns the file mapped by v if it fits the checkpoint's
// record of it (implements elfcore.MappedFiles). Each file is opened and
// checked once; callers asking for different files do not wait for each
// other.
func (r *Root) OpenMapped(v *criuimg.VMA) (io.ReaderAt, int64, error) {
	if v.FileID == 0 {
		return nil, 0, fmt.Errorf("no file recorded for the mapping")
	}
	r.mu.Lock()
	res, ok := r.cache[v.FileID]
	if !ok {
		res = &result{}
		r.cache[v.FileID] = res
	}
	r.mu.Unlock()
	res.once.Do(func() { res.r, res.size, res.err = r.openChecked(v.FileID) })
	return res.r, res.size, res.err
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
	} else if why := r.hiddenWhy(name); why != "" {
		return nil, 0, fmt.Errorf("/%s: %s", name, why)
	} else {
		if name == "" || strings.HasPrefix(name, "../") {
			return nil, 0, fmt.Errorf("%s: not a file path", rf.Path)
		}
		where = path.Join(r.root.Name(), name)
		f, st, err := OpenRegular(r.root, name)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", where, err)
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			f.Close()
			return nil, 0, fmt.Errorf("%s: %w", where, os.ErrClosed)
		}
		r.open = append(r.open, f)
		r.mu.Unlock()
		rd, size = f, st.Size()
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

// OpenRegular opens name under root for reading if it is a regular file,
// and returns it with its FileInfo. The path is resolved as in a chroot
// at root: symbolic links are followed, an absolute target starts again at
// root and ".." stops there (a root filesystem's /lib64/ld-linux-x86-64.so.2
// is an absolute link), so it never leaves root. Anything but a regular
// file (a FIFO, whose open would block, a device, whose open may act, a
// socket, a directory) is refused without being opened; the file is then
// opened with O_NONBLOCK|O_NOCTTY|O_NOFOLLOW and checked again, in case it
// was replaced in between.
func OpenRegular(root *os.Root, name string) (f *os.File, st fs.FileInfo, err error) {
	defer func() {
		// The caller names the file: the failing call's own path (a
		// component of it, relative to root) and op ("statat") add only
		// noise.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
	}()
	resolved, err := resolve(root, name)
	if err != nil {
		return nil, nil, err
	}
	st, err = root.Lstat(resolved)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s, not a regular file: refused", fileType(st.Mode()))
	}
	f, err = root.OpenFile(resolved, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, err
	}
	fst, err := f.Stat()
	if err == nil && (!fst.Mode().IsRegular() || !os.SameFile(st, fst)) {
		err = fmt.Errorf("%s, not the regular file first seen: refused", fileType(fst.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fst, nil
}

// maxLinks bounds the symbolic links followed in one path (the kernel's
// MAXSYMLINKS).
const maxLinks = 40

// resolve returns name with every symbolic link resolved as in a chroot at
// root: the result names no symbolic link and lies in root ("." for root
// itself).
func resolve(root *os.Root, name string) (string, error) {
	parts := strings.Split(name, "/")
	var done []string
	links := 0
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := path.Join(path.Join(done...), p)
		st, err := root.Lstat(cur)
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			done = append(done, p)
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", cur)
		}
		target, err := root.Readlink(cur)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			done = done[:0]
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// fileType names the type of a file for an error.
func fileType(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	}
	return "a special file"
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
