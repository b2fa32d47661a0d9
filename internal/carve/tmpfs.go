package carve

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/klauspost/compress/gzip"

	"github.com/ckpt2core/ckpt2core/criuimg"
)

// Limits on a tmpfs image's archive (a gzip'd tar CRIU wrote: untrusted,
// and a few KiB of gzip can claim gigabytes).
const (
	MaxTmpfsMembers = 1 << 16
	MaxTmpfsBytes   = 4 << 30 // bytes of regular files in one archive
)

// ErrTmpfsLimit is wrapped by the error about a tmpfs archive beyond
// MaxTmpfsMembers or MaxTmpfsBytes.
var ErrTmpfsLimit = errors.New("tmpfs archive beyond the limits")

// tmpfsFiles emits each regular file of the tmpfs archive image (kind
// tmpfs, Path the file's path in the mount, Entry its index in the tar).
// The archive is decompressed once: each artifact's Open returns the
// member being read the first time; a later call decompresses the archive
// again up to the member.
func (c *carver) tmpfsFiles(src criuimg.Source, image, mount string) error {
	f, err := src.Open(image)
	if err != nil {
		c.problem(err)
		return nil
	}
	defer f.Close()
	zr, err := gzip.NewReader(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		c.problem(fmt.Errorf("%s: %w", image, err))
		return nil
	}
	tr := tar.NewReader(zr)
	var total int64
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			c.problem(fmt.Errorf("%s: member %d: %w", image, i, err))
			return nil
		}
		if i >= MaxTmpfsMembers {
			c.problem(fmt.Errorf("%s: more than %d members: %w", image, MaxTmpfsMembers, ErrTmpfsLimit))
			return nil
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size < 0 || h.Size > MaxTmpfsBytes-total {
			c.problem(fmt.Errorf("%s: member %d %q: %d bytes, beyond %d bytes in all: %w", image, i, h.Name, h.Size, int64(MaxTmpfsBytes), ErrTmpfsLimit))
			return nil
		}
		total += h.Size
		first := true
		idx, size := i, h.Size
		a := Artifact{Kind: KindTmpfs, Path: path.Join(mount, path.Clean("/"+h.Name)), Image: image, Entry: i, Size: h.Size, Mode: uint32(h.Mode) & 0o7777,
			Open: func() (io.ReadCloser, error) {
				if first {
					first = false
					return io.NopCloser(io.LimitReader(tr, size)), nil
				}
				return openTarMember(src, image, idx, size)
			}}
		if err := c.send(a, nil); err != nil {
			return err
		}
	}
}

// openTarMember decompresses the tmpfs archive image again up to member
// idx and returns a reader of its size bytes.
func openTarMember(src criuimg.Source, image string, idx int, size int64) (io.ReadCloser, error) {
	f, err := src.Open(image)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	tr := tar.NewReader(zr)
	for i := 0; i <= idx; i++ {
		if _, err := tr.Next(); err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: member %d: %w", image, i, err)
		}
	}
	return readCloser{io.LimitReader(tr, size), f}, nil
}
