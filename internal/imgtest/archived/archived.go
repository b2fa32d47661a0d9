// Package archived opens checkpoint archives for tests, as the commands
// do. It is apart from imgtest because archive's own tests use imgtest
// (through synth).
package archived

import (
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
)

// Open opens the checkpoint at path (an archive or a directory),
// spooling under a temporary directory of the test; it is closed when
// the test ends.
func Open(tb testing.TB, path string) *archive.Checkpoint {
	tb.Helper()
	a, err := archive.Open(path, archive.Options{TempDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

// Images opens the CRIU images of the checkpoint at path (Open),
// strictly.
func Images(tb testing.TB, path string) *criuimg.Checkpoint {
	tb.Helper()
	ck, err := criuimg.Open(Open(tb, path).Images)
	if err != nil {
		tb.Fatal(err)
	}
	return ck
}
