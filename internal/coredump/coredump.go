// Package coredump is an independent reader of 64-bit little-endian ELF core
// files (x86_64 and aarch64) as written by the Linux kernel or by gdb's gcore.
//
// It exists so that tests can compare the cores produced by ckpt2core with
// the kernel's oracle cores through code that shares nothing with the
// converter: it imports only the standard library and no other package of
// this module. Every offset and size read from a file is bounds-checked; a
// corrupt file yields an error, never a panic.
package coredump

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// Note types understood by this package (values from <linux/elf.h>).
const (
	NTPrstatus       = 1          // NT_PRSTATUS: struct elf_prstatus
	NTFPRegset       = 2          // NT_FPREGSET / NT_PRFPREG: user_i387_struct or user_fpsimd_state
	NTPrpsinfo       = 3          // NT_PRPSINFO: struct elf_prpsinfo
	NTAuxv           = 6          // NT_AUXV: the auxiliary vector
	NTSiginfo        = 0x53494749 // NT_SIGINFO: siginfo_t
	NTFile           = 0x46494c45 // NT_FILE: mapped files
	NTX86XState      = 0x202      // NT_X86_XSTATE: XSAVE area as ptrace's PTRACE_GETREGSET shows it
	NTX86XSaveLayout = 0x205      // NT_X86_XSAVE_LAYOUT: offsets of XSAVE components in NT_X86_XSTATE
	NTARMTLS         = 0x401      // NT_ARM_TLS: TPIDR_EL0 (and TPIDR2 on newer kernels)
)

// Layout of struct elf_prstatus on 64-bit Linux (x86_64 and arm64 share it
// up to pr_reg).
const (
	prstatusCursig  = 12
	prstatusSigpend = 16
	prstatusSighold = 24
	prstatusPid     = 32
	prstatusPpid    = 36
	prstatusPgrp    = 40
	prstatusSid     = 44
	prstatusReg     = 112
	prpsinfoSize    = 136
)

// Number of 64-bit words in pr_reg per machine.
const (
	// RegsX86_64 is the number of fields of x86_64 struct user_regs_struct.
	RegsX86_64 = 27
	// RegsARM64 is the number of fields of arm64 struct user_pt_regs
	// (x0..x30, sp, pc, pstate).
	RegsARM64 = 34
)

// Indices into Thread.Regs for x86_64 (struct user_regs_struct order).
const (
	X86R15 = iota
	X86R14
	X86R13
	X86R12
	X86RBP
	X86RBX
	X86R11
	X86R10
	X86R9
	X86R8
	X86RAX
	X86RCX
	X86RDX
	X86RSI
	X86RDI
	X86OrigRAX
	X86RIP
	X86CS
	X86EFLAGS
	X86RSP
	X86SS
	X86FSBase
	X86GSBase
	X86DS
	X86ES
	X86FS
	X86GS
)

// X86RegNames names the 27 fields of x86_64 user_regs_struct, in order.
var X86RegNames = [RegsX86_64]string{
	"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
	"rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags",
	"rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
}

// Indices into Thread.Regs for arm64: x0..x30 are 0..30.
const (
	ARM64SP     = 31
	ARM64PC     = 32
	ARM64PState = 33
)

// Load is one PT_LOAD program header.
type Load struct {
	Vaddr  uint64       // p_vaddr
	Memsz  uint64       // p_memsz
	Filesz uint64       // p_filesz: bytes present in the file
	Offset uint64       // p_offset
	Flags  elf.ProgFlag // p_flags (PF_R, PF_W, PF_X)
}

// End returns the first address past the segment's memory.
func (l Load) End() uint64 { return l.Vaddr + l.Memsz }

// Note is one ELF note of a PT_NOTE segment.
type Note struct {
	Name string // owner name without the terminating NUL ("CORE", "LINUX")
	Type uint32 // n_type
	Desc []byte // descriptor bytes (n_descsz of them)
}

// Core is an opened core file. Its Loads are sorted by Vaddr; Notes are in
// file order.
type Core struct {
	// Machine is e_machine (elf.EM_X86_64 or elf.EM_AARCH64).
	Machine elf.Machine
	// Loads are the PT_LOAD segments, sorted by virtual address.
	Loads []Load
	// Notes are all notes of all PT_NOTE segments, in file order.
	Notes []Note

	f    *os.File
	size int64
}

// Open reads the ELF header, program headers and notes of the core file at
// path. Segment contents are read on demand; call Close when done.
func Open(path string) (*Core, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("coredump: %w", err)
	}
	c, err := parse(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("coredump: %s: %w", path, err)
	}
	return c, nil
}

// Close releases the file.
func (c *Core) Close() error {
	if c == nil || c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}

func readFull(f *os.File, off int64, n uint64, size int64) ([]byte, error) {
	if off < 0 || off > size || n > uint64(size-off) {
		return nil, fmt.Errorf("range [%#x, +%#x) outside the file (size %#x)", off, n, size)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, fmt.Errorf("read %#x bytes at %#x: %w", n, off, err)
	}
	return b, nil
}

func parse(f *os.File) (*Core, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	size := st.Size()
	hdr, err := readFull(f, 0, 64, size)
	if err != nil {
		return nil, fmt.Errorf("ELF header: %w", err)
	}
	if string(hdr[:4]) != elf.ELFMAG {
		return nil, errors.New("not an ELF file")
	}
	if elf.Class(hdr[elf.EI_CLASS]) != elf.ELFCLASS64 {
		return nil, fmt.Errorf("ELF class %v, want ELFCLASS64", elf.Class(hdr[elf.EI_CLASS]))
	}
	if elf.Data(hdr[elf.EI_DATA]) != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("ELF data %v, want little-endian", elf.Data(hdr[elf.EI_DATA]))
	}
	le := binary.LittleEndian
	if t := elf.Type(le.Uint16(hdr[16:])); t != elf.ET_CORE {
		return nil, fmt.Errorf("ELF type %v, want ET_CORE", t)
	}
	c := &Core{Machine: elf.Machine(le.Uint16(hdr[18:])), f: f, size: size}
	switch c.Machine {
	case elf.EM_X86_64, elf.EM_AARCH64:
	default:
		return nil, fmt.Errorf("unsupported machine %v", c.Machine)
	}
	phoff := le.Uint64(hdr[32:])
	phentsize := le.Uint16(hdr[54:])
	phnum := uint64(le.Uint16(hdr[56:]))
	if phnum == 0xffff { // PN_XNUM: real count in section 0's sh_info
		shoff := le.Uint64(hdr[40:])
		if shoff > uint64(size) {
			return nil, fmt.Errorf("e_shoff %#x outside the file", shoff)
		}
		sh, err := readFull(f, int64(shoff), 64, size)
		if err != nil {
			return nil, fmt.Errorf("section 0 (PN_XNUM): %w", err)
		}
		phnum = uint64(le.Uint32(sh[44:]))
	}
	if phnum > 0 && phentsize < 56 {
		return nil, fmt.Errorf("e_phentsize %d < 56", phentsize)
	}
	if phoff > uint64(size) || phnum > uint64(size) {
		return nil, fmt.Errorf("program headers at %#x (%d) outside the file", phoff, phnum)
	}
	phs, err := readFull(f, int64(phoff), phnum*uint64(phentsize), size)
	if err != nil {
		return nil, fmt.Errorf("program headers: %w", err)
	}
	for i := uint64(0); i < phnum; i++ {
		p := phs[i*uint64(phentsize):]
		typ := elf.ProgType(le.Uint32(p[0:]))
		flags := elf.ProgFlag(le.Uint32(p[4:]))
		off := le.Uint64(p[8:])
		vaddr := le.Uint64(p[16:])
		filesz := le.Uint64(p[32:])
		memsz := le.Uint64(p[40:])
		switch typ {
		case elf.PT_LOAD:
			if off > uint64(size) || filesz > uint64(size)-off {
				return nil, fmt.Errorf("PT_LOAD %d at %#x: file bytes [%#x, +%#x) outside the file (size %#x)", i, vaddr, off, filesz, size)
			}
			if filesz > memsz {
				return nil, fmt.Errorf("PT_LOAD %d at %#x: p_filesz %#x > p_memsz %#x", i, vaddr, filesz, memsz)
			}
			if vaddr+memsz < vaddr {
				return nil, fmt.Errorf("PT_LOAD %d at %#x: p_memsz %#x wraps around", i, vaddr, memsz)
			}
			c.Loads = append(c.Loads, Load{Vaddr: vaddr, Memsz: memsz, Filesz: filesz, Offset: off, Flags: flags})
		case elf.PT_NOTE:
			if off > uint64(size) {
				return nil, fmt.Errorf("PT_NOTE %d: offset %#x outside the file", i, off)
			}
			b, err := readFull(f, int64(off), filesz, size)
			if err != nil {
				return nil, fmt.Errorf("PT_NOTE %d: %w", i, err)
			}
			notes, err := parseNotes(b)
			if err != nil {
				return nil, fmt.Errorf("PT_NOTE %d at file offset %#x: %w", i, off, err)
			}
			c.Notes = append(c.Notes, notes...)
		}
	}
	sort.SliceStable(c.Loads, func(i, j int) bool { return c.Loads[i].Vaddr < c.Loads[j].Vaddr })
	for i := 1; i < len(c.Loads); i++ {
		if c.Loads[i].Vaddr < c.Loads[i-1].End() {
			return nil, fmt.Errorf("PT_LOAD segments overlap: [%#x, %#x) and [%#x, %#x)",
				c.Loads[i-1].Vaddr, c.Loads[i-1].End(), c.Loads[i].Vaddr, c.Loads[i].End())
		}
	}
	return c, nil
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// parseNotes splits a PT_NOTE segment into notes (4-byte aligned, as Linux
// writes them for ELF64 cores).
func parseNotes(b []byte) ([]Note, error) {
	le := binary.LittleEndian
	var notes []Note
	for off := uint64(0); off < uint64(len(b)); {
		rest := uint64(len(b)) - off
		if rest < 12 {
			return nil, fmt.Errorf("truncated note header at +%#x", off)
		}
		namesz := uint64(le.Uint32(b[off:]))
		descsz := uint64(le.Uint32(b[off+4:]))
		typ := le.Uint32(b[off+8:])
		off += 12
		if align4(namesz) > uint64(len(b))-off {
			return nil, fmt.Errorf("note type %#x: name (%d bytes) past the segment", typ, namesz)
		}
		name := b[off : off+namesz]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		off += align4(namesz)
		if descsz > uint64(len(b))-off {
			return nil, fmt.Errorf("note %q type %#x: desc (%d bytes) past the segment", name, typ, descsz)
		}
		desc := b[off : off+descsz : off+descsz]
		off += min(align4(descsz), uint64(len(b))-off)
		notes = append(notes, Note{Name: string(name), Type: typ, Desc: desc})
	}
	return notes, nil
}

// segmentAt returns the index of the PT_LOAD whose memory contains vaddr, or -1.
func (c *Core) segmentAt(vaddr uint64) int {
	i := sort.Search(len(c.Loads), func(i int) bool { return c.Loads[i].End() > vaddr })
	if i < len(c.Loads) && c.Loads[i].Vaddr <= vaddr {
		return i
	}
	return -1
}

// Segment returns the PT_LOAD whose memory range contains vaddr.
func (c *Core) Segment(vaddr uint64) (Load, bool) {
	if i := c.segmentAt(vaddr); i >= 0 {
		return c.Loads[i], true
	}
	return Load{}, false
}

// Captured reports whether the byte at vaddr has file bytes in the core,
// i.e. lies within p_filesz of a PT_LOAD.
func (c *Core) Captured(vaddr uint64) bool {
	i := c.segmentAt(vaddr)
	return i >= 0 && vaddr-c.Loads[i].Vaddr < c.Loads[i].Filesz
}

// ReadAt returns n bytes of memory starting at vaddr, read from the file
// bytes of the PT_LOAD segments (possibly several adjacent ones). It fails if
// any byte is not backed by the p_filesz part of a segment.
func (c *Core) ReadAt(vaddr uint64, n int) ([]byte, error) {
	if n < 0 {
		return nil, fmt.Errorf("coredump: ReadAt %#x: negative length %d", vaddr, n)
	}
	if vaddr+uint64(n) < vaddr {
		return nil, fmt.Errorf("coredump: ReadAt %#x+%#x wraps around", vaddr, n)
	}
	if c.f == nil {
		return nil, errors.New("coredump: ReadAt on a closed core")
	}
	out := make([]byte, n)
	done := 0
	for done < n {
		a := vaddr + uint64(done)
		i := c.segmentAt(a)
		if i < 0 {
			return nil, fmt.Errorf("coredump: address %#x is in no PT_LOAD", a)
		}
		l := c.Loads[i]
		rel := a - l.Vaddr
		if rel >= l.Filesz {
			return nil, fmt.Errorf("coredump: address %#x is in PT_LOAD [%#x, %#x) but past its p_filesz %#x", a, l.Vaddr, l.End(), l.Filesz)
		}
		k := min(uint64(n-done), l.Filesz-rel)
		if _, err := c.f.ReadAt(out[done:done+int(k)], int64(l.Offset+rel)); err != nil {
			return nil, fmt.Errorf("coredump: read %#x bytes at %#x: %w", k, a, err)
		}
		done += int(k)
	}
	return out, nil
}
