package inspect

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// DiffEntry is one entry of rootfs-diff.tar as WalkRootfsDiff gives it:
// the DiffFile, its mode and link target, and (for a regular file) a
// reader of its content, valid until fn returns.
type DiffEntry struct {
	DiffFile
	Mode    int64
	Link    string
	Content io.Reader
}

// WalkRootfsDiff calls fn for each entry of rootfs-diff.tar read from r,
// in archive order, at most MaxDiffEntries; it returns whether more were
// left out. An error from fn stops the walk and is returned.
//
// containerd stores the container's rw layer there as its diff service
// wrote it: gzip-compressed (recognised by content, never by name), with
// OCI whiteouts: an entry ".wh.NAME" says NAME was deleted (type
// "deleted", never a file), ".wh..wh..opq" in a directory says the image's
// contents of that directory are hidden (type "opaque").
func WalkRootfsDiff(r io.Reader, fn func(DiffEntry) error) (bool, error) {
	r, err := Decompressed(r)
	if err != nil {
		return false, fmt.Errorf("%s: %w", RootfsDiffFile, err)
	}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", RootfsDiffFile, err)
		}
		if n >= MaxDiffEntries {
			return true, nil
		}
		d := DiffEntry{DiffFile: DiffFile{Path: strings.TrimPrefix(path.Clean("/"+h.Name), "/"), Size: h.Size}, Mode: h.Mode, Link: h.Linkname}
		dir, base := path.Split(d.Path)
		switch {
		case base == WhiteoutOpaque:
			d.Path, d.Type, d.Size = strings.TrimSuffix(dir, "/"), "opaque", 0
		case strings.HasPrefix(base, WhiteoutPrefix):
			d.Path, d.Type, d.Size = dir+strings.TrimPrefix(base, WhiteoutPrefix), "deleted", 0
		case h.Typeflag == tar.TypeReg:
			d.Type, d.Content = "file", tr
		case h.Typeflag == tar.TypeDir:
			d.Type, d.Size = "dir", 0
		case h.Typeflag == tar.TypeSymlink:
			d.Type = "symlink"
		default:
			d.Type = "other"
		}
		if err := fn(d); err != nil {
			return false, err
		}
	}
}
