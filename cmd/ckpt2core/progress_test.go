package main

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the bar's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestProgressQuickIsSilent: work done before the delay shows nothing.
func TestProgressQuickIsSilent(t *testing.T) {
	var out syncBuffer
	p := &progress{total: 1 << 30, stop: make(chan struct{})}
	p.show(&out, time.Second)
	p.add(1 << 30)
	time.Sleep(250 * time.Millisecond)
	p.finish()
	if s := out.String(); s != "" {
		t.Errorf("a conversion shorter than the delay printed %q", s)
	}
}

// TestProgressRate: the bar appears after the delay with a rate measured
// from the start of the work (here about 1 GB/s), not from when it
// appears, and the line is cleared at the end.
func TestProgressRate(t *testing.T) {
	var out syncBuffer
	const total = 2 << 30
	p := &progress{total: total, stop: make(chan struct{})}
	p.show(&out, 300*time.Millisecond)
	start := time.Now()
	for i := 0; i < 9; i++ { // 9 x 100 ms, about 1.07 GB/s
		time.Sleep(100 * time.Millisecond)
		p.add(100 << 20)
	}
	elapsed := time.Since(start)
	p.finish()
	s := out.String()
	if !strings.Contains(s, "converting") {
		t.Fatalf("no bar after %v:\n%q", elapsed, s)
	}
	rates := regexp.MustCompile(`\(([0-9.]+) (kB|MB|GB|TB)/s\)`).FindAllStringSubmatch(s, -1)
	if len(rates) == 0 {
		t.Fatalf("no rate shown:\n%q", s)
	}
	for _, r := range rates {
		v, _ := strconv.ParseFloat(r[1], 64)
		mult := map[string]float64{"kB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[r[2]]
		if rate := v * mult; rate > 5e9 || rate < 1e8 {
			t.Errorf("rate %s %s/s shown; the work ran at about 1 GB/s", r[1], r[2])
		}
	}
	if !strings.HasSuffix(s, "\r") {
		t.Errorf("the bar's line is not cleared at the end: %q", s[max(0, len(s)-80):])
	}
}
