package main

import (
	"bytes"
	"io"
	"os"

	"github.com/ckpt2core/ckpt2core/internal/anonfile"
)

// spillAt is how much a spillBuffer holds in memory before it goes to an
// anonymous file.
const spillAt = 1 << 20

// spillBuffer holds output to be written later: in memory up to spillAt
// bytes, then in an anonymous file in TMPDIR (output quotes the
// checkpoint's memory: it gets no name, and nothing of it outlives the
// process). what names it in errors.
type spillBuffer struct {
	what string
	mem  bytes.Buffer
	f    *os.File
}

func (b *spillBuffer) Write(p []byte) (int, error) {
	if b.f == nil && b.mem.Len()+len(p) > spillAt {
		f, err := anonfile.New("", b.what)
		if err != nil {
			return 0, err
		}
		if _, err := b.mem.WriteTo(f); err != nil {
			f.Close()
			return 0, err
		}
		b.f = f
	}
	if b.f != nil {
		return b.f.Write(p)
	}
	return b.mem.Write(p)
}

// writeTo writes what b holds to w and frees it.
func (b *spillBuffer) writeTo(w io.Writer) (int64, error) {
	defer b.close()
	if b.f == nil {
		return b.mem.WriteTo(w)
	}
	if _, err := b.f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(w, b.f)
}

// close frees what b holds.
func (b *spillBuffer) close() {
	b.mem = bytes.Buffer{}
	if b.f != nil {
		b.f.Close()
		b.f = nil
	}
}
