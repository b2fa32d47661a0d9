package inspect

import (
	"io/fs"

	"github.com/ckpt2core/ckpt2core/archive"
	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Package archive is wired: TestPodmanArchive opens the real archives.
func init() {
	openArchiveForTest = func(path string) (criuimg.Source, fs.FS, func(), error) {
		c, err := archive.Open(path, archive.Options{})
		if err != nil {
			return nil, nil, nil, err
		}
		return c.Images, MetaFS(c), func() { c.Close() }, nil
	}
}
