package main

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress counts bytes written and, on a terminal, shows a progress bar
// on stderr once the work has taken more than a second (bytes done, rate,
// time left). Elsewhere, or with --quiet, it shows nothing.
type progress struct {
	done  atomic.Uint64
	total int64
	w     io.Writer
	stop  chan struct{}
	wg    sync.WaitGroup
}

// startProgress starts the display for total bytes; enabled decides
// whether anything may be shown at all.
func startProgress(w io.Writer, total int64, enabled bool) *progress {
	p := &progress{total: total, w: w, stop: make(chan struct{})}
	f, ok := w.(*os.File)
	if !enabled || !ok || !term.IsTerminal(int(f.Fd())) || total <= 0 {
		return p
	}
	p.wg.Add(1)
	go p.run()
	return p
}

func (p *progress) run() {
	defer p.wg.Done()
	select {
	case <-p.stop:
		return
	case <-time.After(time.Second):
	}
	bar := progressbar.NewOptions64(p.total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetDescription("converting"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			bar.Set64(int64(p.done.Load()))
			bar.Finish()
			return
		case <-tick.C:
			bar.Set64(min(int64(p.done.Load()), p.total))
		}
	}
}

// add records n more bytes written.
func (p *progress) add(n uint64) { p.done.Add(n) }

// finish stops the display.
func (p *progress) finish() {
	close(p.stop)
	p.wg.Wait()
}
