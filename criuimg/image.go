package criuimg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Image magics (criu/include/magic.h). Every image but inventory.img starts
// with a common magic (ImgCommon, or ImgService for service images such as
// stats-dump) followed by the image's own magic.
const (
	MagicImgCommon  uint32 = 0x54564319
	MagicImgService uint32 = 0x55105940
	MagicInventory  uint32 = 0x58313116
	MagicPstree     uint32 = 0x50273030
	MagicCore       uint32 = 0x55053847
	MagicMM         uint32 = 0x57492820
	MagicPagemap    uint32 = 0x56084025
	MagicFiles      uint32 = 0x56303138
	MagicStats      uint32 = 0x57093306
	MagicMemfdInode uint32 = 0x48453499
	MagicFS         uint32 = 0x51403912 // fs-<pid>.img
	MagicIDs        uint32 = 0x54432030 // ids-<pid>.img
	MagicFdinfo     uint32 = 0x56213732 // fdinfo-<id>.img
	MagicMnts       uint32 = 0x55563928 // mountpoints-<id>.img
	MagicUTSNS      uint32 = 0x54473203 // utsns-<id>.img
)

// MaxEntrySize bounds one protobuf entry. CRIU's largest entries (an mm
// with tens of thousands of VMAs) stay well below it.
const MaxEntrySize = 64 << 20

// ErrFormat is wrapped by every error about malformed image contents.
var ErrFormat = errors.New("malformed image")

// FormatError describes malformed data in an image: which file, which
// entry and at which byte offset.
type FormatError struct {
	File   string
	Entry  int   // index of the entry, -1 for the header
	Offset int64 // byte offset in the file
	Msg    string
	Err    error // the underlying error (an I/O error, a protobuf one), if any
}

func (e *FormatError) Error() string {
	if e.Entry < 0 {
		return fmt.Sprintf("%s: header at offset %d: %s", e.File, e.Offset, e.Msg)
	}
	return fmt.Sprintf("%s: entry %d at offset %d: %s", e.File, e.Entry, e.Offset, e.Msg)
}

// Unwrap makes errors.Is(err, ErrFormat) true, and exposes the underlying
// error.
func (e *FormatError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrFormat, e.Err}
	}
	return []error{ErrFormat}
}

// Reader reads the entries of one image file in order.
type Reader struct {
	f     File
	off   int64
	entry int
	buf   []byte
}

// NewReader checks the image's magics and returns a Reader positioned at
// its first entry. magic is the image's own magic; for inventory.img (a
// single magic) pass MagicInventory.
func NewReader(f File, magic uint32) (*Reader, error) {
	r := &Reader{f: f}
	var hdr [8]byte
	n := 8
	if magic == MagicInventory {
		n = 4
	}
	if _, err := f.ReadAt(hdr[:n], 0); err != nil {
		return nil, &FormatError{File: f.Name(), Entry: -1, Msg: fmt.Sprintf("short header (%d bytes): %v", f.Size(), err), Err: err}
	}
	m0 := binary.LittleEndian.Uint32(hdr[0:])
	if n == 4 {
		if m0 != magic {
			return nil, &FormatError{File: f.Name(), Entry: -1, Msg: fmt.Sprintf("magic %#x, want %#x", m0, magic)}
		}
	} else {
		m1 := binary.LittleEndian.Uint32(hdr[4:])
		if m0 != MagicImgCommon && m0 != MagicImgService {
			return nil, &FormatError{File: f.Name(), Entry: -1, Msg: fmt.Sprintf("common magic %#x, want %#x or %#x", m0, MagicImgCommon, MagicImgService)}
		}
		if m1 != magic {
			return nil, &FormatError{File: f.Name(), Entry: -1, Offset: 4, Msg: fmt.Sprintf("magic %#x, want %#x", m1, magic)}
		}
	}
	r.off = int64(n)
	return r, nil
}

// Next decodes the next entry into m. It returns io.EOF at the clean end of
// the image, and a *FormatError for a truncated or oversized entry or bad
// protobuf bytes.
func (r *Reader) Next(m proto.Message) error { return r.next(m, nil) }

// limits bound what one entry may claim before it is decoded: decoding
// allocates several times the entry's bytes (every optional proto2 field
// is a pointer), so counts that only the decoded message would reveal are
// checked on the wire first.
type limits struct {
	maxSize int64        // entry size; 0: MaxEntrySize
	fields  []fieldLimit // repeated fields
}

// fieldLimit bounds the number of elements of one repeated field.
type fieldLimit struct {
	num  protowire.Number
	name string
	max  int
}

// countElements counts the elements of repeated field num in the encoded
// message b: one per occurrence, or, for a packed scalar field, one per
// varint in each packed payload.
func countElements(b []byte, num protowire.Number) (int, error) {
	n := 0
	for len(b) > 0 {
		fnum, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return 0, protowire.ParseError(l)
		}
		b = b[l:]
		vl := protowire.ConsumeFieldValue(fnum, typ, b)
		if vl < 0 {
			return 0, protowire.ParseError(vl)
		}
		if fnum == num {
			if v, _ := protowire.ConsumeBytes(b); typ == protowire.BytesType && isPackedScalar(num) {
				n += packedVarints(v)
			} else {
				n++
			}
		}
		b = b[vl:]
	}
	return n, nil
}

// isPackedScalar reports whether num is, in the messages limited here, a
// repeated scalar that may come packed (mm_saved_auxv, pstree threads).
func isPackedScalar(num protowire.Number) bool { return num != mmFieldVMAs }

// packedVarints counts the varints of a packed payload (the bytes whose
// high bit is clear).
func packedVarints(b []byte) int {
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	return n
}

// Field numbers limited before decoding.
const (
	mmFieldAuxv     protowire.Number = 13 // mm_entry.mm_saved_auxv
	mmFieldVMAs     protowire.Number = 14 // mm_entry.vmas
	pstreeFieldTids protowire.Number = 5  // pstree_entry.threads
)

// MaxVMAs bounds the mappings of one process (the kernel's default
// vm.max_map_count is 65530); MaxAuxvWords bounds the saved auxv
// (AT_VECTOR_SIZE is about 50 words).
const (
	MaxVMAs      = 1 << 20
	MaxAuxvWords = 1024
	// maxCoreEntry bounds a core-<tid>.img entry: registers, signal
	// actions, credentials with up to 65536 groups.
	maxCoreEntry = 4 << 20
)

var (
	mmLimits     = &limits{fields: []fieldLimit{{mmFieldVMAs, "vmas", MaxVMAs}, {mmFieldAuxv, "mm_saved_auxv", MaxAuxvWords}}}
	pstreeLimits = &limits{fields: []fieldLimit{{pstreeFieldTids, "threads", MaxThreads}}}
	coreLimits   = &limits{maxSize: maxCoreEntry}
)

func (r *Reader) next(m proto.Message, lim *limits) error {
	size := r.f.Size()
	if r.off == size {
		return io.EOF
	}
	start := r.off
	ferr := func(format string, a ...any) error {
		e := &FormatError{File: r.f.Name(), Entry: r.entry, Offset: start, Msg: fmt.Sprintf(format, a...)}
		for _, x := range a {
			if err, ok := x.(error); ok {
				e.Err = err
			}
		}
		return e
	}
	if size-r.off < 4 {
		return ferr("truncated size field (%d bytes left)", size-r.off)
	}
	var sz [4]byte
	if _, err := r.f.ReadAt(sz[:], r.off); err != nil {
		return ferr("reading size: %v", err)
	}
	n := int64(binary.LittleEndian.Uint32(sz[:]))
	left := size - r.off - 4
	if n > left {
		return ferr("entry size %d exceeds the %d bytes left in the file", n, left)
	}
	maxSize := int64(MaxEntrySize)
	if lim != nil && lim.maxSize > 0 {
		maxSize = lim.maxSize
	}
	if n > maxSize {
		return ferr("entry size %d exceeds the limit of %d", n, maxSize)
	}
	if int64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if _, err := r.f.ReadAt(b, r.off+4); err != nil {
		return ferr("reading %d bytes: %v", n, err)
	}
	if lim != nil {
		for _, fl := range lim.fields {
			c, err := countElements(b, fl.num)
			if err != nil {
				return ferr("decoding %T: %v", m, err)
			}
			if c > fl.max {
				return ferr("%d elements in %s, more than the limit of %d", c, fl.name, fl.max)
			}
		}
	}
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, m); err != nil {
		return ferr("decoding %T: %v", m, err)
	}
	r.off += 4 + n
	r.entry++
	return nil
}

// Entry is the index of the entry that Next decodes next.
func (r *Reader) Entry() int { return r.entry }

// Offset is the byte offset of the entry that Next decodes next.
func (r *Reader) Offset() int64 { return r.off }

// readOne opens name, checks its magic and decodes exactly one entry into
// m, checking lim (if not nil) before decoding.
func readOne(src Source, name string, magic uint32, m proto.Message, lim *limits) error {
	trailing, err := readFirst(src, name, magic, m, lim)
	if err != nil {
		return err
	}
	return trailing
}

// readFirst is readOne but for bytes after the entry: m is decoded, and
// trailing is the *FormatError about them (nil if there are none).
func readFirst(src Source, name string, magic uint32, m proto.Message, lim *limits) (trailing, err error) {
	f, err := src.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := NewReader(f, magic)
	if err != nil {
		return nil, err
	}
	if err := r.next(m, lim); err != nil {
		if err == io.EOF {
			return nil, &FormatError{File: name, Entry: 0, Offset: r.off, Msg: "no entry"}
		}
		return nil, err
	}
	if left := f.Size() - r.off; left != 0 {
		return &FormatError{File: name, Entry: 1, Offset: r.off, Msg: fmt.Sprintf("%d bytes after the image's only entry", left)}, nil
	}
	return nil, nil
}

// readAll opens name, checks its magic and calls fn with each decoded entry
// (created by newMsg), its index and its byte offset, checking lim (if not
// nil) before decoding each.
func readAll[M proto.Message](src Source, name string, magic uint32, lim *limits, newMsg func() M, fn func(i int, off int64, m M) error) error {
	return walk(src, name, magic, lim, newMsg, func(_ *Reader, i int, off int64, m M) error { return fn(i, off, m) })
}

// walk is readAll whose fn also gets the Reader, past the entry: the one
// loop over the entries of an image.
func walk[M proto.Message](src Source, name string, magic uint32, lim *limits, newMsg func() M, fn func(r *Reader, i int, off int64, m M) error) error {
	f, err := src.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := NewReader(f, magic)
	if err != nil {
		return err
	}
	for {
		m := newMsg()
		i, off := r.entry, r.off
		if err := r.next(m, lim); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if err := fn(r, i, off, m); err != nil {
			return err
		}
	}
}

// EachEntry opens name in src, checks its magic and calls fn with each
// entry, decoded into a message made by newMsg, until the image ends (nil),
// an entry cannot be read (the Reader's error, naming file and entry) or fn
// fails (its error).
func EachEntry[M proto.Message](src Source, name string, magic uint32, newMsg func() M, fn func(M) error) error {
	return readAll(src, name, magic, nil, newMsg, func(_ int, _ int64, m M) error { return fn(m) })
}
