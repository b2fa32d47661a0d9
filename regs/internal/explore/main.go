package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	criu_core "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

type note struct {
	name string
	typ  uint32
	desc []byte
}

func notes(path string) []note {
	f, err := elf.Open(path)
	if err != nil {
		panic(err)
	}
	var out []note
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		b, _ := io.ReadAll(p.Open())
		for len(b) >= 12 {
			nsz := binary.LittleEndian.Uint32(b)
			dsz := binary.LittleEndian.Uint32(b[4:])
			t := binary.LittleEndian.Uint32(b[8:])
			off := 12
			name := string(bytes.TrimRight(b[off:off+int(nsz)], "\x00"))
			off += (int(nsz) + 3) &^ 3
			d := b[off : off+int(dsz)]
			off += (int(dsz) + 3) &^ 3
			out = append(out, note{name, t, d})
			b = b[off:]
		}
	}
	return out
}

func main() {
	switch os.Args[1] {
	case "notes":
		for _, n := range notes(os.Args[2]) {
			fmt.Printf("%s type=%#x size=%d", n.name, n.typ, len(n.desc))
			if n.typ == 1 {
				fmt.Printf(" pid=%d", binary.LittleEndian.Uint32(n.desc[32:]))
			}
			if len(n.desc) <= 300 && n.typ != 1 && n.typ != 3 && n.typ != 0x53494749 {
				fmt.Printf("\n%s", hex.Dump(n.desc))
			}
			fmt.Println()
		}
	case "img":
		b, _ := os.ReadFile(os.Args[2])
		b = b[8:]
		sz := binary.LittleEndian.Uint32(b)
		var ce criu_core.CoreEntry
		if err := proto.Unmarshal(b[4:4+sz], &ce); err != nil {
			panic(err)
		}
		s := prototext.Format(&ce)
		if len(os.Args) > 3 {
			fmt.Println(s)
		} else {
			for _, l := range strings.Split(s, "\n") {
				if !strings.Contains(l, "_space") && !strings.Contains(l, "zmm") && !strings.Contains(l, "vregs") {
					fmt.Println(l)
				}
			}
		}
	}
	_ = filepath.Join
}
