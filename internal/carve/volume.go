package carve

import (
	"fmt"
	"io"

	"github.com/ckpt2core/ckpt2core/internal/inspect"
)

// VolumeTar is one named volume: Podman's exportCheckpoint writes each as
// an uncompressed volumes/NAME.tar (libpod/container_internal_common.go).
type VolumeTar struct {
	Name string      // NAME
	R    io.ReaderAt // the tar
	Size int64
}

// volumes carves the regular files of each volume: Path is the file's
// path in the volume, cleaned (a name that is absolute or climbs with
// ".." is kept inside: inspect warns about it), Label the volume's name,
// Image volumes/NAME.tar and Entry the entry's number. Links, devices and
// directories are not carved. A volume that cannot be read is a problem
// naming it; the others are still carved.
func (c *carver) volumes() error {
	if c.opts.Pid != 0 {
		return nil
	}
	for _, v := range c.opts.Volumes {
		image := inspect.VolumesDir + "/" + v.Name + ".tar"
		cr := &countReader{r: io.NewSectionReader(v.R, 0, v.Size)}
		var stop error
		more, err := inspect.WalkVolume(image, cr, func(d inspect.VolumeEntry) error {
			if d.Type != "file" {
				return nil
			}
			off := cr.n
			if d.Size < 0 || d.Size > v.Size-off {
				return fmt.Errorf("%s: entry %d %q: size %d beyond the archive", image, d.Index, d.Raw, d.Size)
			}
			r, size := v.R, d.Size
			a := Artifact{Kind: KindVolume, Path: "/" + d.Path, Label: v.Name, Image: image, Entry: d.Index, Size: size, Mode: uint32(d.Mode) & 0o7777,
				Open: func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(r, off, size)), nil }}
			if err := c.send(a, nil); err != nil {
				stop = err
				return err
			}
			return nil
		})
		if stop != nil {
			return stop
		}
		if err == nil && more {
			err = fmt.Errorf("%s: more than %d entries: the others are left out", image, inspect.MaxDiffEntries)
		}
		if err != nil {
			c.problem(err)
		}
	}
	return nil
}
