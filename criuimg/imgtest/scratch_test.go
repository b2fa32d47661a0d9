package imgtest

import (
	"fmt"
	"io"
	"strings"
	"testing"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"github.com/ckpt2core/ckpt2core/criuimg"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

func dump(t *testing.T, dir, name string, magic uint32, mk func() proto.Message, max int) {
	src, _ := criuimg.NewDirSource(dir)
	f, err := src.Open(name)
	if err != nil {
		t.Log(err)
		return
	}
	r, err := criuimg.NewReader(f, magic)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < max; i++ {
		m := mk()
		if magic == criuimg.MagicPagemap && i == 0 {
			m = &pagemap.PagemapHead{}
		}
		if err := r.Next(m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		s := prototext.Format(m)
		s = compact(s)
		fmt.Printf("== %s %d\n%s\n", name, i, s)
	}
}

func TestScratch(t *testing.T) {
	d := "../../testdata/x86_64/static-c/images"
	dump(t, d, "inventory.img", criuimg.MagicInventory, func() proto.Message { return &inventory.InventoryEntry{} }, 5)
	dump(t, d, "pstree.img", criuimg.MagicPstree, func() proto.Message { return &pstree.PstreeEntry{} }, 5)
	dump(t, d, "core-1538.img", criuimg.MagicCore, func() proto.Message { return &criucore.CoreEntry{} }, 5)
	dump(t, d, "core-1535.img", criuimg.MagicCore, func() proto.Message { return &criucore.CoreEntry{} }, 5)
	_ = mm.MmEntry{} //dump(t, d, "mm-1535.img", criuimg.MagicMM, func() proto.Message { return &mm.MmEntry{} }, 5)
	dump(t, d, "pagemap-1535.img", criuimg.MagicPagemap, func() proto.Message { return &pagemap.PagemapEntry{} }, 50)
	dump(t, d, "pagemap-shmem-1972.img", criuimg.MagicPagemap, func() proto.Message { return &pagemap.PagemapEntry{} }, 50)
	dump(t, d, "files.img", criuimg.MagicFiles, func() proto.Message { return &fdinfo.FileEntry{} }, 50)
	dump(t, "../../testdata/arm64/threads-c/images", "core-216.img", criuimg.MagicCore, func() proto.Message { return &criucore.CoreEntry{} }, 5)
	dump(t, "../../testdata/x86_64/threads-c-criu411/images", "pagemap-763.img", criuimg.MagicPagemap, func() proto.Message { return &pagemap.PagemapEntry{} }, 5)
}

func compact(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	cnt := map[string]int{}
	for _, l := range lines {
		k := strings.TrimSpace(strings.SplitN(l, ":", 2)[0])
		cnt[k]++
		if cnt[k] > 2 && (strings.HasSuffix(k, "space") || strings.HasSuffix(k, "zmm") || strings.HasSuffix(k, "upper") || strings.HasSuffix(k, "regs") || k == "padding" || k == "opmask_reg" || k == "bndreg_state" || k == "bndcsr_state" || k == "pkru" || k == "mm_saved_auxv" || k == "vregs") {
			continue
		}
		out = append(out, l)
	}
	for k, n := range cnt {
		if n > 2 {
			out = append(out, fmt.Sprintf("COUNT %s=%d", k, n))
		}
	}
	return strings.Join(out, "\n")
}
