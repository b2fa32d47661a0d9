// Package elfcore plans and writes ELF core files. A Plan holds
// everything about a core before a byte is written: the notes (already
// encoded), the program headers and, for each segment, where its bytes come
// from. Write streams it in one sequential pass, copying captured pages
// kernel-side where it can and leaving never-touched pages as holes of a
// sparse file.
package elfcore

import (
	"debug/elf"
	"encoding/binary"
)

// Sizes of ELF64 structures.
const (
	ehdrSize = 64
	phdrSize = 56
	shdrSize = 64
)

// pnXnum is PN_XNUM: e_phnum's value when the real count is in section
// header 0's sh_info.
const pnXnum = 0xffff

// Note is one ELF note: its owner name ("CORE", "LINUX"), type and
// contents.
type Note struct {
	Name string
	Type uint32
	Desc []byte
}

func align4(n int) int { return (n + 3) &^ 3 }

// size is the encoded size of the note.
func (n *Note) size() int { return 12 + align4(len(n.Name)+1) + align4(len(n.Desc)) }

// appendTo encodes the note as the kernel does (fs/binfmt_elf.c
// writenote): namesz counts the NUL, name and desc padded to 4 bytes.
func (n *Note) appendTo(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(len(n.Name)+1))
	b = le.AppendUint32(b, uint32(len(n.Desc)))
	b = le.AppendUint32(b, n.Type)
	b = append(b, n.Name...)
	b = append(b, make([]byte, align4(len(n.Name)+1)-len(n.Name))...)
	b = append(b, n.Desc...)
	return append(b, make([]byte, align4(len(n.Desc))-len(n.Desc))...)
}

type progHeader struct {
	typ    elf.ProgType
	flags  elf.ProgFlag
	off    uint64
	vaddr  uint64
	filesz uint64
	memsz  uint64
	align  uint64
}

func (p *progHeader) appendTo(b []byte) []byte {
	le := binary.LittleEndian
	b = le.AppendUint32(b, uint32(p.typ))
	b = le.AppendUint32(b, uint32(p.flags))
	b = le.AppendUint64(b, p.off)
	b = le.AppendUint64(b, p.vaddr)
	b = le.AppendUint64(b, 0) // p_paddr
	b = le.AppendUint64(b, p.filesz)
	b = le.AppendUint64(b, p.memsz)
	return le.AppendUint64(b, p.align)
}
