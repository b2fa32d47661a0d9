package ckptdiff

import (
	"bytes"
	"hash/maphash"
	"slices"
	"sync"
)

// HashBlock is the length of the blocks of a pages file that PageHashes
// hashes (every page size CRIU writes is a multiple of it).
const HashBlock = 4096

// PageHashes are the hashes of the pages files of a checkpoint, one per
// HashBlock bytes at every multiple of HashBlock, computed as the files
// are read (Add: while a compressed archive streams, without keeping its
// pages). With PageHashes on both sides (Checkpoint.Hashes), Diff reads
// of the pages only those whose hashes differ from the other side's, or
// that only one side captured: the ones Plan lists. Both sides must be
// hashed with one seed. Memory: 8 bytes per HashBlock of pages.
type PageHashes struct {
	seed  maphash.Seed
	mu    sync.Mutex
	files map[string]*fileHashes
}

// fileHashes is the hashes of one pages file.
type fileHashes struct {
	h    []uint64
	part []byte // the start of the block after h's, not complete yet
	next int64  // the offset Add expects next
	gap  bool   // an Add did not follow on: no more hashes
}

// NewPageHashes returns an empty PageHashes hashing with seed.
func NewPageHashes(seed maphash.Seed) *PageHashes {
	return &PageHashes{seed: seed, files: map[string]*fileHashes{}}
}

// Add hashes b, the bytes of the pages file name (e.g. "pages-1.img") at
// offset off. Calls for one file must come in order, each at the offset
// where the last ended (after a gap, the rest of the file has no hash).
func (h *PageHashes) Add(name string, off int64, b []byte) {
	h.mu.Lock()
	f := h.files[name]
	if f == nil {
		f = &fileHashes{}
		h.files[name] = f
	}
	h.mu.Unlock()
	if f.gap || off != f.next {
		f.gap = true
		return
	}
	f.next += int64(len(b))
	if len(f.part) > 0 {
		k := min(len(b), HashBlock-len(f.part))
		f.part = append(f.part, b[:k]...)
		b = b[k:]
		if len(f.part) < HashBlock {
			return
		}
		f.h = append(f.h, maphash.Bytes(h.seed, f.part))
		f.part = f.part[:0]
	}
	for len(b) >= HashBlock {
		f.h = append(f.h, maphash.Bytes(h.seed, b[:HashBlock]))
		b = b[HashBlock:]
	}
	f.part = append(f.part, b...)
}

// page returns the hash of the page of ps bytes at offset off of the
// pages file name, if every block of it was hashed.
func (h *PageHashes) page(name string, off int64, ps uint64) (uint64, bool) {
	if h == nil || off < 0 || off%HashBlock != 0 || ps == 0 || ps%HashBlock != 0 {
		return 0, false
	}
	h.mu.Lock()
	f := h.files[name]
	h.mu.Unlock()
	if f == nil {
		return 0, false
	}
	i, n := off/HashBlock, int64(ps/HashBlock)
	if i+n > int64(len(f.h)) {
		return 0, false
	}
	if n == 1 {
		return f.h[i], true
	}
	var sum uint64
	for _, x := range f.h[i : i+n] {
		sum = sum*0x9e3779b97f4a7c15 + x
	}
	return sum, true
}

// Same reports whether h and o hold the same hashes of the same files
// (both computed with one seed): a file read twice had the same
// contents both times.
func (h *PageHashes) Same(o *PageHashes) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(h.files) != len(o.files) {
		return false
	}
	for name, f := range h.files {
		g := o.files[name]
		if g == nil || f.gap != g.gap || f.next != g.next || !slices.Equal(f.h, g.h) || !bytes.Equal(f.part, g.part) {
			return false
		}
	}
	return true
}
