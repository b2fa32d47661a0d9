package criuimg

import (
	"fmt"
	"io"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/memfd"
	"github.com/ckpt2core/ckpt2core/internal/readat"
)

// MemfdInode is one memfd inode of memfd.img: a file that lives only in
// memory, its contents in the shmem pagemap pagemap-shmem-<Shmid>.img.
type MemfdInode struct {
	InodeID uint32
	Name    string // as memfd_create was given it (without "memfd:")
	Size    uint64
	Shmid   uint32
	Seals   uint32
	Mode    uint32
	Entry   int // in memfd.img
}

// ReadMemfdInodes decodes memfd.img; a missing image gives nothing.
func (c *Checkpoint) ReadMemfdInodes() ([]MemfdInode, error) {
	var out []MemfdInode
	err := readAll(c.Src, "memfd.img", MagicMemfdInode, nil, func() *memfd.MemfdInodeEntry { return &memfd.MemfdInodeEntry{} },
		func(i int, _ int64, e *memfd.MemfdInodeEntry) error {
			out = append(out, MemfdInode{InodeID: uint32(e.GetInodeId()), Name: e.GetName(), Size: e.GetSize(), Shmid: e.GetShmid(),
				Seals: e.GetSeals(), Mode: e.GetMode(), Entry: i})
			return nil
		})
	if err != nil && !IsNotExist(err) {
		return nil, fmt.Errorf("%s: %w", c.Src, err)
	}
	return out, nil
}

// MemfdInodeOf returns the memfd inode id of the memfd file fileID of
// files.img.
func (c *Checkpoint) MemfdInodeOf(fileID uint32) (uint32, bool) {
	m := c.files[fileID].GetMemfd()
	return m.GetInodeId(), m != nil
}

// HasMemfds reports whether files.img holds a memfd, so that memfd.img
// is there to read (true too when files.img could not be read: it cannot
// tell). A caller reading a streamed archive asks before
// ReadMemfdInodes, which waits for the end of the stream to say that a
// missing memfd.img is missing.
func (c *Checkpoint) HasMemfds() bool {
	if c.filesErr != nil {
		return true
	}
	for _, f := range c.files {
		if f.GetMemfd() != nil {
			return true
		}
	}
	return false
}

// MaxMemfdHoles bounds the bytes of a memfd's claimed size that its
// shmem pagemap does not hold (they read as zeros): a larger claim is
// refused.
const MaxMemfdHoles = 1 << 30

// MemfdContents is a memfd's contents: Size bytes, from the captured
// pages of its shmem pagemap, zeros elsewhere.
type MemfdContents struct {
	idx    *PageIndex
	size   int64
	Stored int64 // bytes captured in the pages file
	pos    int64
	run    int
}

// OpenMemfd opens the contents of in, with pages of pageSize bytes. The
// claimed size is checked against the pages the pagemap holds.
func (c *Checkpoint) OpenMemfd(in MemfdInode, pageSize uint64) (*MemfdContents, error) {
	idx, err := c.shmemIndex(uint64(in.Shmid), pageSize)
	if err != nil {
		return nil, fmt.Errorf("%s: memfd %q (memfd.img entry %d): %w", c.Src, in.Name, in.Entry, err)
	}
	m := &MemfdContents{idx: idx}
	if in.Size > 1<<62 {
		idx.Close()
		return nil, fmt.Errorf("%s: memfd.img entry %d: memfd %q: size %d: %w", c.Src, in.Entry, in.Name, in.Size, ErrFormat)
	}
	m.size = int64(in.Size)
	for _, r := range idx.Runs {
		if r.InFile() && r.Addr < in.Size {
			m.Stored += int64(min(r.Len, in.Size-r.Addr))
		}
	}
	if m.size-m.Stored > MaxMemfdHoles {
		idx.Close()
		return nil, fmt.Errorf("%s: memfd.img entry %d: memfd %q: size %d claimed, %d bytes captured: %w", c.Src, in.Entry, in.Name, in.Size, m.Stored, ErrFormat)
	}
	return m, nil
}

// Size is the memfd's size.
func (m *MemfdContents) Size() int64 { return m.size }

// Read reads the contents in order.
func (m *MemfdContents) Read(p []byte) (int, error) {
	if m.pos >= m.size {
		return 0, io.EOF
	}
	if int64(len(p)) > m.size-m.pos {
		p = p[:m.size-m.pos]
	}
	runs := m.idx.Runs
	pos := uint64(m.pos)
	for m.run < len(runs) && runs[m.run].Addr+runs[m.run].Len <= pos {
		m.run++
	}
	if m.run == len(runs) || pos < runs[m.run].Addr || !runs[m.run].InFile() {
		end := uint64(m.size)
		if m.run < len(runs) {
			if pos < runs[m.run].Addr {
				end = runs[m.run].Addr
			} else {
				end = runs[m.run].Addr + runs[m.run].Len
			}
		}
		n := min(uint64(len(p)), end-pos)
		clear(p[:n])
		m.pos += int64(n)
		return int(n), nil
	}
	r := runs[m.run]
	n := min(uint64(len(p)), r.Addr+r.Len-pos)
	k, err := readat.Full(m.idx.Pages, p[:n], r.Offset+int64(pos-r.Addr))
	m.pos += int64(k)
	if err != nil {
		return k, fmt.Errorf("%s: %w", m.idx.pagesName, err)
	}
	return k, nil
}

// Close closes the pages file.
func (m *MemfdContents) Close() error { return m.idx.Close() }
