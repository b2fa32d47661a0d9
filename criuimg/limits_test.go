package criuimg

import (
	"bytes"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/vma"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestMemfdPath: CRIU's memfd.img keeps a memfd's name without the
// "memfd:" the kernel shows (criu/memfd.c), and "/dev/zero" for shared
// anonymous memory.
func TestMemfdPath(t *testing.T) {
	for in, want := range map[string]string{
		"jit":        "/memfd:jit (deleted)",
		"memfd:jit":  "/memfd:jit (deleted)",
		"/dev/zero":  "/dev/zero (deleted)",
		"":           "/memfd: (deleted)",
		"a (copy)":   "/memfd:a (copy) (deleted)",
		"/SYSV00000": "/SYSV00000 (deleted)",
	} {
		if got := memfdPath(in); got != want {
			t.Errorf("memfdPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRepeatedLimits: counts that only decoding would reveal are refused
// on the wire, before a large allocation: too many VMAs, a long auxv
// (packed and unpacked), too many pstree threads.
func TestRepeatedLimits(t *testing.T) {
	v, _ := proto.Marshal(&vma.VmaEntry{Start: proto.Uint64(0), End: proto.Uint64(4096), Pgoff: proto.Uint64(0),
		Shmid: proto.Uint64(0), Prot: proto.Uint32(0), Flags: proto.Uint32(0), Status: proto.Uint32(0), Fd: proto.Int64(-1)})
	var vmas []byte
	for range MaxVMAs + 1 {
		vmas = protowire.AppendTag(vmas, mmFieldVMAs, protowire.BytesType)
		vmas = protowire.AppendBytes(vmas, v)
	}
	var unpacked []byte
	for range MaxAuxvWords + 1 {
		unpacked = protowire.AppendTag(unpacked, mmFieldAuxv, protowire.VarintType)
		unpacked = protowire.AppendVarint(unpacked, 1)
	}
	packed := protowire.AppendTag(nil, mmFieldAuxv, protowire.BytesType)
	packed = protowire.AppendBytes(packed, make([]byte, MaxAuxvWords+1))
	tids := protowire.AppendTag(nil, pstreeFieldTids, protowire.BytesType)
	tids = protowire.AppendBytes(tids, make([]byte, MaxThreads+1))
	for _, tc := range []struct {
		name string
		b    []byte
		lim  *limits
		want string
	}{
		{"vmas", vmas, mmLimits, "vmas"},
		{"auxv", unpacked, mmLimits, "mm_saved_auxv"},
		{"packed auxv", packed, mmLimits, "mm_saved_auxv"},
		{"threads", tids, pstreeLimits, "threads"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := append([]byte{0x19, 0x43, 0x56, 0x54, 0x20, 0x28, 0x49, 0x57}, protowire.AppendFixed32(nil, uint32(len(tc.b)))...)
			img = append(img, tc.b...)
			r, err := NewReader(&memFile{name: "mm-1.img", r: bytes.NewReader(img), size: int64(len(img))}, MagicMM)
			if err != nil {
				t.Fatal(err)
			}
			err = r.next(&mm.MmEntry{}, tc.lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "limit") {
				t.Errorf("error %v, want one naming %s and its limit", err, tc.want)
			}
		})
	}
}
