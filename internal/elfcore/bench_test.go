package elfcore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ckpt2core/ckpt2core/internal/elfcore"
	"github.com/ckpt2core/ckpt2core/internal/imgtest"
)

// convertAll converts every live process of the checkpoint in dir into
// out, as the command does with --jobs 1, and returns the bytes of captured
// pages copied.
func convertAll(tb testing.TB, dir, out string) uint64 {
	tb.Helper()
	ck := imgtest.OpenDir(tb, dir)
	var copied uint64
	for _, pid := range ck.Pids() {
		p, err := ck.LoadProcess(pid)
		if err != nil {
			if p != nil {
				p.Close()
			}
			continue // zombies
		}
		plan, err := elfcore.BuildWith(p, elfcore.Options{})
		if err != nil {
			p.Close()
			tb.Fatalf("pid %d: %v", pid, err)
		}
		err = elfcore.WriteFile(out, fmt.Sprintf("core.%d", pid), plan, true, func(n uint64) { copied += n })
		p.Close()
		if err != nil {
			tb.Fatalf("pid %d: %v", pid, err)
		}
	}
	return copied
}

// BenchmarkConvert converts each x86_64 fixture; bytes/s counts the
// captured pages copied into the cores.
func BenchmarkConvert(b *testing.B) {
	dirs, _ := filepath.Glob(filepath.Join(imgtest.Testdata("x86_64"), "*", "images"))
	if len(dirs) == 0 {
		b.Skip("no fixtures")
	}
	for _, dir := range dirs {
		name := filepath.Base(filepath.Dir(dir))
		b.Run(name, func(b *testing.B) {
			out := b.TempDir()
			b.SetBytes(int64(convertAll(b, dir, out))) // also warms the page cache
			b.ReportAllocs()
			for b.Loop() {
				// Replacing cores frees their blocks inside rename(2),
				// which on a filesystem mounted with discard can take
				// longer than the conversion: remove them untimed.
				b.StopTimer()
				cores, _ := filepath.Glob(filepath.Join(out, "core.*"))
				for _, c := range cores {
					os.Remove(c)
				}
				b.StartTimer()
				convertAll(b, dir, out)
			}
			os.RemoveAll(out)
		})
	}
}
