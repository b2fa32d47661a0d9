package rootfs

import (
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/ckpt2core/ckpt2core/internal/anonfile"
)

// OCI whiteouts (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// MaxDecompressed bounds a gzip-compressed rootfs-diff.tar once
// decompressed.
const MaxDecompressed = 64 << 30

// decompress returns diff as is, or, if it is gzip-compressed, its
// decompressed content in an anonymous file of os.TempDir() (anonfile;
// closed by Close).
func (r *Root) decompress(diff io.ReaderAt, size int64) (io.ReaderAt, int64, error) {
	head := make([]byte, 2)
	if n, _ := diff.ReadAt(head, 0); n < 2 || head[0] != 0x1f || head[1] != 0x8b {
		return diff, size, nil
	}
	zr, err := gzip.NewReader(io.NewSectionReader(diff, 0, size))
	if err != nil {
		return nil, 0, fmt.Errorf("rootfs-diff.tar: gzip: %w", err)
	}
	// No name (O_TMPFILE): nothing of it stays on disk whatever happens.
	f, err := anonfile.New("", "decompressed rootfs-diff.tar")
	if err != nil {
		return nil, 0, fmt.Errorf("rootfs-diff.tar: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(zr, MaxDecompressed+1))
	if err == nil && n > MaxDecompressed {
		err = fmt.Errorf("more than %d bytes decompressed: refused", int64(MaxDecompressed))
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("rootfs-diff.tar: gzip: %w", err)
	}
	if r.spool != nil {
		r.spool.Close()
	}
	r.spool = f
	return f, n, nil
}

// Hide makes the root lack paths (deleted.files: the files the container
// deleted from its image), unless rootfs-diff.tar holds them again.
func (r *Root) Hide(paths []string, why string) {
	if r.hidden == nil {
		r.hidden = map[string]string{}
	}
	for _, p := range paths {
		r.hidden[path.Clean("/" + p)[1:]] = why
	}
}

// hiddenWhy says why name (cleaned, no leading /) is not in the
// container's root, or "": it, or a directory above it, was deleted, or a
// directory above it is opaque.
func (r *Root) hiddenWhy(name string) string {
	if len(r.hidden) == 0 {
		return ""
	}
	if why, ok := r.hidden[name]; ok {
		return why
	}
	for p := name; ; {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return r.hidden["/"] // opaque root
		}
		p = p[:i]
		if why, ok := r.hidden[p]; ok {
			return why
		}
		if why, ok := r.hidden[p+"/"]; ok {
			return why
		}
	}
}
