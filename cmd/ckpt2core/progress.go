package main

import (
	"io"
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
	desc  string
	stop  chan struct{}
	wg    sync.WaitGroup
}

// startProgress starts the display for total bytes; enabled decides
// whether anything may be shown at all.
func startProgress(w io.Writer, total int64, enabled bool) *progress {
	return startProgressAs(w, total, enabled, "converting")
}

// startProgressAs is startProgress with the bar's description.
func startProgressAs(w io.Writer, total int64, enabled bool, desc string) *progress {
	p := &progress{total: total, stop: make(chan struct{}), desc: desc}
	f := fileOf(w)
	if !enabled || f == nil || !term.IsTerminal(int(f.Fd())) || total <= 0 {
		return p
	}
	p.show(w, time.Second)
	return p
}

// show draws the bar on w once delay has passed. The bar is created now,
// drawing into a closed gate, so that its rate and time left count from
// the start of the work: created when it appears, it would take the bytes
// done until then for bytes done in no time (a rate of TB/s, 0s left).
func (p *progress) show(w io.Writer, delay time.Duration) {
	g := &gate{w: w}
	desc := p.desc
	if desc == "" {
		desc = "converting"
	}
	bar := progressbar.NewOptions64(p.total,
		progressbar.OptionSetWriter(g),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionThrottle(0), // run draws every tick
		progressbar.OptionClearOnFinish(),
	)
	bar.StartWithoutRender()
	p.wg.Add(1)
	go p.run(bar, g, delay)
}

func (p *progress) run(bar *progressbar.ProgressBar, g *gate, delay time.Duration) {
	defer p.wg.Done()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			if g.open.Load() {
				bar.Finish() // clears the line
			}
			return
		case <-tick.C:
			bar.Set64(min(int64(p.done.Load()), p.total))
			if !g.open.Load() && time.Since(start) >= delay {
				g.open.Store(true)
				bar.RenderBlank()
			}
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

// gate passes writes through once open and drops them before.
type gate struct {
	w    io.Writer
	open atomic.Bool
}

func (g *gate) Write(b []byte) (int, error) {
	if !g.open.Load() {
		return len(b), nil
	}
	return g.w.Write(b)
}
