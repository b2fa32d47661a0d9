package readat

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// eofReader returns io.EOF with every read that reaches the end of its
// bytes, as some io.ReaderAt implementations do even for a full read.
type eofReader struct{ b []byte }

func (r eofReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.b)) {
		return 0, io.EOF
	}
	n := copy(p, r.b[off:])
	if off+int64(n) == int64(len(r.b)) {
		return n, io.EOF
	}
	return n, nil
}

func TestWindow(t *testing.T) {
	data := []byte("0123456789")
	for _, r := range []io.ReaderAt{bytes.NewReader(data), eofReader{data}} {
		tests := []struct {
			name       string
			base, size int64
			n          int
			off        int64
			want       string
			err        error
		}{
			{"inside", 2, 6, 3, 1, "345", nil},
			{"up to the end", 2, 6, 3, 3, "567", nil},
			{"past the end", 2, 6, 4, 4, "67", io.EOF},
			{"at the end", 2, 6, 1, 6, "", io.EOF},
			{"empty at the end", 2, 6, 0, 6, "", nil},
			{"whole file, full", 0, 10, 10, 0, "0123456789", nil},
			{"window beyond the data", 8, 6, 4, 0, "89", io.EOF},
			{"negative", 0, 10, 1, -1, "", ErrNegativeOffset},
		}
		for _, tc := range tests {
			p := make([]byte, tc.n)
			n, err := Window(r, "f.img", tc.base, tc.size, p, tc.off)
			if string(p[:n]) != tc.want || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Errorf("%T %s: got %q, %v; want %q, %v", r, tc.name, p[:n], err, tc.want, tc.err)
			}
		}
	}
}

func TestFull(t *testing.T) {
	data := []byte("0123456789")
	errBad := errors.New("bad disk")
	for _, r := range []io.ReaderAt{bytes.NewReader(data), eofReader{data}} {
		tests := []struct {
			n    int
			off  int64
			want string
			err  error
		}{
			{4, 2, "2345", nil},
			{4, 6, "6789", nil},
			{4, 8, "89", io.ErrUnexpectedEOF},
			{1, 10, "", io.ErrUnexpectedEOF},
			{0, 10, "", nil},
		}
		for _, tc := range tests {
			p := make([]byte, tc.n)
			n, err := Full(r, p, tc.off)
			if string(p[:n]) != tc.want || err != tc.err {
				t.Errorf("%T: %d at %d: got %q, %v; want %q, %v", r, tc.n, tc.off, p[:n], err, tc.want, tc.err)
			}
		}
	}
	if _, err := Full(failing{errBad}, make([]byte, 2), 0); err != errBad {
		t.Errorf("a reader's own error: %v", err)
	}
}

// failing reads one byte, then fails with err.
type failing struct{ err error }

func (f failing) ReadAt(p []byte, off int64) (int, error) { return 1, f.err }
