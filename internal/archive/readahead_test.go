package archive

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestReadAhead: the bytes come through whole and in order, whatever the
// reads' sizes, followed by the error that ended them; Close stops the
// goroutine whether or not the reader got to the end.
func TestReadAhead(t *testing.T) {
	data := make([]byte, 5*readAheadChunk+12345)
	for i := range data {
		data[i] = byte(i * 31 % 253)
	}
	damaged := errors.New("damaged")
	tests := []struct {
		name    string
		r       io.Reader
		want    []byte
		wantErr error
	}{
		{"whole", bytes.NewReader(data), data, nil},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(data[:3*readAheadChunk])), data[:3*readAheadChunk], nil},
		{"empty", bytes.NewReader(nil), nil, nil},
		{"error after data", io.MultiReader(bytes.NewReader(data[:readAheadChunk+7]), iotest.ErrReader(damaged)), data[:readAheadChunk+7], damaged},
		{"error at once", iotest.ErrReader(damaged), nil, damaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ra := newReadAhead(tt.r)
			defer ra.Close()
			got, err := io.ReadAll(iotest.HalfReader(ra))
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("%d bytes, want %d", len(got), len(tt.want))
			}
			if n, err := ra.Read(make([]byte, 10)); n != 0 || err == nil {
				t.Errorf("a read after the end: %d bytes, %v", n, err)
			}
		})
	}
	// Closed early, with chunks waiting to be handed over.
	ra := newReadAhead(bytes.NewReader(data))
	if _, err := ra.Read(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	ra.Close() // returns only once the goroutine has ended
}
