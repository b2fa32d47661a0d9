// Package readat holds the one bounded ReadAt that the image files of a
// checkpoint share: reads over a window of size bytes of an io.ReaderAt,
// with io.ReaderAt's contract at the window's end.
package readat

import (
	"errors"
	"fmt"
	"io"
)

// ErrNegativeOffset is wrapped by the error of a read at a negative offset.
var ErrNegativeOffset = errors.New("negative offset")

// Window reads len(p) bytes at offset off of the size bytes of r that
// start at base, as io.ReaderAt specifies: a read that ends past the
// window returns the bytes up to its end and io.EOF, a read of a full p
// returns nil even if r said io.EOF. name names the file in the error of
// a negative offset.
func Window(r io.ReaderAt, name string, base, size int64, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: %w", name, ErrNegativeOffset)
	}
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if rem := size - off; int64(want) > rem {
		p = p[:rem]
	}
	n, err := r.ReadAt(p, base+off)
	if err == io.EOF && n == len(p) {
		err = nil
	}
	if err == nil && n < want {
		err = io.EOF
	}
	return n, err
}

// Full reads exactly len(p) bytes at off of r: a read that returns fewer
// fails, with io.ErrUnexpectedEOF if r gave no other error. It returns
// how many bytes were read.
func Full(r io.ReaderAt, p []byte, off int64) (int, error) {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
