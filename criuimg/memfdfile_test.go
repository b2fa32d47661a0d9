package criuimg_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// TestMemfdContents: a memfd's contents are its captured pages at their
// offsets, zeros in the pages not captured, cut at its size; a size that
// its pages cannot justify (1 PiB) is refused.
func TestMemfdContents(t *testing.T) {
	for _, tt := range []struct {
		name    string
		size    uint64
		wantErr bool
	}{{"sparse", 3*4096 + 100, false}, {"huge", 1 << 50, true}} {
		t.Run(tt.name, func(t *testing.T) {
			c := imgtest.New(imgtest.X86_64)
			p := c.AddProcess(1, 0)
			s := c.AddShmem(7, tt.size)
			s.MemfdName = "payload"
			page0 := bytes.Repeat([]byte{'A'}, 4096)
			page2 := bytes.Repeat([]byte{'C'}, 4096)
			s.AddPages(0, page0, criuimg.PEPresent)
			s.AddPages(2*4096, page2, criuimg.PEPresent)
			p.MapMemfd(0x10000, s, 0, 1)
			ck := imgtest.OpenDir(t, c.WriteTemp(t))
			ins, err := ck.ReadMemfdInodes()
			if err != nil || len(ins) != 1 || ins[0].Name != "payload" {
				t.Fatalf("%+v %v", ins, err)
			}
			m, err := ck.OpenMemfd(ins[0], 4096)
			if tt.wantErr {
				if err == nil || !errors.Is(err, criuimg.ErrFormat) {
					t.Fatalf("huge memfd: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			got, err := readDirty(m)
			if err != nil {
				t.Fatal(err)
			}
			want := append(append(append(bytes.Clone(page0), make([]byte, 4096)...), page2...), make([]byte, 100)...)
			if !bytes.Equal(got, want) || m.Stored != 2*4096 {
				t.Errorf("%d bytes (stored %d), want %d", len(got), m.Stored, len(want))
			}
		})
	}
}
