package main

import (
	"errors"
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
// Without a debugger running, the signal ends ckpt2core at once: the work
// in progress is undone (onStop), the named temporary directories of the
// run (tempDir) are removed, and the exit status is 128+signal. While a
// debugger runs, the signal is forwarded to it and ckpt2core ends when the
// debugger has ended (what it reads is let go only then), with the same
// status. The lock makes the two ways out exclusive: a run that finishes
// while a signal is being handled never exits 0 under it.
type stopper struct {
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
	return s.onStopLocked(f)
}

// onStopLocked is onStop with s.mu held.
func (s *stopper) onStopLocked(f func()) (release func()) {
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

// tempDir creates a new directory (mode 0700) in os.TempDir(), named
// prefix followed by a random string, for what must have names (the
// files of an --image root), and returns it with the function that
// removes it. Every way out that runs code removes it too: a stop signal,
// a closed pipe, a panic. (SIGKILL cannot be handled: what the directory
// holds then stays; anything that can do without names is an anonymous
// file instead, see anonfile.) A nil stopper (tests that call run) only
// creates it.
func (s *stopper) tempDir(prefix string) (string, func(), error) {
	if s == nil {
		dir, err := os.MkdirTemp("", prefix)
		return dir, func() { os.RemoveAll(dir) }, err
	}
	// Under the lock: a signal cannot end the run between the making and
	// the registering.
	s.mu.Lock()
	defer s.mu.Unlock()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	release := s.onStopLocked(func() { os.RemoveAll(dir) })
	return dir, func() { os.RemoveAll(dir); release() }, nil
}

// newStopper starts handling the stop signals for a run.
func newStopper(stderr io.Writer) *stopper {
	s := &stopper{stderr: stderr, sigc: make(chan os.Signal, 1)}
	// SIGPIPE is taken too, so that a write to a closed stdout or stderr
	// returns EPIPE (to pipeOut, which ends the run after the cleanup)
	// instead of killing the process with the checkpoint still unpacked.
	signal.Notify(s.sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go s.loop()
	return s
}

// cleanupLocked runs the registered cleanups (which remove the temporary
// directories); s.mu is held.
func (s *stopper) cleanupLocked() {
	for _, f := range s.cleanup {
		f()
	}
	s.cleanup = nil
}

// brokenPipe ends the run because f (stdout or stderr) is a pipe whose
// reader has gone (EPIPE): the work in progress is undone, the temporary
// directories removed, and the process ends as a pipeline expects, killed by
// SIGPIPE (status 141 in a shell). It does not return.
func (s *stopper) brokenPipe(f *os.File) {
	s.mu.Lock() // a second broken write waits here until the process ends
	s.cleanupLocked()
	signal.Reset(syscall.SIGPIPE)
	// The runtime kills the process with SIGPIPE (default action) when a
	// write to stdout or stderr fails with EPIPE and SIGPIPE is not
	// notified; a kill(2) of our own would be ignored by its handler.
	f.Write([]byte{'\n'})
	os.Exit(128 + int(syscall.SIGPIPE))
}

// abandon undoes the work in progress and removes the temporary
// directories when the run ends by a panic (the caller panics again).
func (s *stopper) abandon() {
	s.mu.Lock()
	signal.Stop(s.sigc)
	s.cleanupLocked()
	s.mu.Unlock()
}

func (s *stopper) loop() {
	for v := range s.sigc {
		sig := v.(syscall.Signal)
		if sig == syscall.SIGPIPE {
			continue // the failed write is pipeOut's to handle
		}
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
		s.cleanupLocked()
		fmt.Fprintf(s.stderr, "ckpt2core: stopped by %s\n", signalName(sig))
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

// finish ends the run with status code: it stops listening for signals
// and returns code, or 128+signal if a signal stopped the run (after the
// cleanups).
func (s *stopper) finish(code int) int {
	s.mu.Lock() // if a signal is being handled, the process exits here
	signal.Stop(s.sigc)
	if s.sig != 0 {
		s.cleanupLocked()
		fmt.Fprintf(s.stderr, "ckpt2core: stopped by %s\n", signalName(s.sig))
		code = 128 + int(s.sig)
	}
	s.mu.Unlock()
	return code
}

// pipeOut is the real binary's stdout or stderr: a write that finds the
// pipe closed (EPIPE, as in 'ckpt2core inspect ARCHIVE | head -1') stops
// the work and ends the run through stop.brokenPipe.
type pipeOut struct {
	f    *os.File
	stop *stopper
}

func (p pipeOut) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	if err != nil && errors.Is(err, syscall.EPIPE) {
		p.stop.brokenPipe(p.f)
	}
	return n, err
}

// fileOf returns the file behind w (os.Stdout behind pipeOut), or nil: a
// debugger is given the terminal itself, and the progress bar asks it
// whether it is one.
func fileOf(w io.Writer) *os.File {
	switch w := w.(type) {
	case *os.File:
		return w
	case pipeOut:
		return w.f
	}
	return nil
}
