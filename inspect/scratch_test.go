package inspect

import (
	"fmt"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

func TestScratch(t *testing.T) {
	for _, dir := range []string{"../testdata/x86_64/threads-c/images", "../testdata/x86_64/counter/images", "../testdata/x86_64/static-c/images", "../testdata/arm64/threads-c/images", "../testdata/arm64/pipeline/images", "../testdata/x86_64/go-goroutines/images"} {
		src, _ := criuimg.NewDirSource(dir)
		ck, err := criuimg.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("==", dir)
		for _, pid := range ck.Pids() {
			p, err := ck.LoadProcess(pid)
			if err != nil {
				fmt.Println(pid, err)
				continue
			}
			for _, th := range p.Threads {
				if x := th.Core.GetThreadInfo(); x != nil {
					r := x.GetGpregs()
					b := make([]byte, 4)
					_, err := p.Mem.ReadAt(b, int64(r.GetIp()-2))
					fmt.Printf("%d %-10s ip=%#x ax=%#x orig_ax=%d  bytes[ip-2..]=% x %v\n", th.Tid, th.Comm(), r.GetIp(), r.GetAx(), int64(r.GetOrigAx()), b, err)
				}
				if x := th.Core.GetTiAarch64(); x != nil {
					r := x.GetGpregs()
					b := make([]byte, 8)
					_, err := p.Mem.ReadAt(b, int64(r.GetPc()-4))
					fmt.Printf("%d %-10s pc=%#x x0=%#x x8=%d  bytes[pc-4..]=% x %v\n", th.Tid, th.Comm(), r.GetPc(), r.GetRegs()[0], r.GetRegs()[8], b, err)
				}
			}
			p.Close()
		}
	}
}
