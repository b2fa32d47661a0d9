package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/ckpt2core/ckpt2core/internal/coredump"
)

func main() {
	a, err := coredump.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	b, err := coredump.Open(os.Args[2])
	if err != nil {
		panic(err)
	}
	ta, tb := a.Threads(), b.Threads()
	m := map[int32]coredump.Thread{}
	for _, t := range tb {
		m[t.Pid] = t
	}
	for _, t := range ta {
		o := m[t.Pid]
		for typ, d := range t.Extra {
			e, ok := o.Extra[typ]
			if !ok {
				fmt.Printf("tid %d note %#x: oracle lacks (%d bytes)\n", t.Pid, typ, len(d))
				continue
			}
			if !bytes.Equal(d, e) {
				fmt.Printf("tid %d note %#x differs: ours %d bytes %x\n   oracle %d bytes %x\n", t.Pid, typ, len(d), head(d), len(e), head(e))
			}
		}
		for typ, e := range o.Extra {
			if _, ok := t.Extra[typ]; !ok {
				fmt.Printf("tid %d note %#x: ours lacks (%d bytes)\n", t.Pid, typ, len(e))
			}
		}
		if !bytes.Equal(t.TLS, o.TLS) {
			fmt.Printf("tid %d TLS %x vs %x\n", t.Pid, t.TLS, o.TLS)
		}
		if !bytes.Equal(t.FPRegs, o.FPRegs) {
			fmt.Printf("tid %d FP differs\n", t.Pid)
		}
	}
	fmt.Println("loads ours", len(a.Loads), "oracle", len(b.Loads))
}

func head(b []byte) []byte {
	if len(b) > 96 {
		return b[:96]
	}
	return b
}
