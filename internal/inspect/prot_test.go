package inspect

import (
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// TestProt: PROT_* bits as the kernel's /proc/PID/maps writes them
// (fs/proc/task_mmu.c: r, w, x or - each), other bits ignored.
func TestProt(t *testing.T) {
	for _, tc := range []struct {
		prot uint32
		want string
	}{
		{0, "---"},
		{criuimg.ProtRead, "r--"},
		{criuimg.ProtRead | criuimg.ProtExec, "r-x"},
		{criuimg.ProtRead | criuimg.ProtWrite, "rw-"},
		{criuimg.ProtRead | criuimg.ProtWrite | criuimg.ProtExec, "rwx"},
		{criuimg.ProtWrite | 0x1000000, "-w-"}, // PROT_GROWSDOWN is not shown
	} {
		if got := Prot(tc.prot); got != tc.want {
			t.Errorf("Prot(%#x) = %q, want %q", tc.prot, got, tc.want)
		}
	}
}
