package archive

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ckpt2core/ckpt2core/internal/synth"
)

// benchData is 256 MiB of synthetic pages (as internal/synth fills them)
// compressed with gzip -6 and zstd -3, made once.
var benchData struct{ gz, zst []byte }

func benchInput(b *testing.B) {
	if benchData.gz != nil {
		return
	}
	raw := make([]byte, 256<<20)
	for off := 0; off < len(raw); off += synth.PageSize {
		synth.FillPage(uint64(off), raw[off:off+synth.PageSize])
	}
	// Half the pages zero, as sparse memory is: something to compress.
	for off := 0; off < len(raw); off += 2 * synth.PageSize {
		clear(raw[off : off+synth.PageSize])
	}
	var gb, zb bytes.Buffer
	gw := gzip.NewWriter(&gb)
	gw.Write(raw)
	gw.Close()
	zw, _ := zstd.NewWriter(&zb)
	zw.Write(raw)
	zw.Close()
	benchData.gz, benchData.zst = gb.Bytes(), zb.Bytes()
}

func drain(b *testing.B, r io.Reader) {
	n, err := io.CopyBuffer(io.Discard, r, make([]byte, 1<<20))
	if err != nil || n != 256<<20 {
		b.Fatal(n, err)
	}
	b.SetBytes(n)
}

// BenchmarkDecoders measures each decoder setting on 256 MiB:
// go test ./archive -run '^$' -bench Decoders
func BenchmarkDecoders(b *testing.B) {
	benchInput(b)
	for _, parallel := range []bool{false, true} {
		name := "gzip-serial"
		if parallel {
			name = "gzip-pgzip"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				r, err := newGzipReaderWith(bytes.NewReader(benchData.gz), parallel)
				if err != nil {
					b.Fatal(err)
				}
				drain(b, r)
				r.Close()
			}
		})
	}
	for _, c := range []int{1, 2, 4} {
		b.Run("zstd-concurrency-"+string(rune('0'+c)), func(b *testing.B) {
			for b.Loop() {
				r, err := newZstdReaderWith(bytes.NewReader(benchData.zst), c)
				if err != nil {
					b.Fatal(err)
				}
				drain(b, r)
				r.Close()
			}
		})
	}
}
