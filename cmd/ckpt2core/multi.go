package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/ckpt2core/ckpt2core/internal/archive"
)

// oneDecoderEach gives each archive one zstd decoding goroutine when jobs
// archives are read at once: the archives are then the concurrency (two
// archives with four decoding goroutines each on two cores go slower).
func oneDecoderEach(aopts *archive.Options, jobs int) {
	if jobs > 1 {
		aopts.Decoders = 1
	}
}

// runEach runs job once per checkpoint path, at most jobs at a time, and
// writes what each job printed grouped per checkpoint, in the order of
// paths: a job's output (kept in memory until then) is written as soon as
// it and every job before it have ended, so the first checkpoint's
// results appear while the others still run. One failing checkpoint
// (its job's status) does not stop the others. Text output gets a
// "== PATH" line before each group; with asJSON, stdout is one JSON array
// of {"checkpoint", "status", "result"} objects, result being what the job
// printed (null if that is not JSON). It returns the statuses, by path.
// grep, inspect and list use it for many CHECKPOINT arguments.
func runEach(paths []string, jobs int, asJSON bool, stdout, stderr io.Writer, job func(path string, stdout, stderr io.Writer) int) []int {
	type result struct {
		out, errb bytes.Buffer
		status    int
		done      chan struct{}
	}
	res := make([]*result, len(paths))
	for i := range res {
		res[i] = &result{done: make(chan struct{})}
	}
	sem := make(chan struct{}, max(jobs, 1))
	var wg sync.WaitGroup
	go func() {
		for i, p := range paths {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r := res[i]
				r.status = job(p, &r.out, &r.errb)
				close(r.done)
			}()
		}
	}()
	statuses := make([]int, len(paths))
	if asJSON {
		io.WriteString(stdout, "[")
	}
	for i, r := range res {
		<-r.done
		statuses[i] = r.status
		stderr.Write(r.errb.Bytes())
		switch {
		case asJSON:
			var raw json.RawMessage
			if b := bytes.TrimSpace(r.out.Bytes()); json.Valid(b) && len(b) > 0 {
				raw = b
			}
			rec, _ := json.Marshal(struct {
				Checkpoint string          `json:"checkpoint"`
				Status     int             `json:"status"`
				Result     json.RawMessage `json:"result"`
			}{paths[i], r.status, raw})
			if i > 0 {
				io.WriteString(stdout, ",")
			}
			fmt.Fprintf(stdout, "\n%s", rec)
		default:
			fmt.Fprintf(stdout, "== %s\n", safe(paths[i]))
			stdout.Write(r.out.Bytes())
		}
		r.out, r.errb = bytes.Buffer{}, bytes.Buffer{}
	}
	if asJSON {
		io.WriteString(stdout, "\n]\n")
	}
	wg.Wait()
	return statuses
}
