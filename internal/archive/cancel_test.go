package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// afterCalls is a context that is canceled after its Err has been asked
// n times: a cancellation at a chosen point of a stream, without timing.
type afterCalls struct {
	context.Context
	n atomic.Int64
}

func (c *afterCalls) Err() error {
	if c.n.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func (c *afterCalls) Done() <-chan struct{} { return nil }

func (c *afterCalls) Deadline() (time.Time, bool) { return time.Time{}, false }

// TestOpenCanceled: a canceled Context stops the extraction of an archive
// at any point (before it, or after the k-th read); Open then fails with
// the context's error and leaves no partial extraction: a new ExtractDir
// is removed, an empty one emptied. Spooling into TempDir leaves nothing
// either.
func TestOpenCanceled(t *testing.T) {
	for _, a := range []string{podmanGzip, podmanZstd} {
		// How many times a whole extraction asks: cancel at each of them.
		const many = 1 << 40
		count := &afterCalls{Context: context.Background()}
		count.n.Store(many)
		ck, err := Open(a, Options{TempDir: t.TempDir(), Context: count})
		if err != nil {
			t.Fatal(err)
		}
		ck.Close()
		asks := many - count.n.Load()
		if asks < 2 {
			t.Fatalf("%s: the context was asked %d times", a, asks)
		}
		t.Logf("%s: %d reads", a, asks)
		for k := range asks {
			ctx := &afterCalls{Context: context.Background()}
			tmp := t.TempDir()
			for _, existing := range []bool{false, true} {
				dir := filepath.Join(tmp, "extract")
				if existing {
					os.Mkdir(dir, 0o700)
				}
				ctx.n.Store(k)
				ck, err := Open(a, Options{ExtractDir: dir, Context: ctx})
				if err == nil && k >= asks/2 {
					// Canceled once the decompressor had read all it
					// needed (zstd reads ahead): a complete extraction.
					ck.Close()
					os.RemoveAll(dir)
					continue
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("%s after %d of %d reads: %v, want context.Canceled", a, k, asks, err)
				}
				ents, err := os.ReadDir(dir)
				switch {
				case !existing && !os.IsNotExist(err):
					t.Errorf("%s after %d reads: the new extract directory is still there: %v %v", a, k, ents, err)
				case existing && (err != nil || len(ents) != 0):
					t.Errorf("%s after %d reads: the extract directory holds %v (%v)", a, k, ents, err)
				}
				os.RemoveAll(dir)
			}
			spool := t.TempDir()
			ctx.n.Store(k)
			ck, err := Open(a, Options{TempDir: spool, Context: ctx})
			if err == nil && k >= asks/2 {
				ck.Close()
			} else if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s spooled, after %d of %d reads: %v", a, k, asks, err)
			}
			if ents, _ := os.ReadDir(spool); len(ents) != 0 {
				t.Errorf("%s spooled, after %d reads: left %v", a, k, ents)
			}
		}
	}
	// A context never canceled changes nothing.
	ck, err := Open(podmanZstd, Options{TempDir: t.TempDir(), Context: context.Background()})
	if err != nil {
		t.Fatal(err)
	}
	ck.Close()
}
