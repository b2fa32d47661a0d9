package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"
)

// openSpooled reads an archive in one streaming pass. With
// opts.ExtractDir it writes every member into that directory (extract);
// otherwise it keeps the members this package needs in memory or in
// anonymous files (keepAnon), which nothing can leave behind.
func openSpooled(path string, f *os.File, comp compression, opts Options) (c *Checkpoint, err error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	r, kind, closeDecomp, err := decompress(path, f, comp, opts)
	if err != nil {
		return nil, err
	}
	cr := &countReader{r: r, limit: opts.MaxBytes}
	tr := tar.NewReader(cr)
	if opts.Stream && opts.ExtractDir == "" && comp != compNone {
		c := openStream(path, cr, tr, opts, kind, closeDecomp)
		c.f = f // read by the stream until it ends; closed by Close
		return c, nil
	}
	defer closeDecomp()
	if opts.ExtractDir != "" {
		c, err = extract(path, cr, tr, opts)
	} else {
		c, err = keepAnon(path, cr, tr, opts)
	}
	if err != nil {
		if opts.Context != nil && opts.Context.Err() != nil {
			return nil, fmt.Errorf("%s: unpacking stopped: %w", path, opts.Context.Err())
		}
		return nil, err
	}
	c.kind = kind
	return c, nil
}

// decompress returns the tar stream of f (compressed as comp), which
// fails once opts.Context is canceled, and the kind of archive.
func decompress(path string, f *os.File, comp compression, opts Options) (io.Reader, string, func(), error) {
	var r io.Reader = f
	if opts.Context != nil {
		r = &ctxReader{ctx: opts.Context, r: r}
	}
	if opts.OnRead != nil {
		r = &onReadReader{r: r, fn: opts.OnRead}
	}
	switch comp {
	case compGzip:
		zr, err := newGzipReader(bufio.NewReaderSize(r, 1<<20))
		if err != nil {
			return nil, "", nil, fmt.Errorf("%s: %w", path, err)
		}
		return &decompReader{r: zr, kind: "gzip"}, KindTarGzip, func() { zr.Close() }, nil
	case compZstd:
		n := zstdConcurrency
		if opts.Decoders > 0 {
			n = opts.Decoders
		}
		zr, err := newZstdReaderWith(r, n)
		if err != nil {
			return nil, "", nil, fmt.Errorf("%s: zstd: %w", path, err)
		}
		return &decompReader{r: zr, kind: "zstd"}, KindTarZstd, zr.Close, nil
	}
	return r, KindTar, func() {}, nil
}

// Decoder settings, chosen by BenchmarkDecoders (2 shared cores, 256 MiB
// of testdata's real pages) and by whole commands on 1 GiB archives:
// gzip 560 MB/s serial vs 539 MB/s through pgzip (inflating stays serial;
// its read-ahead goroutine buys nothing when the stream is already read in
// a goroutine of its own, as Options.Stream does); zstd 1.74 GB/s with one
// decoding goroutine, 1.42 with 2, 1.89 with 4, and grep of a 1 GiB zstd
// archive of real pages 0.77 s with 4 against 0.84 s with one (inspect 0.71
// against 0.81). Pages that do not compress (raw zstd blocks, which the
// decoder only copies) go about 10% faster with one (grep 0.30 s against
// 0.33 s): real memory compresses, so 4. With 4 the decoder reads its
// input in a goroutine of its own; a read-ahead goroutine of ours in front
// of it (as zstd's command reads asynchronously) bought about 10% with one
// decoding goroutine, and nothing (1-2% slower) with 4.
const (
	pgzipBlock      = 1 << 20
	pgzipBlocks     = 4
	zstdConcurrency = 4
)

func newGzipReader(r io.Reader) (io.ReadCloser, error) {
	return newGzipReaderWith(r, false)
}

func newGzipReaderWith(r io.Reader, parallel bool) (io.ReadCloser, error) {
	if parallel {
		return pgzip.NewReaderN(r, pgzipBlock, pgzipBlocks)
	}
	return gzip.NewReader(r)
}

func newZstdReaderWith(r io.Reader, concurrency int) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderMaxWindow(ZstdMaxWindow), zstd.WithDecoderMaxMemory(ZstdMaxWindow), zstd.WithDecoderConcurrency(concurrency))
}

// keepAnon keeps the needed members of the tar stream read by tr: small
// ones in memory, the others in anonymous files (see newAnonFile).
func keepAnon(path string, cr *countReader, tr *tar.Reader, opts Options) (c *Checkpoint, err error) {
	b := &blobs{dir: opts.TempDir, members: map[string]*blob{}}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	buf := make([]byte, 1<<20)
	lw := &limitWriter{limit: opts.MaxBytes}
	x := newExtras()
	_, err = scan(path, cr, tr, opts, -1, false, func(m *member) error {
		switch m.role {
		case roleLink:
			x.add(m, span{})
			return nil
		case roleParent, roleVolume:
			x.add(m, span{mtime: m.hdr.ModTime})
		}
		return keepMember(path, b, m, tr, lw, buf)
	})
	if err != nil {
		return nil, err
	}
	return &Checkpoint{
		path:   path,
		x:      x,
		blobs:  b,
		Images: &anonSource{path: path, prefix: "checkpoint/", b: b},
		top:    &anonSource{path: path, b: b},
	}, nil
}

// keepMember reads the data of member m from r into b: in memory if it is
// small and the budget allows, else into an anonymous file through lw.
func keepMember(path string, b *blobs, m *member, r io.Reader, lw *limitWriter, buf []byte) error {
	size := m.hdr.Size
	if size > lw.limit-lw.n {
		return memberError(path, m.hdr.Name, "%d bytes after %d bytes spooled: more than %d bytes in all (MaxBytes; a tar bomb?)", size, lw.n, lw.limit)
	}
	bl := &blob{size: size, mtime: m.hdr.ModTime}
	if size <= memMember && b.mem+size <= memBudget && m.name != rootfsDiff {
		bl.data = make([]byte, size) // at most memMember
		n, err := io.ReadFull(r, bl.data)
		if err != nil {
			return copyError(path, m, int64(n), err, lw)
		}
		b.mem += size
		lw.n += size
	} else {
		f, err := newAnonFile(b.dir)
		if err != nil {
			return memberError(path, m.hdr.Name, "%v", err)
		}
		b.files = append(b.files, f)
		lw.w = f
		n, err := io.CopyBuffer(lw, r, buf)
		lw.w = nil
		if err != nil || n != size {
			return copyError(path, m, n, err, lw)
		}
		bl.f = f
	}
	b.members[m.name] = bl
	return nil
}

// copyError explains why copying member m stopped after n bytes.
func copyError(path string, m *member, n int64, err error, lw *limitWriter) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF) || err == nil || err == io.EOF:
		return memberError(path, m.hdr.Name, "truncated archive: declares %d bytes, the data ends after %d bytes", m.hdr.Size, n)
	case errors.Is(err, errStreamLimit):
		return memberError(path, m.hdr.Name, "the archive is longer than MaxBytes: %v", err)
	case errors.Is(err, errSpoolLimit):
		return memberError(path, m.hdr.Name, "more than %d bytes spooled in all (MaxBytes; a tar bomb?)", lw.limit)
	}
	return memberError(path, m.hdr.Name, "%v", err)
}

// extract writes every member of the tar stream read by tr into
// opts.ExtractDir: regular files (mode 0600) and directories (mode 0700)
// at any depth; links are not created (those scan accepts are outside
// checkpoint/ and point inside the archive). On error what it wrote is
// removed.
func extract(path string, cr *countReader, tr *tar.Reader, opts Options) (c *Checkpoint, err error) {
	dir := opts.ExtractDir
	created, err := prepareExtractDir(dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err == nil {
			return
		}
		if created {
			os.RemoveAll(dir)
		} else {
			emptyDir(dir) // it was empty: what is there is ours
		}
	}()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	images := map[string]time.Time{} // name -> the header's modification time
	top := map[string]time.Time{}
	x := newExtras()
	buf := make([]byte, 1<<20)
	lw := &limitWriter{limit: opts.MaxBytes}
	_, err = scan(path, cr, tr, opts, -1, true, func(m *member) error {
		switch m.hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(m.name, 0o700); err != nil {
				return memberError(path, m.hdr.Name, "%v", err)
			}
			return nil
		case tar.TypeReg:
		default:
			if m.role == roleLink {
				x.add(m, span{}) // followed within the archive, not created
			}
			return nil // a link: not created
		}
		if d := filepath.Dir(m.name); d != "." {
			if err := root.MkdirAll(d, 0o700); err != nil {
				return memberError(path, m.hdr.Name, "%v", err)
			}
		}
		switch m.role {
		case roleImage:
			images[m.key] = m.hdr.ModTime
		case roleTop:
			top[m.key] = m.hdr.ModTime
		case roleParent, roleVolume:
			x.add(m, span{mtime: m.hdr.ModTime})
		}
		return spoolMember(path, root, m.name, m, tr, lw, buf)
	})
	if err != nil {
		return nil, err
	}
	img, err := criuimg.NewDirSource(filepath.Join(dir, "checkpoint"))
	if err != nil {
		return nil, err
	}
	topSrc, err := criuimg.NewDirSource(dir)
	if err != nil {
		return nil, err
	}
	return &Checkpoint{
		path:   path,
		dir:    dir,
		x:      x,
		Images: &spoolSource{ds: img, path: path, prefix: "checkpoint/", names: images},
		top:    &spoolSource{ds: topSrc, path: path, names: top},
	}, nil
}

// ctxReader fails once ctx is canceled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// onReadReader reports the bytes read through it.
type onReadReader struct {
	r  io.Reader
	fn func(int64)
}

func (o *onReadReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	if n > 0 {
		o.fn(int64(n))
	}
	return n, err
}

// decompReader says which decompressor an error comes from.
type decompReader struct {
	r    io.Reader
	kind string
}

func (d *decompReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF && !strings.HasPrefix(err.Error(), d.kind) {
		err = fmt.Errorf("%s: %w", d.kind, err)
	}
	return n, err
}

// limitWriter writes to w and refuses to write more than limit bytes in
// all, whichever w it is given: it bounds what spooling writes to disk.
// It also hides os.File's ReadFrom, so that io.CopyBuffer uses our buffer.
type limitWriter struct {
	w     io.Writer
	n     int64 // written so far, through every w
	limit int64
}

var errSpoolLimit = errors.New("spooled data longer than MaxBytes")

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.limit-l.n {
		return 0, errSpoolLimit
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// spoolMember copies the data of member m into rel, a new file of root,
// through lw.
func spoolMember(path string, root *os.Root, rel string, m *member, tr *tar.Reader, lw *limitWriter, buf []byte) error {
	if m.hdr.Size > lw.limit-lw.n {
		return memberError(path, m.hdr.Name, "%d bytes after %d bytes spooled: more than %d bytes in all (MaxBytes; a tar bomb?)", m.hdr.Size, lw.n, lw.limit)
	}
	out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return memberError(path, m.hdr.Name, "%v", err)
	}
	lw.w = out
	n, err := io.CopyBuffer(lw, tr, buf)
	lw.w = nil
	if err == nil {
		// The file keeps the member's modification time, as tar -x
		// does: an extracted checkpoint, opened again as a directory,
		// tells when its files were written (inspect dates a Podman
		// checkpoint by stats-dump's). Through the descriptor: no path
		// is looked up again. Best effort: a time the host cannot set (a
		// 32-bit time_t) costs only that; MetaModTime of this
		// Checkpoint answers from the header anyway.
		_ = setModTime(out, m.hdr.ModTime)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != m.hdr.Size {
		return copyError(path, m, n, err, lw)
	}
	return nil
}

// setModTime sets the modification time of the open file f to t (its
// access time is left as is): utimensat(fd, NULL, ...), which is
// futimens(3).
func setModTime(f *os.File, t time.Time) error {
	mt, err := unix.TimeToTimespec(t)
	if err != nil {
		return fmt.Errorf("modification time %v: %w", t, err)
	}
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, mt}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return fmt.Errorf("setting the modification time: %w", errno)
	}
	return nil
}

// prepareExtractDir makes sure dir is a new or empty directory.
func prepareExtractDir(dir string) (created bool, err error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return false, err
		}
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if !st.IsDir() {
		return false, fmt.Errorf("%s: extract directory: not a directory", dir)
	}
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	if ents, _ := d.Readdirnames(1); len(ents) > 0 {
		return false, fmt.Errorf("%s: extract directory: not empty", dir)
	}
	return false, nil
}

// emptyDir removes what dir holds.
func emptyDir(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// spoolSource serves the spooled files of one directory.
type spoolSource struct {
	ds     *criuimg.DirSource
	path   string // the archive
	prefix string
	names  map[string]time.Time // the members' modification times
}

func (s *spoolSource) String() string {
	if s.prefix == "" {
		return s.path
	}
	return s.path + ":" + s.prefix[:len(s.prefix)-1]
}
func (s *spoolSource) Names() ([]string, error) { return names(s.names), nil }

// modTime returns the modification time in the header of member name.
func (s *spoolSource) modTime(name string) (time.Time, error) {
	t, ok := s.names[name]
	if !ok {
		return time.Time{}, &fs.PathError{Op: "stat", Path: s.path + ": " + s.prefix + name, Err: fs.ErrNotExist}
	}
	return t, nil
}

func (s *spoolSource) Open(name string) (criuimg.File, error) {
	if _, ok := s.names[name]; !ok {
		return nil, &fs.PathError{Op: "open", Path: s.path + ": " + s.prefix + name, Err: fs.ErrNotExist}
	}
	return s.ds.Open(name)
}
