package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	corex86 "github.com/checkpoint-restore/go-criu/v8/crit/images/core-x86"
	"golang.org/x/arch/arm64/arm64asm"
	"golang.org/x/arch/x86/x86asm"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Hex is an address, written in JSON as a "0x..." string.
type Hex uint64

// MarshalJSON writes h as a quoted hexadecimal string.
func (h Hex) MarshalJSON() ([]byte, error) {
	return []byte(`"` + h.String() + `"`), nil
}

// UnmarshalJSON reads a quoted hexadecimal (or decimal) string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("address %s: %w", b, err)
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return fmt.Errorf("address %s: %w", b, err)
	}
	*h = Hex(v)
	return nil
}

func (h Hex) String() string { return fmt.Sprintf("%#x", uint64(h)) }

// Errno values the syscall rules look at.
const (
	errnoEINTR = 4
	maxErrno   = 4095
)

// The x86_64 `syscall` instruction and the arm64 `svc #0`.
var x86Syscall = []byte{0x0f, 0x05}

const arm64Svc0 = 0xd4000001

// MappedFiles supplies the contents of a process's file mappings; a
// *rootfs.Root implements it (as elfcore.MappedFiles).
type MappedFiles interface {
	// OpenMapped returns the file v maps and its size, or an error if
	// it is missing or not the file the checkpoint recorded.
	OpenMapped(v *criuimg.VMA) (io.ReaderAt, int64, error)
}

// codeReader reads a process's code: from captured pages, else (with
// files) from the mapped file. It reports where the bytes came from.
type codeReader struct {
	p       *criuimg.Process
	files   MappedFiles                  // nil without --root
	refused func(path string, err error) // files refuses the file v maps
}

// read returns up to n bytes at addr, all from one source, and the source
// (CodeCaptured, CodeSysroot, or CodeNotCaptured or CodeUnreadable with no
// bytes). Code that damaged images hide is unreadable, never read from
// the files: the checkpoint may hold other bytes than the file.
func (c codeReader) read(addr uint64, n int) ([]byte, string) {
	if c.p.Mem == nil {
		return nil, CodeUnreadable // no mappings or no page size
	}
	v, ok := c.p.FindVMA(addr)
	if !ok {
		return nil, CodeNotCaptured
	}
	if left := v.End - addr; uint64(n) > left {
		n = int(left)
	}
	b := make([]byte, n)
	k, err := c.p.Mem.ReadAt(b, int64(addr))
	if k > 0 {
		return b[:k], CodeCaptured
	}
	if errors.Is(err, criuimg.ErrUnreadable) {
		return nil, CodeUnreadable
	}
	if c.files == nil || v.FileID == 0 || v.HasShmem {
		return nil, CodeNotCaptured
	}
	r, size, err := c.files.OpenMapped(v)
	if err != nil {
		if c.refused != nil {
			c.refused(v.Path, err)
		}
		return nil, CodeNotCaptured
	}
	off := v.Pgoff + addr - v.Start
	if off >= uint64(size) {
		return nil, CodeNotCaptured
	}
	k, _ = r.ReadAt(b[:min(uint64(n), uint64(size)-off)], int64(off))
	if k == 0 {
		return nil, CodeNotCaptured
	}
	return b[:k], CodeSysroot
}

// threadReport describes one thread of a live process; files may be nil,
// refused is told of each mapped file that files refuses. The error says
// why its registers are unknown.
func threadReport(p *criuimg.Process, th *criuimg.Thread, files MappedFiles, refused func(string, error)) (Thread, error) {
	t := Thread{Tid: th.Tid, Name: th.Comm(), Code: CodeNotCaptured}
	code := codeReader{p: p, files: files, refused: refused}
	switch p.Arch {
	case criuimg.ArchX86_64:
		r := th.Core.GetThreadInfo().GetGpregs()
		if r == nil {
			return t, fmt.Errorf("core-%d.img: no general registers (thread_info.gpregs): pc, instruction and system call unknown", th.Tid)
		}
		t.PC, t.SP = Hex(r.GetIp()), Hex(r.GetSp())
		x86Thread(&t, r, code)
	case criuimg.ArchARM64:
		r := th.Core.GetTiAarch64().GetGpregs()
		if r == nil {
			return t, fmt.Errorf("core-%d.img: no general registers (ti_aarch64.gpregs): pc, instruction and system call unknown", th.Tid)
		}
		t.PC, t.SP = Hex(r.GetPc()), Hex(r.GetSp())
		arm64Thread(&t, r.GetRegs(), code)
	}
	return t, nil
}

// x86Thread decodes the instruction at PC and names the system call.
//
// The rule (checked on the threads-c, counter, static-c and go-goroutines
// fixtures): a thread that entered a system call has orig_ax >= 0 (the
// number); the kernel sets orig_ax to -1 on every other entry (interrupts,
// exceptions). CRIU (compel's get_task_regs) then undoes what the stop did
// to a call that returned -ERESTARTSYS, -ERESTARTNOINTR or -ERESTARTNOHAND:
// ax = orig_ax and ip -= 2, so PC points at the `syscall` instruction (0f 05)
// and the restored thread makes the call again. -ERESTART_RESTARTBLOCK
// (nanosleep, clock_nanosleep, poll with a timeout...) cannot be carried
// over: CRIU sets ax = -EINTR and leaves PC after the instruction, so the
// call returns EINTR on restore. Any other ax with orig_ax >= 0 is the
// result of a call that had completed. Where the code page was captured,
// the bytes at PC (or before it) confirm which case it is.
func x86Thread(t *Thread, r *corex86.UserX86RegsEntry, code codeReader) {
	pc := r.GetIp()
	mode := 64
	if r.GetMode() == corex86.UserX86RegsMode_COMPAT {
		mode = 32
	}
	at, src := code.read(pc, 15)
	t.Code = src
	if len(at) > 0 {
		if inst, err := x86asm.Decode(at, mode); err == nil {
			t.Instruction = x86asm.GNUSyntax(inst, pc, nil)
		} else {
			t.Instruction = fmt.Sprintf("(bad instruction: % x)", at[:min(len(at), 8)])
		}
	}
	var before []byte
	if pc >= 2 {
		before, _ = code.read(pc-2, 2)
	}
	atSyscall := len(at) >= 2 && bytes.Equal(at[:2], x86Syscall)
	afterSyscall := len(before) == 2 && bytes.Equal(before, x86Syscall)
	origAx, ax := int64(r.GetOrigAx()), int64(r.GetAx())
	name := func(nr int64) string {
		if mode == 32 {
			return "" // an i386 number; no table for it
		}
		return SyscallName(criuimg.ArchX86_64, nr)
	}
	codeNote := func(ok bool, what string) string {
		if len(at) == 0 && len(before) == 0 {
			if t.Code == CodeUnreadable {
				return "; code unreadable (damaged images)"
			}
			return "; code not captured"
		}
		if ok {
			return "; " + what
		}
		return ""
	}
	if origAx < 0 {
		if atSyscall {
			t.Syscall = &Syscall{Nr: ax, Name: name(ax), State: SyscallAtEntry,
				Evidence: "orig_ax = -1 and the instruction at pc is syscall: about to make call ax",
				Note:     "(at the syscall instruction, not yet entered)"}
		}
		return
	}
	s := &Syscall{Nr: origAx, Name: name(origAx)}
	switch {
	case ax == origAx && (len(at) < 2 || atSyscall):
		s.State = SyscallRestart
		s.Evidence = "orig_ax = ax = number" + codeNote(atSyscall, "syscall instruction (0f 05) at pc")
		s.Note = "(CRIU rewound the call; it will be restarted on restore)"
	case ax == -errnoEINTR && (len(before) < 2 || afterSyscall):
		s.State = SyscallInterrupted
		s.Evidence = "orig_ax = number, ax = -EINTR" + codeNote(afterSyscall, "syscall instruction (0f 05) just before pc")
		s.Note = "(interrupted by the checkpoint and not restartable: it returns EINTR on restore)"
	default:
		s.State = SyscallReturned
		ret := ax
		s.Return = &ret
		s.Evidence = "orig_ax = number, ax = result" + codeNote(afterSyscall, "syscall instruction (0f 05) just before pc")
		s.Note = "(the call had returned " + retString(ax) + ")"
	}
	t.Syscall = s
}

// arm64Thread decodes the instruction at PC and names the system call.
//
// On arm64 the kernel itself rewinds an interrupted call before the
// ptrace stop that CRIU uses (arch/arm64/kernel/signal.c do_signal: pc -= 4,
// x0 = orig_x0, for every -ERESTART* value), so a thread blocked in a call
// has PC at its `svc #0` and the number in x8, and the restored thread makes
// the call again. The images hold no orig_x0 or syscallno: whether the
// thread was in the call or about to make it looks the same, and where the
// code page was not captured the svc cannot be seen, so the name then rests
// on x8 alone (evidence says so).
func arm64Thread(t *Thread, regs []uint64, code codeReader) {
	if len(regs) < 9 {
		return
	}
	pc := uint64(t.PC)
	at, src := code.read(pc, 4)
	t.Code = src
	var word uint32
	if len(at) == 4 {
		word = binary.LittleEndian.Uint32(at)
		if inst, err := arm64asm.Decode(at); err == nil {
			t.Instruction = arm64asm.GNUSyntax(inst)
		} else {
			t.Instruction = fmt.Sprintf("(bad instruction: %08x)", word)
		}
	}
	var prev uint32
	if pc >= 4 {
		if b, _ := code.read(pc-4, 4); len(b) == 4 {
			prev = binary.LittleEndian.Uint32(b)
		}
	}
	x8 := int64(regs[8])
	name := SyscallName(criuimg.ArchARM64, x8)
	switch {
	case len(at) == 4 && word == arm64Svc0:
		t.Syscall = &Syscall{Nr: x8, Name: name, State: SyscallRestart,
			Evidence: "svc #0 at pc, x8 = number",
			Note:     "(the kernel rewound the call for CRIU; it will be restarted on restore)"}
	case len(at) == 4 && prev == arm64Svc0:
		ret := int64(regs[0])
		t.Syscall = &Syscall{Nr: x8, Name: name, State: SyscallReturned, Return: &ret,
			Evidence: "svc #0 just before pc, x8 = number, x0 = result",
			Note:     "(the call had returned " + retString(ret) + ")"}
	case len(at) == 0 && name != "":
		why := "code not captured"
		if t.Code == CodeUnreadable {
			why = "code unreadable (damaged images)"
		}
		t.Syscall = &Syscall{Nr: x8, Name: name, State: SyscallRestart,
			Evidence: "x8 = number; " + why + ", so the svc #0 at pc is not verified",
			Note:     "(if in the call: the kernel rewound it for CRIU; it will be restarted on restore)"}
	}
}

func retString(v int64) string {
	if v < 0 && v >= -maxErrno {
		return fmt.Sprintf("-%d, an error", -v)
	}
	return strconv.FormatInt(v, 10)
}
