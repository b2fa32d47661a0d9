package archive

import (
	"io"
	"sync"
)

// Read-ahead of a compressed archive: a goroutine reads the file while the
// decompressor works, as zstd's own command does (its asynchronous
// reads), so that the kernel's copy of the compressed bytes does not add
// to the decompressor's time on a machine with a core to spare.
const (
	readAheadChunk = 1 << 20
	readAheadDepth = 4 // chunks read ahead of the decompressor
)

// readAhead reads r in a goroutine, readAheadDepth chunks ahead of its
// reader. Close stops the goroutine; it must be called once the reader is
// done (the goroutine otherwise waits to hand over its next chunk).
type readAhead struct {
	full  chan chunk
	empty chan []byte
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	cur   chunk
	off   int
	err   error // what the last chunk ended with
}

// chunk is one read of r: the bytes it gave and its error.
type chunk struct {
	b   []byte
	err error
}

func newReadAhead(r io.Reader) *readAhead {
	ra := &readAhead{
		full:  make(chan chunk, readAheadDepth),
		empty: make(chan []byte, readAheadDepth+1),
		stop:  make(chan struct{}),
	}
	for range readAheadDepth + 1 {
		ra.empty <- make([]byte, readAheadChunk)
	}
	ra.wg.Add(1)
	go func() {
		defer ra.wg.Done()
		defer close(ra.full)
		for {
			var b []byte
			select {
			case b = <-ra.empty:
			case <-ra.stop:
				return
			}
			n, err := io.ReadFull(r, b)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			select {
			case ra.full <- chunk{b: b[:n], err: err}:
			case <-ra.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ra
}

// Read returns the bytes read ahead, in order, then the error that ended
// the reading.
func (ra *readAhead) Read(p []byte) (int, error) {
	for ra.off == len(ra.cur.b) {
		if ra.err != nil {
			return 0, ra.err
		}
		if ra.cur.b != nil {
			ra.empty <- ra.cur.b[:cap(ra.cur.b)]
		}
		c, ok := <-ra.full
		if !ok {
			ra.cur, ra.err = chunk{}, io.ErrClosedPipe
			return 0, ra.err
		}
		ra.cur, ra.off = c, 0
		if len(c.b) == 0 && c.err != nil {
			ra.err = c.err
			ra.cur.b = nil
			return 0, c.err
		}
		if c.err != nil {
			ra.err = c.err
		}
	}
	n := copy(p, ra.cur.b[ra.off:])
	ra.off += n
	return n, nil
}

// Close stops the goroutine and waits for it.
func (ra *readAhead) Close() {
	ra.once.Do(func() { close(ra.stop) })
	ra.wg.Wait()
}
