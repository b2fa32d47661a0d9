package elfcore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ckpt2core/ckpt2core/internal/outfile"
	"github.com/ckpt2core/ckpt2core/internal/readat"
	"golang.org/x/sys/unix"
)

// osFiler is implemented by sources whose bytes lie in a regular file, so
// that they can be copied kernel-side.
type osFiler interface {
	OSFile() (*os.File, int64)
}

// Progress is told how many bytes of segment data have been written.
type Progress func(n uint64)

// Output is where Write puts a core: an *os.File (which lets pieces from
// regular files be copied with copy_file_range), or anything that can be
// written at offsets and sized.
type Output interface {
	io.WriterAt
	Truncate(size int64) error
}

// Write writes the planned core to f, which must be empty: the file is
// first extended to its final size, so that every byte no piece covers
// stays a hole, then header, notes and pieces are written in file order.
func (p *Plan) Write(f Output, progress Progress) error {
	var cs copyState
	return p.write(f, progress, &cs)
}

// write is Write with the copy state exposed to tests.
func (p *Plan) write(f Output, progress Progress, cs *copyState) error {
	// Lay out again: notes or segments may have changed since BuildWith.
	if err := p.Layout(); err != nil {
		return err
	}
	if err := f.Truncate(int64(p.size)); err != nil {
		return err
	}
	if _, err := f.WriteAt(p.header(), 0); err != nil {
		return fmt.Errorf("writing the ELF header and notes: %w", err)
	}
	for i, s := range p.Segments {
		for _, pc := range s.Pieces {
			dst := int64(p.segOff[i] + pc.Off)
			if err := copyPiece(f, dst, pc, cs, progress); err != nil {
				return fmt.Errorf("segment %#x, bytes [%#x,+%#x): %w", s.Vaddr, s.Vaddr+pc.Off, pc.Len, err)
			}
		}
	}
	if p.shOff != 0 {
		if _, err := f.WriteAt(p.sectionHeader(), int64(p.shOff)); err != nil {
			return fmt.Errorf("writing the section header: %w", err)
		}
	}
	return nil
}

// copyChunk bounds one copy_file_range call: progress is reported after
// each, so that a bar moves during a mapping of many GiB.
const copyChunk = 64 << 20

// copyPiece copies one piece, with copy_file_range when the source is a
// file (no bytes pass through user space), else through a buffer, and
// tells progress (if not nil) of the bytes copied as it goes.
func copyPiece(dst Output, dstOff int64, pc Piece, cs *copyState, progress Progress) error {
	var src *os.File
	var base int64
	switch s := pc.Src.(type) {
	case osFiler:
		src, base = s.OSFile()
	case *os.File:
		src = s
	}
	if df, ok := dst.(*os.File); ok && src != nil && !cs.noCFR {
		done, err := copyFileRange(df, dstOff, src, base+pc.SrcOff, int64(pc.Len), progress)
		if err == nil {
			return nil
		}
		if !fallbackErr(err) {
			return err
		}
		if done == 0 {
			// Refused outright (another filesystem, no support): the
			// next pieces, from the same files, would be refused too.
			cs.noCFR = true
		}
		dstOff += done
		pc.SrcOff += done
		pc.Len -= uint64(done)
	}
	cs.buffered++
	if cs.buf == nil {
		cs.buf = make([]byte, 1<<20)
	}
	b := cs.buf
	for pc.Len > 0 {
		n := min(uint64(len(b)), pc.Len)
		if _, err := readat.Full(pc.Src, b[:n], pc.SrcOff); err != nil {
			return fmt.Errorf("reading source at %d: %w", pc.SrcOff, err)
		}
		if _, err := dst.WriteAt(b[:n], dstOff); err != nil {
			return err
		}
		pc.SrcOff += int64(n)
		dstOff += int64(n)
		pc.Len -= n
		if progress != nil {
			progress(n)
		}
	}
	return nil
}

// copyState is what copyPiece keeps from one piece to the next.
type copyState struct {
	buf      []byte // for copies through user space
	noCFR    bool   // copy_file_range refused a piece from the start
	buffered uint64 // pieces (or their tails) copied through buf
}

func copyFileRange(dst *os.File, dstOff int64, src *os.File, srcOff, n int64, progress Progress) (int64, error) {
	var done int64
	for done < n {
		roff, woff := srcOff+done, dstOff+done
		k, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(min(n-done, copyChunk)), 0)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return done, err
		}
		if k == 0 {
			return done, fmt.Errorf("source ends %d bytes early: %w", n-done, io.ErrUnexpectedEOF)
		}
		done += int64(k)
		if progress != nil {
			progress(uint64(k))
		}
	}
	return done, nil
}

// fallbackErr reports whether copy_file_range refused the copy for a reason
// that a plain copy does not share (other filesystem, no support).
func fallbackErr(err error) bool {
	return errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EBADF)
}

// ErrExists is returned by WriteFile when the destination exists and
// overwriting was not asked for.
var ErrExists = errors.New("file exists")

// ErrIsDir is returned by WriteFile when the destination is a directory:
// it is never replaced, not even with force.
var ErrIsDir = errors.New("is a directory")

// WriteFile writes the core to dir/name safely: into a new temporary file
// of dir (created exclusively, mode 0600, never through a symlink), renamed
// to name only when complete. An existing name is kept unless force is set;
// with force it is replaced, never followed if it is a symlink. On any
// error nothing is left behind.
func WriteFile(dir, name string, p *Plan, force bool, progress Progress) error {
	return writeFile(dir, name, p, force, progress, fileOps{})
}

// fileOps are the steps of writeFile that tests replace to inject
// failures; the zero value does the real thing.
type fileOps struct {
	output func(*os.File) Output // wraps the output file
}

func (o fileOps) wrap(f *os.File) Output {
	if o.output != nil {
		return o.output(f)
	}
	return f
}

func writeFile(dir, name string, p *Plan, force bool, progress Progress, ops fileOps) error {
	d, f, err := createOutput(dir, name, force)
	if err != nil {
		return err
	}
	defer d.Close()
	// On an error, and on a panic unwinding through here, nothing is
	// left behind.
	defer f.Discard()
	if err = p.Write(ops.wrap(f.File), progress); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return commit(f, dir, name, force)
}

// createOutput checks that dir/name may be written (it is no directory,
// and exists only with force) and creates the anonymous file that will be
// it, and the open directory (which the file needs until it is named);
// the caller Discards the file on failure and closes the directory.
func createOutput(dir, name string, force bool) (*os.File, *outfile.File, error) {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return nil, nil, fmt.Errorf("invalid core file name %q", name)
	}
	final := filepath.Join(dir, name)
	if st, err := os.Lstat(final); err == nil {
		if st.IsDir() {
			return nil, nil, fmt.Errorf("%s: %w", final, ErrIsDir)
		}
		if !force {
			return nil, nil, fmt.Errorf("%s: %w", final, ErrExists)
		}
	}
	d, err := outfile.OpenDir(dir)
	var f *outfile.File
	if err == nil {
		if f, err = outfile.Create(d, "."+name+".tmp-"); err != nil {
			d.Close()
		}
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, fmt.Errorf("%s: creating the core in %s: %w", final, dir, err)
	}
	return d, f, nil
}

// commit names the complete core f dir/name (replacing what has that
// name with force).
func commit(f *outfile.File, dir, name string, force bool) error {
	final := filepath.Join(dir, name)
	var err error
	if force {
		// rename(2) replaces a symlink at final, never follows it.
		err = f.Replace(name)
	} else {
		err = f.Link(name)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%s: %w", final, ErrIsDir) // made since the check above
	case errors.Is(err, syscall.EEXIST) && !force:
		return fmt.Errorf("%s: %w", final, ErrExists)
	}
	return fmt.Errorf("%s: %w", final, err)
}
