package inspect

import "github.com/ckpt2core/ckpt2core/criuimg"

// MemoryKind is the kind (KindFile, KindAnon, KindHeap, KindStack,
// KindShared, KindSpecial) that MemorySummary counts mapping v under;
// stack says whether v holds a thread's stack pointer or the initial
// stack (mm_start_stack).
func MemoryKind(v *criuimg.VMA, stack bool) string {
	return memoryKind(v, stack && v.Path == "" && !v.HasShmem)
}
