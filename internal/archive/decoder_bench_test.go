package archive

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// benchData is 256 MiB of the real programs' pages in testdata, tiled
// (they compress about 9x, as process memory does), compressed with gzip
// -6 and zstd -3, made once.
var benchData struct{ gz, zst []byte }

func benchInput(b *testing.B) {
	if benchData.gz != nil {
		return
	}
	var sample []byte
	err := filepath.WalkDir("../../testdata", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasPrefix(d.Name(), "pages-") && strings.HasSuffix(d.Name(), ".img") {
			var p []byte
			p, err = os.ReadFile(path)
			sample = append(sample, p...)
		}
		return err
	})
	if err != nil || len(sample) == 0 {
		b.Fatalf("the pages of testdata: %v (%d bytes)", err, len(sample))
	}
	raw := make([]byte, 256<<20)
	for off := 0; off < len(raw); off += copy(raw[off:], sample) {
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
