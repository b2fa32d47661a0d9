package synth

import (
	"bytes"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestLargeChanged: the changed shape differs from Large only in the
// marked pages.
func TestLargeChanged(t *testing.T) {
	const size, every = 64 * PageSize, 5
	a := imgtest.LoadProcess(t, write(t, Large(size)), Pid)
	b := imgtest.LoadProcess(t, write(t, LargeChanged(size, every)), Pid)
	pa, pb := make([]byte, PageSize), make([]byte, PageSize)
	changed := 0
	for i := range b.VMAs {
		err := b.Mem.VMAExtents(&b.VMAs[i], func(e criuimg.Extent) error {
			if e.Kind != criuimg.Captured {
				return nil
			}
			for addr := e.Start; addr < e.End; addr += PageSize {
				if _, err := a.Mem.ReadAt(pa, int64(addr)); err != nil {
					return err
				}
				if _, err := b.Mem.ReadAt(pb, int64(addr)); err != nil {
					return err
				}
				marked := addr/PageSize%every == 0
				if marked != !bytes.Equal(pa, pb) {
					t.Errorf("page %#x: marked %v, differs %v", addr, marked, !bytes.Equal(pa, pb))
				}
				if marked {
					changed++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if changed == 0 {
		t.Fatal("no page marked")
	}
}
