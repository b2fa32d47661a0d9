package inspect

import (
	"io/fs"
	"testing"

	"github.com/ckpt2core/ckpt2core/criuimg"
	"github.com/ckpt2core/ckpt2core/internal/archive"
)

// openArchive opens a checkpoint (an archive or a directory) as the
// command does: its CRIU images and its metadata files; closed when the
// test ends.
func openArchive(t *testing.T, path string) (criuimg.Source, fs.FS) {
	t.Helper()
	c, err := archive.Open(path, archive.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.Images, c.Meta()
}
