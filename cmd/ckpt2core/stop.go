package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
)

// stopper decides how a run ends when SIGINT, SIGTERM or SIGHUP arrives.
//
// Without a debugger running, the signal ends ckpt2core at once: the
// private temporary directory is removed and the exit status is 128+signal.
// While a debugger runs, the signal is forwarded to it and ckpt2core ends
// when the debugger has ended (the core it reads is removed only then),
// with the same status. The lock makes the two ways out exclusive: a run
// that finishes while a signal is being handled never exits 0 under it.
type stopper struct {
	tmp    string
	stderr io.Writer
	sigc   chan os.Signal

	mu      sync.Mutex
	sig     syscall.Signal // the signal that stopped the run, 0 if none
	child   *os.Process    // the running debugger, if any
	cleanup map[int]func() // undo work in progress on a stop, by key
	next    int
}

// onStop registers f to run if a signal ends the run before release is
// called (f runs at most once; a nil stopper never runs it).
func (s *stopper) onStop(f func()) (release func()) {
	if s == nil {
		return func() {}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cleanup == nil {
		s.cleanup = make(map[int]func())
	}
	key := s.next
	s.next++
	s.cleanup[key] = f
	return func() {
		s.mu.Lock()
		delete(s.cleanup, key)
		s.mu.Unlock()
	}
}

// newStopper starts handling the stop signals for a run whose temporary
// directory is tmp.
func newStopper(tmp string, stderr io.Writer) *stopper {
	s := &stopper{tmp: tmp, stderr: stderr, sigc: make(chan os.Signal, 1)}
	signal.Notify(s.sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go s.loop()
	return s
}

func (s *stopper) loop() {
	for v := range s.sigc {
		sig := v.(syscall.Signal)
		s.mu.Lock()
		if s.sig == 0 {
			s.sig = sig
		}
		if s.child != nil {
			s.child.Signal(sig) // the debugger's exit ends the run
			s.mu.Unlock()
			continue
		}
		// The lock is kept: finish cannot return a status under us.
		for _, f := range s.cleanup {
			f()
		}
		os.RemoveAll(s.tmp)
		fmt.Fprintf(s.stderr, "ckpt2core: stopped by %v\n", sig)
		os.Exit(128 + int(sig))
	}
}

// runChild starts cmd and waits for it, forwarding stop signals to it. It
// returns the stop signal if one arrived before or while cmd ran (cmd is
// then not started, or has ended), else cmd's error. A nil stopper (tests
// that call run directly) just runs cmd.
func (s *stopper) runChild(cmd *exec.Cmd) (syscall.Signal, error) {
	if s == nil {
		return 0, cmd.Run()
	}
	s.mu.Lock()
	if s.sig != 0 {
		s.mu.Unlock()
		return s.sig, nil
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return 0, err
	}
	s.child = cmd.Process
	s.mu.Unlock()
	err := cmd.Wait()
	s.mu.Lock()
	s.child = nil
	sig := s.sig
	s.mu.Unlock()
	return sig, err
}

// finish ends the run with status code: it stops listening for signals,
// removes the temporary directory and returns code, or 128+signal if a
// signal stopped the run.
func (s *stopper) finish(code int) int {
	s.mu.Lock() // if a signal is being handled, the process exits here
	signal.Stop(s.sigc)
	os.RemoveAll(s.tmp)
	if s.sig != 0 {
		for _, f := range s.cleanup {
			f()
		}
		fmt.Fprintf(s.stderr, "ckpt2core: stopped by %v\n", s.sig)
		code = 128 + int(s.sig)
	}
	s.mu.Unlock()
	return code
}
