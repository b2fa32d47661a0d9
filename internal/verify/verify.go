// Package verify opens an ELF core file with Delve's core reader and
// reports what a debugger sees in it: the threads with their registers and
// the functions they are stopped in and, for Go programs, the goroutines
// with their current user frames.
//
// It is meant as an independent check of the cores ckpt2core writes: if
// Delve can list the same threads and goroutines from a converted core as
// from an oracle core of the same process, the conversion preserved what a
// debugger needs.
package verify

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/go-delve/delve/pkg/goversion"
	"github.com/go-delve/delve/pkg/proc"
	"github.com/go-delve/delve/pkg/proc/core"
	"github.com/go-delve/delve/service/api"
)

// Thread is one thread of the core as Delve reads it from an NT_PRSTATUS
// note.
type Thread struct {
	// ID is the thread ID (pr_pid of the NT_PRSTATUS note).
	ID int `json:"id"`
	// PC and SP are the program counter and stack pointer of the thread.
	PC uint64 `json:"pc"`
	SP uint64 `json:"sp"`
	// Function is the function containing PC according to the
	// executable's debug information, or "" if unknown.
	Function string `json:"function"`
	// File and Line are the source position of PC, if known.
	File string `json:"file"`
	Line int    `json:"line"`
}

// Goroutine is one goroutine of a Go program as Delve's goroutines command
// lists it.
type Goroutine struct {
	// ID is the goroutine ID.
	ID int64 `json:"id"`
	// ThreadID is the ID of the thread running the goroutine, or 0 if the
	// goroutine is not running on a thread.
	ThreadID int `json:"thread_id"`
	// CurrentFunction is the function the goroutine is stopped in (Delve's
	// "Runtime" location), or "" if unknown.
	CurrentFunction string `json:"current_function"`
	// UserFunction, UserFile and UserLine are the topmost frame that is
	// not in the runtime (Delve's default "User" location,
	// proc.G.UserCurrent).
	UserFunction string `json:"user_function"`
	UserFile     string `json:"user_file"`
	UserLine     int    `json:"user_line"`
	// WaitReason is the runtime's wait reason for waiting goroutines (as
	// Delve prints it), or "".
	WaitReason string `json:"wait_reason"`
	// Stack lists the functions of the goroutine's frames, innermost
	// first, inlined calls included ("" where unknown), at most
	// maxStackDepth+1 of them. UserFunction is one of them.
	Stack []string `json:"stack"`
}

// maxStackDepth is the depth of the goroutine stacks in a Report.
const maxStackDepth = 64

// Report is what Delve sees in a core file.
type Report struct {
	// Core and Exe are the paths the report was made from.
	Core string `json:"core"`
	Exe  string `json:"exe"`
	// Arch is Delve's name of the core's architecture ("amd64", "arm64").
	Arch string `json:"arch"`
	// Threads are sorted by ID.
	Threads []Thread `json:"threads"`
	// Goroutines are sorted by ID; empty for non-Go programs.
	Goroutines []Goroutine `json:"goroutines"`
	// Warnings lists problems that did not prevent the report, such as
	// goroutines Delve could not read; they are left out of Goroutines.
	Warnings []string `json:"warnings,omitempty"`
}

// Verify opens corePath with Delve's core reader, using exePath as the
// executable and debugInfoDirs to look for separate debug information, and
// reports its threads and goroutines.
//
// Verify never panics on a malformed core: a panic inside Delve is
// recovered and returned as an error.
func Verify(corePath, exePath string, debugInfoDirs []string) (rep *Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			rep = nil
			err = fmt.Errorf("verify %s: delve: panic: %v", corePath, p)
		}
	}()

	if err := checkCore(corePath); err != nil {
		return nil, fmt.Errorf("verify %s: %w", corePath, err)
	}

	if err := checkMachines(corePath, exePath); err != nil {
		return nil, fmt.Errorf("verify %s: %w", corePath, err)
	}

	grp, err := core.OpenCore(corePath, exePath, debugInfoDirs)
	if err != nil {
		return nil, fmt.Errorf("verify %s: delve: %w", corePath, err)
	}
	defer func() {
		if grp.Selected != nil {
			grp.Selected.BinInfo().Close()
		}
		grp.Detach(false)
	}()
	tgt := grp.Selected
	if tgt == nil {
		return nil, fmt.Errorf("verify %s: delve: no target in core", corePath)
	}
	bi := tgt.BinInfo()

	rep = &Report{Core: corePath, Exe: exePath, Arch: bi.Arch.Name}

	for _, th := range tgt.ThreadList() {
		regs, err := th.Registers()
		if err != nil {
			return nil, fmt.Errorf("verify %s: delve: registers of thread %d: %w", corePath, th.ThreadID(), err)
		}
		t := Thread{ID: th.ThreadID(), PC: regs.PC(), SP: regs.SP()}
		file, line, fn := bi.PCToLine(t.PC)
		if fn == nil {
			fn = bi.PCToFunc(t.PC)
		}
		if fn != nil {
			t.Function = fn.Name
		}
		t.File, t.Line = file, line
		rep.Threads = append(rep.Threads, t)
	}
	sort.Slice(rep.Threads, func(i, j int) bool { return rep.Threads[i].ID < rep.Threads[j].ID })

	if !isGoProgram(bi) {
		return rep, nil
	}

	gs, _, err := proc.GoroutinesInfo(tgt, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("verify %s: delve: goroutines: %w", corePath, err)
	}
	goVersion := goversion.ParseProducer(bi.Producer())
	for _, g := range gs {
		if g.Unreadable != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("unreadable goroutine: %v", g.Unreadable))
			continue
		}
		rg := Goroutine{ID: g.ID}
		if g.Thread != nil {
			rg.ThreadID = g.Thread.ThreadID()
		}
		if g.CurrentLoc.Fn != nil {
			rg.CurrentFunction = g.CurrentLoc.Fn.Name
		}
		frames, err := proc.GoroutineStacktrace(tgt, g, maxStackDepth, 0)
		if err != nil {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("goroutine %d: stack: %v", g.ID, err))
		}
		for _, f := range frames {
			if f.Err != nil {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("goroutine %d: stack: %v", g.ID, f.Err))
				break
			}
			name := ""
			if f.Call.Fn != nil {
				name = f.Call.Fn.Name
			}
			rg.Stack = append(rg.Stack, name)
		}
		user := g.UserCurrent()
		if user.Fn != nil {
			rg.UserFunction = user.Fn.Name
		}
		rg.UserFile, rg.UserLine = user.File, user.Line
		if (g.Status == proc.Gwaiting || g.Status == proc.Gsyscall) && g.WaitReason != 0 {
			rg.WaitReason = api.WaitReasonString(&goVersion, g.WaitReason)
		}
		rep.Goroutines = append(rep.Goroutines, rg)
	}
	sort.Slice(rep.Goroutines, func(i, j int) bool { return rep.Goroutines[i].ID < rep.Goroutines[j].ID })
	return rep, nil
}

// isGoProgram reports whether the executable described by bi is a Go
// program (its debug information has runtime.main).
func isGoProgram(bi *proc.BinaryInfo) bool {
	return len(bi.LookupFunc()["runtime.main"]) > 0
}

// WriteText writes r to w as readable tables: first the threads (thread ID,
// PC, SP, function), then the goroutines (goroutine ID, thread, user
// function, file:line, wait reason).
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	var errs []error
	printf := func(format string, args ...any) {
		if _, err := fmt.Fprintf(tw, format, args...); err != nil {
			errs = append(errs, err)
		}
	}
	printf("core:\t%s\n", r.Core)
	printf("exe:\t%s\n", r.Exe)
	printf("arch:\t%s\n", r.Arch)
	if len(r.Threads) == 1 {
		printf("\n1 thread\n")
	} else {
		printf("\n%d threads\n", len(r.Threads))
	}
	printf("TID\tPC\tSP\tFUNCTION\n")
	for _, t := range r.Threads {
		printf("%d\t%#x\t%#x\t%s\n", t.ID, t.PC, t.SP, orUnknown(t.Function))
	}
	printf("\n%d goroutines\n", len(r.Goroutines))
	if len(r.Goroutines) > 0 {
		printf("GID\tTHREAD\tUSER FUNCTION\tLOCATION\tWAIT REASON\n")
		for _, g := range r.Goroutines {
			thread := "-"
			if g.ThreadID != 0 {
				thread = fmt.Sprint(g.ThreadID)
			}
			loc := "?"
			if g.UserFile != "" {
				loc = fmt.Sprintf("%s:%d", g.UserFile, g.UserLine)
			}
			wait := g.WaitReason
			if wait == "" {
				wait = "-"
			}
			printf("%d\t%s\t%s\t%s\t%s\n", g.ID, thread, orUnknown(g.UserFunction), loc, wait)
		}
	}
	if len(r.Warnings) > 0 {
		printf("\nwarnings:\n")
		for _, s := range r.Warnings {
			printf("  %s\n", strings.ReplaceAll(s, "\t", " "))
		}
	}
	if err := tw.Flush(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// checkMachines reports a core and an executable of different
// architectures in words (Delve prints the two machine names as hex).
// Files that are not both ELF are left to Delve.
func checkMachines(corePath, exePath string) error {
	machine := func(p string) (elf.Machine, bool) {
		f, err := elf.Open(p)
		if err != nil {
			return 0, false
		}
		defer f.Close()
		return f.Machine, true
	}
	cm, ok1 := machine(corePath)
	em, ok2 := machine(exePath)
	if ok1 && ok2 && cm != em {
		return fmt.Errorf("the core is for %v, the executable %s for %v", cm, exePath, em)
	}
	return nil
}

// checkCore checks the ELF core at path for defects Delve's reader does not
// report itself: Delve (through Go's debug/elf) does not understand
// PN_XNUM program header counts and reads a segment cut short by the end
// of the file only when something in it is needed.
func checkCore(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("delve: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("delve: %w", err)
	}
	var hdr [64]byte
	if n, _ := f.ReadAt(hdr[:], 0); n < elf.EI_NIDENT || string(hdr[:4]) != elf.ELFMAG {
		// Not ELF: Delve tries its other formats (minidumps) and reports.
		return nil
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if elf.Data(hdr[elf.EI_DATA]) == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	phnumOff := 0x38 // e_phnum in Elf64_Ehdr
	if elf.Class(hdr[elf.EI_CLASS]) == elf.ELFCLASS32 {
		phnumOff = 0x2c
	}
	if bo.Uint16(hdr[phnumOff:]) == pnXNum {
		return errors.New("delve: core uses PN_XNUM (65535 or more program headers), which Delve's reader (Go's debug/elf) does not support")
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("delve: %w", err)
	}
	for i, p := range ef.Progs {
		if p.Type != elf.PT_LOAD && p.Type != elf.PT_NOTE {
			continue
		}
		if end := p.Off + p.Filesz; end < p.Off || end > uint64(st.Size()) {
			return fmt.Errorf("delve: core truncated: program header %d (%v at %#x) ends at file offset %#x, file size is %#x: %w",
				i, p.Type, p.Vaddr, end, st.Size(), io.ErrUnexpectedEOF)
		}
	}
	return nil
}

// pnXNum is the e_phnum value saying that the real number of program
// headers is in section header 0's sh_info.
const pnXNum = 0xffff
