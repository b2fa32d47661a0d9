package criuimg

import "sort"

// VMAKind is what a mapping of a process is: one of the kernel's special
// mappings, shared memory, the heap, a stack, a mapped file or other
// anonymous memory (Process.VMAKind).
type VMAKind int

// The kinds of mappings. String names each.
const (
	KindAnon     VMAKind = iota // private anonymous memory that is none of the below
	KindFile                    // a mapped file (private or shared)
	KindStack                   // a stack: the initial one or a thread's
	KindHeap                    // the heap (brk)
	KindShared                  // shared anonymous memory or a memfd
	KindSysV                    // a SysV shared memory segment
	KindVDSO                    // the vDSO
	KindVVAR                    // the vDSO's data pages (vvar)
	KindVsyscall                // the legacy vsyscall page
	KindAIO                     // an AIO ring
	KindSocket                  // a packet socket's ring
)

var kindNames = [...]string{
	KindAnon: "anon", KindFile: "file", KindStack: "stack", KindHeap: "heap", KindShared: "shared", KindSysV: "sysv",
	KindVDSO: "vdso", KindVVAR: "vvar", KindVsyscall: "vsyscall", KindAIO: "aio", KindSocket: "socket",
}

// String is the kind's name: "anon", "file", "stack", "heap", "shared",
// "sysv", "vdso", "vvar", "vsyscall", "aio" or "socket".
func (k VMAKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Special reports whether the kind is one of the kernel's own mappings:
// vDSO, vvar, vsyscall, AIO rings and packet socket rings.
func (k VMAKind) Special() bool { return k >= KindVDSO && k <= KindSocket }

// VMAKind classifies the mapping v of p, in this order: the kernel's
// special mappings (by CRIU's status bits); SysV shared memory; other
// shared memory (shared anonymous memory, memfds); the heap; a stack
// (CRIU's stack bit, MAP_GROWSDOWN, the mapping holding mm_start_stack,
// or an anonymous mapping holding a thread's stack pointer); a mapped
// file; other anonymous memory.
func (p *Process) VMAKind(v *VMA) VMAKind {
	st := v.Status
	switch {
	case st&VMAAreaVDSO != 0:
		return KindVDSO
	case st&VMAAreaVVAR != 0:
		return KindVVAR
	case st&VMAAreaVsyscall != 0:
		return KindVsyscall
	case st&VMAAreaAIORing != 0:
		return KindAIO
	case st&VMAAreaSocket != 0:
		return KindSocket
	case st&VMAAreaSysVIPC != 0:
		return KindSysV
	case v.HasShmem || st&(VMAAnonShared|VMAAreaMemfd) != 0:
		return KindShared
	case st&VMAAreaHeap != 0:
		return KindHeap
	case st&VMAAreaStack != 0 || v.Flags&MapGrowsdown != 0 || p.holdsStack(v):
		return KindStack
	case v.Path != "":
		return KindFile
	}
	return KindAnon
}

// holdsStack reports whether v holds mm_start_stack, or is anonymous and
// holds a thread's stack pointer.
func (p *Process) holdsStack(v *VMA) bool {
	if p == nil {
		return false
	}
	if s := p.MM.GetMmStartStack(); s != 0 && v.Start <= s && s < v.End {
		return true
	}
	if v.Path != "" {
		return false
	}
	i := sort.Search(len(p.sps), func(i int) bool { return p.sps[i] >= v.Start })
	return i < len(p.sps) && p.sps[i] < v.End
}

// stackPointer returns the stack pointer of thread t of p, false if its
// core has no general registers.
func (p *Process) stackPointer(t *Thread) (uint64, bool) {
	switch p.Arch {
	case ArchX86_64:
		if r := t.Core.GetThreadInfo().GetGpregs(); r != nil {
			return r.GetSp(), true
		}
	case ArchARM64:
		if r := t.Core.GetTiAarch64().GetGpregs(); r != nil {
			return r.GetSp(), true
		}
	}
	return 0, false
}

// stackPointers sets p.sps: the threads' stack pointers, sorted.
func (p *Process) stackPointers() {
	p.sps = p.sps[:0]
	for i := range p.Threads {
		if sp, ok := p.stackPointer(&p.Threads[i]); ok {
			p.sps = append(p.sps, sp)
		}
	}
	sort.Slice(p.sps, func(i, j int) bool { return p.sps[i] < p.sps[j] })
}
