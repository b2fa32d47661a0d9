package criuimg

import (
	"errors"
	"fmt"
	"io"
	"time"

	ghostfile "github.com/checkpoint-restore/go-criu/v8/crit/images/ghost-file"
	remapfile "github.com/checkpoint-restore/go-criu/v8/crit/images/remap-file-path"
	"github.com/ckpt2core/ckpt2core/internal/readat"
)

// Magics of the images of deleted files (criu/include/magic.h).
const (
	MagicRemapFpath uint32 = 0x59133954
	MagicGhostFile  uint32 = 0x52583605
)

// RemapKind says how CRIU saved a file that was open or mapped but no
// longer reachable by its path (remap-fpath.img's remap_type).
type RemapKind int

// Remap kinds. RemapGhost: CRIU copied the deleted file's contents into
// ghost-file-N.img. RemapLinked: CRIU made a hard link to the still
// existing inode inside the container's filesystem (the contents are in
// the rootfs, not in the checkpoint). RemapProcFS: a /proc/PID file of a
// dead process.
const (
	RemapLinked RemapKind = RemapKind(remapfile.RemapType_LINKED)
	RemapGhost  RemapKind = RemapKind(remapfile.RemapType_GHOST)
	RemapProcFS RemapKind = RemapKind(remapfile.RemapType_PROCFS)
)

func (k RemapKind) String() string {
	switch k {
	case RemapLinked:
		return "linked"
	case RemapGhost:
		return "ghost"
	case RemapProcFS:
		return "procfs"
	}
	return fmt.Sprintf("remap type %d", int(k))
}

// remapGhostBit marks a ghost remap in images older than remap_type
// (criu/include/image.h REMAP_GHOST).
const remapGhostBit = 1 << 31

// Remap is one entry of remap-fpath.img: a file of files.img whose path no
// longer led to it at dump time.
type Remap struct {
	// FileID is the files.img id of the deleted file (orig_id): the id
	// that fdinfo entries, VMAs (shmid) and mm's exe_file_id name.
	FileID uint32
	// RemapID is, for RemapGhost, the number of its ghost-file image;
	// for RemapLinked, the files.img id of the link CRIU made; for
	// RemapProcFS, the dead process's pid.
	RemapID uint32
	Kind    RemapKind
	// Path is the deleted file's path as files.img records it (the path
	// it had when it was opened); "" when files.img has no such entry.
	Path string
	// LinkPath is, for RemapLinked, the path of the link CRIU made.
	LinkPath string
	// Entry and Offset locate the entry in remap-fpath.img.
	Entry  int
	Offset int64
}

// GhostImage is the name of the image holding a RemapGhost's contents
// (CRIU names it with the remap id in hex).
func (r Remap) GhostImage() string { return GhostImageName(r.RemapID) }

// GhostImageName is the name of ghost file image id.
func GhostImageName(id uint32) string { return fmt.Sprintf("ghost-file-%x.img", id) }

// RemapTable holds the entries of remap-fpath.img, by file id.
type RemapTable struct {
	list   []Remap
	byFile map[uint32]int
}

// All returns the entries in image order.
func (t *RemapTable) All() []Remap { return t.list }

// Lookup returns the remap of the files.img entry fileID, if it has one.
func (t *RemapTable) Lookup(fileID uint32) (Remap, bool) {
	i, ok := t.byFile[fileID]
	if !ok {
		return Remap{}, false
	}
	return t.list[i], true
}

// ReadRemaps decodes remap-fpath.img. A checkpoint without the image (no
// deleted file) gives an empty table. Two entries for one file id are an
// error; entries are bounded by the image's size.
func (c *Checkpoint) ReadRemaps() (*RemapTable, error) {
	t := &RemapTable{byFile: map[uint32]int{}}
	err := readAll(c.Src, "remap-fpath.img", MagicRemapFpath, nil, func() *remapfile.RemapFilePathEntry { return &remapfile.RemapFilePathEntry{} },
		func(i int, off int64, e *remapfile.RemapFilePathEntry) error {
			r := Remap{FileID: e.GetOrigId(), RemapID: e.GetRemapId(), Entry: i, Offset: off}
			if e.RemapType != nil {
				r.Kind = RemapKind(e.GetRemapType())
			} else if r.RemapID&remapGhostBit != 0 {
				r.RemapID &^= remapGhostBit
				r.Kind = RemapGhost
			} else {
				r.Kind = RemapLinked
			}
			if j, dup := t.byFile[r.FileID]; dup {
				return &FormatError{File: "remap-fpath.img", Entry: i, Offset: off, Msg: fmt.Sprintf("file id %#x already remapped by entry %d", r.FileID, j)}
			}
			if path, ok := c.FilePath(r.FileID); ok {
				r.Path = path
			}
			if r.Kind == RemapLinked {
				if path, ok := c.FilePath(r.RemapID); ok {
					r.LinkPath = path
				}
			}
			t.byFile[r.FileID] = len(t.list)
			t.list = append(t.list, r)
			return nil
		})
	if err != nil && !IsNotExist(err) {
		return nil, fmt.Errorf("%s: %w", c.Src, err)
	}
	return t, nil
}

// MaxGhostHoles bounds the bytes of a chunked ghost file that its image
// does not hold (holes of a sparse file, which read as zeros): a claimed
// size beyond the stored bytes plus this is refused with ErrGhostSize.
const MaxGhostHoles = 1 << 30

// ErrGhostSize is wrapped by the error about a ghost file whose claimed
// size its image cannot justify.
var ErrGhostSize = errors.New("ghost file size not justified by its image")

// GhostFile is an opened ghost-file-N.img: the deleted file's metadata and
// its contents, read from the image on demand.
type GhostFile struct {
	Image    string // the image's name
	Mode     uint32 // st_mode (type and permission bits)
	UID, GID uint32
	Dev      uint32
	Ino      uint64
	Mtime    time.Time // zero if the image has none
	// Size is the file's size: the bytes Contents yields.
	Size int64
	// Stored is the number of content bytes the image holds (Size minus
	// the holes of a chunked file).
	Stored int64
	// Chunked: CRIU wrote the contents as (offset, length) chunks (files
	// of 12 KiB and more); otherwise they follow the header as is.
	Chunked bool
	// SymlinkTarget is a deleted symlink's target.
	SymlinkTarget string

	f       File
	dataOff int64 // offset of the first content byte (plain) or chunk header
}

// Regular reports whether the ghost is a regular file (the only kind with
// contents).
func (g *GhostFile) Regular() bool { return g.Mode&0o170000 == 0o100000 }

// OpenGhost opens the ghost image of r (which must be a RemapGhost) and
// checks its framing: the header entry, and for a chunked file every
// chunk header, that chunks ascend without overlap inside the claimed
// size and that each chunk's bytes are in the image.
func (c *Checkpoint) OpenGhost(r Remap) (*GhostFile, error) {
	if r.Kind != RemapGhost {
		return nil, fmt.Errorf("%s: file id %#x: %s remap, not a ghost file", c.Src, r.FileID, r.Kind)
	}
	g, err := OpenGhostImage(c.Src, r.RemapID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Src, err)
	}
	return g, nil
}

// OpenGhostImage opens ghost-file-<id in hex>.img of src (see OpenGhost).
func OpenGhostImage(src Source, id uint32) (*GhostFile, error) {
	name := GhostImageName(id)
	f, err := src.Open(name)
	if err != nil {
		return nil, err
	}
	g, err := openGhost(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return g, nil
}

func openGhost(f File) (*GhostFile, error) {
	name := f.Name()
	r, err := NewReader(f, MagicGhostFile)
	if err != nil {
		return nil, err
	}
	e := &ghostfile.GhostFileEntry{}
	if err := r.next(e, nil); err != nil {
		if err == io.EOF {
			return nil, &FormatError{File: name, Entry: 0, Offset: r.off, Msg: "no ghost_file_entry"}
		}
		return nil, err
	}
	g := &GhostFile{Image: name, Mode: e.GetMode(), UID: e.GetUid(), GID: e.GetGid(), Dev: e.GetDev(), Ino: e.GetIno(),
		Chunked: e.GetChunks(), SymlinkTarget: e.GetSymlnkTarget(), f: f, dataOff: r.off}
	if m := e.GetMtim(); m != nil {
		g.Mtime = time.Unix(int64(m.GetTvSec()&(1<<62-1)), int64(m.GetTvUsec()%1e6)*1000).UTC()
	}
	left := f.Size() - r.off
	ferr := func(entry int, off int64, err error, format string, a ...any) error {
		return &FormatError{File: name, Entry: entry, Offset: off, Msg: fmt.Sprintf(format, a...), Err: err}
	}
	if !g.Chunked {
		g.Stored = left
		g.Size = left
		if e.Size != nil && e.GetSize() != uint64(left) {
			return nil, ferr(0, 0, ErrGhostSize, "size %d claimed, %d bytes of contents follow the header", e.GetSize(), left)
		}
		if !g.Regular() && left != 0 {
			return nil, ferr(1, r.off, nil, "%d bytes after the header of a non-regular file (mode %#o)", left, g.Mode)
		}
		return g, nil
	}
	if e.Size == nil {
		return nil, ferr(0, 0, nil, "chunked ghost file without a size")
	}
	if !g.Regular() {
		return nil, ferr(0, 0, nil, "chunked ghost file of mode %#o, not a regular file", g.Mode)
	}
	if e.GetSize() > 1<<62 {
		return nil, ferr(0, 0, ErrGhostSize, "size %d claimed", e.GetSize())
	}
	g.Size = int64(e.GetSize())
	err = g.chunks(func(fileOff, n, imgOff int64) error {
		g.Stored += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if holes := g.Size - g.Stored; holes > MaxGhostHoles {
		return nil, ferr(0, 0, ErrGhostSize, "size %d claimed but the image holds %d bytes of it (%d bytes of holes, more than the limit of %d)", g.Size, g.Stored, holes, int64(MaxGhostHoles))
	}
	return g, nil
}

// chunks walks the chunk headers of a chunked ghost, checking each, and
// calls fn with the chunk's offset in the file, its length and the offset
// of its bytes in the image.
func (g *GhostFile) chunks(fn func(fileOff, n, imgOff int64) error) error {
	r := &Reader{f: g.f, off: g.dataOff, entry: 1}
	var end int64 // end of the previous chunk in the file
	for {
		ce := &ghostfile.GhostChunkEntry{}
		i, off := r.entry, r.off
		if err := r.next(ce, nil); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		co, cl, err := g.checkChunk(ce, i, off, end, r.off)
		if err != nil {
			return err
		}
		if err := fn(co, cl, r.off); err != nil {
			return err
		}
		r.off += cl
		end = co + cl
	}
}

// checkChunk checks chunk entry i (at image offset off, its bytes at
// dataOff) against the end of the previous chunk, the claimed size and the
// image's size.
func (g *GhostFile) checkChunk(ce *ghostfile.GhostChunkEntry, i int, off, prevEnd, dataOff int64) (co, cl int64, err error) {
	ferr := func(format string, a ...any) error {
		return &FormatError{File: g.Image, Entry: i, Offset: off, Msg: fmt.Sprintf(format, a...), Err: ErrGhostSize}
	}
	o, l := ce.GetOff(), ce.GetLen()
	if o < uint64(prevEnd) {
		return 0, 0, ferr("chunk at file offset %d overlaps the previous chunk (ending at %d)", o, prevEnd)
	}
	if o > uint64(g.Size) || l > uint64(g.Size)-o {
		return 0, 0, ferr("chunk of %d bytes at file offset %d beyond the claimed size %d", l, o, g.Size)
	}
	if left := g.f.Size() - dataOff; l > uint64(left) {
		return 0, 0, ferr("chunk of %d bytes, %d bytes left in the image", l, left)
	}
	return int64(o), int64(l), nil
}

// Extents calls fn with each stored extent of the contents: its offset in
// the file, its length and a reader of its bytes. The bytes between
// extents (holes) read as zeros. A plain ghost has one extent.
func (g *GhostFile) Extents(fn func(off, n int64, r io.Reader) error) error {
	if !g.Chunked {
		if g.Stored == 0 {
			return nil
		}
		return fn(0, g.Stored, io.NewSectionReader(g.f, g.dataOff, g.Stored))
	}
	return g.chunks(func(fileOff, n, imgOff int64) error {
		return fn(fileOff, n, io.NewSectionReader(g.f, imgOff, n))
	})
}

// Contents returns a reader of the whole file, Size bytes, holes as zeros,
// read from the image as it goes (constant memory). Each call starts
// again from the beginning.
func (g *GhostFile) Contents() io.Reader {
	if !g.Chunked {
		return io.NewSectionReader(g.f, g.dataOff, g.Stored)
	}
	return &chunkReader{g: g, r: &Reader{f: g.f, off: g.dataOff, entry: 1}}
}

// chunkReader reads a chunked ghost's contents: chunk headers are decoded
// one at a time as the reading reaches them, with the checks of chunks.
type chunkReader struct {
	g    *GhostFile
	r    *Reader // at the next chunk header
	pos  int64   // file offset of the next byte to return
	cOff int64   // current chunk: file offset, length, image offset
	cLen int64
	cImg int64
	done bool // no chunk header left
	err  error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for c.pos >= c.cOff+c.cLen && !c.done {
		if err := c.nextChunk(); err != nil {
			c.err = err
			return 0, err
		}
	}
	if c.pos >= c.g.Size {
		c.err = io.EOF
		return 0, io.EOF
	}
	if c.done || c.pos < c.cOff { // a hole: up to the chunk or the end
		end := c.g.Size
		if !c.done {
			end = c.cOff
		}
		n := int64(len(p))
		if n > end-c.pos {
			n = end - c.pos
		}
		clear(p[:n])
		c.pos += n
		return int(n), nil
	}
	n := int64(len(p))
	if left := c.cOff + c.cLen - c.pos; n > left {
		n = left
	}
	m, err := readat.Full(c.g.f, p[:n], c.cImg+(c.pos-c.cOff))
	c.pos += int64(m)
	if err != nil {
		c.err = fmt.Errorf("%s: reading chunk at file offset %d: %w", c.g.Image, c.cOff, err)
		return m, c.err
	}
	return m, nil
}

func (c *chunkReader) nextChunk() error {
	ce := &ghostfile.GhostChunkEntry{}
	i, off := c.r.entry, c.r.off
	if err := c.r.next(ce, nil); err != nil {
		if err == io.EOF {
			c.done = true
			return nil
		}
		return err
	}
	co, cl, err := c.g.checkChunk(ce, i, off, c.cOff+c.cLen, c.r.off)
	if err != nil {
		return err
	}
	c.cOff, c.cLen, c.cImg = co, cl, c.r.off
	c.r.off += cl
	return nil
}

// Close closes the image.
func (g *GhostFile) Close() error { return g.f.Close() }
