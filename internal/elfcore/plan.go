package elfcore

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Piece is a run of a segment's file bytes that must be written: Len bytes
// from Src at SrcOff, placed at offset Off inside the segment. Bytes of a
// segment that no piece covers are zero and stay holes in the file.
type Piece struct {
	Off    uint64
	Len    uint64
	Src    io.ReaderAt
	SrcOff int64
}

// Segment is one PT_LOAD: Memsz bytes at Vaddr, of which the first Filesz
// are in the file.
type Segment struct {
	Vaddr  uint64
	Memsz  uint64
	Filesz uint64 // 0 or Memsz
	Flags  elf.ProgFlag
	Pieces []Piece
}

// Plan is the complete layout of a core file.
type Plan struct {
	Machine  elf.Machine
	PageSize uint64 // alignment of segment data (ELF_EXEC_PAGESIZE)
	Notes    []Note
	Segments []Segment
	// Warnings lists what a user should know about this core (files
	// refused for clean pages).
	Warnings []string

	// Computed by Layout.
	notesOff, notesSize uint64
	dataOff             uint64
	segOff              []uint64
	shOff               uint64
	size                uint64
}

// Layout computes the file offsets as the kernel lays a core out: ELF
// header, program headers (PT_NOTE first), notes, then segment data from
// the next page boundary, and for more than 65534 segments a section
// header carrying the real count (PN_XNUM) after the data.
func (p *Plan) Layout() error {
	if p.PageSize == 0 || p.PageSize&(p.PageSize-1) != 0 {
		return fmt.Errorf("page size %d is not a power of two", p.PageSize)
	}
	nph := uint64(len(p.Segments)) + 1
	off := uint64(ehdrSize) + nph*phdrSize
	p.notesOff = off
	var ns uint64
	for i := range p.Notes {
		ns += uint64(p.Notes[i].size())
	}
	p.notesSize = ns
	off += ns
	off = (off + p.PageSize - 1) &^ (p.PageSize - 1)
	p.dataOff = off
	p.segOff = make([]uint64, len(p.Segments))
	for i, s := range p.Segments {
		if s.Filesz != 0 && s.Filesz != s.Memsz {
			return fmt.Errorf("segment %#x: file size %d is neither 0 nor the memory size %d", s.Vaddr, s.Filesz, s.Memsz)
		}
		if s.Vaddr > math.MaxUint64-s.Memsz {
			return fmt.Errorf("segment %#x: size %d overflows the address space", s.Vaddr, s.Memsz)
		}
		for _, pc := range s.Pieces {
			if pc.Off > s.Filesz || pc.Len > s.Filesz-pc.Off {
				return fmt.Errorf("segment %#x: piece [%d,+%d) outside its %d file bytes", s.Vaddr, pc.Off, pc.Len, s.Filesz)
			}
		}
		p.segOff[i] = off
		if off > math.MaxInt64-s.Filesz {
			return fmt.Errorf("core would exceed the largest file size")
		}
		off += s.Filesz
	}
	p.shOff = 0
	if nph >= pnXnum {
		p.shOff = off
		off += shdrSize
	}
	p.size = off
	return nil
}

// Size is the core's size in bytes (after Layout).
func (p *Plan) Size() uint64 { return p.size }

// Phnum is the number of program headers (the PT_NOTE and the PT_LOADs).
func (p *Plan) Phnum() int { return len(p.Segments) + 1 }

// header encodes the ELF header, program headers and notes: the first
// dataOff bytes of the file (padding excluded).
func (p *Plan) header() []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, p.notesOff+p.notesSize)
	b = append(b, 0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), byte(elf.ELFOSABI_NONE))
	b = append(b, make([]byte, 8)...)
	b = le.AppendUint16(b, uint16(elf.ET_CORE))
	b = le.AppendUint16(b, uint16(p.Machine))
	b = le.AppendUint32(b, uint32(elf.EV_CURRENT))
	b = le.AppendUint64(b, 0)        // e_entry
	b = le.AppendUint64(b, ehdrSize) // e_phoff
	b = le.AppendUint64(b, p.shOff)  // e_shoff
	b = le.AppendUint32(b, 0)        // e_flags
	b = le.AppendUint16(b, ehdrSize) // e_ehsize
	b = le.AppendUint16(b, phdrSize) // e_phentsize
	nph := p.Phnum()
	if nph >= pnXnum {
		b = le.AppendUint16(b, pnXnum)
		b = le.AppendUint16(b, shdrSize) // e_shentsize
		b = le.AppendUint16(b, 1)        // e_shnum
	} else {
		b = le.AppendUint16(b, uint16(nph))
		b = le.AppendUint16(b, 0)
		b = le.AppendUint16(b, 0)
	}
	b = le.AppendUint16(b, 0) // e_shstrndx = SHN_UNDEF
	note := progHeader{typ: elf.PT_NOTE, off: p.notesOff, filesz: p.notesSize, align: 4}
	b = note.appendTo(b)
	for i, s := range p.Segments {
		ph := progHeader{typ: elf.PT_LOAD, flags: s.Flags, off: p.segOff[i], vaddr: s.Vaddr, filesz: s.Filesz, memsz: s.Memsz, align: p.PageSize}
		b = ph.appendTo(b)
	}
	for i := range p.Notes {
		b = p.Notes[i].appendTo(b)
	}
	return b
}

// sectionHeader encodes section header 0 for PN_XNUM (as the kernel's
// fill_extnum_info): SHT_NULL with the real program header count in
// sh_info.
func (p *Plan) sectionHeader() []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, shdrSize)
	b = le.AppendUint32(b, 0)                    // sh_name
	b = le.AppendUint32(b, uint32(elf.SHT_NULL)) // sh_type
	b = le.AppendUint64(b, 0)                    // sh_flags
	b = le.AppendUint64(b, 0)                    // sh_addr
	b = le.AppendUint64(b, 0)                    // sh_offset
	b = le.AppendUint64(b, 1)                    // sh_size = e_shnum
	b = le.AppendUint32(b, 0)                    // sh_link = e_shstrndx
	b = le.AppendUint32(b, uint32(p.Phnum()))    // sh_info
	b = le.AppendUint64(b, 0)                    // sh_addralign
	return le.AppendUint64(b, 0)                 // sh_entsize
}
