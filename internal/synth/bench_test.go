package synth

import (
	"os"
	"testing"
)

// The benchmark shapes of scripts/bench.sh, at sizes that fit a `go test
// -bench` run. bytes/s counts the captured pages copied.

func benchConvert(b *testing.B, s *Shape) {
	dir := write(b, s)
	out := b.TempDir()
	path, _ := convert(b, dir, out) // warm the page cache
	b.SetBytes(int64(s.Captured))
	b.ReportAllocs()
	for b.Loop() {
		// Replacing a core frees its blocks inside rename(2), which on a
		// filesystem mounted with discard can take longer than the
		// conversion: remove it untimed.
		b.StopTimer()
		os.Remove(path)
		b.StartTimer()
		convert(b, dir, out)
	}
}

func BenchmarkConvertLarge256MiB(b *testing.B) { benchConvert(b, Large(256<<20)) }
func BenchmarkConvert60kVMAs(b *testing.B)     { benchConvert(b, ManyVMAs(60000, false)) }
func BenchmarkConvert512Threads(b *testing.B)  { benchConvert(b, Threads(512)) }

// BenchmarkPlan60kVMAs loads the process and plans its core: the work
// done before the first byte of the core is written.
func BenchmarkPlan60kVMAs(b *testing.B) {
	dir := write(b, ManyVMAs(60000, false))
	b.ReportAllocs()
	for b.Loop() {
		plan(b, dir)
	}
}

// BenchmarkPlan512Threads is BenchmarkPlan60kVMAs for 512 threads.
func BenchmarkPlan512Threads(b *testing.B) {
	dir := write(b, Threads(512))
	b.ReportAllocs()
	for b.Loop() {
		plan(b, dir)
	}
}
