package elfcore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/outfile"
)

// Staged writing: the segment data of a core is written while its pages
// stream, before its notes are known (a compressed archive whose
// pstree.img, hence the thread list, comes after the pages), and the ELF
// header, program headers and notes are put in front afterwards.
//
// The data goes at offsets relative to a base, the data offset of a
// provisional plan (built with Options.NoMemory from what is known: the
// main thread only, say). The final plan's data offset is at least that
// (more threads, more notes); if it is larger, the file gets the
// difference inserted at its start (fallocate FALLOC_FL_INSERT_RANGE: both
// are multiples of the page size, and what lies before the base is a
// hole), then the header is written there. Where the filesystem cannot
// insert a range, or the final plan's segments are not the provisional
// ones, the core is written anew from the staged data.

// ErrNoInsert is returned (wrapped) by Staged.Finish's in-place step when
// the output's filesystem cannot insert a range at the start of a file
// (tmpfs, say): FALLOC_FL_INSERT_RANGE is refused.
var ErrNoInsert = errors.New("the filesystem cannot insert a range into a file (FALLOC_FL_INSERT_RANGE)")

// ErrNotStaged is wrapped by reads of a Staged source for bytes that the
// staged data does not hold.
var ErrNotStaged = errors.New("not in the core's staged data")

// ErrLayoutChanged says that the final plan's segments are not those of
// the provisional plan whose data was staged.
var ErrLayoutChanged = errors.New("the segments differ from the provisional plan's")

// ErrRewriteAsked is the reason of a rewrite that Finish was asked for.
var ErrRewriteAsked = errors.New("asked to write the core anew")

// DataOffset is the file offset of the first segment's data (after
// Layout): the page boundary after the notes.
func (p *Plan) DataOffset() uint64 { return p.dataOff }

// writeData writes the segment data of p into f, which must be empty, as
// in a core whose data begins at base rather than at p's data offset: f
// is sized to match, the pieces are written in file order, and what lies
// before base stays a hole.
func (p *Plan) writeData(f Output, base int64, progress Progress) error {
	if err := p.Layout(); err != nil {
		return err
	}
	shift := base - int64(p.dataOff)
	if base < 0 || int64(p.size) > int64(^uint64(0)>>1)-max(shift, 0) {
		return fmt.Errorf("data base %d: out of range", base)
	}
	if err := f.Truncate(int64(p.size) + shift); err != nil {
		return err
	}
	var cs copyState
	for i, s := range p.Segments {
		for _, pc := range s.Pieces {
			dst := int64(p.segOff[i]+pc.Off) + shift
			if err := copyPiece(f, dst, pc, &cs, progress); err != nil {
				return fmt.Errorf("segment %#x, bytes [%#x,+%#x): %w", s.Vaddr, s.Vaddr+pc.Off, pc.Len, err)
			}
		}
	}
	return nil
}

// srcName names a piece's source for comparisons ("" if it has no name).
func srcName(r io.ReaderAt) string {
	if n, ok := r.(interface{ Name() string }); ok {
		return n.Name()
	}
	return ""
}

// SameData reports whether p and q (both laid out) place the same bytes at
// the same offsets from their data offsets: the same segments, made of the
// same pieces of the same (named) sources.
func (p *Plan) SameData(q *Plan) bool {
	if len(p.Segments) != len(q.Segments) || p.size-p.dataOff != q.size-q.dataOff {
		return false
	}
	for i := range p.Segments {
		a, b := &p.Segments[i], &q.Segments[i]
		if a.Vaddr != b.Vaddr || a.Memsz != b.Memsz || a.Filesz != b.Filesz || a.Flags != b.Flags ||
			p.segOff[i]-p.dataOff != q.segOff[i]-q.dataOff || len(a.Pieces) != len(b.Pieces) {
			return false
		}
		for j := range a.Pieces {
			x, y := a.Pieces[j], b.Pieces[j]
			nx := srcName(x.Src)
			if x.Off != y.Off || x.Len != y.Len || x.SrcOff != y.SrcOff || nx == "" || nx != srcName(y.Src) {
				return false
			}
		}
	}
	return true
}

// Staged is a core of dir whose segment data is written and whose notes
// are not: an anonymous file of dir until Finish names it.
type Staged struct {
	dir, name string
	force     bool
	d         *os.File // dir, open until the core is named
	f         *outfile.File
	plan      *Plan // the provisional plan
	base      int64
}

// StageFile writes the segment data of the provisional plan p (built with
// Options.NoMemory) into a new anonymous file of dir, at offsets from
// p's data offset, for Finish to complete as dir/name. An existing name
// is an error (ErrExists, ErrIsDir) as in WriteFile; on any error nothing
// is left behind.
func StageFile(dir, name string, p *Plan, force bool, progress Progress) (*Staged, error) {
	if err := p.Layout(); err != nil {
		return nil, err
	}
	s := &Staged{dir: dir, name: name, force: force, plan: p, base: int64(p.dataOff)}
	d, f, err := createOutput(dir, name, force)
	if err != nil {
		return nil, err
	}
	s.d, s.f = d, f
	if err := p.writeData(f.File, s.base, progress); err != nil {
		s.Discard()
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return s, nil
}

// Discard removes the staged core (it may be called after Finish).
func (s *Staged) Discard() {
	s.f.Discard()
	if s.d != nil {
		s.d.Close()
		s.d = nil
	}
}

// stagedRun is a run of a source's bytes that the staged data holds.
type stagedRun struct {
	srcOff, n, fileOff int64
}

// Source returns a reader of src, a source of the provisional plan's
// pieces, as the staged file holds it: what a final plan's notes read
// (pr_psargs) and, after a fallback, its pieces, in place of src (whose
// bytes, consumed by the staging, are gone). It has src's name and size.
// Bytes no piece placed fail to read (ErrNotStaged). The pieces are told
// by their source itself, not its name: a parent checkpoint's pages file
// has the same name.
func (s *Staged) Source(src criuimg.File) criuimg.File {
	p := s.plan
	var runs []stagedRun
	for i, sg := range p.Segments {
		for _, pc := range sg.Pieces {
			if pc.Len > 0 && sameSource(pc.Src, src) {
				runs = append(runs, stagedRun{pc.SrcOff, int64(pc.Len), int64(p.segOff[i]+pc.Off-p.dataOff) + s.base})
			}
		}
	}
	slices.SortFunc(runs, func(a, b stagedRun) int { return int(min(max(a.srcOff-b.srcOff, -1), 1)) })
	return &stagedFile{name: src.Name(), size: src.Size(), f: s.f.File, runs: runs}
}

// sameSource reports whether a and b are the same source (== where their
// type allows it).
func sameSource(a io.ReaderAt, b criuimg.File) bool {
	if a == nil || b == nil || reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == io.ReaderAt(b)
}

// stagedFile is Staged.Source.
type stagedFile struct {
	name string
	size int64
	f    *os.File
	runs []stagedRun
}

func (f *stagedFile) Name() string { return f.name }
func (f *stagedFile) Size() int64  { return f.size }
func (f *stagedFile) Close() error { return nil }

func (f *stagedFile) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= f.size {
			return n, io.EOF
		}
		// The last run starting at or before at.
		i := sort.Search(len(f.runs), func(i int) bool { return f.runs[i].srcOff > at }) - 1
		if i < 0 || at >= f.runs[i].srcOff+f.runs[i].n {
			return n, fmt.Errorf("%s: offset %d: %w", f.name, at, ErrNotStaged)
		}
		r := f.runs[i]
		k := min(int64(len(p)-n), r.srcOff+r.n-at)
		m, err := f.f.ReadAt(p[n:n+int(k)], r.fileOff+(at-r.srcOff))
		n += m
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("%s: offset %d: %w", f.name, at, err)
		}
	}
	return n, nil
}

// FinishHow says how Finish completed a core.
type FinishHow int

const (
	// InPlace: the notes fit before the staged data.
	InPlace FinishHow = iota
	// Inserted: room for the notes was inserted before the data.
	Inserted
	// Rewritten: the core was written anew from the staged data (Why
	// says why).
	Rewritten
)

// Finish completes the staged core with the final plan q (built with the
// Source of the staged pages in place of the streamed ones) and names it:
// in place when q's segments are the provisional plan's, else, or when the
// filesystem cannot insert room for the notes, by writing q anew (reading
// the staged data). rewrite asks for the rewrite in any case (to test
// it). why is the reason of a rewrite. Nothing is left behind on an
// error.
func (s *Staged) Finish(q *Plan, rewrite bool) (how FinishHow, why error, err error) {
	defer s.Discard()
	if err := q.Layout(); err != nil {
		return 0, nil, err
	}
	final := filepath.Join(s.dir, s.name)
	how, why = InPlace, error(nil)
	if rewrite {
		why = ErrRewriteAsked
	} else if !q.SameData(s.plan) || int64(q.dataOff) < s.base {
		why = ErrLayoutChanged // (the notes shrank: they would overlap the data)
	} else if why = q.headIn(s.f.File, s.base); why != nil && !errors.Is(why, ErrNoInsert) {
		return 0, nil, fmt.Errorf("%s: %w", final, why)
	} else if why == nil && int64(q.dataOff) > s.base {
		how = Inserted
	}
	if why != nil {
		// The staged file stays open (and readable) until this returns.
		return Rewritten, why, writeFile(s.dir, s.name, q, s.force, nil, fileOps{})
	}
	return how, nil, commit(s.f, s.dir, s.name, s.force)
}

// headIn puts the header, program headers and notes of p in front of
// segment data staged in f from offset base, and the section header of
// PN_XNUM after it.
func (p *Plan) headIn(f *os.File, base int64) error {
	off := int64(p.dataOff)
	switch {
	case off < base:
		return fmt.Errorf("the data begins at %d, before the staged data (%d)", off, base)
	case off > base:
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if st.Size() == 0 {
			err = f.Truncate(int64(p.size))
		} else {
			err = fallocate(f, unix.FALLOC_FL_INSERT_RANGE, 0, off-base)
			if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) {
				return fmt.Errorf("%w: %w", ErrNoInsert, err)
			}
		}
		if err != nil {
			return fmt.Errorf("making room for the notes: %w", err)
		}
	}
	if st, err := f.Stat(); err != nil || st.Size() != int64(p.size) {
		if err == nil {
			err = fmt.Errorf("%d bytes staged, %d planned", st.Size(), p.size)
		}
		return err
	}
	if _, err := f.WriteAt(p.header(), 0); err != nil {
		return fmt.Errorf("writing the ELF header and notes: %w", err)
	}
	if p.shOff != 0 {
		if _, err := f.WriteAt(p.sectionHeader(), int64(p.shOff)); err != nil {
			return fmt.Errorf("writing the section header: %w", err)
		}
	}
	return nil
}

// fallocate is fallocate(2), retried on EINTR.
func fallocate(f *os.File, mode uint32, off, n int64) error {
	for {
		err := unix.Fallocate(int(f.Fd()), mode, off, n)
		if err != syscall.EINTR {
			return err
		}
	}
}
