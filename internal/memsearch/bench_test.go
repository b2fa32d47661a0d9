package memsearch

import (
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// BenchmarkGrepPython searches all memory of pid 3760 (python3) of the
// counter fixture, about 9 MB of captured pages; MB/s counts the captured
// bytes (untouched memory costs next to nothing). The pages file is in the
// page cache after the first run.
//
//	go test -run '^$' -bench GrepPython -benchtime 50x ./memsearch
func BenchmarkGrepPython(b *testing.B) {
	p := imgtest.LoadFrom(b, openFixture(b, "counter"), 3760)
	var captured int64
	for i := range p.VMAs {
		p.Mem.VMAExtents(&p.VMAs[i], func(e criuimg.Extent) error {
			if e.Kind == criuimg.Captured {
				captured += int64(e.End - e.Start)
			}
			return nil
		})
	}
	for _, bc := range []struct {
		name string
		m    Matcher
		hits int
	}{
		{"literal", mustLiteral(b, "RANDOM_1432_KEY", false), 2},
		{"fold", mustLiteral(b, "random_1432_key", true), 2},
		{"regex", mustRegexp(b, `RANDOM_[0-9]+_KEY`, false), 2},
		{"regex-fold", mustRegexp(b, `random_[0-9]+_key`, true), 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(captured)
			for b.Loop() {
				n := 0
				if err := (Searcher{Context: DefaultContext}).Search(p, bc.m, func(Hit) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != bc.hits {
					b.Fatalf("%d hits, want %d", n, bc.hits)
				}
			}
		})
	}
}
